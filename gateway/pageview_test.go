package gateway

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// TestSnapshotTilesSumTo100: every outcome lands in one tile, and the
// tiles' counts add up to the total and their shares to 100.0 %.
func TestSnapshotTilesSumTo100(t *testing.T) {
	cfg := AlarmConfig{}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reasons := []sortplan.Reason{sortplan.ReasonSorted, sortplan.ReasonNoRead, sortplan.ReasonUnknown,
		sortplan.ReasonMultiRead, sortplan.ReasonAlternate, sortplan.ReasonRecirculate, sortplan.ReasonRecircLimit, sortplan.ReasonDegraded}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		var c counters
		n := rng.IntN(5000)
		if round < 20 {
			n = round // few outcomes: rounding matters most
		}
		for range n {
			o := journal.Outcome(1 + rng.IntN(16))
			if o == journal.OutcomeDuplicate {
				continue // not an outcome of a pass (not counted)
			}
			c.Buckets[bucketOf(o, reasons[rng.IntN(len(reasons))])]++
			c.Outcomes++
		}
		tl := outcomeTiles(&c.Buckets, "1m0s", &cfg)
		var sum uint64
		var tenths int
		for _, ti := range tl.Tiles {
			sum += ti.Count
			tenths += int(ti.Pct*10 + 0.5)
			var parts uint64
			for _, p := range ti.Parts {
				parts += p.Count
			}
			if len(ti.Parts) > 0 && parts != ti.Count {
				t.Fatalf("tile %s: parts %d, count %d", ti.Key, parts, ti.Count)
			}
		}
		if sum != c.Outcomes || tl.Total != c.Outcomes {
			t.Fatalf("round %d: tiles count %d, total %d, outcomes %d", round, sum, tl.Total, c.Outcomes)
		}
		if c.Outcomes > 0 && tenths != 1000 {
			t.Fatalf("round %d: shares add up to %.1f%%, want 100.0%% (%+v)", round, float64(tenths)/10, tl.Tiles)
		}
		if c.Outcomes == 0 && tenths != 0 {
			t.Fatalf("no outcomes but shares %+v", tl.Tiles)
		}
	}
}

// TestSnapshotTileBuckets: the tiles, case by case.
func TestSnapshotTileBuckets(t *testing.T) {
	for _, tc := range []struct {
		o      journal.Outcome
		reason sortplan.Reason
		tile   string
	}{
		{journal.OutcomeDiverted, sortplan.ReasonSorted, "sorted"},
		{journal.OutcomeDiverted, sortplan.ReasonAlternate, "sorted"},
		{journal.OutcomeDiverted, sortplan.ReasonUnknown, "exception"},
		{journal.OutcomeDiverted, sortplan.ReasonNoRead, "exception"},
		{journal.OutcomeRecirculatedFull, sortplan.ReasonSorted, "recirculated"},
		{journal.OutcomeNotSent, sortplan.ReasonSorted, "recirculated"},
		{journal.OutcomeHostLate, sortplan.ReasonSorted, "host-late"},
		{journal.OutcomeTimeout, sortplan.ReasonSorted, "unconfirmed"},
		{journal.OutcomeMissedConfirmation, sortplan.ReasonSorted, "unconfirmed"},
		{journal.OutcomeLostDisconnect, sortplan.ReasonSorted, "lost"},
		{journal.OutcomeLost, sortplan.ReasonSorted, "lost"},
	} {
		var b [nBuckets]uint64
		b[bucketOf(tc.o, tc.reason)]++
		cfg := AlarmConfig{}
		_ = cfg.Validate()
		for _, ti := range outcomeTiles(&b, "", &cfg).Tiles {
			if (ti.Count == 1) != (ti.Key == tc.tile) {
				t.Errorf("%s/%s: tile %s count %d, want it in %s", tc.o, tc.reason, ti.Key, ti.Count, tc.tile)
			}
		}
	}
}

// TestSnapshotTileLevels: degraded sorting colours the sorted tile and
// the unconfirmed one; no data leaves them grey.
func TestSnapshotTileLevels(t *testing.T) {
	cfg := AlarmConfig{}
	_ = cfg.Validate()
	var b [nBuckets]uint64
	b[bucketSorted], b[bucketTimeout] = 1, 160
	tl := outcomeTiles(&b, "", &cfg)
	if tl.Tiles[0].Level != "bad" || tl.Tiles[4].Level != "bad" {
		t.Errorf("0.6%% sorted: levels %q %q, want bad bad", tl.Tiles[0].Level, tl.Tiles[4].Level)
	}
	b = [nBuckets]uint64{}
	b[bucketSorted] = 100
	for _, ti := range outcomeTiles(&b, "", &cfg).Tiles {
		if ti.Level != "" {
			t.Errorf("all sorted: tile %s level %q", ti.Key, ti.Level)
		}
	}
}

