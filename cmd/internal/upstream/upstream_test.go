package upstream

import (
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
	if s := r.Publisher().Stats(); s.Published != 300 || s.Backlog != 0 {
		t.Fatalf("stats %+v, want 300 published and no backlog", s)
	}
	stop()
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
