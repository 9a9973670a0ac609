package opcua

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/hostif"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not synchronisation
	}
}

// recorder drains a link's events and lets a test wait for them.
type recorder struct {
	mu     sync.Mutex
	evs    []devices.Event
	paused bool
	resume chan struct{}
}

func (r *recorder) run(ctx context.Context, ch <-chan devices.Event) {
	for {
		r.mu.Lock()
		p, res := r.paused, r.resume
		r.mu.Unlock()
		if p {
			select {
			case <-ctx.Done():
				return
			case <-res:
			}
		}
		select {
		case <-ctx.Done():
			return
		case e := <-ch:
			r.mu.Lock()
			r.evs = append(r.evs, e)
			r.mu.Unlock()
		}
	}
}

func (r *recorder) pause() {
	r.mu.Lock()
	r.paused, r.resume = true, make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) unpause() {
	r.mu.Lock()
	r.paused = false
	close(r.resume)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []devices.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]devices.Event(nil), r.evs...)
}

func (r *recorder) count(k devices.EventKind) int {
	n := 0
	for _, e := range r.snapshot() {
		if e.Kind == k {
			n += max(1, e.Count*boolInt(k == devices.EventMissed))
		}
	}
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type testLink struct {
	*Link
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	runErr error
}

// stop ends Run and waits for it.
func (tl *testLink) stop(t testing.TB) {
	t.Helper()
	tl.cancel()
	select {
	case <-tl.done:
		if tl.runErr != nil {
			t.Errorf("run: %v", tl.runErr)
		}
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("Run did not return:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

func startLink(t testing.TB, cfg Config) *testLink {
	t.Helper()
	log := zerolog.Nop()
	if tt, ok := t.(*testing.T); ok {
		log = zerolog.New(zerolog.NewTestWriter(tt)).Level(zerolog.InfoLevel)
	}
	return startLinkLog(t, cfg, log)
}

func startLinkLog(t testing.TB, cfg Config, log zerolog.Logger) *testLink {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "sorter1"
	}
	l, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tl := &testLink{Link: l, rec: &recorder{}, cancel: cancel, done: make(chan struct{})}
	rctx, rcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { tl.rec.run(rctx, l.Events()) })
	go func() { tl.runErr = l.Run(ctx); close(tl.done) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			select {
			case <-tl.done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return")
			}
			rcancel()
			wg.Wait()
		})
	})
	return tl
}

func (tl *testLink) waitUp(t testing.TB) {
	t.Helper()
	waitFor(t, 10*time.Second, "link up", func() bool { return tl.Status().State == devices.LinkUp })
}

