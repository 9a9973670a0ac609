package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
)

// logBuf collects log lines for assertions (and passes them to the test's
// log).
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// diskFull makes commits fail as a full disk does while it is set: the
// journal's CommitFault seam, since a real full filesystem needs root (a
// tmpfs mount) or a process-wide RLIMIT_FSIZE.
type diskFull struct{ on atomic.Bool }

func (d *diskFull) fault() error {
	if d.on.Load() {
		return fmt.Errorf("write journal page: %w", syscall.ENOSPC)
	}
	return nil
}

// startFaulty runs a journal whose commits fail while the returned
// switch is on; cleanup turns it off first so the journal closes clean.
func startFaulty(t *testing.T, mod func(*Config)) (*Journal, *diskFull, *logBuf) {
	t.Helper()
	df := &diskFull{}
	cfg := testConfig(t)
	cfg.CommitFault = df.fault
	if mod != nil {
		mod(&cfg)
	}
	lb := &logBuf{}
	j, err := Open(cfg, zerolog.New(zerolog.MultiLevelWriter(lb, zerolog.NewTestWriter(t))))
	if err != nil {
		t.Fatal(err)
	}
	run(t, j)
	t.Cleanup(func() { df.on.Store(false) }) // runs before run's cleanup
	return j, df, lb
}

