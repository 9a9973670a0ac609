package main

// `sortgw demo`: flags into demo.Config, the status page's URL and token
// printed. The demo itself is cmd/internal/demo.

import (
	"context"
	"flag"
	"fmt"
	"io"

	"sortgw/cmd/internal/demo"
)

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
	heapDir := fs.String("heap-profiles", "", "with -rss-every: write a heap profile per sample into this folder (for go tool pprof -base)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Version = version
	cfg.NoNATS = !*nats
	d, err := demo.New(cfg, simLogger(stderr, "info"))
	if err != nil {
		fmt.Fprintln(stderr, "sortgw demo:", err)
		return 2
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
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
	return 0
}
