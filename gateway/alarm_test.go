package gateway

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
)

// recJournal keeps what the alarm book appends (the book's own unit
// tests; the restart test below uses a real journal).
type recJournal struct{ recs []journal.Record }

func (r *recJournal) Append(rec journal.Record) (uint64, error) {
	r.recs = append(r.recs, rec)
	return uint64(len(r.recs)), nil
}

func (r *recJournal) transitions() []string {
	var out []string
	for _, rec := range r.recs {
		out = append(out, rec.Alarm+" "+rec.Cause+" "+rec.By)
	}
	return out
}

func newTestBook(t *testing.T, j Journal) (*alarmBook, *Metrics) {
	t.Helper()
	var cfg AlarmConfig
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	return newAlarmBook("L1", cfg, j, m.alarmActive, time.Unix(1000, 0)), m
}

func ids(as []Alarm) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.ID+":"+a.State)
	}
	return out
}

// TestAlarmLifecycle walks ISA-18.2's states: active unacknowledged,
// acknowledged, cleared; cleared before the acknowledgement (stays
// listed until acknowledged); shelved for a limited time.
func TestAlarmLifecycle(t *testing.T) {
	rj := &recJournal{}
	b, m := newTestBook(t, rj)
	t0 := time.Unix(2000, 0).UTC()
	down := cause("plc-down", SevCritical, "PLC link down: connection refused")
	estop := cause("estop", SevCritical, "emergency stop")

	b.evaluate(t0, []alarmCause{down})
	act, _, hist := b.lists()
	if got := ids(act); !slices.Equal(got, []string{"L1/plc-down:unacked"}) || len(hist) != 0 {
		t.Fatalf("after raise: active %v, history %d", got, len(hist))
	}
	if act[0].Action == "" || act[0].Cleared != nil || !act[0].Since.Equal(t0) {
		t.Errorf("raised alarm %+v: want an action, cleared nil, since t0", act[0])
	}
	if v := testutil.ToFloat64(m.alarmActive.WithLabelValues("L1", "L1/plc-down", SevCritical)); v != 1 {
		t.Errorf("sortgw_alarm_active = %v, want 1", v)
	}
	if _, err := b.Ack("L1/plc-down", "", t0); !errors.Is(err, ErrNoWho) {
		t.Errorf("ack without who: %v, want ErrNoWho", err)
	}
	if _, err := b.Ack("L1/nothing", "ana", t0); !errors.Is(err, ErrNoAlarm) {
		t.Errorf("ack of unknown alarm: %v, want ErrNoAlarm", err)
	}
	if a, err := b.Ack("L1/plc-down", "ana", t0.Add(time.Second)); err != nil || a.AckedBy != "ana" || a.State != "acked" {
		t.Fatalf("ack: %+v, %v", a, err)
	}
	// Still present: stays active (acknowledged), text may change.
	b.evaluate(t0.Add(2*time.Second), []alarmCause{cause("plc-down", SevCritical, "PLC link down: EOF")})
	act, _, _ = b.lists()
	if got := ids(act); !slices.Equal(got, []string{"L1/plc-down:acked"}) || act[0].Text != "PLC link down: EOF" {
		t.Fatalf("acked, still present: %v %q", got, act[0].Text)
	}
	// Return to normal after the ack: gone from active, in the history.
	b.evaluate(t0.Add(3*time.Second), nil)
	act, _, hist = b.lists()
	if len(act) != 0 || len(hist) != 1 || hist[0].Cleared == nil || hist[0].AckedBy != "ana" || hist[0].State != "cleared" {
		t.Fatalf("cleared: active %v, history %+v", ids(act), hist)
	}
	if n := testutil.CollectAndCount(m.alarmActive); n != 0 {
		t.Errorf("sortgw_alarm_active has %d series after the clear, want 0", n)
	}

	// Return to normal before the ack: listed until acknowledged.
	b.evaluate(t0.Add(4*time.Second), []alarmCause{estop})
	b.evaluate(t0.Add(5*time.Second), nil)
	act, _, hist = b.lists()
	if got := ids(act); !slices.Equal(got, []string{"L1/estop:cleared-unacked"}) || len(hist) != 2 {
		t.Fatalf("cleared unacked: active %v, history %d", got, len(hist))
	}
	if _, err := b.Ack("L1/estop", "bo", t0.Add(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	act, _, hist = b.lists()
	if len(act) != 0 || hist[0].ID != "L1/estop" || hist[0].AckedBy != "bo" {
		t.Fatalf("acked after clear: active %v, newest history %+v", ids(act), hist[0])
	}

	// Shelved: not active, back by itself when the shelf time is over.
	sc := cause("scanner/S1", SevWarning, "scanner S1 offline")
	b.evaluate(t0.Add(7*time.Second), []alarmCause{sc})
	if _, err := b.Shelve("L1/scanner/S1", "", time.Minute, t0); !errors.Is(err, ErrNoWho) {
		t.Errorf("shelve without who: %v", err)
	}
	a, err := b.Shelve("L1/scanner/S1", "cy", 100*24*time.Hour, t0.Add(8*time.Second))
	if err != nil || a.State != "shelved" || !a.ShelvedUntil.Equal(t0.Add(8*time.Second+b.cfg.MaxShelve)) {
		t.Fatalf("shelve: %+v, %v (want capped at %v)", a, err, b.cfg.MaxShelve)
	}
	b.evaluate(t0.Add(time.Hour), []alarmCause{sc})
	act, shelved, _ := b.lists()
	if len(act) != 0 || len(shelved) != 1 {
		t.Fatalf("shelved: active %v shelved %v", ids(act), ids(shelved))
	}
	b.evaluate(t0.Add(9*time.Hour), []alarmCause{sc})
	act, shelved, _ = b.lists()
	if got := ids(act); !slices.Equal(got, []string{"L1/scanner/S1:unacked"}) || len(shelved) != 0 {
		t.Fatalf("after the shelf time: active %v shelved %v", got, ids(shelved))
	}

	want := []string{
		"L1/plc-down raised ", "L1/plc-down acked ana", "L1/plc-down cleared ",
		"L1/estop raised ", "L1/estop cleared ", "L1/estop acked bo",
		"L1/scanner/S1 raised ", "L1/scanner/S1 shelved cy", "L1/scanner/S1 unshelved ",
	}
	if got := rj.transitions(); !slices.Equal(got, want) {
		t.Errorf("journal transitions\n got %q\nwant %q", got, want)
	}
}

// TestAlarmReraise: a cause that comes back after a clear is a new
// occurrence; the old one stays in the history.
func TestAlarmReraise(t *testing.T) {
	b, _ := newTestBook(t, &recJournal{})
	t0 := time.Unix(3000, 0).UTC()
	c := cause("estop", SevCritical, "emergency stop")
	b.evaluate(t0, []alarmCause{c})
	b.evaluate(t0.Add(time.Second), nil)
	b.evaluate(t0.Add(2*time.Second), []alarmCause{c})
	act, _, hist := b.lists()
	if got := ids(act); !slices.Equal(got, []string{"L1/estop:unacked"}) || !act[0].Since.Equal(t0.Add(2*time.Second)) || len(hist) != 1 {
		t.Fatalf("re-raised: active %v since %v, history %d", got, act[0].Since, len(hist))
	}
}

// TestAlarmCauses: each cause found from a line snapshot, with its
// severity and an action.
func TestAlarmCauses(t *testing.T) {
	up := ConditionInput{PLCHeard: true, LinkUp: true, LinkState: "up", SorterState: 1, PlanLoaded: true}
	now := time.Unix(5000, 0)
	chutes := func(f func([]ChuteView)) []ChuteView {
		cs := []ChuteView{{N: 1, Route: "A"}, {N: 2, Route: "A"}, {N: 3, Route: "B"}}
		if f != nil {
			f(cs)
		}
		return cs
	}
	cases := []struct {
		name string
		in   func(*ConditionInput)
		snap func(*LineSnapshot)
		j    *JournalHealthView
		hb   time.Time
		want []string // keys (without the line)
	}{
		{"normal", nil, nil, &JournalHealthView{State: "ok", Disk: JournalDiskView{State: "ok"}}, now, nil},
		{"link down", func(in *ConditionInput) { in.LinkUp, in.LinkState, in.LinkError = false, "down", "refused" }, nil, nil, now, []string{"plc-down"}},
		{"never read, dial failing", func(in *ConditionInput) { in.PLCHeard, in.LinkUp, in.LinkError = false, false, "refused" }, nil, nil, time.Time{}, []string{"plc-down"}},
		{"never read, no error yet", func(in *ConditionInput) { in.PLCHeard, in.LinkUp = false, false }, nil, nil, time.Time{}, nil},
		{"heartbeat stalled", nil, nil, nil, now.Add(-6 * time.Second), []string{"plc-heartbeat"}},
		{"e-stop", func(in *ConditionInput) { in.SorterState = 2 }, nil, nil, now, []string{"estop"}},
		{"fault", func(in *ConditionInput) { in.SorterState, in.FaultCode = 3, 200 }, nil, nil, now, []string{"sorter-fault"}},
		{"scanner offline", nil, func(s *LineSnapshot) {
			s.Scanners = []ScannerView{{Name: "S1", State: "down"}, {Name: "S2", Online: true}}
		}, nil, now, []string{"scanner/S1"}},
		{"rates", nil, func(s *LineSnapshot) {
			s.PerMinute = Rates{Reads: 100, Outcomes: 100, NoReadPct: 11, UnknownPct: 12, SortedPct: 40}
		}, nil, now, []string{"noread-rate", "unknown-rate", "sorted-rate"}},
		{"rates on too few", nil, func(s *LineSnapshot) {
			s.PerMinute = Rates{Reads: 19, Outcomes: 19, NoReadPct: 50, UnknownPct: 50, SortedPct: 0}
		}, nil, now, nil},
		{"route blocked", nil, func(s *LineSnapshot) {
			s.Chutes = chutes(func(cs []ChuteView) { cs[0].Full, cs[1].PLCDisabled = true, true })
		}, nil, now, []string{"route-blocked/A"}},
		{"route with a usable chute", nil, func(s *LineSnapshot) {
			s.Chutes = chutes(func(cs []ChuteView) { cs[0].TechDisabled = true })
		}, nil, now, nil},
		{"journal failing, disk low", nil, nil, &JournalHealthView{State: "failing", Disk: JournalDiskView{State: "low"}}, now, []string{"journal", "journal-disk"}},
		{"plan refused", nil, func(s *LineSnapshot) { s.Plan.LastError = "plan.csv:3:1: bad chute" }, nil, now, []string{"plan-refused"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, _ := newTestBook(t, nil)
			in := up
			if c.in != nil {
				c.in(&in)
			}
			s := &LineSnapshot{Chutes: chutes(nil)}
			if c.snap != nil {
				c.snap(s)
			}
			got := []string{}
			for _, cs := range b.causes(now, s, in, c.j, c.hb, map[string]bool{"S1": true}) {
				got = append(got, cs.key)
				if cs.action == "" || cs.text == "" || sevRank[cs.sev] == 0 && cs.sev != SevCritical {
					t.Errorf("cause %+v: want a text, an action and a severity", cs)
				}
			}
			if c.want == nil {
				c.want = []string{}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("causes %q, want %q", got, c.want)
			}
		})
	}
}

// TestAlarmChuteFullFor: a chute full for longer than ChuteFullFor.
func TestAlarmChuteFullFor(t *testing.T) {
	b, _ := newTestBook(t, nil)
	in := ConditionInput{PLCHeard: true, LinkUp: true, SorterState: 1}
	s := &LineSnapshot{Chutes: []ChuteView{{N: 7, Full: true}}}
	t0 := time.Unix(6000, 0)
	if cs := b.causes(t0, s, in, nil, t0, nil); len(cs) != 0 {
		t.Fatalf("just full: %v", cs)
	}
	cs := b.causes(t0.Add(b.cfg.ChuteFullFor+time.Second), s, in, nil, t0.Add(b.cfg.ChuteFullFor), nil)
	if len(cs) != 1 || cs[0].key != "chute-full/7" || !strings.Contains(cs[0].text, "chute 7 full for 5m1s") {
		t.Fatalf("full for long: %+v", cs)
	}
	s.Chutes[0].Full = false
	b.causes(t0.Add(b.cfg.ChuteFullFor+2*time.Second), s, in, nil, t0, nil)
	s.Chutes[0].Full = true
	if cs := b.causes(t0.Add(b.cfg.ChuteFullFor+3*time.Second), s, in, nil, t0.Add(b.cfg.ChuteFullFor+3*time.Second), nil); len(cs) != 0 {
		t.Fatalf("full again after emptying: %v", cs)
	}
}

// TestAlarmHistorySurvivesRestart: alarms raised, acknowledged and
// cleared are in the journal; a line opened on the same journal shows the
// same history and the alarms still active.
func TestAlarmHistorySurvivesRestart(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	path := filepath.Join(t.TempDir(), "j.db")
	open := func() (*journal.Journal, func()) {
		j, err := journal.Open(journal.Config{Path: path}, log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- j.Run(ctx) }()
		return j, func() {
			if err := j.Flush(context.Background()); err != nil {
				t.Error(err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			if err := j.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	j, stop := open()
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 4}, newFakeLink(), nil, j, NewMetrics(), log)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	// Item records between the alarm records, as on a real line.
	_, _ = j.Append(journal.Record{Line: "L1", Kind: journal.KindDecision, TID: 1, Pass: 1})
	l.alarms.evaluate(t0, []alarmCause{cause("estop", SevCritical, "emergency stop"), cause("plc-down", SevCritical, "PLC link down: EOF")})
	_, _ = j.Append(journal.Record{Line: "L1", Kind: journal.KindOutcome, TID: 1, Pass: 1, Outcome: journal.OutcomeDiverted})
	if _, err := l.AckAlarm("L1/estop", "ana"); err != nil {
		t.Fatal(err)
	}
	l.alarms.evaluate(t0.Add(time.Second), []alarmCause{cause("plc-down", SevCritical, "PLC link down: EOF")})
	wantAct, _, wantHist := l.Alarms()
	stop()

	j2, stop2 := open()
	defer stop2()
	m := NewMetrics()
	l2, err := NewLine(LineConfig{Name: "L1", Chutes: 4}, newFakeLink(), nil, j2, m, log)
	if err != nil {
		t.Fatal(err)
	}
	act, _, hist := l2.Alarms()
	if got := ids(hist); !slices.Equal(got, []string{"L1/estop:cleared"}) || hist[0].AckedBy != "ana" || hist[0].Text != "emergency stop" ||
		!hist[0].Since.Equal(wantHist[0].Since) || !hist[0].Cleared.Equal(*wantHist[0].Cleared) || hist[0].Action == "" {
		t.Errorf("history after restart %+v, want %+v", hist, wantHist)
	}
	if got := ids(act); !slices.Equal(got, ids(wantAct)) || !act[0].Since.Equal(t0) {
		t.Errorf("active after restart %v, want %v", got, ids(wantAct))
	}
	if v := testutil.ToFloat64(m.alarmActive.WithLabelValues("L1", "L1/plc-down", SevCritical)); v != 1 {
		t.Errorf("sortgw_alarm_active after restart = %v, want 1", v)
	}
}

// TestAlarmHeldWhileUnknown: an e-stop active before a restart is not
// cleared while the PLC has not been read yet; it clears once the PLC
// says the sorter runs.
func TestAlarmHeldWhileUnknown(t *testing.T) {
	b, _ := newTestBook(t, &recJournal{})
	t0 := time.Unix(7000, 0)
	b.evaluate(t0, []alarmCause{cause("estop", SevCritical, "emergency stop")})
	s := &LineSnapshot{}
	b.evaluate(t0.Add(time.Second), b.causes(t0.Add(time.Second), s, ConditionInput{}, nil, time.Time{}, nil))
	if act, _, _ := b.lists(); len(act) != 1 || act[0].Cleared != nil {
		t.Fatalf("PLC not read: %v, want the e-stop still active", ids(act))
	}
	up := ConditionInput{PLCHeard: true, LinkUp: true, SorterState: 1}
	b.evaluate(t0.Add(2*time.Second), b.causes(t0.Add(2*time.Second), s, up, nil, t0.Add(2*time.Second), nil))
	if act, _, _ := b.lists(); len(act) != 1 || act[0].Cleared == nil {
		t.Fatalf("PLC read, running: %v, want the e-stop cleared", ids(act))
	}
}