// TestHealthFailingCommits (issue 10 item 2): failing commits show as
// failing at once, make the journal unready after the grace, and
// recover when commits succeed again, with no record lost.
func TestHealthFailingCommits(t *testing.T) {
	j, df, lb := startFaulty(t, func(c *Config) { c.FailingGrace = 50 * time.Millisecond })
	if h := j.Health(); h.State != StateOK || h.Unready != "" || h.QueueCap != 65536 || h.Policy != KeepSorting {
		t.Fatalf("fresh journal: %+v", h)
	}
	df.on.Store(true)
	var seqs []uint64
	for i := range 10 {
		seq, err := j.Append(Record{Kind: KindDecision, TID: uint32(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	waitFor(t, func() bool { return j.Health().State == StateFailing })
	waitFor(t, func() bool { return j.Health().Unready != "" })
	h := j.Health()
	if !strings.Contains(h.LastError, "no space left on device") || h.CommitErrors == 0 || h.LastErrorAt.IsZero() ||
		!strings.Contains(h.Unready, "journal commits failing for") || h.NotKeptTotal() != 0 {
		t.Fatalf("failing: %+v", h)
	}
	if !lb.has("journal commit failed") {
		t.Fatal("no log line for the failing commit")
	}
	df.on.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := j.WaitDurable(ctx, seqs[len(seqs)-1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return j.Health().State == StateOK })
	h = j.Health()
	if h.Unready != "" || h.LastCommit.IsZero() || h.NotKeptTotal() != 0 || h.QueueLen != 0 {
		t.Fatalf("recovered: %+v", h)
	}
	if !lb.has("journal commits again") {
		t.Fatal("no log line for the recovery")
	}
}

// fillQueue appends until the queue refuses n records and returns how
// many it took. It first waits for a failed commit, so that the writer
// holds its batch and takes no more off the queue meanwhile.
func fillQueue(t *testing.T, j *Journal, refuse int) (taken int) {
	t.Helper()
	if _, err := j.Append(Record{Kind: KindDecision, TID: 1}); err != nil {
		t.Fatal(err)
	}
	taken = 1
	waitFor(t, func() bool { return j.Health().CommitErrors > 0 })
	for refused := 0; refused < refuse; {
		_, err := j.Append(Record{Kind: KindDecision, TID: uint32(taken + refused + 1)})
		switch {
		case errors.Is(err, ErrFull):
			refused++
		case err != nil:
			t.Fatal(err)
		default:
			taken++
		}
	}
	return taken
}

// TestQueueFullKeepSorting: with keep-sorting, a full queue refuses
// records, each counted as not kept, loud in the log, the journal full
// and unready; no reads are held back; once the disk is back every record
// the queue took is committed and the state returns to ok.
func TestQueueFullKeepSorting(t *testing.T) {
	j, df, lb := startFaulty(t, func(c *Config) { c.QueueSize, c.MaxBatch = 8, 4 })
	df.on.Store(true)
	taken := fillQueue(t, j, 25)
	h := j.Health()
	if h.State != StateFull || h.NotKept[NotKeptQueueFull] != 25 || h.NotKeptTotal() != 25 || h.QueueLen != 8 ||
		!strings.Contains(h.Unready, "journal queue full") || h.HoldingReads || j.StopReads() {
		t.Fatalf("full: %+v", h)
	}
	if s := j.Stats(); s.Full != 25 {
		t.Fatalf("stats full %d", s.Full)
	}
	waitFor(t, func() bool { return lb.has("ALARM journal queue full") })
	df.on.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return j.Health().State == StateOK })
	if s := j.Stats(); s.Committed != uint64(taken) {
		t.Fatalf("committed %d of %d taken", s.Committed, taken)
	}
	waitFor(t, func() bool { return lb.has("records are kept again") })
}

// TestQueueFullStopReads: with stop-reads, the journal asks the lines to
// hold reads back from the moment the queue is full until it has
// drained below the resume mark.
func TestQueueFullStopReads(t *testing.T) {
	j, df, _ := startFaulty(t, func(c *Config) { c.QueueSize, c.MaxBatch, c.WhenFull = 8, 4, StopReads })
	df.on.Store(true)
	if j.StopReads() {
		t.Fatal("holding reads before the queue is full")
	}
	fillQueue(t, j, 1)
	if h := j.Health(); !j.StopReads() || !h.HoldingReads || h.State != StateFull || h.Policy != StopReads {
		t.Fatalf("full, stop-reads: %+v", h)
	}
	df.on.Store(false)
	waitFor(t, func() bool { return !j.StopReads() })
	if h := j.Health(); h.State == StateFull || h.QueueLen > 4 {
		t.Fatalf("resumed: %+v", h)
	}
}

// TestQueueResumeMark: a queue that filled counts as full until it has
// drained to the resume mark, not merely below capacity.
func TestQueueResumeMark(t *testing.T) {
	q := newQueue(8, 1, 4)
	for range 8 {
		if _, _, _, err := q.push(&Record{Kind: KindDecision}, 0, 100); err != nil {
			t.Fatal(err)
		}
	}
	if q.holding.Load() {
		t.Fatal("holding at capacity before any refusal")
	}
	if _, _, _, err := q.push(&Record{Kind: KindDecision}, 0, 100); !errors.Is(err, ErrFull) {
		t.Fatalf("push into a full queue: %v", err)
	}
	for n := 7; n >= 4; n-- {
		q.take(nil, 1)
		if want := n > 4; q.holding.Load() != want {
			t.Fatalf("%d queued: holding %v, want %v", n, q.holding.Load(), want)
		}
	}
}

// TestCloseCountsUncommitted: records a failing disk kept from the file
// when the journal closes are counted as not kept.
func TestCloseCountsUncommitted(t *testing.T) {
	df := &diskFull{}
	cfg := testConfig(t)
	cfg.CommitFault = df.fault
	j := openJournal(t, cfg)
	df.on.Store(true)
	for i := range 3 {
		if _, err := j.Append(Record{Kind: KindDecision, TID: uint32(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("close: %v", err)
	}
	if _, err := j.Append(Record{Kind: KindDecision, TID: 9}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	h := j.Health()
	if h.NotKept[NotKeptAtClose] != 3 || h.NotKept[NotKeptClosed] != 1 {
		t.Fatalf("not kept %v", h.NotKept)
	}
}

// TestDiskLowWater: a real statfs of the journal's folder, against
// thresholds set around the free space it really has.
func TestDiskLowWater(t *testing.T) {
	free, _, err := statfs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	above := int64(free + 1<<30) // more than is free: must trip
	tests := []struct {
		name        string
		warn, crit  int64
		want        DiskState
		unready     bool
		warningText string
	}{
		{"plenty", -1, -1, DiskOK, false, ""},
		{"below warning", above, -1, DiskLow, false, "below the warning"},
		{"below critical", above, above, DiskCritical, true, "below the critical"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.DiskWarnBytes, cfg.DiskWarnPercent = tc.warn, -1
			cfg.DiskCriticalBytes, cfg.DiskCriticalPercent = tc.crit, -1
			lb := &logBuf{}
			j, err := Open(cfg, zerolog.New(zerolog.MultiLevelWriter(lb, zerolog.NewTestWriter(t))))
			if err != nil {
				t.Fatal(err)
			}
			run(t, j)
			h := j.Health()
			if h.Disk.State != tc.want || h.Disk.Free == 0 || h.Disk.Total < h.Disk.Free ||
				(h.Unready != "") != tc.unready || !strings.Contains(h.Disk.Warning, tc.warningText) {
				t.Fatalf("disk %+v, unready %q", h.Disk, h.Unready)
			}
			if tc.want != DiskOK {
				waitFor(t, func() bool { return lb.has("journal disk") })
			}
		})
	}
}

func TestWhenFullValidate(t *testing.T) {
	cfg := Config{Path: "x", WhenFull: "drop"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "keep-sorting or stop-reads") {
		t.Fatalf("validate: %v", err)
	}
}

// TestQueueMemoryPerRecord measures what a full queue of item records
// costs in memory (docs/operations.md, Journal health, quotes it:
// 232 bytes of ring per slot, about 270 with the codes), and bounds it.
func TestQueueMemoryPerRecord(t *testing.T) {
	const n = 65536
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	q := newQueue(n, 1, n/2)
	now := time.Now()
	for i := range n {
		// An outcome record as a line writes it: the codes are the
		// scanner frame's own strings, dest and route the plan's.
		codes := []string{string(append([]byte("]C142010115"), "00000000"...))}
		r := Record{Kind: KindOutcome, Time: now, Line: "L1", TID: uint32(i), Pass: 1, Scanner: "S1", Codes: codes,
			Dest: "10115", Route: "R1", Chute: 3, Outcome: OutcomeDiverted}
		if _, _, _, err := q.push(&r, 0, 256); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("ring slot %d B; %d queued records: %.1f MB of heap, %.0f B/record",
		unsafe.Sizeof(Record{})+8, n, float64(after.HeapAlloc-before.HeapAlloc)/1e6, per)
	if per > 400 {
		t.Fatalf("%.0f B per queued record: update the sizing in docs/operations.md", per)
	}
	runtime.KeepAlive(q)
}