func TestSnapshotTrendRing(t *testing.T) {
	var r trendRing
	t0 := time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC)
	var sorted, total uint64
	for s := 0; s < 90*60; s += 15 { // 90 minutes, every 15 s: 3 sorted of 4
		sorted, total = sorted+3, total+4
		r.add(t0.Add(time.Duration(s)*time.Second), sorted, total)
	}
	p := r.points()
	if len(p) != 60 {
		t.Fatalf("%d points, want 60", len(p))
	}
	if !p[59].At.Equal(t0.Add(89*time.Minute)) || !p[0].At.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("points from %v to %v", p[0].At, p[59].At)
	}
	for _, x := range p {
		if x.Sorted != 12 || x.Outcomes != 16 {
			t.Fatalf("minute %v: %d/%d, want 12/16", x.At, x.Sorted, x.Outcomes)
		}
	}
	// A gap (no publish for 3 minutes) shows as empty minutes.
	r.add(t0.Add(93*time.Minute), sorted+5, total+5)
	p = r.points()
	if got := p[len(p)-1]; got.Sorted != 5 || !got.At.Equal(t0.Add(93*time.Minute)) || p[len(p)-2].Outcomes != 0 {
		t.Fatalf("after a gap: %+v, %+v", got, p[len(p)-2])
	}
	for i := 1; i < len(p); i++ {
		if !p[i].At.Equal(p[i-1].At.Add(time.Minute)) {
			t.Fatalf("minute %d at %v after %v: want one minute apart", i, p[i].At, p[i-1].At)
		}
	}
}

func TestSnapshotShifts(t *testing.T) {
	ss := []Shift{{"early", "06:00"}, {"late", "14:00"}, {"night", "22:00"}}
	if err := validateShifts(ss); err != nil {
		t.Fatal(err)
	}
	loc := time.FixedZone("site", 3600)
	for _, tc := range []struct {
		at    time.Time
		name  string
		start time.Time
	}{
		{time.Date(2026, 3, 2, 7, 0, 0, 0, loc), "early", time.Date(2026, 3, 2, 6, 0, 0, 0, loc)},
		{time.Date(2026, 3, 2, 14, 0, 0, 0, loc), "late", time.Date(2026, 3, 2, 14, 0, 0, 0, loc)},
		{time.Date(2026, 3, 2, 23, 59, 0, 0, loc), "night", time.Date(2026, 3, 2, 22, 0, 0, 0, loc)},
		{time.Date(2026, 3, 2, 2, 0, 0, 0, loc), "night", time.Date(2026, 3, 1, 22, 0, 0, 0, loc)},
	} {
		name, start, ok := currentShift(ss, tc.at)
		if !ok || name != tc.name || !start.Equal(tc.start) {
			t.Errorf("at %v: %q from %v, want %q from %v", tc.at, name, start, tc.name, tc.start)
		}
	}
	for _, tc := range []struct {
		ss   []Shift
		want string
	}{
		{[]Shift{{"a", "25:00"}}, "shifts[0].start"},
		{[]Shift{{"a", "6:00"}}, "shifts[0].start"},
		{[]Shift{{"a", "06:00"}, {"b", "06:00"}}, "shifts[1].start"},
		{[]Shift{{"a", "06:00"}, {"a", "07:00"}}, "shifts[1].name"},
		{[]Shift{{"", "06:00"}}, "shifts[0].name"},
	} {
		err := validateShifts(tc.ss)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s", tc.ss, err, tc.want)
		}
	}
	// Counts since the shift started: a new shift starts from zero.
	var sc shiftCounter
	var c counters
	at := time.Date(2026, 3, 2, 13, 59, 0, 0, loc)
	sc.view(ss, at, &c)
	c.Buckets[bucketSorted], c.Buckets[bucketExcNoRead], c.Reads = 10, 2, 12
	if v := sc.view(ss, at.Add(30*time.Second), &c); v.Name != "early" || v.Sorted != 10 || v.Exceptions != 1*2 || v.Total != 12 || !v.Partial {
		t.Errorf("early shift: %+v", v)
	}
	c.Buckets[bucketSorted] = 15
	if v := sc.view(ss, at.Add(2*time.Minute), &c); v.Name != "late" || v.Sorted != 0 || v.Total != 0 || v.Partial {
		t.Errorf("late shift at its start: %+v", v)
	}
	c.Buckets[bucketSorted] = 18
	if v := sc.view(ss, at.Add(3*time.Minute), &c); v.Sorted != 3 || v.Total != 3 {
		t.Errorf("late shift: %+v", v)
	}
}

func TestSnapshotLinkLog(t *testing.T) {
	var g linkLog
	t0 := time.Now()
	st := devices.PLCStatus{State: devices.LinkUp}
	g.observe(&st, t0)
	st = devices.PLCStatus{State: devices.LinkDown, LastError: "dial tcp: connection refused"}
	g.observe(&st, t0.Add(time.Second))
	g.observe(&st, t0.Add(2*time.Second))
	if !g.downSince.Equal(t0.Add(time.Second)) {
		t.Errorf("down since %v", g.downSince)
	}
	st = devices.PLCStatus{State: devices.LinkUp}
	g.observe(&st, t0.Add(3*time.Second))
	ev := g.events()
	if len(ev) != 2 || ev[0].To != "up" || ev[1].To != "down" || ev[1].Cause == "" || !g.downSince.IsZero() {
		t.Fatalf("events %+v, down since %v", ev, g.downSince)
	}
	for i := range 20 {
		st.State = devices.LinkState(i % 2)
		g.observe(&st, t0.Add(time.Duration(4+i)*time.Second))
	}
	if len(g.events()) != linkEventsN {
		t.Errorf("%d events kept, want %d", len(g.events()), linkEventsN)
	}
	if !strings.Contains(linkNext("dial tcp 10.0.0.1:502: connect: connection refused", "10.0.0.1:502"), "10.0.0.1:502") {
		t.Error("next step does not name the address")
	}
}

