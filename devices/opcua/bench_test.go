package opcua

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"sortgw/devices"
)

func reportHist(b *testing.B, h *devices.Histogram, name string) {
	s := h.Snapshot()
	b.ReportMetric(float64(s.P50.Microseconds()), name+"-p50-µs")
	b.ReportMetric(float64(s.P99.Microseconds()), name+"-p99-µs")
	b.ReportMetric(float64(s.P999.Microseconds()), name+"-p99.9-µs")
}

// BenchmarkRawWrite is the baseline: one WriteRequest of a slot's four
// nodes straight through gopcua, no link around it, back to back. The Seq
// written is never ACK_SEQ+1, so the PLC leaves it in the slot.
func BenchmarkRawWrite(b *testing.B) { rawWrite(b, 0) }

// BenchmarkRawWritePaced is the same single write at the link benchmark's
// pace (one every 10ms, as BenchmarkLinkCommand waits for each command to
// be taken): a write after an idle gap pays the wake-up of an idle
// process, which back-to-back writes never do.
func BenchmarkRawWritePaced(b *testing.B) { rawWrite(b, 10*time.Millisecond) }

func rawWrite(b *testing.B, gap time.Duration) {
	sim := startSim(b, simOpts{})
	ctx := context.Background()
	c, err := opcua.NewClient(sim.endpoint, opcua.AutoReconnect(false),
		opcua.SecurityPolicy(ua.SecurityPolicyURINone), opcua.SecurityMode(ua.MessageSecurityModeNone))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	ns, err := c.FindNamespace(ctx, DefaultNamespace)
	if err != nil {
		b.Fatal(err)
	}
	nodes := newNodeSet(ns, DefaultNodePrefix, DefaultRing)
	req := nodes.divertRequest(40000, 1, 1, 0)
	var h devices.Histogram
	b.ResetTimer()
	for b.Loop() {
		if gap > 0 {
			b.StopTimer()
			time.Sleep(gap) // pacing the load, not synchronisation
			b.StartTimer()
		}
		t0 := time.Now()
		res, err := c.Write(ctx, req)
		if err == nil {
			err = writeStatus(req, res)
		}
		if err != nil {
			b.Fatal(err)
		}
		h.Observe(time.Since(t0))
	}
	b.StopTimer()
	reportHist(b, &h, "write")
}

func benchLink(b *testing.B) (*Link, func()) {
	return benchLinkCfg(b, simOpts{immediate: true}, Config{})
}

func benchLinkCfg(b *testing.B, o simOpts, cfg Config) (*Link, func()) {
	sim := startSim(b, o)
	cfg.Name, cfg.Endpoint, cfg.QueueSize, cfg.EventBuffer = "bench", sim.endpoint, 1<<16, 1<<16
	l, err := New(cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	waitFor(b, 10*time.Second, "link up", func() bool { return l.Status().State == devices.LinkUp })
	return l, func() { cancel(); <-done }
}

// BenchmarkLinkCommand sends one command at a time and measures Send to
// EventWritten (the WriteResponse was all Good) and Send to EventTaken
// (ACK_SEQ passed it, seen through the subscription).
func BenchmarkLinkCommand(b *testing.B) {
	l, stop := benchLink(b)
	defer stop()
	var written, taken devices.Histogram
	ctx := context.Background()
	tid := uint32(0)
	b.ResetTimer()
	for b.Loop() {
		tid++
		t0 := time.Now()
		if err := l.Send(ctx, devices.Command{TID: tid, Chute: 1}); err != nil {
			b.Fatal(err)
		}
		for done := false; !done; {
			e := <-l.Events()
			switch {
			case e.TID != tid:
			case e.Kind == devices.EventWritten:
				written.Observe(time.Since(t0))
			case e.Kind == devices.EventTaken:
				taken.Observe(time.Since(t0))
				done = true
			}
		}
	}
	b.StopTimer()
	reportHist(b, &written, "written")
	reportHist(b, &taken, "taken")
	// The link's own WriteRequest round trips, for the share of the
	// written latency that is the wire.
	rt := l.Status().RoundTrip
	b.ReportMetric(float64(rt.P50.Microseconds()), "rtt-p50-µs")
}

// BenchmarkLinkThroughput queues b.N commands at once and measures how
// fast the ring takes them (flow control: at most 15 outstanding), for
// several MaxInFlight, with the PLC taking commands as they are written
// (immediate: the link is the bottleneck) or at its 5 ms scan (cycle).
func BenchmarkLinkThroughput(b *testing.B) {
	for _, plc := range []struct {
		name string
		o    simOpts
	}{{"immediate", simOpts{immediate: true}}, {"cycle", simOpts{}}} {
		for _, n := range []int{1, 2, 4, 8, 15} {
			b.Run(fmt.Sprintf("%s/inflight=%d", plc.name, n), func(b *testing.B) {
				linkThroughput(b, plc.o, Config{MaxInFlight: n})
			})
		}
	}
}

func linkThroughput(b *testing.B, o simOpts, cfg Config) {
	l, stop := benchLinkCfg(b, o, cfg)
	defer stop()
	ctx := context.Background()
	b.ResetTimer()
	t0 := time.Now()
	n := b.N
	for i := range n {
		if err := l.Send(ctx, devices.Command{TID: uint32(i + 1), Chute: 1}); err != nil {
			b.Fatal(err)
		}
	}
	for got := 0; got < n; {
		if e := <-l.Events(); e.Kind == devices.EventTaken {
			got++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "cmds/s")
	st := l.Status()
	b.ReportMetric(float64(st.Missed), "missed")
}
