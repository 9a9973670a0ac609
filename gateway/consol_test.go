package gateway

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// consolPlan has route rows: R1 holds 3 parcels a container and 2
// containers a van, leaving daily at 12:00 and 18:00.
const consolPlan = `plan_name,T
plan_version,1
chute_count,16
route,R1,daily 12:00 18:00,2,3,hold
route,R2,daily 12:30,4,100,exception 14
pattern,chutes,route,comment
NOREAD,15,EXC,
UNKNOWN,15,EXC,
MULTIREAD,15,EXC,
RECIRC_LIMIT,16,EXC,
10115,1|2,R1,
902*,3|4,R2,
END
`

type dockClock struct{ ns atomic.Int64 }

func (c *dockClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *dockClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// consolLine is a line over a real journal, with the route plan.
type consolLine struct {
	*harness
	jr     *journal.Journal
	clock  *dockClock
	booked int
}

func openJournal(t *testing.T, path string) (*journal.Journal, func()) {
	t.Helper()
	j, err := journal.Open(journal.Config{Path: path, QueryLimit: 1 << 20}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := j.Flush(context.Background()); err != nil {
				t.Error(err)
			}
			cancel()
			<-done
			if err := j.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return j, stop
}

func newConsolLine(t *testing.T, j *journal.Journal, clock *dockClock, mod func(*LineConfig)) *consolLine {
	t.Helper()
	cfg := LineConfig{Name: "L1", Chutes: 16, StatusEvery: 5 * time.Millisecond, ConfirmTimeout: 2 * time.Second, DockClock: clock.now}
	if mod != nil {
		mod(&cfg)
	}
	link := newFakeLink()
	l, err := NewLine(cfg, link, nil, j, NewMetrics(), zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := sortplan.ParsePlan("routes.csv", strings.NewReader(consolPlan), 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.InstallPlan(p, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	waitFor(t, "line running", l.running.Load)
	h := &harness{t: t, l: l, link: link, j: &memJournal{}}
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
	return &consolLine{harness: h, jr: j, clock: clock}
}

// sort reads tid, expects its command, and confirms it into chute.
func (c *consolLine) sort(tid uint32, zip string, chute uint16) {
	c.t.Helper()
	c.read(tid, zip420(zip))
	cmd := c.cmd()
	if cmd.TID != tid {
		c.t.Fatalf("command for tid %d, want %d", cmd.TID, tid)
	}
	c.confirm(tid, chute, ResultDiverted)
	// A barrier: the confirmation is handled once a later loop call ran.
	waitFor(c.t, "booked", func() bool {
		var booked bool
		_ = c.l.do(context.Background(), func() { booked = c.l.c.Booked >= uint64(c.booked+1) })
		return booked
	})
	c.booked++
}

func (c *consolLine) containers(state string) []Manifest {
	c.t.Helper()
	ms, err := c.l.Containers(context.Background(), state)
	if err != nil {
		c.t.Fatal(err)
	}
	return ms
}

func contIDs(ms []Manifest) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Container + ":" + m.State
	}
	return out
}

func TestContainerLifecycle(t *testing.T) {
	dir := t.TempDir()
	j, stopJ := openJournal(t, filepath.Join(dir, "j.db"))
	clock := &dockClock{}
	clock.set(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
	c := newConsolLine(t, j, clock, nil)
	ctx := context.Background()

	// Capacity: the third parcel closes L1-C1-1, the fourth opens L1-C1-2.
	for tid := uint32(1); tid <= 4; tid++ {
		c.sort(tid, "10115", 1)
	}
	c.sort(5, "90210", 3)
	closed := c.containers(StateClosed)
	if len(closed) != 1 || closed[0].Container != "L1-C1-1" || closed[0].Cause != causeCapacity || len(closed[0].Items) != 3 {
		t.Fatalf("closed %+v", closed)
	}
	if due := closed[0].Due; !due.Equal(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("due %v, want 12:00", due)
	}
	if got := contIDs(c.containers(StateOpen)); !reflect.DeepEqual(got, []string{"L1-C1-2:open", "L1-C3-1:open"}) {
		t.Fatalf("open %v", got)
	}
	// Loading an open container is refused; close it first.
	if _, err := c.l.LoadContainer(ctx, "L1-C1-2", "V1", "ann", "api"); !errors.Is(err, ErrContainerState) {
		t.Fatalf("load open: %v", err)
	}
	if _, err := c.l.LoadContainer(ctx, "L1-C1-1", " ", "ann", "api"); !errors.Is(err, ErrNoVan) {
		t.Fatalf("load without van: %v", err)
	}
	if _, err := c.l.LoadContainer(ctx, "L1-C9-9", "V1", "ann", "api"); !errors.Is(err, ErrNoContainer) {
		t.Fatalf("load unknown: %v", err)
	}
	if _, err := c.l.CloseContainerID(ctx, "L1-C1-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.l.CloseContainerID(ctx, "L1-C1-2"); !errors.Is(err, ErrContainerState) {
		t.Fatalf("second close: %v", err)
	}
	for _, id := range []string{"L1-C1-1", "L1-C1-2"} {
		if m, err := c.l.LoadContainer(ctx, id, "V1", "ann", "dock-scan"); err != nil || m.State != StateLoaded || m.Van != "V1" {
			t.Fatalf("load %s: %+v %v", id, m, err)
		}
	}
	if _, err := c.l.LoadContainer(ctx, "L1-C1-1", "V2", "ann", "api"); !errors.Is(err, ErrContainerState) {
		t.Fatalf("load twice: %v", err)
	}
	// Van capacity 2: a third container does not fit V1.
	c.sort(6, "10115", 2)
	if _, err := c.l.CloseContainerID(ctx, "L1-C2-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.l.LoadContainer(ctx, "L1-C2-1", "V1", "ann", "api"); !errors.Is(err, ErrVanFull) {
		t.Fatalf("third container on a 2-container van: %v", err)
	}
	clock.set(time.Date(2026, 12, 4, 12, 1, 0, 0, time.UTC))
	vm, ok, err := c.l.Depart(ctx, "R1", "V1", "bob", "api", time.Now())
	if err != nil || !ok {
		t.Fatalf("depart: %v %v", ok, err)
	}
	if vm.Count != 2 || vm.Parcels != 4 || !vm.Departure.Equal(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("van manifest %+v", vm)
	}
	if _, ok, _ := c.l.Depart(ctx, "R1", "V1", "bob", "api", time.Now()); ok {
		t.Fatalf("a van departed twice")
	}
	before := c.containers("")
	vansBefore, err := c.l.Vans(ctx, "", time.Time{})
	if err != nil || len(vansBefore) != 1 {
		t.Fatalf("vans %v %v", vansBefore, err)
	}

	// Restart: stop the line, reopen the journal, and the state is back.
	c.stop()
	stopJ()
	j2, _ := openJournal(t, filepath.Join(dir, "j.db"))
	c2 := newConsolLine(t, j2, clock, nil)
	after := c2.containers("")
	if !reflect.DeepEqual(contIDs(after), contIDs(before)) {
		t.Fatalf("after restart %v, before %v", contIDs(after), contIDs(before))
	}
	for i := range after {
		if len(after[i].Items) != len(before[i].Items) || after[i].Van != before[i].Van || after[i].Route != before[i].Route {
			t.Errorf("%s: after %d items van %q route %q; before %d %q %q", after[i].Container, len(after[i].Items), after[i].Van,
				after[i].Route, len(before[i].Items), before[i].Van, before[i].Route)
		}
	}
	vans, err := c2.l.Vans(ctx, "R1", time.Time{})
	if err != nil || len(vans) != 1 || vans[0].Count != 2 || vans[0].Parcels != 4 {
		t.Fatalf("vans after restart %+v %v", vans, err)
	}
	// The rebuilt closed containers learn their departure from the routes.
	waitFor(t, "rebuilt due", func() bool {
		cl := c2.containers(StateDeparted)
		// From the parcels' wall-clock times (the test's dock clock is
		// virtual): one of R1's cut-offs.
		return len(cl) == 2 && !cl[0].Due.IsZero() && (cl[0].Due.Hour() == 12 || cl[0].Due.Hour() == 18) && cl[0].Due.Minute() == 0
	})
	if c2.l.rebuilt.Stray != 0 {
		t.Errorf("%d stray bookings", c2.l.rebuilt.Stray)
	}
	// The next parcel at chute 1 goes on in container 3, not 1 again.
	c2.sort(7, "10115", 1)
	if got := contIDs(c2.containers(StateOpen)); !reflect.DeepEqual(got, []string{"L1-C1-3:open", "L1-C3-1:open"}) {
		t.Fatalf("open after restart %v", got)
	}
}

func TestCutoffCloseAndDepartureAlarm(t *testing.T) {
	j, _ := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	clock := &dockClock{}
	clock.set(time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC))
	c := newConsolLine(t, j, clock, func(cfg *LineConfig) { cfg.CloseBefore = 5 * time.Minute })
	c.sort(1, "10115", 1)
	board := func() RouteBoard {
		var b RouteBoard
		waitFor(t, "board", func() bool {
			for _, r := range c.l.Snapshot().Routes {
				if r.Route == "R1" && c.l.Snapshot().At.After(time.Now().Add(-time.Second)) {
					b = r
					return len(r.Open)+len(r.Closed) > 0
				}
			}
			return false
		})
		return b
	}
	alarmed := func() bool {
		for _, a := range c.l.Snapshot().Alarms {
			if a.ID == "L1/departure/R1" && !strings.HasPrefix(a.State, "cleared") {
				return true
			}
		}
		return false
	}
	if b := board(); b.Status != "filling" || len(b.Open) != 1 || b.Countdown != 3600 {
		t.Fatalf("board at 11:00 %+v", b)
	}
	// 11:51: nine minutes to go with a container open: late, alarm.
	clock.set(time.Date(2026, 12, 4, 11, 51, 0, 0, time.UTC))
	waitFor(t, "departure alarm", alarmed)
	if b := board(); b.Status != "late" {
		t.Fatalf("board at 11:51 %+v", b)
	}
	// 11:55: the cut-off closes it; the alarm clears.
	clock.set(time.Date(2026, 12, 4, 11, 55, 0, 0, time.UTC))
	waitFor(t, "cut-off close", func() bool { return len(c.containers(StateClosed)) == 1 })
	if m := c.containers(StateClosed)[0]; m.Cause != causeCutoff {
		t.Fatalf("closed by %q", m.Cause)
	}
	waitFor(t, "alarm cleared", func() bool { return !alarmed() })
	// A parcel inside the window is for the next departure (18:00).
	c.sort(2, "10115", 1)
	open := c.containers(StateOpen)
	if len(open) != 1 || !open[0].Due.Equal(time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)) {
		t.Fatalf("open %+v", open)
	}
}

func TestMissedCutoffPolicy(t *testing.T) {
	j, _ := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	clock := &dockClock{}
	c := newConsolLine(t, j, clock, nil)
	cases := []struct {
		name   string
		at     string
		zip    string
		chute  uint16
		reason uint16
	}{
		{"R2 before its cut-off", "12:00", "90210", 3, uint16(sortplan.ReasonSorted)},
		{"R2 after its last cut-off: exception chute", "12:31", "90210", 14, uint16(sortplan.ReasonMissedCutoff)},
		{"R1 holds: same chutes after the last cut-off", "18:30", "10115", 1, uint16(sortplan.ReasonSorted)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at, _ := time.Parse("15:04", tc.at)
			clock.set(time.Date(2026, 12, 4, at.Hour(), at.Minute(), 0, 0, time.UTC))
			c.read(uint32(100+i), zip420(tc.zip))
			cmd := c.cmd()
			if cmd.Chute != tc.chute || cmd.Reason != tc.reason {
				t.Fatalf("command chute %d reason %d, want %d %d", cmd.Chute, cmd.Reason, tc.chute, tc.reason)
			}
		})
	}
}
