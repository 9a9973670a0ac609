// Package loadtest is the harness behind `sortgw bench`: the emulated
// sorter and the gateway in one process, driven at a target rate over
// Modbus TCP or OPC UA, with the raw transport baselines measured in the
// same run so that every latency reads as a ratio on a noisy machine; with
// Chaos, faults injected on a schedule and the gateway's journal held
// against the emulator's ground truth at the end.
//
// Run returns a Report; printing it and choosing the exit code is the
// caller's (cmd/sortgw). docs/performance.md holds the figures.
package loadtest

import (
	"errors"
	"fmt"
	"time"

	"sortgw/gateway/journal"
)

// Feeds of Config.Feed.
const (
	// FeedDirect: the bench's own scanner sends telegrams at an exact
	// rate, and the emulated PLC runs in commissioning mode.
	FeedDirect = "direct"
	// FeedConveyor: the emulated belt inducts, scans and diverts items.
	FeedConveyor = "conveyor"
)

// Config is one bench scenario. The zero value of a field selects the
// default noted beside it; Validate fills them in.
type Config struct {
	Protocol string // "modbus" (default) or "opcua"
	// Rate is the items/s inducted per line (default 1000, 200 with
	// Chaos); <0: capacity ("max"), which Validate turns into Max and
	// twice the ring's ceiling, more than the line can take.
	Rate     float64
	Max      bool
	Duration time.Duration // measured window (default 30s)
	Warmup   time.Duration // before the window; samples discarded (default 2s)
	Lines    int           // sorter lines, each with its own emulated sorter and link (default 1)
	Chutes   int           // default 256
	PLCCycle time.Duration // emulated PLC scan (default 5ms)
	Poll     time.Duration // Modbus poll / OPC UA publishing interval (default 10ms)
	Scanners int           // per line (default 1)
	Seed     int64         // default 1
	Dir      string        // journal directory ("" = a temporary one)
	// Feed is FeedDirect (default) or FeedConveyor (default with Chaos).
	Feed string

	// Chaos injects a fault every ChaosEvery (default 30s) and checks the
	// ground truth at the end.
	Chaos      bool
	ChaosEvery time.Duration
	// Abuse (with Chaos) adds the fault-and-abuse soak of issue 10 to the
	// rotation (abuse.go): a server-mode scanner's port taken, a flood of
	// status-stream clients, slow readers, and Modbus exception bursts.
	// Each line's scanners then connect out to the gateway (server mode).
	Abuse bool
	Soak  SoakConfig

	// Conveyor shape.
	ContainerCapacity int           // items per container; -1 = never full (default -1, 40 with Chaos)
	EmptyAfter        time.Duration // default 5s
	LostRate          float64       // default 0, 0.001 with Chaos
	ChutePitch        float64       // metres (default 0.1)
	NoReadRate        float64       // default 0.02
	MultiReadRate     float64       // default 0.01
	GarbageRate       float64       // default 0, 0.005 with Chaos

	Baselines  int           // back-to-back samples per floor (default 10000: enough for a p99.9)
	Budget     time.Duration // decision budget (default 500ms)
	SkipDecide bool          // leave out the decision micro-benchmark
	MemProfile string        // write a heap profile at the end of the window
	// Capacity is each line's tracking table (0: the gateway's default,
	// 65536 items); JournalQueue the journal's queue (0: its default).
	Capacity, JournalQueue int
	// ImmediateScan makes the emulated PLC take commands as they are
	// written (not only at its scan), to tell the ring from the gateway.
	ImmediateScan bool
	// Upstream publishes the journal to an embedded NATS JetStream server
	// while the bench runs (issue 13: sorting must not notice it).
	Upstream bool
	// Version is the gateway version shown on its status page ("-bench"
	// is appended).
	Version string

	// tamper (tests only) rewrites the records the lines journal, as a
	// gateway bug would (tally.go).
	tamper func(journal.Record) []journal.Record
}

