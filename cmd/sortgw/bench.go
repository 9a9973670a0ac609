package main

// `sortgw bench`: flags into loadtest.Config, the report printed. The
// harness is cmd/internal/loadtest; docs/performance.md holds the figures.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"sortgw/cmd/internal/loadtest"
)

// benchFlags are the flags of `sortgw bench` that are not Config fields
// as they are.
type benchFlags struct {
	protocol, rate, logLevel string
	profiles                 loadtest.Profiles
	upstream                 upstreamFlag
	check                    bool
}

// upstreamFlag is -upstream: a boolean flag (-upstream, -upstream=false)
// that also takes "both" (-upstream=both, or -upstream both).
type upstreamFlag struct{ mode string } // "", "true", "false", "both"

func (u *upstreamFlag) String() string {
	if u == nil || u.mode == "" {
		return "false"
	}
	return u.mode
}

func (u *upstreamFlag) Set(v string) error {
	switch v {
	case "both":
		u.mode = v
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true, false or both")
	}
	u.mode = strconv.FormatBool(b)
	return nil
}

func (u *upstreamFlag) IsBoolFlag() bool { return true }

func benchFlagSet(stderr io.Writer) (*flag.FlagSet, *loadtest.Config, *benchFlags) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c, f := &loadtest.Config{}, &benchFlags{}
	fs.StringVar(&f.protocol, "protocol", "modbus", "PLC protocol: modbus, opcua or both")
	fs.StringVar(&f.rate, "rate", "", `items/s per line (default 1000; 200 with -chaos), or "max": offer twice the ring's ceiling and report the capacity achieved`)
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured window per protocol")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "warm-up before the window")
	fs.IntVar(&c.Lines, "lines", 1, "sorter lines in the process, each with its own emulated sorter")
	fs.IntVar(&c.Chutes, "chutes", 256, "chutes per sorter")
	fs.DurationVar(&c.PLCCycle, "cycle", 5*time.Millisecond, "emulated PLC scan cycle")
	fs.DurationVar(&c.Poll, "poll", 10*time.Millisecond, "Modbus poll / OPC UA publishing interval")
	fs.BoolVar(&c.Chaos, "chaos", false, "inject a fault every -chaos-every and check the ground truth at the end")
	fs.DurationVar(&c.ChaosEvery, "chaos-every", 30*time.Second, "interval between faults")
	fs.BoolVar(&c.Abuse, "abuse", true, "with -chaos: also the fault-and-abuse soak (a scanner's listen port taken, a flood of -sse-clients status streams, "+
		"slow readers, Modbus exception bursts), half an interval after each fault; the scanners then connect out to the gateway")
	fs.IntVar(&c.Soak.SSEClients, "sse-clients", 500, "with -abuse: status-stream clients opened at once (the gateway serves 64)")
	fs.IntVar(&c.Soak.SlowReaders, "slow-readers", 32, "with -abuse: unread status streams, and as many unread /status.json pipelines (at most 64)")
	fs.DurationVar(&c.Soak.PortHold, "port-hold", 10*time.Second, "with -abuse: how long a scanner's listen port stays taken")
	fs.DurationVar(&c.Soak.JournalFull, "journal-full", 30*time.Second, "with -abuse: how long the journal's commits fail as on a full disk")
	fs.IntVar(&c.Soak.ExceptionsPerCode, "exceptions", 18, "with -abuse: Modbus exception replies per code (1,2,3,4,6,11) in a burst")
	fs.IntVar(&c.ContainerCapacity, "container-capacity", 0, "items per container before the chute is full (default: never full; 40 with -chaos)")
	fs.Int64Var(&c.Seed, "seed", 1, "random seed")
	fs.BoolVar(&c.SkipDecide, "skip-decide", false, "leave out the decision micro-benchmark")
	fs.StringVar(&f.profiles.CPU, "cpuprofile", "", "write a CPU profile of the whole run here")
	fs.StringVar(&f.profiles.Mutex, "mutexprofile", "", "write a mutex contention profile of the whole run here")
	fs.StringVar(&f.profiles.Trace, "trace", "", "write a runtime execution trace of the whole run here")
	fs.StringVar(&f.logLevel, "log", "error", "log level")
	fs.IntVar(&c.Capacity, "capacity", 0, "items tracked per line (default: the gateway's, 65536)")
	fs.IntVar(&c.JournalQueue, "journal-queue", 0, "journal queue size (default: the journal's, 65536)")
	fs.Var(&f.upstream, "upstream", "publish the journal to an embedded NATS JetStream server meanwhile (docs/upstream.md); "+
		"both: windows off, on, off, on in one process, read-to-written pooled per arm and compared")
	fs.BoolVar(&f.check, "check", false, "exit non-zero only on correctness: the journal against the emulator's ground truth, every pass one outcome (never on a timing or capacity figure)")
	fs.BoolVar(&c.ImmediateScan, "immediate-scan", false, "the emulated PLC takes commands as they are written, not only at its scan")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write a heap profile at the end of the (last) window here")
	fs.StringVar(&c.Feed, "feed", "", "direct (the bench's own scanner at an exact rate; default) or conveyor (the emulated belt; default with -chaos)")
	return fs, c, f
}

