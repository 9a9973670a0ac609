// Command sortgw is the sort-center PLC gateway: it reads scanner
// telegrams, decides chutes from the sort plan and drives the sorter PLC.
//
// Usage: sortgw <command> [arguments]; "sortgw help" lists the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand. run returns the process exit code; only this
// package prints or exits.
type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands is the dispatch table. Gateway commands (run, check, demo,
// bench) are added here next to plan.
func commands() []command {
	return []command{
		{"run", "run -config site.yaml                    run the gateway (SIGHUP reloads plans, SIGTERM drains)", cmdRun},
		{"check", "check -config site.yaml                  build the site as run does, without I/O; every error at file:line:col", cmdCheck},
		{"demo", "demo [-http addr] [-protocol p] [-rate n]  emulated sorter + gateway + status page", cmdDemo},
		{"plan", "plan check|diff|explain|gen|labels ...  work with sort plan files", planCmd},
		{"bench", "bench [-protocol p] [-rate n|max] [-duration d] [-lines n] [-chaos]  end-to-end benchmark, soak and chaos", cmdBench},
		{"reload", "reload -config site.yaml                 reload the running gateway's plans; fails when a plan is refused", cmdReload},
		{"probe", "probe -config site.yaml -line A [-json] [-divert-test CHUTE]  check a line's PLC against the interface (commissioning)", cmdProbe},
		{"replay", "replay -journal FILE|DIR -plan NEW.csv [-from T] [-to T] [-unavailable 12,13] [-json] [-html out.html]  what-if: replay recorded passes against another plan", cmdReplay},
		{"tail", "tail [-nats url] [-subject s] [-all]     print the upstream NATS stream's records as JSON lines", cmdTail},
		{"version", "version                                  version, Go version and VCS revision", cmdVersion},
		{"operator", "operator add -file F -name N -role R     add or replace a technician account (PIN on stdin)", cmdOperator},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// dispatch runs the command args name. Asked for help, it prints the
// usage to stdout and succeeds; without a command, or with an unknown
// one, it prints the usage to stderr and exits 2 (a usage error).
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "-version", "--version":
		return cmdVersion(ctx, nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "sortgw: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sortgw <command> [arguments]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s\n", c.usage)
	}
}