// Validate fills in the defaults and checks the scenario.
func (c *Config) Validate() error {
	if c.Protocol == "" {
		c.Protocol = "modbus"
	}
	if c.Protocol != "modbus" && c.Protocol != "opcua" {
		return fmt.Errorf("bench: protocol %q: want modbus or opcua", c.Protocol)
	}
	if c.Feed == "" {
		c.Feed = FeedDirect
		if c.Chaos {
			c.Feed = FeedConveyor
		}
	}
	if c.Feed != FeedDirect && c.Feed != FeedConveyor {
		return fmt.Errorf("bench: feed %q: want direct or conveyor", c.Feed)
	}
	if c.Chaos && c.Feed != FeedConveyor {
		return errors.New("bench: chaos needs the conveyor feed (its faults act on the emulated scanners)")
	}
	if c.Lines == 0 {
		c.Lines = 1
	}
	if c.Lines < 1 || c.Lines > 512 {
		return fmt.Errorf("bench: lines %d: want 1..512", c.Lines)
	}
	if c.Duration < 0 || c.Warmup < 0 {
		return errors.New("bench: negative duration")
	}
	c.chaosDefaults()
	if err := c.Soak.defaults(c); err != nil {
		return err
	}
	setDefault(&c.Chutes, 256)
	setDefault(&c.PLCCycle, 5*time.Millisecond)
	setDefault(&c.Poll, 10*time.Millisecond)
	setDefault(&c.Rate, 1000)
	if c.Rate < 0 {
		c.Max, c.Rate = true, 2*c.Ceiling()
	}
	setDefault(&c.Duration, 30*time.Second)
	setDefault(&c.Warmup, 2*time.Second)
	setDefault(&c.Scanners, 1)
	setDefault(&c.Seed, 1)
	setDefault(&c.ChaosEvery, 30*time.Second)
	setDefault(&c.ContainerCapacity, -1)
	setDefault(&c.EmptyAfter, 5*time.Second)
	// A short sort zone: 256 chutes in 25.6 m, so an item is confirmed
	// within seconds and a lap takes about 20 s.
	setDefault(&c.ChutePitch, 0.1)
	setDefault(&c.NoReadRate, 0.02)
	setDefault(&c.MultiReadRate, 0.01)
	setDefault(&c.Baselines, 10000)
	setDefault(&c.Budget, 500*time.Millisecond)
	setDefault(&c.Version, "dev")
	return nil
}

// chaosDefaults: a soak is gentler on the rate and harsher on the belt
// (full containers, lost items, garbage telegrams) than a speed run.
func (c *Config) chaosDefaults() {
	if !c.Chaos {
		return
	}
	setDefault(&c.Rate, 200)
	setDefault(&c.ContainerCapacity, 40)
	setDefault(&c.LostRate, 0.001)
	setDefault(&c.GarbageRate, 0.005)
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Ceiling is the contract's ring ceiling per line: 15 commands per (PLC
// cycle + poll).
func (c *Config) Ceiling() float64 {
	return 15 / (c.PLCCycle + c.Poll).Seconds()
}

// travel is the longest time from the scanner to the last chute's
// decision point in the bench geometry (belt 2.5 m/s, 3 m to chute 1), or
// the commissioning PLC's fixed travel with the direct feed: 200 ms and
// half a PLC cycle, so that a decision point never falls on a scan edge.
// At exactly 40 cycles a scan a little early pushed one scan's items into
// the next and the PLC confirmed two scans' worth at once (a burst no
// real belt makes: its decision points are not phase-locked to the scan).
func (c *Config) travel() time.Duration {
	if c.Feed == FeedDirect {
		return 200*time.Millisecond + c.PLCCycle/2
	}
	m := 3 + float64(c.Chutes)*c.ChutePitch
	return time.Duration(m / 2.5 * float64(time.Second))
}
