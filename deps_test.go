// Package sortgw_test holds repository-wide checks: the dependency direction
// of the layout and a doc comment on every package.
package sortgw_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "sortgw"

type pkgInfo struct {
	ImportPath string
	Doc        string
	Standard   bool
	Deps       []string // every non-test dependency, direct or not
	Imports    []string // the non-test imports of the package itself
	GoFiles    []string
}

// listPackages runs `go list -json` with deps over the module.
func listPackages(t *testing.T) []pkgInfo {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkgInfo
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// standard reports whether an import path belongs to the standard library
// (no dot in its first element).
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") && first != module
}

func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// TestDependencyDirection enforces DEVELOPERS.md: cmd wires everything;
// gateway uses sortplan and the device contracts, never a device
// implementation; devices and sortplan know nothing of each other;
// fieldbus-sim imports no gateway code, and only cmd/ (and tests) import
// fieldbus-sim. It reads non-test dependencies only.
func TestDependencyDirection(t *testing.T) {
	rules := []struct {
		pkg       string // package prefix the rule applies to
		allow     func(dep string) bool
		forbidden string // what the rule says, for the error
	}{
		{
			pkg: module + "/sortplan",
			allow: func(d string) bool {
				return standard(d) || under(d, module+"/sortplan")
			},
			forbidden: "sortplan uses the standard library and its own packages only",
		},
		{
			pkg: module + "/devices",
			allow: func(d string) bool {
				return !under(d, module+"/sortplan") && !under(d, module+"/gateway") &&
					!under(d, module+"/fieldbus-sim") && !under(d, module+"/cmd")
			},
			forbidden: "devices knows nothing of sortplan, gateway, fieldbus-sim or cmd",
		},
		{
			pkg: module + "/gateway",
			allow: func(d string) bool {
				return !under(d, module+"/fieldbus-sim") && !under(d, module+"/cmd")
			},
			forbidden: "gateway does not import fieldbus-sim or cmd",
		},
		{
			pkg: module + "/gateway",
			allow: func(d string) bool {
				return !under(d, module+"/devices/scanner") && !under(d, module+"/devices/modbus") &&
					!under(d, module+"/devices/opcua")
			},
			forbidden: "gateway sees devices through the contracts in sortgw/devices only, never an implementation (cmd wires those)",
		},
		{
			pkg: module + "/fieldbus-sim",
			allow: func(d string) bool {
				return !strings.HasPrefix(d, module+"/") || under(d, module+"/fieldbus-sim")
			},
			forbidden: "fieldbus-sim is the other side of the wire: it imports no project package",
		},
	}
	// The contracts package itself stays free of protocol libraries.
	contracts := func(d string) bool { return standard(d) }

	for _, p := range listPackages(t) {
		for _, r := range rules {
			if !under(p.ImportPath, r.pkg) {
				continue
			}
			for _, d := range p.Deps {
				if !r.allow(d) {
					t.Errorf("%s imports %s: %s", p.ImportPath, d, r.forbidden)
				}
			}
		}
		if p.ImportPath == module+"/devices" {
			for _, d := range p.Deps {
				if !contracts(d) {
					t.Errorf("%s imports %s: the device contracts use the standard library only", p.ImportPath, d)
				}
			}
		}
	}
}

// TestPackageDocs: every package says what it is for.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if len(p.GoFiles) == 0 {
			continue // test-only package, like this one
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", p.ImportPath)
		}
	}
}

// TestCmdSortgwImportsNoProtocolLibrary: cmd/sortgw wires and prints only.
// The Modbus and OPC UA libraries sit behind devices/modbus and
// devices/opcua, and the raw transport baselines of the bench live next to
// the layout and nodes they use, not in cmd. It reads the package's own
// imports: the device packages cmd wires import the libraries, as they must.
func TestCmdSortgwImportsNoProtocolLibrary(t *testing.T) {
	libraries := []string{"github.com/goburrow/modbus", "github.com/gopcua/opcua", "github.com/simonvetter/modbus"}
	seen := false
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/cmd/sortgw" {
			continue
		}
		seen = true
		for _, imp := range p.Imports {
			for _, lib := range libraries {
				if under(imp, lib) {
					t.Errorf("%s imports %s: cmd/sortgw wires and prints; protocol code belongs in devices/ (the raw baselines next to the layout and nodes they use)", p.ImportPath, imp)
				}
			}
		}
	}
	if !seen {
		t.Fatalf("go list found no package %s/cmd/sortgw", module)
	}
}

// maxCmdFileLines is the most lines a non-test Go file under cmd/ may have:
// cmd holds wiring and printing, and a longer file is harness or logic
// that belongs in a package of its own.
const maxCmdFileLines = 400

// TestCmdFilesAreShort: no non-test .go file under cmd/ is over
// maxCmdFileLines lines. It walks the directory, so files any build
// constraint excludes are counted too.
func TestCmdFilesAreShort(t *testing.T) {
	n := 0
	err := filepath.WalkDir("cmd", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "cmd" && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir // the go tool ignores these too
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		lines := bytes.Count(b, []byte("\n"))
		if len(b) > 0 && b[len(b)-1] != '\n' {
			lines++
		}
		if lines > maxCmdFileLines {
			t.Errorf("%s has %d lines, more than %d: split it by concern, or move harness code out of cmd", filepath.ToSlash(path), lines, maxCmdFileLines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no Go file under cmd/")
	}
}
