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

	"github.com/rs/zerolog"

	"sortgw/cmd/internal/sdnotify"
	fieldbussim "sortgw/fieldbus-sim"
)

// simSite starts fieldbus-sim and builds a site against it; the site is
// not running. The returned config path is the site's file.
func simSite(t *testing.T, log zerolog.Logger, drainGrace string) (*Site, string) {
	t.Helper()
	sim, err := fieldbussim.New(fieldbussim.Config{
		Chutes: 32, PLCCycle: 2 * time.Millisecond, Seed: 11,
		Modbus:   fieldbussim.ModbusConfig{Addr: "127.0.0.1:0"},
		Scanners: fieldbussim.ScannerConfig{Count: 1},
		Conveyor: fieldbussim.ConveyorConfig{Rate: 50, BeltSpeed: 10, ScannerToFirstChute: 4, ChutePitch: 0.5},
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
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("a-long-enough-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`
gateway:
  listen: 127.0.0.1:0
  token_file: token
  drain_grace: %s
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
`, drainGrace, sim.ModbusAddr(), sim.ScannerAddrs()[0])
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
	return s, cfgPath
}

// TestSiteNotifiesSystemd: under systemd the site sends READY=1 once its
// lines run and the status page listens, WATCHDOG=1 pings while the lines
// live, RELOADING=1 then READY=1 around a reload, and STOPPING=1 at the
// drain, in that order, on a real unixgram socket.
func TestSiteNotifiesSystemd(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	sock := filepath.Join(t.TempDir(), "notify")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	n, err := sdnotify.New()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	s, _ := simSite(t, log, "2s")
	s.SetNotifier(n, 20*time.Millisecond)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	reload := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, reload) }()

	// Read like systemd does, all the time: a socket nobody reads fills
	// and the notifications are dropped.
	got := make(chan string, 1<<16)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		b := make([]byte, 4096)
		for {
			k, _, err := srv.ReadFromUnix(b)
			if err != nil {
				return
			}
			got <- string(b[:k])
		}
	}()
	defer func() { srv.Close(); <-readerDone }()
	next := func() string {
		t.Helper()
		select {
		case s := <-got:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no notification for 10s")
			return ""
		}
	}
	// expect reads until a notification starting with want, skipping
	// watchdog pings when skipPings.
	expect := func(want string, skipPings bool) string {
		t.Helper()
		for {
			got := next()
			if strings.HasPrefix(got, want) {
				return got
			}
			if !skipPings || got != sdnotify.Watchdog {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}

	expect(sdnotify.Ready, false) // nothing, not even a ping, before READY
	select {
	case <-s.Gateway().Started():
	default:
		t.Fatal("READY before the status page listened")
	}
	for _, l := range s.Gateway().Lines() {
		if l.Snapshot() == nil {
			t.Fatalf("READY before line %s ran", l.Name())
		}
	}
	for range 3 {
		expect(sdnotify.Watchdog, false)
	}
	reload <- struct{}{}
	if got := expect(sdnotify.Reloading, true); !strings.Contains(got, "\nMONOTONIC_USEC=") {
		t.Errorf("RELOADING without MONOTONIC_USEC: %q", got)
	}
	expect(sdnotify.Ready, false)
	stop()
	expect(sdnotify.Stopping, true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWatchdogHealth: the watchdog's health is the lines' snapshot
// freshness: no line running is not alive, a snapshot older than
// snapshotStale is a wedged line, named.
func TestWatchdogHealth(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	s, _ := simSite(t, log, "2s")
	start := time.Now()
	if ok, line := s.alive(start); ok || line != "L1" {
		t.Fatalf("alive before Run: %v %q", ok, line)
	}
	if s.linesRunning(start) {
		t.Fatal("lines running before Run")
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, nil) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	siteWait(t, "lines running", 10*time.Second, func() bool { return s.linesRunning(start) })
	if ok, line := s.alive(time.Now()); !ok {
		t.Fatalf("running line %s not alive", line)
	}
	// As a line whose loop stopped publishing looks a while later.
	if ok, line := s.alive(time.Now().Add(snapshotStale + time.Second)); ok || line != "L1" {
		t.Fatalf("stale snapshot counted alive: %v %q", ok, line)
	}
}
