package upstream

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gwup "sortgw/gateway/upstream"
)

// TestSinkCountedRounds: once the stream's last sequence is known, a
// round goes out with one acknowledgement and is confirmed by counting;
// a duplicate or a message the stream did not store is caught by the
// count and the round goes again acknowledged, so the cursor never
// passes a message the stream does not hold.
func TestSinkCountedRounds(t *testing.T) {
	srv := startHub(t, Embedded{})
	cfg := embeddedConfig(t, "s1")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nc, err := Connect(&cfg.NATS, srv.ClientURL(), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sink, err := NewSink(nc, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, js := jsOn(t, srv.ClientURL(), "")
	next := uint64(1)
	round := func(n int) []gwup.Message {
		var msgs []gwup.Message
		for range n {
			msgs = append(msgs, gwup.Message{Subject: "sortgw.s1.L1.outcome", ID: gwup.MsgID("s1", next), Seq: next,
				Data: []byte(fmt.Sprintf(`{"seq":%d}`, next))})
			next++
		}
		return msgs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type step struct {
		name               string
		msgs               []gwup.Message
		acked              int
		err                string
		stored             int // messages in the stream after the round
		counted, recounted uint64
	}
	steps := []step{
		{name: "first round: acknowledged", msgs: round(50), acked: 50, stored: 50},
		{name: "counted", msgs: round(50), acked: 50, stored: 100, counted: 1},
		{name: "counted again", msgs: round(3), acked: 3, stored: 103, counted: 2},
		{name: "one message alone: acknowledged", msgs: round(1), acked: 1, stored: 104, counted: 2},
	}
	dup := steps[1].msgs
	steps = append(steps, step{name: "a re-publish (duplicates): recounted, acknowledged", msgs: dup, acked: 50, stored: 104,
		counted: 2, recounted: 1})
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			acked, err := sink.Publish(ctx, s.msgs)
			if acked != s.acked || (err != nil) != (s.err != "") || (err != nil && !strings.Contains(err.Error(), s.err)) {
				t.Fatalf("acked %d, err %v; want %d, %q", acked, err, s.acked, s.err)
			}
			if got := streamMsgs(js, "SORTGW"); got != s.stored {
				t.Fatalf("stream holds %d, want %d", got, s.stored)
			}
			if c, r := sink.counted.Load(), sink.recounted.Load(); c != s.counted || r != s.recounted {
				t.Fatalf("counted %d, recounted %d; want %d, %d", c, r, s.counted, s.recounted)
			}
		})
	}

	// A message the stream does not take (a subject outside it: with no
	// reply subject nobody hears that) in a counted round: the count
	// misses it, the round goes again acknowledged and stops there.
	if _, err := sink.Publish(ctx, round(5)); err != nil { // the last sequence known again
		t.Fatal(err)
	}
	c0 := sink.counted.Load()
	msgs := round(10)
	msgs[6].Subject = "elsewhere.s1.outcome"
	acked, err := sink.Publish(ctx, msgs)
	if acked != 6 || err == nil || !strings.Contains(err.Error(), "s1/"+fmt.Sprint(msgs[6].Seq)) {
		t.Fatalf("round with a message the stream refuses: acked %d, %v; want 6 and its error", acked, err)
	}
	if sink.counted.Load() != c0 || sink.recounted.Load() != 2 {
		t.Fatalf("counted %d (was %d), recounted %d: want the round recounted", sink.counted.Load(), c0, sink.recounted.Load())
	}
	// The publisher goes on from the first one not acknowledged.
	msgs[6].Subject = "sortgw.s1.L1.outcome"
	if acked, err := sink.Publish(ctx, msgs[6:]); acked != 4 || err != nil {
		t.Fatalf("the rest: acked %d, %v", acked, err)
	}
	if got, want := streamMsgs(js, "SORTGW"), 104+5+10; got != want {
		t.Fatalf("stream holds %d, want %d", got, want)
	}
}