// TestPageTemplate: the page as served, before any script runs, shows a
// link that is down with its cause and next step and the PLC's values as
// unknown, and "–" for tiles without data.
func TestPageTemplate(t *testing.T) {
	cfg := AlarmConfig{}
	_ = cfg.Validate()
	down := LineSnapshot{Name: "L1", Condition: CondDown, Reasons: []string{"PLC link down: connection refused"},
		PLC: PLCView{State: "down", SorterState: "running"},
		Link: LinkBanner{Cause: "dial tcp 10.0.0.9:502: connect: connection refused", Since: time.Now().Add(-time.Minute), For: "1m0s",
			Next: linkNext("connection refused", "10.0.0.9:502")},
		Tiles:  outcomeTiles(&[nBuckets]uint64{}, "0s", &cfg),
		Chutes: []ChuteView{{N: 1, Full: true}, {N: 2, TechDisabled: true}},
		Alarms: []Alarm{{ID: "L1/plc-down", Severity: SevCritical, Text: "PLC link down", Action: "Check the PLC", State: "unacked"}}}
	var b strings.Builder
	if err := pageTmpl.Execute(&b, pageData{Snapshot: Snapshot{Lines: []LineSnapshot{down}}}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		"<title>(1) sortgw status</title>",
		`class="badge big bad" data-f="cond">down</span>`,
		"connect: connection refused",
		"Next step: Nothing accepts connections at 10.0.0.9:502",
		`<dt>State</dt><dd><span class="unknown">unknown</span>`,
		`class="chute unknown" data-chute="1"`,
		`class="chute disabled" data-chute="2"`,
		`<b>–</b><span>sorted</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, ">running<") {
		t.Error("page shows the sorter's last state as if live")
	}
}

// TestSnapshotShiftConfig: the gateway's shifts reach its lines, and a
// bad shift is refused by New.
func TestSnapshotShiftConfig(t *testing.T) {
	mk := func() *Line {
		l, err := NewLine(LineConfig{Name: "L1", Chutes: 4}, newFakeLink(), nil, nil, nil, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := mk()
	ss := []Shift{{"early", "06:00"}, {"late", "14:00"}}
	if _, err := New(Config{Listen: "127.0.0.1:0", Shifts: ss}, []*Line{l}, nil, nil, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if got := l.shifts.Load(); got == nil || len(*got) != 2 || (*got)[1] != ss[1] {
		t.Errorf("line shifts %+v", got)
	}
	_, err := New(Config{Listen: "127.0.0.1:0", Shifts: []Shift{{"x", "7"}}}, []*Line{mk()}, nil, nil, zerolog.Nop())
	var se *ShiftError
	if !errors.As(err, &se) || se.Index != 0 || se.Field != "start" {
		t.Errorf("bad shift: %v", err)
	}
}

func TestSnapshotBlockedRoutes(t *testing.T) {
	cs := []ChuteView{
		{N: 1, Route: "R1", Full: true}, {N: 2, Route: "R1", PLCDisabled: true},
		{N: 3, Route: "R2", Full: true}, {N: 4, Route: "R2"},
		{N: 5, Route: "R3", TechDisabled: true}, {N: 6},
	}
	if got := blockedRoutes(cs, true); len(got) != 2 || got[0] != "R1" || got[1] != "R3" {
		t.Errorf("blocked %v, want [R1 R3]", got)
	}
	if got := blockedRoutes(cs, false); len(got) != 0 {
		t.Errorf("without a plan: %v", got)
	}
}

// FuzzShiftStart: any start text is accepted as a valid HH:MM or refused
// with an error, never a panic; an accepted one is the current shift at
// its own start time.
func FuzzShiftStart(f *testing.F) {
	for _, s := range []string{"06:00", "23:59", "00:00", "24:00", "6:00", " 06:00", "06:00:00", "ab:cd", "", "٠٦:٠٠"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ss := []Shift{{"a", s}}
		if err := validateShifts(ss); err != nil {
			return
		}
		m, err := parseHHMM(s)
		if err != nil || m < 0 || m >= 24*60 {
			t.Fatalf("%q accepted as minute %d (%v)", s, m, err)
		}
		at := time.Date(2026, 5, 1, m/60, m%60, 0, 0, time.UTC)
		name, start, ok := currentShift(ss, at)
		if !ok || name != "a" || !start.Equal(at) {
			t.Fatalf("%q: current %q from %v, want a from %v", s, name, start, at)
		}
	})
}
