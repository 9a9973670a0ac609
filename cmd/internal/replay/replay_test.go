package replay

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// TestMain checks that no test of the package leaks a goroutine.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func loadTable(t testing.TB, file string) *sortplan.Table {
	t.Helper()
	if !strings.Contains(file, "/") {
		file = filepath.Join("testdata", file)
	}
	p, _, err := sortplan.LoadPlan(file, 0)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := sortplan.Compile(p, nil, sortplan.ResolverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// recorded is the traffic of the tests: what the old plan decided, as
// the gateway journals it.
type recorded struct {
	dest   string
	noRead bool
	n      int
	full   []uint16 // chutes full when it was decided
}

var traffic = []recorded{
	{dest: "90210", n: 10},                      // chute 1, R001
	{dest: "90211", n: 5},                       // chute 1, R001
	{dest: "90211", n: 2, full: []uint16{1}},    // alternate: chute 2, reason 4
	{dest: "DSF4", n: 3},                        // chute 10
	{noRead: true, n: 2},                        // NOREAD: chute 30
	{dest: "12345", n: 4},                       // no rule: UNKNOWN, chute 30
	{dest: "90212", n: 1, full: []uint16{5, 6}}, // 902*: every chute full, chute 0 reason 5
}

// writeJournal journals the traffic as decided by the old plan, one
// pass a second, and two closed containers of 4 and 6 items.
func writeJournal(t testing.TB) string {
	t.Helper()
	old := loadTable(t, "old.csv")
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := journal.Open(journal.Config{Path: path}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	tid := uint32(0)
	for _, r := range traffic {
		var av sortplan.Availability
		for _, c := range r.full {
			av.Set(c, true)
		}
		for range r.n {
			tid++
			var d sortplan.Decision
			if r.noRead {
				d = old.DecideException(sortplan.ReasonNoRead, &av)
			} else {
				d = old.DecideKey(r.dest, &av)
			}
			at = at.Add(time.Second)
			if _, err := j.Append(journal.Record{Time: at, Line: "A", Kind: journal.KindDecision, TID: tid, Pass: 1, NoRead: r.noRead,
				Dest: d.Dest, Chute: d.Chute, Reason: uint16(d.Reason), Route: d.Route, PlanVersion: d.Version}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range []uint32{4, 6} {
		if _, err := j.Append(journal.Record{Time: at, Line: "A", Kind: journal.KindContainerClose, Chute: 1, Count: n, Route: "R001"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func replayFile(t *testing.T, path, plan string, unavailable []uint16) (*Result, Scanned) {
	t.Helper()
	r := New(loadTable(t, plan), unavailable)
	s, err := FromJournal(context.Background(), path, "", time.Time{}, time.Time{}, r)
	if err != nil {
		t.Fatal(err)
	}
	return r.Result(s.MeanContainer()), s
}

func TestReplaySamePlanNoChanges(t *testing.T) {
	path := writeJournal(t)
	res, s := replayFile(t, filepath.Dir(path), "old.csv", nil) // the folder, as the demo leaves it
	if res.Passes != 27 || s.Passes != 27 {
		t.Fatalf("%d passes replayed (%d scanned), want 27", res.Passes, s.Passes)
	}
	if res.Changed != 0 || len(res.Changes) != 0 {
		t.Errorf("same plan: %d changes %v, want 0", res.Changed, res.Changes)
	}
	if res.NotCompared != 1 {
		t.Errorf("not compared %d, want 1 (the all-full recirculation)", res.NotCompared)
	}
	if res.ExceptionsOld != 6 || res.ExceptionsNew != 6 {
		t.Errorf("exceptions old %d new %d, want 6 and 6", res.ExceptionsOld, res.ExceptionsNew)
	}
	if s.MeanContainer() != 5 || res.ContainerSize != 5 {
		t.Errorf("container size %d (mean %d), want 5", res.ContainerSize, s.MeanContainer())
	}
}

func TestReplayChangedPlan(t *testing.T) {
	path := writeJournal(t)
	res, _ := replayFile(t, path, "new.csv", nil)
	if res.Changed != 10 {
		t.Errorf("changed %d, want 10 (90210 moved from chute 1 to 3)", res.Changed)
	}
	if len(res.Changes) != 1 || res.Changes[0] != (Change{From: 1, To: 3, Count: 10}) {
		t.Errorf("changes %v, want 10 from 1 to 3", res.Changes)
	}
	routes := map[string]Route{}
	for _, r := range res.Routes {
		routes[r.Route] = r
	}
	if r := routes["R001"]; r.Old != 17 || r.New != 7 || r.ContainersOld != 4 || r.ContainersNew != 2 {
		t.Errorf("R001 %+v, want 17 -> 7 parcels, 4 -> 2 containers of 5", r)
	}
	if r := routes["R009"]; r.Old != 0 || r.New != 10 || r.ContainersNew != 2 {
		t.Errorf("R009 %+v, want 0 -> 10 parcels, 2 containers", r)
	}
	chutes := map[uint16]Chute{}
	for _, c := range res.Chutes {
		chutes[c.Chute] = c
	}
	// All 27 passes lie within one minute: the peak is the count.
	if c := chutes[1]; c.Old != 15 || c.New != 7 || c.PeakOld != 15 || c.PeakNew != 7 {
		t.Errorf("chute 1 %+v, want 15 -> 7 (the 2 alternates back on their primary)", c)
	}
	if c := chutes[3]; c.Old != 0 || c.New != 10 || c.PeakNew != 10 {
		t.Errorf("chute 3 %+v, want 0 -> 10", c)
	}
}

func TestReplayUnavailableChute(t *testing.T) {
	path := writeJournal(t)
	res, _ := replayFile(t, path, "old.csv", []uint16{10})
	if len(res.Changes) != 1 || res.Changes[0] != (Change{From: 10, To: 11, Count: 3}) {
		t.Errorf("changes %v, want DSF4's 3 from 10 to its alternate 11", res.Changes)
	}
}

func TestReplayRange(t *testing.T) {
	path := writeJournal(t)
	r := New(loadTable(t, "old.csv"), nil)
	from := time.Date(2026, 12, 1, 6, 0, 11, 0, time.UTC) // after the first 10 passes
	s, err := FromJournal(context.Background(), path, "A", from, from.Add(5*time.Second), r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Passes != 5 {
		t.Errorf("%d passes in the range, want 5", s.Passes)
	}
}

func TestReplayBadJournal(t *testing.T) {
	dir := t.TempDir()
	r := New(loadTable(t, "old.csv"), nil)
	if _, err := FromJournal(context.Background(), filepath.Join(dir, "none.db"), "", time.Time{}, time.Time{}, r); err == nil || !strings.Contains(err.Error(), "none.db") {
		t.Errorf("missing journal: %v", err)
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("not a journal at all, not a journal at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := FromJournal(context.Background(), junk, "", time.Time{}, time.Time{}, r); err == nil {
		t.Error("junk journal: no error")
	}
}

// TestReplayReports: text names the change, HTML is self-contained (inline
// SVG, no script, no URL to fetch) and JSON carries the counts.
func TestReplayReports(t *testing.T) {
	res, _ := replayFile(t, writeJournal(t), "new.csv", nil)
	var txt, html, js strings.Builder
	if err := res.WriteText(&txt, 10); err != nil {
		t.Fatal(err)
	}
	if err := res.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"changed chute: 10", "1 -> 3    10", "R009"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	h := html.String()
	if n := strings.Count(h, "<svg"); n != 3 {
		t.Errorf("%d SVG charts, want 3", n)
	}
	for _, bad := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(h, bad) {
			t.Errorf("HTML holds %q: it must need nothing from outside", bad)
		}
	}
	if !strings.Contains(js.String(), `"changed": 10`) {
		t.Errorf("JSON lacks the change count:\n%s", js.String())
	}
}

// TestReplayPeakPerMinute: the peak is the busiest minute, not the total.
func TestReplayPeakPerMinute(t *testing.T) {
	tab := loadTable(t, "old.csv")
	r := New(tab, nil)
	at := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	d := tab.DecideKey("90210", nil)
	for m, n := range []int{3, 5, 2} {
		for i := range n {
			p := Pass{Time: at.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second), Dest: "90210", Chute: d.Chute, Route: d.Route}
			r.Add(&p)
		}
	}
	res := r.Result(1)
	if len(res.Chutes) != 1 || res.Chutes[0].PeakOld != 5 || res.Chutes[0].PeakNew != 5 || res.Chutes[0].Old != 10 {
		t.Errorf("chutes %+v, want chute 1: 10 parcels, peak 5 a minute", res.Chutes)
	}
}

// TestReplayLockedJournal: a journal a gateway holds open is refused
// with a clear error, not read half-way or changed.
func TestReplayLockedJournal(t *testing.T) {
	path := writeJournal(t)
	j, err := journal.Open(journal.Config{Path: path}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	r := New(loadTable(t, "old.csv"), nil)
	_, err = FromJournal(context.Background(), path, "", time.Time{}, time.Time{}, r)
	if err == nil || !strings.Contains(err.Error(), "locked by a running gateway") {
		t.Errorf("locked journal: %v, want the lock named", err)
	}
}
