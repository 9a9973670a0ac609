package gateway

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeLink implements the devices.PLCLink contract in memory, for the item
// rules that need exact control over which event comes when. The wire is
// tested end to end against fieldbus-sim in e2e_test.go.
type fakeLink struct {
	cmds   chan devices.Command
	events chan devices.Event
	mu     sync.Mutex
	st     devices.PLCStatus
	host   devices.HostState
	fail   chan error // an error sent here makes Run fail with it
}

func newFakeLink() *fakeLink {
	return &fakeLink{cmds: make(chan devices.Command, 256), events: make(chan devices.Event, 256), fail: make(chan error, 1),
		st: devices.PLCStatus{Name: "fake", Protocol: "fake", State: devices.LinkUp}}
}

func (f *fakeLink) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-f.fail:
		return err
	}
}
func (f *fakeLink) Send(ctx context.Context, c devices.Command) error {
	select {
	case f.cmds <- c:
		return nil
	default:
		return devices.ErrQueueFull
	}
}
func (f *fakeLink) Events() <-chan devices.Event { return f.events }
func (f *fakeLink) Status() devices.PLCStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}
func (f *fakeLink) SetHostState(s devices.HostState) { f.mu.Lock(); f.host = s; f.mu.Unlock() }
func (f *fakeLink) SetPlanVersion(uint16)            {}
func (f *fakeLink) setFull(n uint16, on bool) {
	f.mu.Lock()
	f.st.Full.Set(n, on)
	f.mu.Unlock()
}

// memJournal keeps records for assertions.
type memJournal struct {
	mu   sync.Mutex
	recs []journal.Record
}

func (j *memJournal) Append(r journal.Record) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.recs = append(j.recs, r)
	return uint64(len(j.recs)), nil
}

func (j *memJournal) outcomes(tid uint32) []journal.Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []journal.Record
	for _, r := range j.recs {
		if r.TID == tid && r.Kind == journal.KindOutcome {
			out = append(out, r)
		}
	}
	return out
}

const testPlan = `plan_name,T
plan_version,1
chute_count,16
pattern,chutes,route,comment
NOREAD,15,EXC,
UNKNOWN,15,EXC,
MULTIREAD,15,EXC,
RECIRC_LIMIT,16,EXC,
10115,1|2,R1,
902*,3|4,R2,
END
`

// zip420 is a GS1-128 code with AI 420 (ship-to postal code).
func zip420(zip string) string { return "]C1420" + zip }

type harness struct {
	t    *testing.T
	l    *Line
	link *fakeLink
	j    *memJournal
	stop func()
}

