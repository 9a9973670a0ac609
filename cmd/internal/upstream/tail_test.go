package upstream

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	gwup "sortgw/gateway/upstream"
)

// TestTailPrintsRecords: `sortgw tail` prints each published record as
// one JSON line, in order.
func TestTailPrintsRecords(t *testing.T) {
	j := startJournal(t, filepath.Join(t.TempDir(), "j.db"))
	r, _ := runner(t, embeddedConfig(t, "s1"), j)
	want := appendItems(t, j, "L1", 1, 5)
	<-r.Started()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Tail(ctx, TailConfig{URL: r.ClientURL(), All: true}, pw); pw.Close() }()
	sc := bufio.NewScanner(pr)
	deadline := time.AfterFunc(20*time.Second, func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	defer deadline.Stop()
	for i := range want {
		if !sc.Scan() {
			t.Fatalf("line %d: %v", i, sc.Err())
		}
		e, err := gwup.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if e.Record.Seq != want[i] || e.Site != "s1" {
			t.Fatalf("line %d is %s/%d, want s1/%d", i, e.Site, e.Record.Seq, want[i])
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
