package site

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway/journal"
	gwup "sortgw/gateway/upstream"
)

// upstreamSite is a site against the emulated sorter with the given
// upstream section (YAML, indented under upstream:).
func upstreamSite(t *testing.T, upstreamYAML string) (*Site, string) {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	sim, err := fieldbussim.New(fieldbussim.Config{
		Chutes: 32, PLCCycle: 2 * time.Millisecond, Seed: 11,
		Modbus:   fieldbussim.ModbusConfig{Addr: "127.0.0.1:0"},
		Scanners: fieldbussim.ScannerConfig{Count: 1},
		Conveyor: fieldbussim.ConveyorConfig{Rate: 100, BeltSpeed: 10, ScannerToFirstChute: 4, ChutePitch: 0.5},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	t.Cleanup(func() { stopSim(); <-simDone })
	<-sim.Ready()
	dir := t.TempDir()
	writePlan(t, filepath.Join(dir, "plan.csv"), 1)
	cfgText := fmt.Sprintf(`
gateway:
  listen: 127.0.0.1:0
  drain_grace: 3s
journal:
  path: journal.db
lines:
  - name: L1
    plan: plan.csv
    chutes: 32
    decision_budget: 360ms
    confirm_timeout: 5s
    plc:
      protocol: modbus
      modbus:
        addr: %s
    scanners:
      - name: S1
        addr: %s
upstream:
%s`, sim.ModbusAddr(), sim.ScannerAddrs()[0], upstreamYAML)
	cfgPath := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// TestSiteUpstreamEmbedded: a site with an embedded NATS sorts against
// the emulator and publishes every outcome of its journal to the stream,
// exactly once and in journal order.
func TestSiteUpstreamEmbedded(t *testing.T) {
	s, dir := upstreamSite(t, fmt.Sprintf("  site: north1\n  nats:\n    embedded:\n      listen: 127.0.0.1:0\n      store_dir: %s\n", filepath.Join(t.TempDir(), "nats")))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, nil) }()
	line := s.Gateway().Lines()[0]
	siteWait(t, "items flowing", 20*time.Second, func() bool { return line.Snapshot().Totals.Outcomes > 200 })
	up := s.Upstream()
	<-up.Started()
	nc, err := nats.Connect(up.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Outcomes go on the stream while sorting goes on.
	siteWait(t, "outcomes on the stream", 20*time.Second, func() bool { return streamCount(js) > 100 })
	// Stop: the publisher stops before the journal drains, so the last
	// records (the drain's outcomes, the stop record) go at the next
	// start. Stop, read the journal, start again and compare.
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	nc.Close()
	jr, err := journal.Open(journal.Config{Path: filepath.Join(dir, "journal.db")}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := jr.After(0, 0)
	jr.Close()
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for _, r := range recs {
		if r.Kind == journal.KindOutcome {
			want = append(want, r.Seq)
		}
	}
	last := recs[len(recs)-1].Seq

	cfg, err := Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Build(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, stop2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- s2.Run(ctx2, nil) }()
	defer func() { stop2(); <-done2 }()
	up2 := s2.Upstream()
	<-up2.Started()
	siteWait(t, "the first run's records published", 20*time.Second, func() bool { return up2.Publisher().Stats().Cursor >= last })
	nc2, err := nats.Connect(up2.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	seen := map[uint64]bool{}
	for _, e := range readStream(t, js2, "SORTGW") {
		if e.Record.Kind == journal.KindOutcome && e.Record.Seq <= last {
			if seen[e.Record.Seq] {
				t.Fatalf("outcome %d twice on the stream", e.Record.Seq)
			}
			seen[e.Record.Seq] = true
			got = append(got, e.Record.Seq)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d outcomes on the stream, the journal has %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("outcome %d on the stream is seq %d, journal %d", i, got[i], want[i])
		}
	}
	t.Logf("%d outcomes sorted against the emulator, all on the stream once, in journal order", len(want))
}

// readStream reads the whole stream in order.
func readStream(t *testing.T, js jetstream.JetStream, name string) []gwup.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := streamCountOf(js, name)
	c, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []gwup.Envelope
	for len(out) < n {
		batch, err := c.Fetch(min(n-len(out), 500), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			e, err := gwup.Decode(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		if got == 0 {
			t.Fatalf("read %d of %d messages: %v", len(out), n, batch.Error())
		}
	}
	return out
}

func streamCount(js jetstream.JetStream) int { return streamCountOf(js, "SORTGW") }

func streamCountOf(js jetstream.JetStream, name string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return -1
	}
	info, err := st.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}

// TestSiteUpstreamUnreachable: with the NATS server unreachable the site
// sorts on, the backlog waits in the journal, and every line shows the
// upstream alarm with the cause and what to do.
func TestSiteUpstreamUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	s, _ := upstreamSite(t, "  site: north1\n  alarm_failing: 1ms\n  nats:\n    url: nats://"+addr+"\n    connect_timeout: 200ms\n")
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, nil) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	line := s.Gateway().Lines()[0]
	siteWait(t, "items sorted with upstream down", 20*time.Second, func() bool { return line.Snapshot().Totals.Sorted > 50 })
	var text string
	siteWait(t, "the upstream alarm", 20*time.Second, func() bool {
		for _, a := range line.Snapshot().Alarms {
			if a.ID == "L1/upstream" {
				text = a.Text + " / " + a.Action
				return true
			}
		}
		return false
	})
	if !strings.Contains(text, "connection refused") || !strings.Contains(text, "docs/upstream.md") {
		t.Fatalf("alarm %q does not say the cause and what to do", text)
	}
	if st := s.Upstream().Publisher().Stats(); st.Backlog == 0 || st.Published != 0 {
		t.Fatalf("publisher %+v: want a backlog, nothing published", st)
	}
}
