package site

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"sortgw/cmd/internal/upstream"
	"sortgw/gateway/journal"
	gwup "sortgw/gateway/upstream"
)

func loopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func hubJS(t *testing.T, s interface{ ClientURL() string }) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestSiteWANOutageAgainstEmulator: the site sorts 100 items/s against
// the emulated sorter and publishes to its embedded leaf node, which a hub
// sources. The hub goes down (the WAN is cut) while sorting goes on, and
// comes back. In the end the hub's stream holds every outcome the journal
// recorded, exactly once, in journal order.
func TestSiteWANOutageAgainstEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("WAN outage against the emulator, a minute or more: not in -short")
	}
	hubCfg := upstream.Embedded{Listen: loopbackAddr(t), LeafListen: loopbackAddr(t), Domain: "hub", StoreDir: t.TempDir()}
	hub, err := upstream.StartServer(&hubCfg, "hub")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { upstream.StopServer(hub) }()
	natsDir := filepath.Join(t.TempDir(), "nats")
	section := fmt.Sprintf("  site: north1\n  nats:\n    embedded:\n      listen: 127.0.0.1:0\n      store_dir: %s\n      hub:\n        url: nats-leaf://%s\n", natsDir, hubCfg.LeafListen)
	s, dir := upstreamSite(t, section)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, nil) }()
	line := s.Gateway().Lines()[0]
	<-s.Upstream().Started()
	siteWait(t, "items flowing", 20*time.Second, func() bool { return line.Snapshot().Totals.Outcomes > 50 })
	hjs := hubJS(t, hub)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = hjs.CreateStream(cctx, jetstream.StreamConfig{Name: "HUB_NORTH1", Sources: []*jetstream.StreamSource{{Name: "SORTGW",
		External: &jetstream.ExternalStream{APIPrefix: "$JS.north1.API"}}}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	siteWait(t, "the hub sourcing", 30*time.Second, func() bool { return streamCountOf(hjs, "HUB_NORTH1") > 50 })

	// The WAN goes down for 3 s worth of items (300 at 100/s).
	upstream.StopServer(hub)
	before := line.Snapshot().Totals.Outcomes
	siteWait(t, "sorting through the outage", 30*time.Second, func() bool { return line.Snapshot().Totals.Outcomes > before+300 })
	hub, err = upstream.StartServer(&hubCfg, "hub")
	if err != nil {
		t.Fatal(err)
	}
	hjs = hubJS(t, hub)
	siteWait(t, "more items after the outage", 30*time.Second, func() bool { return line.Snapshot().Totals.Outcomes > before+400 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The journal's outcomes; the next start publishes the stop's tail.
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
	<-s2.Upstream().Started()
	siteWait(t, "the first run published", 30*time.Second, func() bool { return s2.Upstream().Publisher().Stats().Cursor >= last })
	published := 0 // the first run's records that go upstream
	for _, r := range recs {
		if gwup.Published(r.Kind) {
			published++
		}
	}
	// The hub resumes its source with nats-server's back-off: tens of
	// seconds after an outage (docs/upstream.md).
	siteWait(t, "the hub caught up", 150*time.Second, func() bool { return streamCountOf(hjs, "HUB_NORTH1") >= published })
	var got []uint64
	for _, e := range readStream(t, hjs, "HUB_NORTH1") {
		if e.Record.Kind == journal.KindOutcome && e.Record.Seq <= last {
			got = append(got, e.Record.Seq)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("hub holds %d outcomes, journal %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("hub outcome %d is seq %d, journal %d: lost, duplicated or reordered", i, got[i], want[i])
		}
	}
	t.Logf("%d outcomes across the outage, all on the hub once, in journal order", len(want))
}
