package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// testWait bounds every wait in these tests; reaching it is a failure,
// not a timing assertion.
const testWait = 20 * time.Second

func testConfig(t testing.TB) Config {
	return Config{Path: filepath.Join(t.TempDir(), "journal.db")}
}

// bulkConfig is testConfig for journals of many records written without
// waiting: large batches and queue, no retention.
func bulkConfig(t testing.TB) Config {
	cfg := testConfig(t)
	cfg.MaxBatch, cfg.QueueSize = 4096, 1<<17
	cfg.MaxAge, cfg.MaxBytes = -1, -1
	return cfg
}

func openJournal(t testing.TB, cfg Config) *Journal {
	t.Helper()
	j, err := Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return j
}

// startJournal opens the journal and runs its writer until the test ends.
func startJournal(t testing.TB, cfg Config) *Journal {
	t.Helper()
	j := openJournal(t, cfg)
	run(t, j)
	return j
}

// run starts j.Run; cleanup stops it, checks its error and closes j.
func run(t testing.TB, j *Journal) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if err := j.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

func flush(t testing.TB, j *Journal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := j.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func mustAppend(t testing.TB, j *Journal, r Record) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	seq, err := j.AppendWait(ctx, r)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return seq
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// itemRecords is the story of one diverted item pass that was read five
// more times while its command was unconfirmed: seven records, the first
// opens the pass, the last closes it, only the first carries the code.
func itemRecords(line string, tid uint32, pass uint16, code string, at time.Time) []Record {
	rs := []Record{{Time: at, Line: line, Kind: KindDecision, TID: tid, Pass: pass, Scanner: "s1", Codes: []string{code},
		Dest: "90210", Chute: 12, Route: "R1", PlanVersion: 7}}
	for i := range 5 {
		rs = append(rs, Record{Time: at.Add(time.Duration(i+1) * time.Millisecond), Line: line, Kind: KindDuplicate,
			TID: tid, Pass: pass, Scanner: "s2", Outcome: OutcomeDuplicate})
	}
	return append(rs, Record{Time: at.Add(time.Second), Line: line, Kind: KindOutcome, TID: tid, Pass: pass, Chute: 12,
		Result: 1, Outcome: OutcomeDiverted})
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no path", Config{}, "path is required"},
		{"negative queue", Config{Path: "x", QueueSize: -1}, "queue size -1"},
		{"negative batch", Config{Path: "x", MaxBatch: -1}, "max batch -1"},
		{"negative flush", Config{Path: "x", FlushInterval: -time.Second}, "flush interval -1s"},
		{"negative prune batch", Config{Path: "x", PruneBatch: -3}, "prune batch -3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	c := Config{Path: "x"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.QueueSize != 65536 || c.MaxBatch != 256 || c.FlushInterval != 5*time.Millisecond ||
		c.MaxAge != 30*24*time.Hour || c.MaxBytes != 1<<30 || c.Now == nil {
		t.Fatalf("defaults not filled: %+v", c)
	}
}

func TestAppendRoundTripEveryKind(t *testing.T) {
	j := startJournal(t, testConfig(t))
	var want []Record
	for k := KindDecision; k <= kindMax; k++ {
		if k.Retired() {
			continue
		}
		r := fullRecord(k, OutcomeNone)
		if k == KindOutcome {
			r.Outcome = OutcomeRefused
		}
		r.Seq = 0
		r.Time = t0.Add(time.Duration(k) * time.Second)
		seq := mustAppend(t, j, r)
		r.Seq = seq
		want = append(want, r)
	}
	flush(t, j)
	for _, w := range want {
		got, err := j.Get(w.Seq)
		if err != nil {
			t.Fatalf("get %d: %v", w.Seq, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("seq %d:\n got %+v\nwant %+v", w.Seq, got, w)
		}
	}
	if _, err := j.Get(999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get 999: %v", err)
	}
}

func TestAppendSetsSeqAndTime(t *testing.T) {
	cfg := testConfig(t)
	cfg.Now = func() time.Time { return t0 }
	j := startJournal(t, cfg)
	s1 := mustAppend(t, j, Record{Kind: KindStart, Seq: 77, Detail: "start"})
	s2, err := j.Append(Record{Kind: KindStart, Detail: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if s1 != 1 || s2 != 2 {
		t.Fatalf("seqs %d %d, want 1 2", s1, s2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	// No Flush: the writer commits on its own within FlushInterval.
	if err := j.WaitDurable(ctx, s2); err != nil {
		t.Fatal(err)
	}
	r, err := j.Get(1)
	if err != nil || r.Seq != 1 || !r.Time.Equal(t0) || r.Detail != "start" {
		t.Fatalf("record 1: %+v %v", r, err)
	}
}

// TestGroupCommit: with a flush interval far away, records commit only in
// full batches, so many appends take few transactions.
func TestGroupCommit(t *testing.T) {
	cfg := testConfig(t)
	cfg.FlushInterval = time.Hour
	cfg.MaxBatch = 256
	j := startJournal(t, cfg)
	const n = 10000
	for i := range n {
		mustAppend(t, j, Record{Kind: KindDecision, Line: "L", TID: uint32(i + 1), Pass: 1, Codes: []string{fmt.Sprint("C", i)}})
	}
	flush(t, j)
	s := j.Stats()
	if s.Appended != n || s.Committed != n || s.DurableSeq != n || s.LastSeq != n {
		t.Fatalf("stats %+v", s)
	}
	// 39 full batches of 256 plus the 16 that Flush pushed out.
	if s.Batches != 40 {
		t.Fatalf("%d records took %d transactions, want 40", n, s.Batches)
	}
	if s.Commit.Count != s.Batches || s.Open != n {
		t.Fatalf("commit histogram %d, open %d", s.Commit.Count, s.Open)
	}
}

func TestAppendFullAndBackPressure(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueSize = 4
	j := openJournal(t, cfg)
	for i := range 4 {
		if _, err := j.Append(Record{Kind: KindStart, Count: uint32(i)}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if _, err := j.Append(Record{Kind: KindStart}); !errors.Is(err, ErrFull) {
		t.Fatalf("append to full queue: %v", err)
	}
	if s := j.Stats(); s.Full != 1 || s.Queued != 4 {
		t.Fatalf("stats %+v", s)
	}
	// AppendWait gives up with its context...
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := j.AppendWait(ctx, Record{Kind: KindStart}); !errors.Is(err, context.Canceled) {
		t.Fatalf("append wait, cancelled: %v", err)
	}
	// ...and goes through once the writer makes room.
	got := make(chan uint64, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		seq, err := j.AppendWait(ctx, Record{Kind: KindStart, Detail: "waited"})
		if err != nil {
			t.Errorf("append wait: %v", err)
		}
		got <- seq
	}()
	run(t, j)
	if seq := <-got; seq != 5 {
		t.Fatalf("waited append got seq %d, want 5", seq)
	}
	flush(t, j)
	r, err := j.Get(5)
	if err != nil || r.Detail != "waited" {
		t.Fatalf("record 5: %+v %v", r, err)
	}
}

func TestCloseLifecycle(t *testing.T) {
	cfg := testConfig(t)
	j := openJournal(t, cfg)
	// Records queued without Run are committed by Close.
	for i := range 10 {
		if _, err := j.Append(Record{Kind: KindStart, Count: uint32(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	waitFor(t, func() bool { return j.Stats().Committed == 10 })
	if err := j.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	if err := j.Close(); err != nil { // stops Run
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := j.Append(Record{Kind: KindStart}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := j.WaitDurable(ctx, 11); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after close: %v", err)
	}
	if err := j.WaitDurable(ctx, 10); err != nil {
		t.Fatalf("wait for a durable record after close: %v", err)
	}
	if err := j.Run(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("run after close: %v", err)
	}
	if s := j.Stats(); s.Committed != 10 || s.FileBytes != 0 {
		t.Fatalf("stats after close: %+v", s)
	}
	if _, err := j.Recent(1); err == nil {
		t.Fatal("query after close succeeded")
	}

	j2 := openJournal(t, cfg)
	defer j2.Close()
	if _, err := j2.Append(Record{Kind: KindStart}); err != nil {
		t.Fatal(err)
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	j3 := openJournal(t, cfg)
	defer j3.Close()
	recs, err := j3.Recent(100)
	if err != nil || len(recs) != 11 || recs[0].Seq != 11 || recs[10].Count != 1 {
		t.Fatalf("after reopen: %d records, %v", len(recs), err)
	}
}

func TestOpenLocked(t *testing.T) {
	cfg := testConfig(t)
	j := openJournal(t, cfg)
	defer j.Close()
	cfg.LockTimeout = 50 * time.Millisecond
	if _, err := Open(cfg, zerolog.Nop()); err == nil || !errors.Is(err, bolt.ErrTimeout) {
		t.Fatalf("second open of a locked file: %v", err)
	}
}

func TestOpenItemsAndUnmatched(t *testing.T) {
	j := startJournal(t, testConfig(t))
	rs := itemRecords("L", 10, 1, "A", t0)
	for _, r := range rs[:3] { // decision, duplicates
		mustAppend(t, j, r)
	}
	mustAppend(t, j, Record{Line: "L", Kind: KindDuplicate, TID: 10, Pass: 1, Codes: []string{"A"}, Outcome: OutcomeDuplicate})
	mustAppend(t, j, Record{Time: t0, Line: "M", Kind: KindDecision, TID: 10, Pass: 1}) // same TID, other line
	flush(t, j)
	items, err := j.OpenItems()
	if err != nil {
		t.Fatal(err)
	}
	want := []OpenItem{
		{Line: "L", TID: 10, Pass: 1, Since: t0, LastSeq: 1},
		{Line: "M", TID: 10, Pass: 1, Since: t0, LastSeq: 5},
	}
	if !reflect.DeepEqual(items, want) || j.Stats().Open != 2 {
		t.Fatalf("open items %+v (stats %d), want %+v", items, j.Stats().Open, want)
	}
	for _, r := range rs[3:] {
		mustAppend(t, j, r)
	}
	mustAppend(t, j, rs[6]) // a second outcome closes nothing
	// An outcome for a read that never became a pass is not unmatched.
	mustAppend(t, j, Record{Line: "L", Kind: KindOutcome, TID: 11, Outcome: OutcomeNotSent})
	flush(t, j)
	s := j.Stats()
	if s.Open != 1 || s.Unmatched != 1 {
		t.Fatalf("open %d unmatched %d, want 1 1", s.Open, s.Unmatched)
	}
}

// TestReopenKeepsEverything: records, indexes and seq numbering survive a
// close; open items become lost-at-restart outcomes exactly once.
func TestReopenKeepsEverything(t *testing.T) {
	cfg := testConfig(t)
	j := openJournal(t, cfg)
	for i := range 20 {
		rs := itemRecords("L", uint32(100+i), 1, fmt.Sprint("CODE", i), t0.Add(time.Duration(i)*time.Second))
		if i%5 == 0 {
			rs = rs[:3] // still open: no outcome
		}
		for _, r := range rs {
			mustAppend(t, j, r)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	last := uint64(16*7 + 4*3)

	restart := t0.Add(time.Hour)
	cfg.Now = func() time.Time { return restart }
	j = startJournal(t, cfg)
	if n := j.LostAtRestart(); n != 4 {
		t.Fatalf("lost at restart %d, want 4", n)
	}
	if s := j.Stats(); s.DurableSeq != last+4 || s.LastSeq != last+4 || s.Open != 0 || s.LostAtRestart != 4 {
		t.Fatalf("stats after reopen %+v", s)
	}
	recs, err := j.ByTID(105)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("tid 105: %d records", len(recs))
	}
	lost := recs[3]
	if lost.Kind != KindOutcome || lost.Outcome != OutcomeLostAtRestart || lost.Line != "L" || lost.Pass != 1 ||
		lost.Chute != 12 || lost.PlanVersion != 7 || !lost.Time.Equal(restart) || lost.Seq <= last ||
		!strings.Contains(lost.Detail, "open since 2026-11-25T12:00:05Z") {
		t.Fatalf("lost-at-restart record %+v", lost)
	}
	if items, _ := j.OpenItems(); len(items) != 0 {
		t.Fatalf("items still open: %+v", items)
	}
	if seq := mustAppend(t, j, Record{Kind: KindStart}); seq != last+5 {
		t.Fatalf("next seq %d, want %d", seq, last+5)
	}
	recs, err = j.ByBarcode("CODE7")
	if err != nil || len(recs) != 1 || recs[0].TID != 107 {
		t.Fatalf("by barcode after reopen: %+v %v", recs, err)
	}
}

func TestReopenAfterRecoveryFindsNothingOpen(t *testing.T) {
	cfg := testConfig(t)
	j := openJournal(t, cfg)
	mustAppend(t, j, Record{Line: "L", Kind: KindDecision, TID: 1, Pass: 1})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	for want := 1; want >= 0; want-- {
		j := openJournal(t, cfg)
		if n := j.LostAtRestart(); n != want {
			t.Fatalf("lost at restart %d, want %d", n, want)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConcurrentAppendWaitDurable(t *testing.T) {
	j := startJournal(t, testConfig(t))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			for i := range 50 {
				seq, err := j.AppendWait(ctx, Record{Kind: KindDecision, TID: uint32(w*1000 + i + 1), Pass: 1})
				if err == nil {
					err = j.WaitDurable(ctx, seq)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s := j.Stats()
	if s.Committed != 400 || s.DurableSeq != 400 {
		t.Fatalf("stats %+v", s)
	}
}

// waitFor polls cond until it holds or testWait passes.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		<-tick.C
	}
}

// TestStopUnderLoad: Run returns promptly when stopped while producers
// keep the queue full, and Close commits every record that was accepted.
func TestStopUnderLoad(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueSize = 512
	cfg.MaxBatch = 64
	j := openJournal(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	// Producers block on the full queue (AppendWait) rather than spin.
	pctx, stopProducers := context.WithCancel(context.Background())
	defer stopProducers()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				_, err := j.AppendWait(pctx, Record{Kind: KindDecision, TID: uint32(w*1_000_000 + i + 1), Pass: 1})
				if errors.Is(err, context.Canceled) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	waitFor(t, func() bool { return j.Stats().Batches >= 20 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	stopProducers()
	wg.Wait()
	appended := j.Stats().Appended
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, cfg)
	defer j.Close()
	// Every accepted read is on disk, and each opened an item that the
	// reopen closed with its own lost-at-restart record.
	n := uint64(j.LostAtRestart())
	if s := j.Stats(); n != appended || s.DurableSeq != appended+n {
		t.Fatalf("%d reads accepted; after reopen %d closed at restart, last seq %d", appended, n, s.DurableSeq)
	}
}

// TestCommitFailureKeepsRecords: a commit that fails (here bbolt's size
// cap, as a full disk would) keeps its records; Append reports ErrFull
// instead of losing any, a stopped Run reports the failure, and the next
// Run commits everything once the disk has room again.
func TestCommitFailureKeepsRecords(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueSize = 32
	cfg.MaxBatch = 8
	j := openJournal(t, cfg)
	hwm, _, err := j.sizes()
	if err != nil {
		t.Fatal(err)
	}
	j.db.MaxSize = int(hwm) // no goroutine uses db yet: no race
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	big := strings.Repeat("x", 8192)
	var seqs []uint64
	for {
		seq, err := j.Append(Record{Kind: KindStart, Detail: big})
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	waitFor(t, func() bool { return j.Stats().CommitErrors >= 2 }) // failed, then failed its retry
	s := j.Stats()
	if s.Full != 1 || s.Committed >= uint64(len(seqs)) || !strings.Contains(s.LastError, "database reached maximum size") {
		t.Fatalf("stats while failing: %+v", s)
	}
	cancel()
	if err := <-done; !errors.Is(err, bberrors.ErrMaxSizeReached) {
		t.Fatalf("run stopped while failing: %v", err)
	}
	j.db.MaxSize = 0 // Run has returned: no race
	run(t, j)
	flush(t, j)
	for _, seq := range seqs {
		if _, err := j.Get(seq); err != nil {
			t.Fatalf("record %d: %v", seq, err)
		}
	}
}

func TestAppendWaitWokenByClose(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueSize = 1
	j := openJournal(t, cfg)
	if _, err := j.Append(Record{Kind: KindStart}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := j.AppendWait(context.Background(), Record{Kind: KindStart})
		got <- err
	}()
	waitFor(t, func() bool { // the waiter is parked on the full queue
		j.q.mu.Lock()
		defer j.q.mu.Unlock()
		return j.q.space != nil
	})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("append wait across close: %v", err)
	}
}

// TestRetiredKinds: a kind nothing writes any more is refused by Append
// and AppendWait, but an old journal's records of it still read back,
// under their old name.
func TestRetiredKinds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	// An "old journal": records of kinds since retired, written the way an
	// earlier build did (straight through writeBatch).
	j := openJournal(t, Config{Path: path})
	old := []Record{
		{Seq: 1, Time: t0, Line: "L", Kind: kindRetiredRead, TID: 9, Pass: 1, Codes: []string{"A"}},
		{Seq: 2, Time: t0, Line: "L", Kind: kindRetiredCommand, TID: 9, Pass: 1, Chute: 3},
		{Seq: 3, Time: t0, Kind: kindRetiredNote, Detail: "gateway started"},
	}
	if err := j.db.Update(func(tx *bolt.Tx) error {
		_, _, err := writeBatch(tx, old, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, Config{Path: path})
	defer j.Close()
	if j.LostAtRestart() != 1 {
		t.Fatalf("lost at restart %d, want the pass the old records opened", j.LostAtRestart())
	}
	for k := KindUnknown; k <= kindMax; k++ {
		_, err := j.Append(Record{Kind: k})
		if k.Retired() != errors.Is(err, ErrRetiredKind) {
			t.Errorf("Append(%s): %v", k, err)
		}
		if !k.Retired() {
			continue
		}
		if _, err := j.AppendWait(context.Background(), Record{Kind: k}); !errors.Is(err, ErrRetiredKind) {
			t.Errorf("AppendWait(%s): %v", k, err)
		}
	}
	// The retired records decode with their names, and the pass they
	// opened was closed lost-at-restart like any other.
	for i, want := range []string{"read", "command", "note"} {
		r, err := j.Get(uint64(i + 1))
		if err != nil || r.Kind.String() != want || !r.Kind.Retired() {
			t.Fatalf("record %d: %v %v, want a retired %s", i+1, r.Kind, err, want)
		}
		b, _ := json.Marshal(r)
		var back Record
		if err := json.Unmarshal(b, &back); err != nil || back.Kind != r.Kind {
			t.Fatalf("record %d through JSON: %v %v", i+1, back.Kind, err)
		}
	}
}

// TestCommitSyncSettings: the journal's promise that a record whose
// WaitDurable returned is on disk rests on bbolt syncing every commit. The
// settings are asserted here (with NoSync set every other test passes,
// kill -9 included: the page cache survives a process crash), and so is
// the order: the records of a batch are published durable only after
// bbolt's commit handler ran, which is after bbolt wrote and fdatasync'ed
// the transaction.
func TestCommitSyncSettings(t *testing.T) {
	j := openJournal(t, testConfig(t))
	if j.db.NoSync || j.db.NoGrowSync || j.db.NoFreelistSync {
		t.Fatalf("bbolt NoSync %v NoGrowSync %v NoFreelistSync %v: want every commit synced",
			j.db.NoSync, j.db.NoGrowSync, j.db.NoFreelistSync)
	}
	type commit struct{ last, durableThen uint64 }
	var mu sync.Mutex
	var commits []commit
	j.onCommit = func(last uint64) {
		mu.Lock()
		commits = append(commits, commit{last, j.durable.Load()})
		mu.Unlock()
	}
	run(t, j)
	var last uint64
	for i := range 50 {
		last = mustAppend(t, j, Record{Kind: KindStart, Count: uint32(i)})
	}
	flush(t, j)
	if got := j.Stats().DurableSeq; got < last {
		t.Fatalf("durable seq %d after Flush, want >= %d", got, last)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(commits) == 0 || commits[len(commits)-1].last != last {
		t.Fatalf("commits %+v: the last one should end at seq %d", commits, last)
	}
	for _, c := range commits {
		if c.durableThen >= c.last {
			t.Fatalf("records up to %d were published durable (%d) before their transaction had committed", c.last, c.durableThen)
		}
	}
}
