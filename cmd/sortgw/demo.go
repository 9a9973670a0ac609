package main

// `sortgw demo`: flags into demo.Config, the status page's URL and token
// printed. The demo itself is cmd/internal/demo.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"sortgw/cmd/internal/demo"
)

// demoMemoryLimitMiB is the demo's default soft memory limit. The Go
// runtime's default (GOGC 100, no limit) lets the heap grow to twice what
// is live before collecting: 41 MB of Go memory for 18-24 MB live at 20
// items/s, RSS at most 68.5 MB in 5 minutes. With 32 MiB the collector
// runs earlier once near it: 30 MB of Go memory, RSS at most 57.6 MB (see
// docs/performance.md, Demo memory). A soft limit: when more is live (200 items/s
// keeps about 45 MB) the runtime exceeds it rather than spend more than
// half the CPU collecting.
const demoMemoryLimitMiB = 32

// cmdDemo is `sortgw demo`: an emulated sorter, the gateway and the status
// page in one process, for a first look and for training. Exit 1 when it
// fails to start or stops with an error; 2 for bad flags.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg demo.Config
	fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:8080", "status page address")
	fs.StringVar(&cfg.Protocol, "protocol", "modbus", "PLC protocol: modbus or opcua")
	fs.Float64Var(&cfg.Rate, "rate", 20, "items inducted per second")
	fs.IntVar(&cfg.Chutes, "chutes", 256, "chute count")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed for the sorter and the plan")
	fs.StringVar(&cfg.Token, "token", "", "bearer token for actions (default: a random one, printed)")
	fs.StringVar(&cfg.Dir, "dir", "", "keep the journal in this folder (for sortgw replay; default a temporary one, removed at exit)")
	nats := fs.Bool("nats", true, "publish the journal to an embedded NATS JetStream server (sortgw tail watches it)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	rssEvery := fs.Duration("rss-every", 0, "print the process's RSS and Go heap this often, and a verdict at the end (0: off)")
	fs.BoolVar(&cfg.Check, "check", false, "at the end, hold the journal against the sorter's ground truth and every bounded structure against its bound; exit 1 if either fails")
	fs.IntVar(&cfg.TruthLimit, "truth-limit", 0, "per-item ground-truth records the emulated sorter keeps (default 12000; -check compares these item by item)")
	memLimit := fs.Int("memory-limit-mib", demoMemoryLimitMiB, "soft limit of the Go runtime's memory in MiB (debug.SetMemoryLimit; 0: none; GOMEMLIMIT in the environment wins over the default)")
	heapDir := fs.String("heap-profiles", "", "with -rss-every: write a heap profile per sample into this folder (for go tool pprof -base)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *memLimit < 0 {
		fmt.Fprintln(stderr, "sortgw demo: -memory-limit-mib: want 0 or more")
		return 2
	}
	cfg.Version = version
	cfg.NoNATS = !*nats
	d, err := demo.New(cfg, simLogger(stderr, "info"))
	if err != nil {
		fmt.Fprintln(stderr, "sortgw demo:", err)
		return 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "memory-limit-mib" })
	if *memLimit > 0 && (explicit || os.Getenv("GOMEMLIMIT") == "") {
		// Process-wide: put back what was there when the demo returns
		// (tests call cmdDemo inside their own process).
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(*memLimit) << 20))
	}
	if *duration > 0 {
		// After -duration induction stops and the belt runs empty (at
		// most two laps), so that a checked run ends with every item done.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := time.AfterFunc(*duration, func() {
			if !d.Finish(ctx) && ctx.Err() == nil {
				fmt.Fprintln(stderr, "sortgw demo: the belt did not empty within two laps; stopping anyway")
			}
			cancel()
		})
		defer stop.Stop()
	}
	var watch chan []demo.MemSample
	stopWatch := func() {}
	if *rssEvery > 0 {
		watch = make(chan []demo.MemSample, 1)
		var wctx context.Context
		wctx, stopWatch = context.WithCancel(ctx)
		defer stopWatch()
		go func() {
			series, werr := d.WatchMemory(wctx, *rssEvery, *heapDir, func(s demo.MemSample) { fmt.Fprintln(stdout, "sortgw demo: mem", s) })
			if werr != nil {
				fmt.Fprintln(stderr, "sortgw demo:", werr)
			}
			watch <- series
		}()
	}
	err = d.Run(ctx, func(url string) {
		c := d.Config()
		fmt.Fprintf(stdout, "sortgw demo: status page %s\n", url)
		fmt.Fprintf(stdout, "sortgw demo: token for actions: %s\n", c.Token)
		fmt.Fprintf(stdout, "sortgw demo: plan file (edit, raise plan_version, press Reload plan): %s\n", d.PlanFile())
		if t := d.Tail(); t != "" {
			fmt.Fprintf(stdout, "sortgw demo: watch the upstream stream live: %s\n", t)
		}
		fmt.Fprintf(stdout, "sortgw demo: %s PLC, %.0f items/s, %d chutes; Ctrl-C stops\n", c.Protocol, c.Rate, c.Chutes)
	})
	if watch != nil {
		stopWatch()
		series := <-watch
		if len(series) > 0 {
			fmt.Fprintln(stdout, "sortgw demo: mem verdict:", demo.Verdict(series))
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "sortgw demo:", err)
		return 1
	}
	if c := d.Check(); c != nil {
		fmt.Fprintln(stdout, "sortgw demo:", c)
		if !c.OK() {
			return 1
		}
	}
	return 0
}
