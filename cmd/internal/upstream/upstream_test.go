package upstream

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"sortgw/gateway/journal"
)

// TestPublishesJournalExactlyOnce: every outcome goes to the stream once,
// in journal order, with its message id and subject; decisions and the
// cursor stay local; a restart resumes from the cursor in the journal.
func TestPublishesJournalExactlyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j := startJournal(t, path)
	cfg := embeddedConfig(t, "s1")
	want := appendItems(t, j, "L1", 1, 300)
	r, stop := runner(t, cfg, j)
	<-r.Started()
	_, js := jsOn(t, r.ClientURL(), "")
	waitFor(t, 20*time.Second, "300 outcomes in the stream", func() bool { return streamMsgs(js, "SORTGW") == 300 })
	checkExactlyOnce(t, readAll(t, js, "SORTGW"), want)
	// The backlog empties once the publisher steps over its own cursor
	// record too.
	waitFor(t, 5*time.Second, "no backlog", func() bool { return r.Publisher().Stats().Backlog == 0 })
	if s := r.Publisher().Stats(); s.Published != 300 {
		t.Fatalf("stats %+v, want 300 published and no backlog", s)
	}
	stop()
	// The gateway stops the publisher before the journal drains: the
	// cursor written at the stop is committed before the next start.
	// This test keeps the journal open, so it flushes instead.
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := j.ByKind(journal.KindUpstreamCursor, 1, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("cursor records %v, %v: want one", recs, err)
	}

	// A restart with a new server on the same store: from the cursor on.
	want = append(want, appendItems(t, j, "L2", 1000, 200)...)
	r2, _ := runner(t, cfg, j)
	<-r2.Started()
	_, js2 := jsOn(t, r2.ClientURL(), "")
	waitFor(t, 20*time.Second, "500 outcomes in the stream", func() bool { return streamMsgs(js2, "SORTGW") == 500 })
	checkExactlyOnce(t, readAll(t, js2, "SORTGW"), want)
	if s := r2.Publisher().Stats(); s.Published != 200 {
		t.Fatalf("restart published %d, want the 200 new ones only", s.Published)
	}
}

// TestCursorRecordsAreFew: the cursor goes to the journal at most once
// per CursorEvery (and at the stop), however often the publisher catches
// up, so that it does not double the journal at a low rate.
func TestCursorRecordsAreFew(t *testing.T) {
	j := startJournal(t, filepath.Join(t.TempDir(), "j.db"))
	cfg := embeddedConfig(t, "s1")
	cfg.CursorEvery = time.Hour
	r, stop := runner(t, cfg, j)
	<-r.Started()
	start := time.Now()
	for i := range 20 { // 20 catch-ups
		appendItems(t, j, "L1", uint32(1+i*10), 10)
		waitFor(t, 20*time.Second, "the round published", func() bool { return r.Publisher().Stats().Published == uint64(10*(i+1)) })
	}
	stop()
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := j.ByKind(journal.KindUpstreamCursor, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The first round writes one (none was written before), the stop one.
	if len(recs) > 2 {
		t.Fatalf("%d cursor records for 20 rounds in %s, want at most 2 with cursor_every 1h", len(recs), time.Since(start))
	}
	if last := recs[len(recs)-1].Detail; last != fmt.Sprint(r.Publisher().Stats().Cursor) {
		t.Fatalf("last cursor record %q, publisher at %d", last, r.Publisher().Stats().Cursor)
	}
}
