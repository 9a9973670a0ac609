package upstream

import (
	"context"
	"testing"
	"time"

	"sortgw/gateway/journal"
	gwup "sortgw/gateway/upstream"
)

// TestRepublishPastDedupWindow: a record re-published after the stream's
// de-duplication window (a hub down longer than the window, a journal
// restored from backup) is stored twice; a consumer that keeps the last
// seq per site (gwup.Deduper, docs/upstream.md) still sees it once.
func TestRepublishPastDedupWindow(t *testing.T) {
	hub := startHub(t, Embedded{})
	nc, js := jsOn(t, hub.ClientURL(), "")
	cfg := Config{Config: gwup.Config{Site: "s1"}, NATS: NATS{URL: hub.ClientURL(),
		Stream: Stream{Duplicates: 100 * time.Millisecond}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sink, err := NewSink(nc, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var msgs []gwup.Message
	for seq := uint64(1); seq <= 5; seq++ {
		m, err := gwup.Encode("s1", &journal.Record{Seq: seq, Kind: journal.KindOutcome, Line: "L1", TID: uint32(seq)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if n, err := sink.Publish(ctx, msgs); err != nil || n != 5 {
		t.Fatalf("publish: %d, %v", n, err)
	}
	// Within the window a re-publish is absorbed.
	if n, err := sink.Publish(ctx, msgs[:2]); err != nil || n != 2 {
		t.Fatalf("re-publish: %d, %v", n, err)
	}
	if got := streamMsgs(js, "SORTGW"); got != 5 {
		t.Fatalf("stream holds %d within the window, want 5", got)
	}
	// Past it (re-publish until the server stores it: no sleep), it is not.
	waitFor(t, 10*time.Second, "a re-publish past the window to be stored", func() bool {
		if _, err := sink.Publish(ctx, msgs[3:4]); err != nil {
			t.Fatal(err)
		}
		return streamMsgs(js, "SORTGW") > 5
	})
	var d gwup.Deduper
	var seen []uint64
	for _, e := range readAll(t, js, "SORTGW") {
		if !d.Seen(&e) {
			seen = append(seen, e.Record.Seq)
		}
	}
	if len(seen) != 5 {
		t.Fatalf("consumer saw seqs %v, want 1..5 once each", seen)
	}
	for i, s := range seen {
		if s != uint64(i+1) {
			t.Fatalf("consumer saw seqs %v, want 1..5 in order", seen)
		}
	}
}
