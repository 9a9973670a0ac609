package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"sortgw/sortplan"
)

// cmdCheck is `sortgw check -config site.yaml`: the config, every line's
// plan and manifest are read and validated as `run` would; every problem
// is printed as file:line:col: message. Exit status 1 on any error.
func cmdCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/sortgw/site.yaml", "site configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if n := checkSite(*cfgPath, stdout, stderr); n > 0 {
		fmt.Fprintf(stderr, "%s: %d error(s)\n", *cfgPath, n)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *cfgPath)
	return 0
}

// checkSite prints every finding and returns the number of errors.
func checkSite(path string, stdout, stderr io.Writer) int {
	cfg, err := LoadConfig(path)
	if err != nil {
		var ces ConfigErrors
		if errors.As(err, &ces) {
			for _, e := range ces {
				fmt.Fprintln(stderr, e.Error())
			}
			return len(ces)
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.HTTP.Token == "" {
		fmt.Fprintf(stdout, "%s: warning: no http token: the status page is read-only\n", path)
	}
	errs := 0
	for i := range cfg.Lines {
		l := &cfg.Lines[i]
		p, diags, err := sortplan.LoadPlan(l.Plan, l.Chutes)
		for _, d := range diags {
			if d.Warning {
				fmt.Fprintln(stdout, d.String())
			} else {
				fmt.Fprintln(stderr, d.String())
				errs++
			}
		}
		if err != nil {
			if len(diags) == 0 {
				fmt.Fprintf(stderr, "%s: line %s: %v\n", path, l.Name, err)
				errs++
			}
			continue
		}
		var m *sortplan.Manifest
		if l.Manifest != "" {
			if m, err = sortplan.LoadManifest(l.Manifest); err != nil {
				fmt.Fprintln(stderr, err)
				errs++
				continue
			}
		}
		if _, err := sortplan.Compile(p, m, resolverConfig(l.Resolver)); err != nil {
			fmt.Fprintf(stderr, "%s: line %s: compile plan: %v\n", l.Plan, l.Name, err)
			errs++
			continue
		}
		fmt.Fprintf(stdout, "line %s: plan %s version %d, %d rules: ok\n", l.Name, p.Name, p.Version, len(p.Rules))
	}
	return errs
}
