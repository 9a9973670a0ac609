package upstream

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"sortgw/gateway/journal"
)

// BenchmarkPublish measures the publisher's throughput from the journal
// to the embedded server's stream (file storage, acknowledged, with
// message ids): b.N outcome records are in the journal before the clock
// starts; it stops when the server has acknowledged the last one.
// cpu-µs/record is the process's CPU time (user+sys: the publisher, the
// client and the embedded server together) per record: what upstream
// takes from the sorting process, and less noisy than records/s on a
// shared machine. allocs/op counts the whole process's allocations per
// record (GC pressure on the sort path).
//
//	go test -run '^$' -bench BenchmarkPublish -benchtime 50000x -count 3 ./cmd/internal/upstream/
func BenchmarkPublish(b *testing.B) {
	j := startJournal(b, filepath.Join(b.TempDir(), "j.db"))
	var last uint64
	for i := range b.N {
		seq, err := j.AppendWait(context.Background(), journal.Record{Kind: journal.KindOutcome, Line: "L1",
			TID: uint32(i + 1), Pass: 1, Outcome: journal.OutcomeDiverted, Chute: 7, Dest: "64001", Route: "R028", PlanVersion: 3})
		if err != nil {
			b.Fatal(err)
		}
		last = seq
	}
	if err := j.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	cfg := embeddedConfig(b, "s1")
	if v := os.Getenv("SORTGW_BENCH_BATCH"); v != "" {
		cfg.Batch, _ = strconv.Atoi(v)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	r, stop := runner(b, cfg, j)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for r.Publisher().Stats().Cursor < last {
		<-tick.C
	}
	el, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/record")
}

// cpuTime is the process's CPU time so far (user+sys).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHubCatchUp measures how long the hub takes to be current
// after a WAN outage: 10 minutes at 100 items/s (60,000 outcomes) wait in
// the leaf's stream while the hub is down; the clock runs from the hub's
// restart until its stream holds them all (catchup-s). That includes
// nats-server's source retry back-off (backoff-s, until the first backlog
// message arrives); transfer-msgs/s is the rate after it.
//
//	go test -run '^$' -bench BenchmarkHubCatchUp -benchtime 1x ./cmd/internal/upstream/
func BenchmarkHubCatchUp(b *testing.B) {
	const items = 60_000
	for range b.N {
		hubCfg := Embedded{Listen: freeAddr(b), LeafListen: freeAddr(b), Domain: "hub", StoreDir: b.TempDir()}
		hub, err := StartServer(&hubCfg, "hub")
		if err != nil {
			b.Fatal(err)
		}
		j := startJournal(b, filepath.Join(b.TempDir(), "j.db"))
		cfg := embeddedConfig(b, "s1")
		cfg.NATS.Embedded.Hub = &Hub{URL: "nats-leaf://" + hubCfg.LeafListen}
		r, stop := runner(b, cfg, j)
		<-r.Started()
		_, leafJS := jsOn(b, r.ClientURL(), "")
		appendItems(b, j, "L1", 1, 1)
		waitFor(b, 20*time.Second, "the leaf stream", func() bool { return streamMsgs(leafJS, "SORTGW") == 1 })
		_, hubJS := jsOn(b, hub.ClientURL(), "")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = hubJS.CreateStream(ctx, jetstream.StreamConfig{Name: "HUB_S1", Sources: []*jetstream.StreamSource{{Name: "SORTGW",
			External: &jetstream.ExternalStream{APIPrefix: "$JS.s1.API"}}}})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		waitFor(b, 30*time.Second, "the hub sourcing", func() bool { return streamMsgs(hubJS, "HUB_S1") == 1 })
		StopServer(hub) // the WAN goes down
		appendItems(b, j, "L1", 2, items-1)
		waitFor(b, 120*time.Second, "the leaf to hold the outage", func() bool { return streamMsgs(leafJS, "SORTGW") == items })
		b.ResetTimer()
		start := time.Now()
		hub, err = StartServer(&hubCfg, "hub")
		if err != nil {
			b.Fatal(err)
		}
		_, hubJS = jsOn(b, hub.ClientURL(), "")
		// The first backlog message marks the end of the source's retry
		// back-off; from there on it is transfer.
		var resumed time.Time
		waitFor(b, 300*time.Second, "the hub current", func() bool {
			n := streamMsgs(hubJS, "HUB_S1")
			if n > 1 && resumed.IsZero() {
				resumed = time.Now()
			}
			return n == items
		})
		el := time.Since(start)
		b.StopTimer()
		stop()
		StopServer(hub)
		transfer := el - resumed.Sub(start)
		b.ReportMetric(el.Seconds(), "catchup-s")
		b.ReportMetric(resumed.Sub(start).Seconds(), "backoff-s")
		b.ReportMetric((items-1)/max(transfer.Seconds(), 1e-3), "transfer-msgs/s")
	}
}

// BenchmarkUpstreamCost: what publishing costs the gateway's process at
// the gateway's pace. Items arrive at 1,000/s (a decision and an outcome
// each, as a line writes them) for b.N items; the process's CPU time
// over the run is reported per item and as a share of one core, without
// upstream ("off": the journal alone, the floor of the same work) and with
// the embedded server at several lingers (how long the publisher lets
// records gather after catching up: fewer, larger rounds or more,
// smaller ones). cpu-%-over-off is the on/off difference measured in the
// same run.
//
//	go test -run '^$' -bench UpstreamCost -benchtime 5000x ./cmd/internal/upstream/
func BenchmarkUpstreamCost(b *testing.B) {
	var offCPU float64 // cpu-% of the off case, when it ran first
	for _, linger := range []time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond, time.Second} {
		name := "off"
		if linger > 0 {
			name = "linger=" + linger.String()
		}
		b.Run(name, func(b *testing.B) {
			j := startJournal(b, filepath.Join(b.TempDir(), "j.db"))
			var r *Runner
			stop := func() {}
			if linger > 0 {
				cfg := embeddedConfig(b, "s1")
				cfg.Linger = linger
				r, stop = runner(b, cfg, j)
				<-r.Started()
			}
			const rate = 1000 // items/s
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime(b)
			tick := time.NewTicker(time.Millisecond)
			var last uint64
			for n := 0; n < b.N; {
				<-tick.C
				due := min(int(time.Since(start).Seconds()*rate), b.N)
				for ; n < due; n++ {
					tid := uint32(n + 1)
					if _, err := j.AppendWait(ctx, journal.Record{Kind: journal.KindDecision, Line: "L1", TID: tid, Pass: 1,
						Scanner: "S1", Codes: []string{"]C1420902101\x1d92" + strconv.Itoa(n)}, Dest: "64001", Chute: 7}); err != nil {
						b.Fatal(err)
					}
					seq, err := j.AppendWait(ctx, journal.Record{Kind: journal.KindOutcome, Line: "L1", TID: tid, Pass: 1,
						Outcome: journal.OutcomeDiverted, Chute: 7, Dest: "64001", Route: "R028", PlanVersion: 3})
					if err != nil {
						b.Fatal(err)
					}
					last = seq
				}
			}
			tick.Stop()
			if err := j.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			if r != nil {
				waitFor(b, 30*time.Second, "the last outcome published", func() bool { return r.Publisher().Stats().Cursor >= last })
			}
			el, cpu := time.Since(start), cpuTime(b)-cpu0
			b.StopTimer()
			stop()
			pct := 100 * cpu.Seconds() / el.Seconds()
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/item")
			b.ReportMetric(pct, "cpu-%")
			if linger == 0 {
				offCPU = pct
			} else if offCPU > 0 {
				b.ReportMetric(pct-offCPU, "cpu-%-over-off")
			}
		})
	}
}