// cmdBench is `sortgw bench`: one scenario per protocol, each report
// printed as it ends. Exit 1 when a run fails or its ground truth or chaos
// check does not hold (with -check: the ground truth, or a missed
// confirmation); 2 for bad flags.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfg, f := benchFlagSet(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// A bool flag takes its value after "=" only: "-upstream both" leaves
	// "both" as an argument, and the flag package stops there.
	if fs.NArg() > 0 && fs.Arg(0) == "both" && f.upstream.mode == "true" {
		f.upstream.mode = "both"
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sortgw bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Upstream = f.upstream.mode == "true"
	switch f.rate {
	case "": // the Config's default
	case "max":
		cfg.Rate = -1
	default:
		v, err := strconv.ParseFloat(f.rate, 64)
		if err != nil || v <= 0 {
			fmt.Fprintf(stderr, "sortgw bench: -rate %q: want a positive number or max\n", f.rate)
			return 2
		}
		cfg.Rate = v
	}
	cfg.Version = version
	protos := []string{f.protocol}
	if f.protocol == "both" {
		protos = []string{"modbus", "opcua"}
	}
	stopProfiles, err := f.profiles.Start()
	if err != nil {
		fmt.Fprintln(stderr, "sortgw bench:", err)
		return 1
	}
	code := runBenches(ctx, *cfg, protos, f, simLogger(stderr, f.logLevel), args, stdout, stderr)
	if err := stopProfiles(); err != nil {
		fmt.Fprintln(stderr, "sortgw bench:", err)
		code = max(code, 1)
	}
	return code
}

// runBenches prints the header (machine, command, load average), then runs
// and prints one scenario per protocol (or, with -upstream both, the
// upstream arms); it returns the exit code.
func runBenches(ctx context.Context, cfg loadtest.Config, protos []string, f *benchFlags, log zerolog.Logger, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "sortgw bench %s: %s, nproc %d, GOMAXPROCS %d, %s, %s, loadavg %s\n", version, loadtest.CPUModel(), runtime.NumCPU(),
		runtime.GOMAXPROCS(0), runtime.Version(), time.Now().UTC().Format(time.RFC3339), loadtest.LoadAvg())
	fmt.Fprintf(stdout, "command: sortgw bench %s\n", strings.Join(args, " "))
	defer func() { fmt.Fprintf(stdout, "loadavg at the end: %s\n", loadtest.LoadAvg()) }()
	code := 0
	verdict := func(rep *loadtest.Report) {
		if f.check {
			if fails := rep.CheckFailures(); len(fails) > 0 {
				fmt.Fprintf(stdout, "check FAILED (%s): %s\n", rep.Cfg.Protocol, strings.Join(fails, ", "))
				code = 1
			} else {
				fmt.Fprintf(stdout, "check OK (%s): ground truth held, every pass one outcome (%d missed confirmations, each recorded)\n", rep.Cfg.Protocol, rep.MissedRun)
			}
		} else if !rep.OK() {
			code = 1
		}
	}
	for _, p := range protos {
		c := cfg
		c.Protocol = p
		if f.upstream.mode == "both" {
			arms, err := loadtest.RunUpstreamArms(ctx, c, 2, log, func(_ bool, _ int, rep *loadtest.Report) {
				rep.Print(stdout)
				fmt.Fprintf(stdout, "loadavg: %s\n", loadtest.LoadAvg())
				verdict(rep)
			})
			if arms != nil && len(arms.Windows) > 0 {
				arms.Print(stdout)
			}
			if err != nil {
				fmt.Fprintln(stderr, "sortgw bench:", err)
				return 1
			}
			continue
		}
		rep, err := loadtest.Run(ctx, c, log)
		if rep != nil {
			rep.Print(stdout)
			fmt.Fprintf(stdout, "loadavg: %s\n", loadtest.LoadAvg())
		}
		if err != nil {
			fmt.Fprintln(stderr, "sortgw bench:", err)
			return 1
		}
		verdict(rep)
	}
	return code
}
