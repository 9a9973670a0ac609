package upstream

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"sortgw/gateway/journal"
)

func TestSubject(t *testing.T) {
	cases := []struct {
		name, site string
		rec        journal.Record
		want       string
	}{
		{"outcome", "north1", journal.Record{Line: "L1", Kind: journal.KindOutcome}, "sortgw.north1.L1.outcome"},
		{"gateway-wide", "north1", journal.Record{Kind: journal.KindStart}, "sortgw.north1._gateway.start"},
		{"line with dot and space", "n", journal.Record{Line: "hall 2.a", Kind: journal.KindAlarm}, "sortgw.n.hall_2_a.alarm"},
		{"wildcards", "n", journal.Record{Line: "*>", Kind: journal.KindLinkState}, "sortgw.n.__.link-state"},
		{"unnamed kind", "n", journal.Record{Line: "L", Kind: journal.Kind(29)}, "sortgw.n.L.kind(29)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Subject(c.site, &c.rec); got != c.want {
				t.Fatalf("Subject = %q, want %q", got, c.want)
			}
		})
	}
}

// TestEncodeExactBytes: the payload of schema 1, byte for byte (the
// contract docs/upstream.md shows), and back.
func TestEncodeExactBytes(t *testing.T) {
	r := journal.Record{Seq: 81234, Time: time.Date(2026, 12, 5, 7, 1, 2, 123456789, time.UTC), Line: "L1",
		Kind: journal.KindOutcome, TID: 4711, Pass: 1, Chute: 55, Route: "R028", PlanVersion: 7, Outcome: journal.OutcomeDiverted}
	m, err := Encode("north1", &r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"site":"north1","record":{"seq":81234,"time":"2026-12-05T07:01:02.123456789Z","line":"L1","kind":"outcome","tid":4711,"pass":1,"chute":55,"route":"R028","plan_version":7,"outcome":"diverted"}}`
	if string(m.Data) != want {
		t.Fatalf("payload\n got %s\nwant %s", m.Data, want)
	}
	if m.ID != "north1/81234" || m.Subject != "sortgw.north1.L1.outcome" || m.Seq != 81234 {
		t.Fatalf("message %+v", m)
	}
	e, err := Decode([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	if e.Site != "north1" || e.Record.Seq != 81234 || e.Record.Outcome != journal.OutcomeDiverted || !e.Record.Time.Equal(r.Time) {
		t.Fatalf("decoded %+v", e)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, in := range []string{``, `{`, `{"v":2,"site":"s","record":{}}`, `{"v":1,"record":{"kind":"bogus"}}`,
		`{"v":1}`, `{"v":1,"site":"s","record":{"seq":3}}`, `{"v":1,"site":"s","record":{"kind":"outcome"}}`} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) accepted", in)
		}
	}
}

func TestDeduper(t *testing.T) {
	var d Deduper
	env := func(site string, seq uint64) *Envelope {
		return &Envelope{Site: site, Record: journal.Record{Seq: seq}}
	}
	steps := []struct {
		e    *Envelope
		seen bool
	}{
		{env("a", 1), false}, {env("a", 2), false}, {env("b", 1), false},
		{env("a", 2), true}, {env("a", 1), true}, {env("a", 3), false}, {env("b", 1), true},
	}
	for i, s := range steps {
		if got := d.Seen(s.e); got != s.seen {
			t.Fatalf("step %d (%s/%d): seen %v, want %v", i, s.e.Site, s.e.Record.Seq, got, s.seen)
		}
	}
}

func TestPublished(t *testing.T) {
	for _, k := range []journal.Kind{journal.KindDecision, journal.KindUpstreamCursor, journal.KindUnknown} {
		if Published(k) {
			t.Errorf("%s published", k)
		}
	}
	for _, k := range []journal.Kind{journal.KindOutcome, journal.KindAlarm, journal.KindLinkState, journal.KindContainerClose,
		journal.KindPlanInstalled, journal.KindPlanRefused, journal.KindUpstreamResult, journal.KindStart, journal.KindStop} {
		if !Published(k) {
			t.Errorf("%s not published", k)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "site is required"},
		{Config{Site: "a.b"}, "one subject token"},
		{Config{Site: strings.Repeat("x", 65)}, "at most 64"},
		{Config{Site: "s", Batch: -1}, "batch -1"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}

// FuzzDecode: a consumer's decoder never panics on what it is sent, and
// what it accepts encodes back to something it accepts again.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"site":"north1","record":{"seq":81234,"time":"2026-12-05T07:01:02.123456789Z","line":"L1","kind":"outcome","tid":4711,"pass":1,"chute":55,"route":"R028","plan_version":7,"outcome":"diverted"}}`))
	f.Add([]byte(`{"v":1,"site":"s","record":{"seq":1,"kind":"alarm","alarm":"L1/estop","severity":"critical","cause":"raised"}}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		m, err := Encode(e.Site, &e.Record)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", e, err)
		}
		if _, err := Decode(m.Data); err != nil {
			t.Fatalf("re-decode %s: %v", m.Data, err)
		}
	})
}

// payloadCases are records whose payloads AppendPayload must write
// exactly as encoding/json writes the Envelope.
var payloadCases = []struct {
	name string
	site string
	rec  journal.Record
}{
	{"outcome", "north1", journal.Record{Seq: 81234, Time: time.Date(2026, 12, 5, 7, 1, 2, 123456789, time.UTC), Line: "L1",
		Kind: journal.KindOutcome, TID: 4711, Pass: 1, Chute: 55, Route: "R028", PlanVersion: 7, Outcome: journal.OutcomeDiverted}},
	{"every field", "s", journal.Record{Seq: 1<<64 - 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Line: "L2",
		Kind: journal.KindOutcome, TID: 1<<32 - 1, Pass: 65535, Scanner: "S1", Codes: []string{"]C1420902101\x1d92123", ""},
		NoRead: true, Dest: "90210", Chute: 12, Reason: 3, Result: 1, Route: "VAN-12", PlanVersion: 9, CmdSeq: 77,
		Outcome: journal.OutcomeLostAtRestart, Container: "L2-C12-3", Count: 5, Detail: "d", Cause: "c", Alarm: "a",
		Severity: "critical", By: "op"}},
	{"zero", "s", journal.Record{}},
	{"escapes", "s<&>", journal.Record{Seq: 2, Time: time.Date(2026, 1, 2, 3, 4, 5, 100, time.UTC), Kind: journal.KindAlarm,
		Detail: "quote \" backslash \\ tab \t nl \n cr \r bs \b ff \f nul \x00 esc \x1b del \x7f <b>&amp;",
		Cause:  "bad utf8 \xff\xfe end \xe2\x82", Alarm: "sep \u2028 \u2029 é ü 漢 🚚", Codes: []string{"\x1d"}}},
	{"unnamed kind and outcome", "s", journal.Record{Seq: 3, Kind: journal.Kind(250), Outcome: journal.Outcome(200)}},
	{"other zone", "s", journal.Record{Seq: 4, Time: time.Date(2026, 6, 1, 12, 0, 0, 5, time.FixedZone("CEST", 2*3600)),
		Kind: journal.KindStart}},
	{"local zone", "s", journal.Record{Seq: 5, Time: time.Date(2026, 6, 1, 12, 0, 0, 5, time.Local), Kind: journal.KindStop}},
}

// TestAppendPayloadMatchesJSON: the append encoder writes the bytes
// encoding/json writes, field for field, escapes included.
func TestAppendPayloadMatchesJSON(t *testing.T) {
	for _, c := range payloadCases {
		t.Run(c.name, func(t *testing.T) {
			want, err := json.Marshal(Envelope{V: Schema, Site: c.site, Record: c.rec})
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendPayload([]byte("prefix"), c.site, &c.rec)
			if err != nil {
				t.Fatal(err)
			}
			if string(got[6:]) != string(want) || string(got[:6]) != "prefix" {
				t.Fatalf("payload\n got %s\nwant %s", got[6:], want)
			}
		})
	}
}

// TestAppendPayloadRefuses: a time JSON cannot hold is an error, as it is
// for encoding/json, not a payload no consumer can read.
func TestAppendPayloadRefuses(t *testing.T) {
	r := journal.Record{Seq: 9, Kind: journal.KindOutcome, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := AppendPayload(nil, "s", &r); err == nil || !strings.Contains(err.Error(), "record 9") {
		t.Fatalf("year 10000: %v", err)
	}
	r.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := AppendPayload(nil, "s", &r); err == nil {
		t.Fatal("year -1 accepted")
	}
}

// FuzzAppendPayload: for any strings and numbers, the append encoder and
// encoding/json agree byte for byte (or both refuse).
func FuzzAppendPayload(f *testing.F) {
	for _, c := range payloadCases {
		r := c.rec
		code := ""
		if len(r.Codes) > 0 {
			code = r.Codes[0]
		}
		f.Add(c.site, r.Seq, r.Time.UnixNano(), r.Line, uint8(r.Kind), r.TID, code, r.Detail+r.Cause+r.Alarm, uint8(r.Outcome), r.NoRead)
	}
	f.Fuzz(func(t *testing.T, site string, seq uint64, ns int64, line string, kind uint8, tid uint32, code, text string, outcome uint8, noread bool) {
		r := journal.Record{Seq: seq, Time: time.Unix(0, ns).UTC(), Line: line, Kind: journal.Kind(kind), TID: tid,
			Codes: []string{code}, Detail: text, Route: text, Outcome: journal.Outcome(outcome), NoRead: noread,
			Chute: uint16(tid), PlanVersion: seq / 3}
		want, werr := json.Marshal(Envelope{V: Schema, Site: site, Record: r})
		got, err := AppendPayload(nil, site, &r)
		if (err != nil) != (werr != nil) {
			t.Fatalf("AppendPayload error %v, encoding/json error %v", err, werr)
		}
		if err == nil && string(got) != string(want) {
			t.Fatalf("payload\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkAppendPayload(b *testing.B) {
	r := payloadCases[1].rec
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = AppendPayload(buf[:0], "s", &r)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(Envelope{V: Schema, Site: "s", Record: r})
		}
	})
}
