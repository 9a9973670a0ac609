package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"sortgw/cmd/internal/site"
)

// cmdCheck is `sortgw check -config site.yaml`: the site is built as `run`
// builds it, without opening the journal, dialling or listening; every
// problem is printed as file:line:col: message. With -bind (the default)
// it also binds and releases the listen addresses, so that a port another
// program holds fails the unit's ExecStartPre. Exit status 1 on any error.
func cmdCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/sortgw/site.yaml", "site configuration file")
	bind := fs.Bool("bind", true, "also bind and release the listen addresses (use -bind=false beside a running gateway)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := site.Load(*cfgPath)
	if err == nil {
		err = cfg.Check()
		for _, n := range cfg.Notes {
			fmt.Fprintln(stdout, n)
		}
		if err == nil && *bind {
			err = cfg.ProbeListeners()
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		n := 1
		if es := site.Errors(nil); errors.As(err, &es) {
			n = len(es)
		}
		fmt.Fprintf(stderr, "%s: %d error(s)\n", *cfgPath, n)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *cfgPath)
	return 0
}
