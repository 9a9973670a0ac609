package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// cmdVersion is `sortgw version`: the version, the Go version and the VCS
// revision the binary was built from, for a bug report or an audit.
func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "sortgw version: unexpected argument %q\n", args[0])
		return 2
	}
	fmt.Fprint(stdout, versionText(version, runtime.Version(), readBuildInfo()))
	return 0
}

func readBuildInfo() *debug.BuildInfo {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi
	}
	return nil
}

// versionText renders `sortgw version`. bi may be nil (no build info).
func versionText(version, goVersion string, bi *debug.BuildInfo) string {
	rev, at, modified := "unknown", "", false
	if bi != nil {
		if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version // go install module@version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		rev += " (modified)"
	}
	if at != "" {
		rev += " " + at
	}
	return fmt.Sprintf("sortgw %s\ngo %s\nrevision %s\n", version, goVersion, rev)
}
