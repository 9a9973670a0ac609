package upstream

import (
	"strings"
	"testing"
	"time"

	"sortgw/gateway/journal"
)

// TestRoundEncode: a round's messages are the records' messages as
// Encode makes them (decisions and cursors left out), and a later round
// leaves an earlier round's payloads and ids intact: the sink may still
// hold them (an acknowledgement in flight, a retry).
func TestRoundEncode(t *testing.T) {
	at := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
	batch := func(first uint64, line string) []journal.Record {
		return []journal.Record{
			{Seq: first, Time: at, Line: line, Kind: journal.KindDecision, TID: 1, Pass: 1},
			{Seq: first + 1, Time: at, Line: line, Kind: journal.KindOutcome, TID: 1, Pass: 1, Outcome: journal.OutcomeDiverted, Detail: strings.Repeat("x", int(first))},
			{Seq: first + 2, Time: at, Kind: journal.KindUpstreamCursor, Detail: "5"},
			{Seq: first + 3, Time: at, Line: line, Kind: journal.KindAlarm, Alarm: "estop"},
			{Seq: first + 4, Time: at.AddDate(9000, 0, 0), Line: line, Kind: journal.KindOutcome}, // year 11026: refused
		}
	}
	var r round
	var failed []error
	fail := func(err error) { failed = append(failed, err) }
	want := func(recs []journal.Record) []Message {
		var out []Message
		for i := range recs {
			if m, err := Encode("n1", &recs[i]); err == nil && Published(recs[i].Kind) {
				out = append(out, m)
			}
		}
		return out
	}
	check := func(t *testing.T, got, want []Message) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%d messages, want %d", len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Subject != w.Subject || g.ID != w.ID || g.Seq != w.Seq || string(g.Data) != string(w.Data) {
				t.Fatalf("message %d\n got %s %s %d %s\nwant %s %s %d %s", i, g.Subject, g.ID, g.Seq, g.Data, w.Subject, w.ID, w.Seq, w.Data)
			}
		}
	}
	first := append([]Message(nil), r.encode("n1", batch(10, "L1"), fail)...)
	check(t, first, want(batch(10, "L1")))
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "record 14") {
		t.Fatalf("failures %v", failed)
	}
	for range 3 { // later rounds, shorter payloads, other lines
		check(t, r.encode("n1", batch(2, "L2"), fail), want(batch(2, "L2")))
	}
	check(t, first, want(batch(10, "L1")))
	if first[0].ID != "n1/11" || first[0].Subject != "sortgw.n1.L1.outcome" || first[1].Subject != "sortgw.n1.L1.alarm" {
		t.Fatalf("first round %+v", first)
	}
}

// BenchmarkRoundEncode: a publish round of 1000 outcomes, encoded.
func BenchmarkRoundEncode(b *testing.B) {
	recs := make([]journal.Record, 1000)
	for i := range recs {
		recs[i] = journal.Record{Seq: uint64(i + 1), Time: time.Now().UTC(), Line: "L1", Kind: journal.KindOutcome, TID: uint32(i),
			Pass: 1, Chute: 7, Dest: "64001", Route: "R028", PlanVersion: 3, Outcome: journal.OutcomeDiverted}
	}
	var r round
	b.ReportAllocs()
	for b.Loop() {
		r.encode("bench", recs, func(err error) { b.Fatal(err) })
	}
}
