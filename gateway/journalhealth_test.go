package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// countingJournal is the real journal, counting the records offered to
// it, so a test can check that every record is either kept or counted
// as not kept.
type countingJournal struct {
	*journal.Journal
	offered atomic.Uint64
}

func (c *countingJournal) Append(r journal.Record) (uint64, error) {
	c.offered.Add(1)
	return c.Journal.Append(r)
}

// jhEnv is a gateway with one line on a fake PLC link and a real journal
// in t.TempDir whose commits fail, as on a full disk, while full is set
// (journal.Config.CommitFault: a real full filesystem needs root).
type jhEnv struct {
	t    *testing.T
	gw   *Gateway
	l    *Line
	link *fakeLink
	j    *countingJournal
	full atomic.Bool
}

func startJournalGateway(t *testing.T, mod func(*journal.Config)) *jhEnv {
	t.Helper()
	e := &jhEnv{t: t, link: newFakeLink()}
	log := zerolog.New(zerolog.NewTestWriter(t))
	cfg := journal.Config{Path: filepath.Join(t.TempDir(), "j.db"), FailingGrace: 50 * time.Millisecond,
		CommitFault: func() error {
			if e.full.Load() {
				return fmt.Errorf("write: %w", syscall.ENOSPC)
			}
			return nil
		}}
	if mod != nil {
		mod(&cfg)
	}
	j, err := journal.Open(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	e.j = &countingJournal{Journal: j}
	m := NewMetrics()
	e.l, err = NewLine(LineConfig{Name: "L1", Chutes: 16, StatusEvery: 5 * time.Millisecond}, e.link, nil, e.j, m, log)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(testPlan), 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.InstallPlan(p, nil); err != nil {
		t.Fatal(err)
	}
	e.gw, err = New(Config{Listen: "127.0.0.1:0", DrainGrace: time.Millisecond, Journal: e.j}, []*Line{e.l}, j, m, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.gw.Run(ctx) }()
	t.Cleanup(func() {
		e.full.Store(false) // let the journal commit what it holds
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	<-e.gw.Started()
	waitFor(t, "line running", e.l.running.Load)
	return e
}

func (e *jhEnv) get(path string) (int, string) {
	e.t.Helper()
	res, err := http.Get("http://" + e.gw.Addr() + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (e *jhEnv) status() Snapshot {
	e.t.Helper()
	_, body := e.get("/status.json")
	var s Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		e.t.Fatal(err)
	}
	if s.Journal == nil {
		e.t.Fatal("status.json has no journal section")
	}
	return s
}

func (e *jhEnv) metric(name string) float64 {
	e.t.Helper()
	mfs, err := e.gw.met.Registry.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	e.t.Fatalf("no metric %s", name)
	return 0
}

func (e *jhEnv) notKept(reason string) float64 {
	e.t.Helper()
	mfs, err := e.gw.met.Registry.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sortgw_journal_records_not_kept_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	e.t.Fatalf("no not-kept metric for %s", reason)
	return 0
}

// cmd is the next command the line sent to the PLC.
func (e *jhEnv) cmd() devices.Command {
	e.t.Helper()
	select {
	case c := <-e.link.cmds:
		return c
	case <-time.After(10 * time.Second):
		e.t.Fatal("no command sent")
	}
	return devices.Command{}
}

// read sends one read of tid with a known destination.
func (e *jhEnv) read(tid uint32) {
	e.l.Sink(devices.Read{Scanner: "S1", TID: tid, Codes: []string{zip420("10115")}, At: time.Now()})
}

// TestJournalFailingIsVisible (issue 10 item 2): commits failing as on a
// full disk show in the metrics, on the page and in /status.json, make
// /readyz 503 with the reason after the grace, and all of it clears when
// commits succeed again.
func TestJournalFailingIsVisible(t *testing.T) {
	e := startJournalGateway(t, nil)
	waitFor(t, "ready", e.gw.Ready)
	if v := e.metric("sortgw_journal_healthy"); v != 1 {
		t.Fatalf("healthy %v before the fault", v)
	}
	probs, err := testutil.GatherAndLint(e.gw.met.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	e.full.Store(true)
	e.read(1) // a record to commit
	waitFor(t, "readyz 503 for the journal", func() bool {
		code, body := e.get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "journal commits failing for") &&
			strings.Contains(body, "no space left on device")
	})
	if e.gw.Ready() {
		t.Fatal("Ready() with the journal failing")
	}
	s := e.status()
	if j := s.Journal; j.State != "failing" || j.Ready || !strings.Contains(j.LastError, "no space left") || j.CommitErrors == 0 ||
		!strings.Contains(j.Warning, "commits failing") || s.Ready {
		t.Fatalf("status.json journal %+v ready %v", j, s.Ready)
	}
	if e.metric("sortgw_journal_healthy") != 0 || e.metric("sortgw_journal_state") != 1 || e.metric("sortgw_journal_commit_errors_total") == 0 {
		t.Fatal("metrics do not show the failing journal")
	}
	if _, page := e.get("/"); !strings.Contains(page, `data-j="state">failing</span>`) || !strings.Contains(page, "no space left on device") {
		t.Fatal("the page does not show the failing journal")
	}

	e.full.Store(false)
	waitFor(t, "ready again", func() bool { code, _ := e.get("/readyz"); return code == http.StatusOK })
	s = e.status()
	if j := s.Journal; j.State != "ok" || !j.Ready || j.LastCommit.IsZero() || j.NotKeptTotal != 0 {
		t.Fatalf("recovered journal %+v", j)
	}
	if e.metric("sortgw_journal_healthy") != 1 || e.metric("sortgw_journal_last_commit_timestamp_seconds") == 0 {
		t.Fatal("metrics do not show the recovery")
	}
}

// TestJournalFullKeepSorting: with when_full keep-sorting and the queue
// full, the line sorts on: every item gets its command and its outcome
// in the line's counters, and every record the journal refused is
// counted as not kept (metric, snapshot), none silently lost.
func TestJournalFullKeepSorting(t *testing.T) {
	e := startJournalGateway(t, func(c *journal.Config) { c.QueueSize, c.MaxBatch = 16, 4 })
	waitFor(t, "ready", e.gw.Ready)
	e.full.Store(true)
	const n = 40
	for tid := uint32(1); tid <= n; tid++ {
		e.read(tid)
		c := e.cmd()
		if c.TID != tid || c.Chute == 0 {
			t.Fatalf("command %+v for tid %d", c, tid)
		}
		e.link.events <- devices.Event{Kind: devices.EventConfirmed, TID: tid, Chute: c.Chute, Result: ResultDiverted, At: time.Now()}
	}
	waitFor(t, "every outcome", func() bool { return e.l.Snapshot().Totals.Outcomes == n })
	waitFor(t, "journal full", func() bool { return e.j.Health().State == journal.StateFull })
	tot := e.l.Snapshot().Totals
	h := e.j.Health()
	refused := h.NotKept[journal.NotKeptQueueFull]
	if tot.Sorted != n || tot.NotSent != 0 || tot.JournalHeld != 0 {
		t.Fatalf("totals %+v", tot)
	}
	if refused == 0 || refused != tot.JournalErrs {
		t.Fatalf("journal counted %d not kept, the line %d refused", refused, tot.JournalErrs)
	}
	if kept := e.j.Stats().Appended; kept+refused != e.j.offered.Load() {
		t.Fatalf("kept %d + not kept %d != offered %d", kept, refused, e.j.offered.Load())
	}
	if got := e.notKept("queue-full"); got != float64(refused) {
		t.Fatalf("metric not kept %v, want %d", got, refused)
	}
	if j := e.status().Journal; j.State != "full" || j.NotKept["queue-full"] != refused || j.NotKeptTotal != refused || j.Capacity != 16 || j.Queued <= 8 {
		t.Fatalf("status.json journal %+v", j)
	}
	if code, body := e.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "journal queue full") {
		t.Fatalf("readyz %d %q", code, body)
	}
	if h.HoldingReads || e.l.Snapshot().HoldingReads {
		t.Fatal("keep-sorting holds reads back")
	}
}

// TestJournalFullStopReads: with when_full stop-reads, once the queue is
// full the line commands no new reads (they end not-sent, the PLC
// recirculates them; HOST_STATE degraded) and their outcome records,
// refused too, are counted; when the queue drains below the resume mark
// reads are commanded again.
func TestJournalFullStopReads(t *testing.T) {
	e := startJournalGateway(t, func(c *journal.Config) { c.QueueSize, c.MaxBatch, c.WhenFull = 16, 4, journal.StopReads })
	waitFor(t, "ready", e.gw.Ready)
	e.full.Store(true)
	tid := uint32(0)
	for !e.j.StopReads() {
		tid++
		e.read(tid)
		c := e.cmd()
		e.link.events <- devices.Event{Kind: devices.EventConfirmed, TID: c.TID, Chute: c.Chute, Result: ResultDiverted, At: time.Now()}
		waitFor(t, "outcome", func() bool { return e.l.Snapshot().Totals.Outcomes == uint64(tid) })
	}
	waitFor(t, "host state degraded", func() bool {
		e.link.mu.Lock()
		defer e.link.mu.Unlock()
		return e.link.host == devices.HostDegraded
	})
	refusedBefore := e.j.Health().NotKept[journal.NotKeptQueueFull]
	const held = 5
	for i := range held {
		e.read(1000 + uint32(i))
	}
	waitFor(t, "held reads end not-sent", func() bool { return e.l.Snapshot().Totals.JournalHeld == held })
	select {
	case c := <-e.link.cmds:
		t.Fatalf("command %+v sent while the journal is full", c)
	default:
	}
	tot := e.l.Snapshot().Totals
	if tot.NotSent != held || tot.Outcomes != uint64(tid)+held {
		t.Fatalf("totals %+v", tot)
	}
	if got := e.j.Health().NotKept[journal.NotKeptQueueFull]; got != refusedBefore+held {
		t.Fatalf("not kept %d, want %d + %d held outcomes", got, refusedBefore, held)
	}
	if code, body := e.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "line L1: new reads not commanded") {
		t.Fatalf("readyz %d %q", code, body)
	}
	if !e.status().Journal.HoldingReads || e.metric("sortgw_journal_holding_reads") != 1 {
		t.Fatal("holding reads not shown")
	}

	e.full.Store(false)
	waitFor(t, "reads resume", func() bool { return !e.j.StopReads() })
	waitFor(t, "host state ready", func() bool {
		e.link.mu.Lock()
		defer e.link.mu.Unlock()
		return e.link.host == devices.HostReady
	})
	e.read(2000)
	if c := e.cmd(); c.TID != 2000 {
		t.Fatalf("command %+v after the journal drained", c)
	}
}

// TestJournalDiskLowWater: free space below the warning threshold (set
// above what the real filesystem of t.TempDir has free) is a warning on
// the page and in the metrics, not a readiness failure; below the
// critical threshold it is.
func TestJournalDiskLowWater(t *testing.T) {
	huge := int64(1) << 62 // more than any disk has free
	t.Run("warning", func(t *testing.T) {
		e := startJournalGateway(t, func(c *journal.Config) { c.DiskWarnBytes, c.DiskCriticalBytes, c.DiskCriticalPercent = huge, -1, -1 })
		waitFor(t, "ready", e.gw.Ready)
		j := e.status().Journal
		if j.Disk.State != "low" || j.Disk.Free == 0 || !strings.Contains(j.Warning, "journal disk low") || !j.Ready {
			t.Fatalf("journal %+v", j)
		}
		if e.metric("sortgw_journal_disk_state") != 2 || e.metric("sortgw_journal_disk_free_bytes") == 0 {
			t.Fatal("metrics do not show the low disk")
		}
		if _, page := e.get("/"); !strings.Contains(page, "disk low") {
			t.Fatal("the page does not warn")
		}
	})
	t.Run("critical", func(t *testing.T) {
		e := startJournalGateway(t, func(c *journal.Config) { c.DiskWarnBytes, c.DiskCriticalBytes = huge, huge })
		waitFor(t, "readyz 503 for the disk", func() bool {
			code, body := e.get("/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(body, "below the critical")
		})
		if e.metric("sortgw_journal_disk_state") != 3 || e.gw.Ready() {
			t.Fatal("critical disk not shown")
		}
	})
	t.Run("plenty", func(t *testing.T) {
		e := startJournalGateway(t, func(c *journal.Config) {
			c.DiskWarnBytes, c.DiskWarnPercent, c.DiskCriticalBytes, c.DiskCriticalPercent = -1, -1, -1, -1
		})
		if j := e.status().Journal; j.Disk.State != "ok" || j.Warning != "" {
			t.Fatalf("journal %+v", j)
		}
	})
}
