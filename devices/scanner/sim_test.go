package scanner

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	fieldbussim "sortgw/fieldbus-sim"
)

// startSim runs the emulated sorter with its scanners until the test ends.
func startSim(t *testing.T, sc fieldbussim.ScannerConfig) *fieldbussim.Sim {
	t.Helper()
	sim, err := fieldbussim.New(fieldbussim.Config{
		Seed:     7,
		Chutes:   16,
		Scanners: sc,
		// A fast belt so that items reach the scanner soon after induction.
		Conveyor: fieldbussim.ConveyorConfig{Rate: 40, BeltSpeed: 30, InductToScanner: 1},
	}, zerolog.New(zerolog.NewTestWriter(t)).With().Str("side", "sim").Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim: %v", err)
		}
	})
	select {
	case <-sim.Ready():
	case err := <-done:
		t.Fatalf("sim: %v", err)
	}
	return sim
}

// readsFrom counts the reads of one scanner.
func readsFrom(c *collector, name string) int {
	n := 0
	for _, r := range c.get() {
		if r.Scanner == name {
			n++
		}
	}
	return n
}

// TestSimClient: the gateway dials the emulated scanners.
func TestSimClient(t *testing.T) {
	for _, framing := range []string{FramingSTX, FramingCRLF} {
		t.Run(framing, func(t *testing.T) {
			sim := startSim(t, fieldbussim.ScannerConfig{Count: 2, Framing: framing, Heartbeat: 20 * time.Millisecond})
			addrs := sim.ScannerAddrs()
			if len(addrs) != 2 {
				t.Fatalf("sim scanners at %v", addrs)
			}
			var cfgs []Config
			for i, a := range addrs {
				cfgs = append(cfgs, Config{Name: fmt.Sprint("scan", i), Addr: a, Framing: framing,
					HeartbeatTimeout: time.Second, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
			}
			src := newSource(t, cfgs...)
			c := run(t, src)
			checkSimTraffic(t, sim, src, c)
		})
	}
}

// TestSimServer: the emulated scanners dial the gateway's listener.
func TestSimServer(t *testing.T) {
	src := newSource(t, Config{Name: "scan0", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1", HeartbeatTimeout: time.Second})
	c := run(t, src)
	sim := startSim(t, fieldbussim.ScannerConfig{Count: 1, DialOut: []string{src.ListenAddr("scan0")},
		Heartbeat: 20 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	waitFor(t, "reads", func() bool { return readsFrom(c, "scan0") >= 10 })
	before := status(src, "scan0").Reconnects
	sim.DropScanner(0)
	waitFor(t, "the scanner dialling back in", func() bool { return status(src, "scan0").Reconnects > before })
	n := readsFrom(c, "scan0")
	waitFor(t, "reads after the drop", func() bool { return readsFrom(c, "scan0") >= n+5 })
	if st := status(src, "scan0"); !st.Online || st.State != devices.LinkUp {
		t.Fatalf("after the drop: %+v", st.ScannerStatus)
	}
}

// checkSimTraffic: reads arrive from both scanners, heartbeats keep them
// online, garbage and oversized frames are counted on a connection that
// survives them, and a dropped connection is redialled.
func checkSimTraffic(t *testing.T, sim *fieldbussim.Sim, src *Source, c *collector) {
	t.Helper()
	waitFor(t, "reads from both scanners", func() bool { return readsFrom(c, "scan0") >= 10 && readsFrom(c, "scan1") >= 10 })
	for _, r := range c.get() {
		if r.TID == 0 || r.NoRead != (len(r.Codes) == 0) || r.At.IsZero() {
			t.Fatalf("bad read %+v", r)
		}
	}
	waitFor(t, "heartbeats", func() bool {
		st := status(src, "scan0")
		return st.Heartbeats >= 5 && st.Online && !st.LastHeartbeat.IsZero()
	})

	// Garbage and oversized frames: counted, the connection stays.
	st0 := status(src, "scan0")
	sim.ScannerGarbage(0, 5)
	sim.ScannerOversize(0, 3)
	// The sim sends the oversized frames after the garbage on the same
	// connection, so once they are counted the garbage has been judged.
	waitFor(t, "oversize counted", func() bool { return status(src, "scan0").Oversized == st0.Oversized+3 })
	// Random junk that happens to start "<digits>;" is a telegram with a
	// junk code (about 2 in 10,000 frames); allow one such.
	if m := status(src, "scan0").Malformed - st0.Malformed; m < 4 || m > 5 {
		t.Fatalf("%d of 5 garbage frames counted malformed", m)
	}
	n := readsFrom(c, "scan0")
	waitFor(t, "reads after the garbage", func() bool { return readsFrom(c, "scan0") >= n+5 })
	if st := status(src, "scan0"); st.Reconnects != st0.Reconnects || st.State != devices.LinkUp || !st.Online {
		t.Fatalf("connection did not survive garbage: %+v", st.ScannerStatus)
	}

	// A pulled cable: the gateway redials, reads resume.
	sim.DropScanner(0)
	waitFor(t, "redial", func() bool { return status(src, "scan0").Reconnects == st0.Reconnects+1 })
	n = readsFrom(c, "scan0")
	waitFor(t, "reads after the redial", func() bool { return readsFrom(c, "scan0") >= n+5 })
	// Nothing lost on the untouched scanner: every telegram the sim handed
	// to its connection arrived as a read (both sides keep counting, so
	// wait for a moment between two telegrams).
	waitFor(t, "scan1 reads = sim telegrams", func() bool {
		return uint64(readsFrom(c, "scan1")) == sim.ScannerStats()[1].Telegrams
	})
	if st := status(src, "scan1"); st.Reconnects != 0 || st.Malformed != 0 || st.Oversized != 0 {
		t.Fatalf("faults on scanner 0 touched scanner 1: %+v", st.ScannerStatus)
	}
}
