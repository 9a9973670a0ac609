package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"sortgw/cmd/internal/probe"
	"sortgw/cmd/internal/site"
)

// cmdProbe is `sortgw probe -config site.yaml -line A`: it checks the
// line's PLC against the host interface with the line's own settings and
// prints one line per check (or -json). Exit status 0 only when every
// check that ran passed; 1 on a failed check; 2 on a usage or config error.
func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/sortgw/site.yaml", "site configuration file")
	line := fs.String("line", "", "the line whose PLC to probe (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON, for the commissioning record")
	chute := fs.Uint("divert-test", 0, "WRITES TO THE PLC: divert test on this `chute`. Sends test commands (TID 0, a chute above\n"+
		"CHUTE_COUNT, chute 0 and one divert into this chute) and stops the host heartbeat once,\n"+
		"which makes the PLC recirculate everything (FAULT_CODE 1). A parcel on the belt may be\n"+
		"diverted into this chute. Runs only while the PLC reports maintenance (SORTER_STATE 4)\n"+
		"and no other host (gateway) writes the heartbeat; the belt must move for the divert to complete")
	sample := fs.Duration("sample", 1500*time.Millisecond, "how long to watch the PLC heartbeat")
	wait := fs.Duration("confirm-wait", 30*time.Second, "divert test: how long to wait for each confirmation")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *line == "" || fs.NArg() > 0 || *chute > 0xffff {
		fmt.Fprintln(stderr, "usage: sortgw probe -config site.yaml -line NAME [-json] [-divert-test CHUTE]")
		return 2
	}
	cfg, err := site.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	opt := probe.Options{DivertChute: uint16(*chute), Sample: *sample, ConfirmWait: *wait,
		Progress: func(msg string) { fmt.Fprintln(stderr, msg) }}
	rep, err := probe.Line(ctx, cfg, *line, opt)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if !rep.OK() {
		return 1
	}
	return 0
}
