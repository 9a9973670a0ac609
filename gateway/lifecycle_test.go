package gateway

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// orderJournal is a real journal that notes, at the moment the gateway
// stops it, what else was still running.
type orderJournal struct {
	*journal.Journal
	gw   *Gateway
	path string

	mu           sync.Mutex
	stopped      bool
	linesRunning bool // some line still ran when the journal was told to stop
	httpServing  bool // the status page still took connections then
	closed       bool
}

func (o *orderJournal) Run(ctx context.Context) error {
	err := o.Journal.Run(ctx)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopped = true
	for _, l := range o.gw.Lines() {
		if l.running.Load() {
			o.linesRunning = true
		}
	}
	if c, derr := net.Dial("tcp", o.gw.Addr()); derr == nil {
		c.Close()
		o.httpServing = true
	}
	return err
}

func (o *orderJournal) Close() error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	return o.Journal.Close()
}

func newLifecycleGateway(t *testing.T, links ...*fakeLink) (*Gateway, *orderJournal) {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := journal.Open(journal.Config{Path: path}, log)
	if err != nil {
		t.Fatal(err)
	}
	oj := &orderJournal{Journal: j, path: path}
	p, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(testPlan), 16)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	var lines []*Line
	for i, link := range links {
		l, err := NewLine(LineConfig{Name: "L" + string(rune('1'+i)), Chutes: 16}, link, nil, j, m, log)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.InstallPlan(p, nil); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	gw, err := New(Config{Listen: "127.0.0.1:0", DrainGrace: 1, Journal: oj}, lines, j, m, log)
	if err != nil {
		t.Fatal(err)
	}
	oj.gw = gw
	return gw, oj
}

// TestStopOrder: on a stop the lines drain first, then the status page
// stops, and the journal is stopped last and closed, so every record the
// lines wrote while stopping is kept.
func TestStopOrder(t *testing.T) {
	link := newFakeLink()
	gw, oj := newLifecycleGateway(t, link)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	<-gw.Started()
	waitFor(t, "line running", func() bool { return gw.Lines()[0].running.Load() })
	// An item left open: the line must record it lost at stop, and the
	// journal must still take that record.
	gw.Lines()[0].Sink(devices.Read{Scanner: "S1", TID: 7, Codes: []string{zip420("10115")}, At: time.Now()})
	waitFor(t, "command", func() bool { return len(link.cmds) > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	oj.mu.Lock()
	defer oj.mu.Unlock()
	if !oj.stopped || !oj.closed {
		t.Fatalf("journal stopped %v closed %v", oj.stopped, oj.closed)
	}
	if oj.linesRunning {
		t.Error("the journal was stopped while a line still ran")
	}
	if oj.httpServing {
		t.Error("the journal was stopped while the status page still served")
	}
	st := oj.Stats()
	if st.Appended == 0 || st.Committed != st.Appended {
		t.Errorf("journal appended %d committed %d: records written while stopping were not kept", st.Appended, st.Committed)
	}
}

// TestFailingLinkStopsSiblings: a PLC link whose Run fails stops its own
// line, the other line and the gateway, and the failure is returned.
func TestFailingLinkStopsSiblings(t *testing.T) {
	a, b := newFakeLink(), newFakeLink()
	gw, oj := newLifecycleGateway(t, a, b)
	done := make(chan error, 1)
	go func() { done <- gw.Run(context.Background()) }()
	<-gw.Started()
	waitFor(t, "lines running", func() bool { return gw.Lines()[0].running.Load() && gw.Lines()[1].running.Load() })
	boom := errors.New("plc gone for good")
	a.fail <- boom
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("gateway still running 10s after a PLC link failed")
	}
	if !errors.Is(err, boom) {
		t.Fatalf("run returned %v, want the link's failure", err)
	}
	for _, l := range gw.Lines() {
		if l.running.Load() {
			t.Errorf("line %s still running", l.Name())
		}
	}
	if !oj.closed {
		t.Error("journal not closed")
	}
}