func newHarness(t *testing.T, withPlan bool, mod func(*LineConfig)) *harness {
	t.Helper()
	cfg := LineConfig{Name: "L1", Chutes: 16, StatusEvery: 5 * time.Millisecond, ConfirmTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	link := newFakeLink()
	j := &memJournal{}
	l, err := NewLine(cfg, link, nil, j, NewMetrics(), zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	if withPlan {
		p, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(testPlan), 16)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.InstallPlan(p, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	waitFor(t, "line running", l.running.Load)
	h := &harness{t: t, l: l, link: link, j: j}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func (h *harness) read(tid uint32, codes ...string) {
	h.l.Sink(devices.Read{Scanner: "S1", TID: tid, Codes: codes, NoRead: len(codes) == 0, At: time.Now()})
}

func (h *harness) cmd() devices.Command {
	h.t.Helper()
	select {
	case c := <-h.link.cmds:
		return c
	case <-time.After(10 * time.Second):
		h.t.Fatal("no command sent")
	}
	return devices.Command{}
}

func (h *harness) noCmd() {
	h.t.Helper()
	// A barrier through the loop: once it ran, every earlier read was handled.
	if err := h.l.do(context.Background(), func() {}); err != nil {
		h.t.Fatal(err)
	}
	select {
	case c := <-h.link.cmds:
		h.t.Fatalf("unexpected command %+v", c)
	default:
	}
}

func (h *harness) confirm(tid uint32, chute, result uint16) {
	h.link.events <- devices.Event{Kind: devices.EventConfirmed, TID: tid, Chute: chute, Result: result, At: time.Now()}
}

func (h *harness) outcome(tid uint32, n int) []journal.Record {
	h.t.Helper()
	waitFor(h.t, "outcome", func() bool { return len(h.j.outcomes(tid)) >= n })
	return h.j.outcomes(tid)
}

func TestLineItemRules(t *testing.T) {
	tests := []struct {
		name string
		run  func(h *harness)
	}{
		{"sorted and booked", func(h *harness) {
			h.read(7, zip420("10115"))
			c := h.cmd()
			if c.TID != 7 || c.Chute != 1 || c.Reason != uint16(sortplan.ReasonSorted) {
				t.Fatalf("command %+v", c)
			}
			if d := time.Until(c.Deadline); d <= 0 || d > 500*time.Millisecond {
				t.Fatalf("deadline %v from now", d)
			}
			h.confirm(7, 1, ResultDiverted)
			o := h.outcome(7, 1)[0]
			if o.Outcome != journal.OutcomeDiverted || o.Chute != 1 || o.Container != "L1-C1-1" || o.Route != "R1" || o.PlanVersion != 1 {
				t.Fatalf("outcome %+v", o)
			}
			ms, err := h.l.Manifests(context.Background(), "L1-C1-1", "")
			if err != nil || len(ms) != 1 || len(ms[0].Items) != 1 || ms[0].Items[0].TID != 7 {
				t.Fatalf("manifests %+v %v", ms, err)
			}
		}},
		{"duplicate while unconfirmed", func(h *harness) {
			h.read(8, zip420("10115"))
			h.cmd()
			h.read(8, zip420("10115"))
			h.noCmd()
			h.confirm(8, 1, ResultDiverted)
			h.outcome(8, 1)
			waitFor(t, "duplicate counted", func() bool { return h.l.Snapshot().Totals.Duplicates == 1 })
		}},
		{"recirculation limit", func(h *harness) {
			for pass := 1; pass <= 3; pass++ {
				h.read(9, zip420("90210"))
				c := h.cmd()
				if c.Chute != 3 {
					t.Fatalf("pass %d: chute %d", pass, c.Chute)
				}
				h.confirm(9, 0, ResultRecircFull)
				h.outcome(9, pass)
			}
			h.read(9, zip420("90210"))
			c := h.cmd()
			if c.Chute != 16 || c.Reason != uint16(sortplan.ReasonRecircLimit) {
				t.Fatalf("4th pass: %+v", c)
			}
			h.confirm(9, 16, ResultDiverted)
			os := h.outcome(9, 4)
			if os[3].Pass != 4 || os[3].Outcome != journal.OutcomeDiverted {
				t.Fatalf("outcomes %+v", os)
			}
		}},
		{"no-read goes to the NOREAD chute", func(h *harness) {
			h.read(10)
			c := h.cmd()
			if c.Chute != 15 || c.Reason != uint16(sortplan.ReasonNoRead) {
				t.Fatalf("command %+v", c)
			}
		}},
		{"late, lost and refused end the pass", func(h *harness) {
			h.read(11, zip420("10115"))
			h.read(12, zip420("10115"))
			h.read(13, zip420("10115"))
			h.cmd()
			h.cmd()
			h.cmd()
			h.link.events <- devices.Event{Kind: devices.EventLate, TID: 11}
			h.link.events <- devices.Event{Kind: devices.EventLost, TID: 12}
			h.confirm(13, 0, ResultRefused)
			if o := h.outcome(11, 1)[0]; o.Outcome != journal.OutcomeHostLate {
				t.Fatalf("11: %v", o.Outcome)
			}
			if o := h.outcome(12, 1)[0]; o.Outcome != journal.OutcomeLostDisconnect {
				t.Fatalf("12: %v", o.Outcome)
			}
			if o := h.outcome(13, 1)[0]; o.Outcome != journal.OutcomeRefused {
				t.Fatalf("13: %v", o.Outcome)
			}
		}},
		{"budget spent before the read was handled", func(h *harness) {
			h.l.Sink(devices.Read{Scanner: "S1", TID: 14, Codes: []string{zip420("10115")}, At: time.Now().Add(-time.Second)})
			h.noCmd()
			if o := h.outcome(14, 1)[0]; o.Outcome != journal.OutcomeHostLate {
				t.Fatalf("14: %v", o.Outcome)
			}
		}},
		{"technician disable picks the alternate", func(h *harness) {
			if err := h.l.SetChuteDisabled(context.Background(), 1, true); err != nil {
				t.Fatal(err)
			}
			h.read(15, zip420("10115"))
			if c := h.cmd(); c.Chute != 2 || c.Reason != uint16(sortplan.ReasonAlternate) {
				t.Fatalf("command %+v", c)
			}
			if err := h.l.SetChuteDisabled(context.Background(), 2, true); err != nil {
				t.Fatal(err)
			}
			h.read(16, zip420("10115"))
			if c := h.cmd(); c.Chute != 0 || c.Reason != uint16(sortplan.ReasonRecirculate) {
				t.Fatalf("command %+v", c)
			}
		}},
		{"missed confirmations close the oldest taken, then timeout", func(h *harness) {
			h.read(17, zip420("10115"))
			h.read(18, zip420("10115"))
			h.cmd()
			h.cmd()
			h.link.events <- devices.Event{Kind: devices.EventTaken, TID: 17}
			h.link.events <- devices.Event{Kind: devices.EventTaken, TID: 18}
			h.link.events <- devices.Event{Kind: devices.EventMissed, Count: 1}
			if o := h.outcome(17, 1)[0]; o.Outcome != journal.OutcomeMissedConfirmation {
				t.Fatalf("17: %v", o.Outcome)
			}
			// 18 comes round again: its pass is still open, so a duplicate.
			h.read(18, zip420("10115"))
			h.noCmd()
			if o := h.outcome(18, 1)[0]; o.Outcome != journal.OutcomeTimeout {
				t.Fatalf("18: %v", o.Outcome)
			}
			// After the timeout the next read is pass 2.
			h.read(18, zip420("10115"))
			h.cmd()
			// A late confirmation for 17's closed pass is unmatched.
			h.confirm(17, 1, ResultDiverted)
			waitFor(t, "unmatched", func() bool { return h.l.Snapshot().Totals.Unmatched == 1 })
		}},
		{"full bit clearing closes the container", func(h *harness) {
			h.read(19, zip420("10115"))
			h.cmd()
			h.confirm(19, 1, ResultDiverted)
			h.outcome(19, 1)
			h.link.setFull(1, true)
			waitFor(t, "full seen", func() bool { return h.l.Snapshot().Chutes[0].Full })
			h.read(20, zip420("10115"))
			if c := h.cmd(); c.Chute != 2 {
				t.Fatalf("chute 1 full, got %+v", c)
			}
			h.link.setFull(1, false)
			waitFor(t, "container closed", func() bool { return h.l.Snapshot().Chutes[0].Container == "L1-C1-2" })
			ms, _ := h.l.Manifests(context.Background(), "L1-C1-1", "")
			if len(ms) != 1 || ms[0].Cause != "emptied" || len(ms[0].Items) != 1 {
				t.Fatalf("manifest %+v", ms)
			}
		}},
		{"technician close", func(h *harness) {
			m, err := h.l.CloseContainer(context.Background(), 5)
			if err != nil || m.Container != "L1-C5-1" || m.Cause != "technician" {
				t.Fatalf("%+v %v", m, err)
			}
			if _, err := h.l.CloseContainer(context.Background(), 99); err == nil {
				t.Fatal("chute 99 closed")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, true, nil)
			h.t = t
			tc.run(h)
		})
	}
}

func TestLineNoPlanDegraded(t *testing.T) {
	h := newHarness(t, false, nil)
	h.read(1, zip420("10115"))
	if c := h.cmd(); c.Chute != 0 || c.Reason != uint16(sortplan.ReasonDegraded) {
		t.Fatalf("command %+v", c)
	}
	if h.l.Ready() {
		t.Fatal("ready without a plan")
	}
}

func TestLineStopRecordsOpenItems(t *testing.T) {
	h := newHarness(t, true, nil)
	h.read(1, zip420("10115"))
	h.cmd()
	h.stop()
	if o := h.j.outcomes(1); len(o) != 1 || o[0].Outcome != journal.OutcomeLostAtRestart {
		t.Fatalf("outcomes %+v", o)
	}
}

func TestTable(t *testing.T) {
	tab := newTable(64)
	for tid := uint32(1); tid <= 64; tid++ {
		if tab.insert(tid) < 0 {
			t.Fatalf("insert %d", tid)
		}
	}
	if tab.insert(65) >= 0 {
		t.Fatal("insert beyond capacity")
	}
	for tid := uint32(1); tid <= 64; tid += 2 {
		tab.remove(tid)
	}
	for tid := uint32(1); tid <= 64; tid++ {
		if got := tab.lookup(tid) >= 0; got != (tid%2 == 0) {
			t.Fatalf("lookup %d: %v", tid, got)
		}
	}
}

func BenchmarkDecisionPath(b *testing.B) {
	link := newFakeLink()
	l, err := NewLine(LineConfig{Name: "B", Chutes: 16}, link, nil, nopJournal{}, NewMetrics(), zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	p, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(testPlan), 16)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.InstallPlan(p, nil); err != nil {
		b.Fatal(err)
	}
	codes := []string{zip420("10115")}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tid := uint32(i%1000 + 1)
		now := time.Now()
		l.handleRead(ctx, devices.Read{Scanner: "S1", TID: tid, Codes: codes, At: now})
		<-link.cmds
		l.handleEvent(devices.Event{Kind: devices.EventConfirmed, TID: tid, Chute: 1, Result: ResultRecircFull, At: now})
	}
}

// TestLineManifestReload: reinstalling the active plan version with a new
// manifest (the daily manifest reload) is accepted; a changed plan under
// the same version is refused and the old plan stays.
func TestLineManifestReload(t *testing.T) {
	h := newHarness(t, true, nil)
	defer h.stop()
	p, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(testPlan), 16)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sortplan.ParseManifest("m.csv", strings.NewReader("TBA000000000042,90299\nEND,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.l.InstallPlan(p, m); err != nil {
		t.Fatalf("same plan, new manifest: %v", err)
	}
	if d := h.l.Table().Decide([]string{"TBA000000000042"}, nil); d.Reason != sortplan.ReasonSorted || d.Chute != 3 {
		t.Fatalf("manifest id after reload: %+v", d)
	}
	changed, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(strings.Replace(testPlan, "902*,3|4", "902*,4|3", 1)), 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.l.InstallPlan(changed, m); !errors.Is(err, sortplan.ErrPlanChanged) {
		t.Fatalf("changed plan under the same version: %v, want ErrPlanChanged", err)
	}
	if pi := h.l.PlanInfo(); pi.LastError == "" {
		t.Error("refused reload not shown on the plan card")
	}
	if d := h.l.Table().Decide([]string{"TBA000000000042"}, nil); d.Chute != 3 {
		t.Fatalf("refused plan replaced the active one: %+v", d)
	}
}