func TestLinkRingOrderUnderLoad(t *testing.T) {
	sim := sharedSim(t)
	ack0, count0 := sim.PLC().Snapshot().AckSeq, sim.PLC().Snapshot().ConfirmCount
	tl := startLink(t, Config{Endpoint: sim.endpoint})
	tl.waitUp(t)

	const n = 400
	for i := range n {
		cmd := devices.Command{TID: uint32(10_000 + i), Chute: uint16(i%200 + 1), Reason: uint16(i % 8), Deadline: time.Now().Add(time.Minute)}
		if err := tl.Send(t.Context(), cmd); err != nil {
			t.Fatal(err)
		}
	}
	// At the ring's ceiling in commissioning mode every command is
	// confirmed a fixed time after it was taken, so confirmations come in
	// bursts of up to 15 per PLC cycle: faster than a 10ms subscription can
	// follow (interval x rate >= 16). Those are reported missed, never lost
	// silently.
	waitFor(t, 30*time.Second, "every confirmation accounted for", func() bool {
		return tl.rec.count(devices.EventConfirmed)+tl.rec.count(devices.EventMissed) == n
	})

	evs := tl.rec.snapshot()
	var written, taken, outstanding, maxOut int
	lastNum := count0
	first := ack0 + 1
	lastWritten := ack0
	seen := map[uint32]bool{}
	for _, e := range evs {
		switch e.Kind {
		case devices.EventWritten:
			// Consecutive seqs in queue order; a write whose reply a
			// reconnect cut off has no Written (its Taken still comes).
			if e.Seq <= lastWritten || e.TID-10_000 != uint32(e.Seq-first) {
				t.Fatalf("written seq %d tid %d after seq %d", e.Seq, e.TID, lastWritten)
			}
			lastWritten = e.Seq
			written++
			outstanding++
			maxOut = max(maxOut, outstanding)
		case devices.EventTaken:
			if want := first + uint16(taken); e.Seq != want || e.TID != uint32(10_000+taken) {
				t.Fatalf("taken #%d: seq %d tid %d, want seq %d", taken, e.Seq, e.TID, want)
			}
			taken++
			outstanding--
		case devices.EventConfirmed:
			if e.Seq <= lastNum {
				t.Fatalf("confirmation num %d after %d", e.Seq, lastNum)
			}
			lastNum = e.Seq
			// Result 9: a loaded test machine starved the heartbeat for a
			// second and the PLC recirculated (host lost), as it must.
			if (e.Result != 1 && e.Result != 9) || seen[e.TID] || e.TID != uint32(10_000)+uint32(e.Seq-count0-1) {
				t.Fatalf("confirmation %+v (dup %v)", e, seen[e.TID])
			}
			seen[e.TID] = true
			if want := uint16((e.TID-10_000)%200 + 1); e.Result == 1 && e.Chute != want {
				t.Fatalf("tid %d confirmed into chute %d, want %d", e.TID, e.Chute, want)
			}
		case devices.EventMissed:
		default:
			t.Fatalf("unexpected event %+v", e)
		}
	}
	t.Logf("%d confirmed, %d missed at the ring's ceiling", tl.rec.count(devices.EventConfirmed), tl.rec.count(devices.EventMissed))
	if maxOut > 15 {
		t.Fatalf("%d commands outstanding at once: at most 15", maxOut)
	}
	snap := sim.PLC().Snapshot()
	if snap.AckSeq != ack0+n || snap.ConfirmCount != count0+n {
		t.Fatalf("plc ack %d count %d", snap.AckSeq, snap.ConfirmCount)
	}
	st := tl.Status()
	if st.Written+st.Reconnects < n || st.Taken != n || st.Confirmed+st.Missed != n || st.Outstanding != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestLinkConfirmations sends at a steady 100 commands/s (well inside
// interval x rate < 16): each confirmation carries the Num the PLC gave
// it, in order, with the TID and chute of its command. (On a loaded
// machine a stalled subscription can still cost some: those must be
// reported missed, never skipped or repeated.)
func TestLinkConfirmations(t *testing.T) {
	sim := sharedSim(t)
	count0 := sim.PLC().Snapshot().ConfirmCount
	tl := startLink(t, Config{Endpoint: sim.endpoint})
	tl.waitUp(t)
	const n = 100
	tick := time.NewTicker(10 * time.Millisecond) // load shaping, not synchronisation
	defer tick.Stop()
	for i := range n {
		<-tick.C
		if err := tl.Send(t.Context(), devices.Command{TID: uint32(500 + i), Chute: uint16(i%256 + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "every confirmation accounted for", func() bool {
		return tl.rec.count(devices.EventConfirmed)+tl.rec.count(devices.EventMissed) == n
	})
	last := count0
	for _, e := range tl.rec.snapshot() {
		switch e.Kind {
		case devices.EventConfirmed:
			i := e.Seq - count0 - 1 // commands are confirmed in command order here
			if e.Seq <= last || e.TID != uint32(500+i) || (e.Result == 1 && e.Chute != i%256+1) || (e.Result != 1 && e.Result != 9) {
				t.Fatalf("confirmation %+v after num %d", e, last)
			}
			last = e.Seq
		case devices.EventLost:
			t.Fatalf("%+v", e)
		}
	}
	if last != count0+n && tl.rec.count(devices.EventMissed) == 0 {
		t.Fatalf("last num %d, want %d", last, count0+n)
	}
	t.Logf("%d confirmed, %d missed", tl.rec.count(devices.EventConfirmed), tl.rec.count(devices.EventMissed))
}

// TestLinkMissedConfirmations stalls the gateway (it stops draining
// Events) while the PLC confirms far more than a ring's worth: every
// command ends confirmed or counted missed, none twice.
func TestLinkMissedConfirmations(t *testing.T) {
	// Items travel 1s: every command is written and taken before the first
	// confirmation, so the stalled gateway does not stall the writes.
	sim := sharedSim(t)
	count0 := sim.PLC().Snapshot().ConfirmCount
	const n = 120
	tl := startLink(t, Config{Endpoint: sim.endpoint, EventBuffer: 2*n + 10})
	tl.waitUp(t)
	tl.rec.pause()
	for i := range n {
		if err := tl.Send(t.Context(), devices.Command{TID: uint32(1 + i), Chute: 3}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "plc confirmed all", func() bool { return sim.PLC().Snapshot().ConfirmCount == count0+n })
	tl.rec.unpause()
	waitFor(t, 10*time.Second, "every confirmation accounted for", func() bool {
		return tl.rec.count(devices.EventConfirmed)+tl.rec.count(devices.EventMissed) == n
	})
	if tl.rec.count(devices.EventMissed) == 0 {
		t.Fatal("no confirmation missed although the gateway stalled for more than a ring")
	}
	seen := map[uint32]bool{}
	for _, e := range tl.rec.snapshot() {
		if e.Kind == devices.EventConfirmed {
			if seen[e.TID] {
				t.Fatalf("tid %d confirmed twice", e.TID)
			}
			seen[e.TID] = true
		}
	}
	if st := tl.Status(); st.Missed+st.Confirmed != n {
		t.Fatalf("status missed %d confirmed %d", st.Missed, st.Confirmed)
	}
}

func TestLinkDeadlineLate(t *testing.T) {
	sim := sharedSim(t)
	l, err := New(Config{Name: "s", Endpoint: sim.endpoint}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	firstSeq := sim.PLC().Snapshot().AckSeq + 1 // a new link follows the PLC
	// Queued before Run: the first cannot be written in time.
	if err := l.Send(t.Context(), devices.Command{TID: 7, Chute: 1, Deadline: time.Now().Add(-time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(t.Context(), devices.Command{TID: 8, Chute: 2, Deadline: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(t.Context(), devices.Command{TID: 0, Chute: 2}); !errors.Is(err, devices.ErrBadCommand) {
		t.Fatalf("tid 0: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var got []devices.Event
	for len(got) < 3 {
		select {
		case e := <-l.Events():
			got = append(got, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %+v", got)
		}
	}
	if got[0].Kind != devices.EventLate || got[0].TID != 7 || got[0].Seq != 0 {
		t.Fatalf("first event %+v, want late tid 7 without seq", got[0])
	}
	if got[1].Kind != devices.EventWritten || got[1].TID != 8 || got[1].Seq != firstSeq {
		t.Fatalf("second event %+v, want tid 8 written with seq %d: a late command leaves no gap", got[1], firstSeq)
	}
}

func TestLinkHeartbeatAndHostBlock(t *testing.T) {
	sim := sharedSim(t)
	tl := startLink(t, Config{Endpoint: sim.endpoint})
	tl.SetHostState(devices.HostReady)
	tl.SetPlanVersion(4242)
	tl.waitUp(t)
	first := sim.PLC().Snapshot().HostHeartbeat
	waitFor(t, 5*time.Second, "host block written", func() bool {
		s := sim.PLC().Snapshot()
		return s.HostHeartbeat != first && s.HostState == 1 && s.PlanVersion == 4242 && s.FaultCode == 0
	})
	sim.SetChuteFull(7, true)
	sim.SetChuteDisabled(200, true)
	defer sim.SetChuteFull(7, false)
	defer sim.SetChuteDisabled(200, false)
	waitFor(t, 5*time.Second, "chute bits", func() bool {
		st := tl.Status()
		return st.Full.Has(7) && st.Disabled.Has(200) && !st.Full.Has(8)
	})
	st := tl.Status()
	if st.ChuteCount != 256 || st.BootID == 0 || st.Protocol != "opcua" {
		t.Fatalf("status %+v", st)
	}
}

func TestLinkPLCWatchdog(t *testing.T) {
	sim := sharedSim(t)
	tl := startLink(t, Config{Endpoint: sim.endpoint, PLCWatchdog: 300 * time.Millisecond})
	tl.waitUp(t)
	sim.StallPLCHeartbeat(2 * time.Second)
	waitFor(t, 5*time.Second, "link not up while the plc heartbeat stands", func() bool {
		st := tl.Status()
		return st.State == devices.LinkSyncing && strings.Contains(st.LastError, "heartbeat")
	})
	// A command waits while the PLC is lost, then goes.
	if err := tl.Send(t.Context(), devices.Command{TID: 99, Chute: 5}); err != nil {
		t.Fatal(err)
	}
	if tl.Status().Written != 0 {
		t.Fatal("command written while the plc heartbeat stood")
	}
	tl.waitUp(t)
	waitFor(t, 5*time.Second, "command confirmed", func() bool { return tl.rec.count(devices.EventConfirmed) == 1 })
	if tl.Status().Reconnects != 0 {
		t.Fatal("a stalled plc heartbeat is no reason to reconnect")
	}
}

// TestLinkServerRestart restarts the OPC UA server (sessions and
// subscriptions gone): the link reports itself down until it has a new
// session and subscription, then commands flow again.
func TestLinkServerRestart(t *testing.T) {
	sim := slowSim(t)
	tl := startLink(t, Config{Endpoint: sim.endpoint})
	tl.waitUp(t)
	if err := tl.Send(t.Context(), devices.Command{TID: 1, Chute: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "first taken", func() bool { return tl.rec.count(devices.EventTaken) == 1 })

	sim.restart()
	// The sim builds its new server (seconds under -race) before it drops
	// the old one's sessions.
	waitFor(t, 30*time.Second, "link down after the restart", func() bool { return tl.Status().State != devices.LinkUp })
	tl.waitUp(t)
	st := tl.Status()
	if st.Reconnects == 0 {
		t.Fatalf("status %+v: no reconnect counted", st)
	}
	for i := range 20 {
		if err := tl.Send(t.Context(), devices.Command{TID: uint32(100 + i), Chute: 2}); err != nil {
			t.Fatal(err)
		}
	}
	// ACK_SEQ reaches the link through the new subscription only.
	waitFor(t, 10*time.Second, "taken through the new subscription", func() bool { return tl.rec.count(devices.EventTaken) == 21 })
	if tl.rec.count(devices.EventLost) != 0 {
		t.Fatal("a server restart with the same boot id loses nothing")
	}
}

func TestLinkColdRestart(t *testing.T) {
	sim := slowSim(t)
	tl := startLink(t, Config{Endpoint: sim.endpoint})
	tl.waitUp(t)
	for i := range 5 {
		if err := tl.Send(t.Context(), devices.Command{TID: uint32(1 + i), Chute: 2}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "taken", func() bool { return tl.rec.count(devices.EventTaken) == 5 })
	if tl.rec.count(devices.EventConfirmed) != 0 {
		t.Fatal("confirmed although items travel an hour")
	}
	boot := tl.Status().BootID
	sim.ColdRestart()
	waitFor(t, 10*time.Second, "lost", func() bool { return tl.rec.count(devices.EventLost) == 5 })
	tl.waitUp(t)
	if st := tl.Status(); st.BootID == boot || st.NextSeq != 1 {
		t.Fatalf("after cold restart: boot %d (was %d) next seq %d", st.BootID, boot, st.NextSeq)
	}
	if err := tl.Send(t.Context(), devices.Command{TID: 50, Chute: 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "written with seq 1", func() bool {
		for _, e := range tl.rec.snapshot() {
			if e.Kind == devices.EventWritten && e.TID == 50 {
				return e.Seq == 1
			}
		}
		return false
	})
}

func TestLinkSignAndEncrypt(t *testing.T) {
	sim := sharedSim(t) // offers SignAndEncrypt besides None
	cert, key, _ := certKey(t, t.TempDir(), "gateway", time.Now().Add(24*time.Hour), false)
	serverCert := filepath.Join(shared.opts.certDir, "fieldbus-sim.pem")

	t.Run("trusted", func(t *testing.T) {
		tl := startLink(t, Config{Endpoint: sim.endpoint, Security: SecuritySignAndEncrypt,
			CertFile: cert, KeyFile: key, TrustedServerCerts: []string{serverCert}})
		tl.waitUp(t)
		if err := tl.Send(t.Context(), devices.Command{TID: 77, Chute: 9}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "confirmed over SignAndEncrypt", func() bool { return tl.rec.count(devices.EventConfirmed) == 1 })
		tl.stop(t)
	})
	t.Run("untrusted server", func(t *testing.T) {
		// Trusting only our own certificate: the server's is not in the list.
		tl := startLink(t, Config{Endpoint: sim.endpoint, Security: SecuritySignAndEncrypt,
			CertFile: cert, KeyFile: key, TrustedServerCerts: []string{cert}})
		waitFor(t, 5*time.Second, "refused", func() bool {
			return strings.Contains(tl.Status().LastError, ErrUntrustedServer.Error())
		})
		if tl.Status().State == devices.LinkUp {
			t.Fatal("up with an untrusted server")
		}
	})
}

// TestLinkSign runs the link against a server that offers Basic256Sha256
// Sign only (no None endpoint).
func TestLinkSign(t *testing.T) {
	dir := t.TempDir()
	sim := startSim(t, simOpts{security: SecuritySign, certDir: dir})
	cert, key, _ := certKey(t, dir, "gateway", time.Now().Add(24*time.Hour), true)
	tl := startLink(t, Config{Endpoint: sim.endpoint, Security: SecuritySign,
		CertFile: cert, KeyFile: key, TrustedServerCerts: []string{filepath.Join(dir, "fieldbus-sim.pem")}})
	tl.waitUp(t)
	if err := tl.Send(t.Context(), devices.Command{TID: 5, Chute: 4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "taken over Sign", func() bool { return tl.rec.count(devices.EventTaken) == 1 })
}

// TestLinkDeadSubscription deletes the link's subscription behind gopcua's
// back: the connection and session stay, gopcua's publish loop pauses on
// BadNoSubscription and tells nobody (the failure family of gopcua #876,
// #879). The link must notice the silence, report itself not up, and
// build a new connection with a new subscription.
func TestLinkDeadSubscription(t *testing.T) {
	sim := sharedSim(t)
	tl := startLink(t, Config{Endpoint: sim.endpoint})
	tl.waitUp(t)
	tl.mu.Lock()
	c := tl.cur
	tl.mu.Unlock()
	req := &ua.DeleteSubscriptionsRequest{SubscriptionIDs: c.cl.SubscriptionIDs()}
	var res *ua.DeleteSubscriptionsResponse
	if err := c.cl.Send(t.Context(), req, func(v ua.Response) error {
		var ok bool
		res, ok = v.(*ua.DeleteSubscriptionsResponse)
		if !ok {
			return fmt.Errorf("got %T", v)
		}
		return nil
	}); err != nil || len(res.Results) != 1 || res.Results[0] != ua.StatusOK {
		t.Fatalf("delete subscription: %v %+v", err, res)
	}
	waitFor(t, 5*time.Second, "link not up without a subscription", func() bool {
		st := tl.Status()
		return st.State != devices.LinkUp && st.Reconnects == 0 && strings.Contains(st.LastError, "subscription")
	})
	waitFor(t, 10*time.Second, "reconnected", func() bool { return tl.Status().Reconnects > 0 })
	tl.waitUp(t)
	if err := tl.Send(t.Context(), devices.Command{TID: 4242, Chute: 3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "taken through the new subscription", func() bool { return tl.rec.count(devices.EventTaken) == 1 })
}

// TestLinkStopsWithoutConsumer: a gateway that stopped reading Events must
// not keep Run from returning.
func TestLinkStopsWithoutConsumer(t *testing.T) {
	sim := sharedSim(t)
	l, err := New(Config{Name: "s", Endpoint: sim.endpoint, EventBuffer: 1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	waitFor(t, 10*time.Second, "up", func() bool { return l.Status().State == devices.LinkUp })
	for i := range 20 {
		if err := l.Send(t.Context(), devices.Command{TID: uint32(900 + i), Chute: 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "events backed up", func() bool { return len(l.Events()) == 1 && l.blocked.Load() })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run blocked on a full Events channel")
	}
	if err := l.Send(t.Context(), devices.Command{TID: 1, Chute: 1}); !errors.Is(err, devices.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if st := l.Status(); st.State != devices.LinkClosed {
		t.Fatalf("state %s", st.State)
	}
}

// TestLinkMisconfigured: a wrong namespace URI or node prefix keeps the
// link down with an error that says what is wrong, retrying with back-off.
func TestLinkMisconfigured(t *testing.T) {
	sim := sharedSim(t)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"namespace", Config{Namespace: "urn:other:sorter"}, `namespace "urn:other:sorter"`},
		{"prefix", Config{NodePrefix: "Sortr"}, "BadNodeIDUnknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Endpoint = sim.endpoint
			tl := startLink(t, tc.cfg)
			waitFor(t, 10*time.Second, "retried with the error", func() bool {
				st := tl.Status()
				return st.Reconnects >= 2 && strings.Contains(st.LastError, tc.want)
			})
			if st := tl.Status(); st.State == devices.LinkUp {
				t.Fatalf("up: %+v", st)
			}
		})
	}
}

// TestLinkSecondHost: a second gateway on the same PLC (issue 10 item 9).
// Both notice from the host nodes read back, hold their commands and say
// why; the first resumes once the second has gone for the hold.
func TestLinkSecondHost(t *testing.T) {
	sim := startSim(t, simOpts{travel: 10 * time.Millisecond})
	cfg := Config{Endpoint: sim.endpoint, SecondHostHold: 600 * time.Millisecond}
	a := startLink(t, cfg)
	a.waitUp(t)
	cfgB := cfg
	cfgB.Name = "intruder"
	b := startLink(t, cfgB)
	held := func(tl *testLink) bool {
		st := tl.Status()
		return st.State == devices.LinkSyncing && strings.Contains(st.LastError, hostif.ErrSecondHost.Error())
	}
	t0 := time.Now()
	waitFor(t, 10*time.Second, "both links holding for a second host", func() bool { return held(a) && held(b) })
	t.Logf("both held %v after the second gateway started: a %q, b %q", time.Since(t0).Round(time.Millisecond),
		a.Status().LastError, b.Status().LastError)
	taken := sim.PLC().CommandsTaken()
	for _, tl := range []*testLink{a, b} {
		if err := tl.Send(t.Context(), devices.Command{TID: 7, Chute: 2, Deadline: time.Now().Add(100 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "both commands late", func() bool {
		return a.rec.count(devices.EventLate) == 1 && b.rec.count(devices.EventLate) == 1
	})
	if got := sim.PLC().CommandsTaken(); got != taken {
		t.Errorf("the plc took %d commands while both held", got-taken)
	}
	b.stop(t)
	a.waitUp(t)
	if err := a.Send(t.Context(), devices.Command{TID: 8, Chute: 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a command confirmed", func() bool { return a.rec.count(devices.EventConfirmed) == 1 })
}
