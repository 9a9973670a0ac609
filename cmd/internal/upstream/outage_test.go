package upstream

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// freeAddr finds a loopback port the OS hands out, for a server that must
// come back on the same address after a restart.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestWANOutageLeafToHub: the gateway publishes to its embedded leaf
// node; the hub's stream sources the leaf's stream over the leafnode
// connection. The hub goes down (the WAN is cut) while items keep
// coming, and comes back: the hub ends with every outcome exactly once,
// in journal order, and the gateway's publishing never waited on it.
//
// The catch-up after the hub returns takes tens of seconds: the hub
// retries its source consumer with nats-server's back-off (10s per
// failure while the leaf was unreachable), not at once (docs/upstream.md).
func TestWANOutageLeafToHub(t *testing.T) {
	if testing.Short() {
		t.Skip("the hub's source back-off makes this a 40s test: not in -short")
	}
	hubCfg := Embedded{Listen: freeAddr(t), LeafListen: freeAddr(t), Domain: "hub", StoreDir: t.TempDir()}
	hub, err := StartServer(&hubCfg, "hub")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { StopServer(hub) }()

	j := startJournal(t, filepath.Join(t.TempDir(), "j.db"))
	cfg := embeddedConfig(t, "s1")
	cfg.NATS.Embedded.Hub = &Hub{URL: "nats-leaf://" + hubCfg.LeafListen}
	r, _ := runner(t, cfg, j)
	<-r.Started()
	_, leafJS := jsOn(t, r.ClientURL(), "")

	hubSource := jetstream.StreamConfig{
		Name: "HUB_S1",
		Sources: []*jetstream.StreamSource{{Name: "SORTGW",
			External: &jetstream.ExternalStream{APIPrefix: "$JS.s1.API"}}},
	}
	hubJSFor := func() jetstream.JetStream {
		_, js := jsOn(t, hub.ClientURL(), "")
		return js
	}
	hubJS := hubJSFor()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := appendItems(t, j, "L1", 1, 200) // the leaf stream exists once published
	waitFor(t, 20*time.Second, "the leaf stream", func() bool { return streamMsgs(leafJS, "SORTGW") == 200 })
	if _, err := hubJS.CreateStream(ctx, hubSource); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the hub to source 200", func() bool { return streamMsgs(hubJS, "HUB_S1") == 200 })

	// The WAN goes down: the hub is gone.
	StopServer(hub)
	want = append(want, appendItems(t, j, "L1", 1000, 300)...)
	want = append(want, appendItems(t, j, "L2", 5000, 100)...)
	waitFor(t, 20*time.Second, "the leaf to hold the outage's items", func() bool { return streamMsgs(leafJS, "SORTGW") == 600 })
	// The stream may hold them a moment before the publisher has counted
	// its acks: wait for its backlog to drain, which it never would if it
	// waited on the hub.
	waitFor(t, 20*time.Second, "the publisher's backlog to drain during the outage", func() bool { return r.Publisher().Stats().Backlog == 0 })
	if s := r.Publisher().Stats(); s.Errors != 0 {
		t.Fatalf("during the outage the publisher has %+v: it must not wait on the hub", s)
	}

	// The WAN returns.
	hub, err = StartServer(&hubCfg, "hub")
	if err != nil {
		t.Fatal(err)
	}
	hubJS = hubJSFor()
	want = append(want, appendItems(t, j, "L1", 9000, 100)...)
	waitFor(t, 120*time.Second, "the hub to catch up to 700", func() bool { return streamMsgs(hubJS, "HUB_S1") == 700 })
	got := readAll(t, hubJS, "HUB_S1")
	// In journal order per line (and here overall: one leaf stream).
	checkExactlyOnce(t, got, want)
}
