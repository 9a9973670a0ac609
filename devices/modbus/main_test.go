package modbus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"sortgw/devices"
	fieldbussim "sortgw/fieldbus-sim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not synchronisation
	}
}

func testLogger(t testing.TB) zerolog.Logger {
	if tt, ok := t.(*testing.T); ok {
		return zerolog.New(zerolog.NewTestWriter(tt)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}

// startSim runs the emulated sorter on 127.0.0.1:0 until the test ends.
func startSim(t testing.TB, cfg fieldbussim.Config) *fieldbussim.Sim {
	t.Helper()
	cfg.Modbus.Addr = "127.0.0.1:0"
	if cfg.Chutes == 0 {
		cfg.Chutes = 256
	}
	s, err := fieldbussim.New(cfg, testLogger(t).With().Str("side", "sim").Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("sim run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("sim run: %v", err)
		}
	})
	return s
}

// collector drains a link's events for the test.
type collector struct {
	mu  sync.Mutex
	evs []devices.Event
	sig chan struct{} // signalled (cap 1) after every event
}

func (c *collector) add(e devices.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, e)
	c.mu.Unlock()
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

// wait blocks until cond holds, re-checking after every event.
func (c *collector) wait(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	for !cond() {
		select {
		case <-c.sig:
		case <-t.C:
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func (c *collector) all() []devices.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]devices.Event(nil), c.evs...)
}

// since returns a copy of the events after the first n.
func (c *collector) since(n int) []devices.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n >= len(c.evs) {
		return nil
	}
	return append([]devices.Event(nil), c.evs[n:]...)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.evs)
}

func (c *collector) count(k devices.EventKind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func (c *collector) of(k devices.EventKind) []devices.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []devices.Event
	for _, e := range c.evs {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

type harness struct {
	link *Link
	ev   *collector
	stop func() // stops the link (idempotent); also run at cleanup
}

// startLink runs a link against addr until the test ends (or stop).
func startLink(t testing.TB, cfg Config, run bool) *harness {
	t.Helper()
	return startLinkLog(t, cfg, run, testLogger(t))
}

// logBuffer keeps every log line for assertions on what was logged.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *logBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func startLinkLog(t testing.TB, cfg Config, run bool, log zerolog.Logger) *harness {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "sorter1"
	}
	l, err := New(cfg, log.With().Str("side", "link").Logger())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{link: l, ev: &collector{sig: make(chan struct{}, 1)}}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	if run {
		go func() { runDone <- l.Run(ctx) }()
	} else {
		runDone <- nil
	}
	drainDone := make(chan struct{})
	drainCtx, drainCancel := context.WithCancel(context.Background())
	go func() {
		defer close(drainDone)
		for {
			select {
			case e := <-l.Events():
				h.ev.add(e)
			case <-drainCtx.Done():
				for {
					select {
					case e := <-l.Events():
						h.ev.add(e)
					default:
						return
					}
				}
			}
		}
	}()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-runDone; err != nil {
				t.Errorf("link run: %v", err)
			}
			// The drainer collects what shutdown reported, then stops.
			drainCancel()
			<-drainDone
		})
	}
	t.Cleanup(h.stop)
	return h
}

func simConfig(cycle time.Duration, travel time.Duration) fieldbussim.Config {
	return fieldbussim.Config{
		Chutes:   256,
		PLCCycle: cycle,
		Conveyor: fieldbussim.ConveyorConfig{Rate: 0, CommissioningTravel: travel},
	}
}

func linkConfig(s *fieldbussim.Sim) Config {
	return Config{Addr: s.ModbusAddr(), Timeout: 500 * time.Millisecond}
}

func send(t testing.TB, l *Link, tid uint32, chute uint16, deadline time.Duration) {
	t.Helper()
	cmd := devices.Command{TID: tid, Chute: chute, Reason: 0}
	if deadline > 0 {
		cmd.Deadline = time.Now().Add(deadline)
	}
	if err := l.Send(context.Background(), cmd); err != nil {
		t.Fatalf("send tid %d: %v", tid, err)
	}
}

func kinds(evs []devices.Event, tid uint32) string {
	s := ""
	for _, e := range evs {
		if e.TID == tid {
			s += fmt.Sprintf("%s(seq %d) ", e.Kind, e.Seq)
		}
	}
	return s
}

func waitState(t testing.TB, l *Link, st devices.LinkState, d time.Duration) {
	t.Helper()
	waitFor(t, "link "+st.String(), d, func() bool { return l.Status().State == st })
}
