package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Wire cases: the exact bytes of a record, in both directions.
var codecCases = []struct {
	name  string
	rec   Record
	bytes []byte
}{
	{
		// A record of a retired kind (1, read) decodes as it always did.
		name: "read",
		rec: Record{Seq: 300, Time: time.Unix(0, 100).UTC(), Kind: kindRetiredRead, Line: "L1", TID: 70000,
			Pass: 1, Scanner: "s1", Codes: []string{"42090210"}},
		bytes: []byte{
			0x01,       // format version 1
			0xac, 0x02, // seq 300
			0x01,       // kind read
			0x3f,       // mask: time line tid pass scanner codes
			0xc8, 0x01, // time: 100 ns, zigzag 200
			0x02, 'L', '1', // line
			0xf0, 0xa2, 0x04, // tid 70000
			0x01,           // pass 1
			0x02, 's', '1', // scanner
			0x01, 0x08, '4', '2', '0', '9', '0', '2', '1', '0', // one code
		},
	},
	{
		name: "outcome",
		rec:  Record{Seq: 1, Kind: KindOutcome, TID: 5, Pass: 2, Chute: 12, Result: 1, Outcome: OutcomeDiverted},
		bytes: []byte{
			0x01,       // version
			0x01,       // seq 1
			0x07,       // kind outcome
			0x8c, 0x45, // mask 0x228c: tid pass chute result outcome
			0x05, // tid 5
			0x02, // pass 2
			0x0c, // chute 12
			0x01, // result 1
			0x01, // outcome diverted
		},
	},
	{
		name: "noread flag only",
		rec:  Record{Seq: 2, Kind: kindRetiredRead, NoRead: true},
		bytes: []byte{
			0x01, 0x02, 0x01, // version, seq 2, kind read
			0x80, 0x80, 0x08, // mask 1<<17: noread, no payload
		},
	},
	{
		name: "container close",
		rec: Record{Seq: 3, Kind: KindContainerClose, Chute: 300, Route: "R7", Container: "B1",
			Count: 42, Detail: "x"},
		bytes: []byte{
			0x01, 0x03, 0x0d, // version, seq 3, kind container-close
			0x80, 0x89, 0x07, // mask 0x1c480: chute route container count detail
			0xac, 0x02, // chute 300
			0x02, 'R', '7', // route
			0x02, 'B', '1', // container
			0x2a,      // count 42
			0x01, 'x', // detail
		},
	},
	{
		name:  "empty",
		rec:   Record{},
		bytes: []byte{0x01, 0x00, 0x00, 0x00},
	},
}

func TestCodecBytes(t *testing.T) {
	for _, tc := range codecCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rec.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.bytes) {
				t.Errorf("encode:\n got % x\nwant % x", got, tc.bytes)
			}
			var r Record
			if err := r.UnmarshalBinary(tc.bytes); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(r, tc.rec) {
				t.Errorf("decode:\n got %+v\nwant %+v", r, tc.rec)
			}
		})
	}
}

// fullRecord sets every field, so a round trip exercises all of them.
func fullRecord(k Kind, o Outcome) Record {
	return Record{
		Seq: 1<<40 + 7, Time: time.Date(2026, 11, 25, 17, 3, 4, 123456789, time.UTC), Line: "north",
		Kind: k, TID: 1<<32 - 1, Pass: 4, Scanner: "scan-1",
		Codes:  []string{"]C1420902101\x1d9212345", "", "1Z999AA10123456784"},
		NoRead: true, Dest: "90210", Chute: 2048, Reason: 6, Result: 9, Route: "VAN-12",
		PlanVersion: 1<<64 - 1, CmdSeq: 65535, Outcome: o, Container: "BAG-0001", Count: 1<<32 - 1,
		Detail: "ünïcode ok", Cause: "sighup",
	}
}

func TestCodecRoundTripEveryKind(t *testing.T) {
	for k := KindUnknown; k <= kindMax+1; k++ {
		for o := OutcomeNone; o <= outcomeMax+1; o++ {
			want := fullRecord(k, o)
			b, _ := want.MarshalBinary()
			var got Record
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("%s/%s: %v", k, o, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s/%s:\n got %+v\nwant %+v", k, o, got, want)
			}
		}
	}
}

func TestCodecTimeIsUTCNanos(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	in := Record{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, loc)}
	b, _ := in.MarshalBinary()
	var out Record
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !out.Time.Equal(in.Time) || out.Time.Location() != time.UTC {
		t.Fatalf("time %v, want %v in UTC", out.Time, in.Time)
	}
}

func TestCodecErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "version at byte 0: truncated"},
		{"bad version", []byte{0x02, 0x01, 0x01, 0x00}, "unknown format 2"},
		{"truncated seq", []byte{0x01, 0x80}, "seq at byte 1: bad varint"},
		{"no kind", []byte{0x01, 0x01}, "kind at byte 2: truncated"},
		{"unknown field", []byte{0x01, 0x01, 0x01, 0x80, 0x80, 0x80, 0x02}, "unknown fields 0x400000"},
		{"string past end", []byte{0x01, 0x01, 0x01, 0x02, 0x05, 'a'}, "line at byte 4: length 5 beyond end"},
		{"tid too big", []byte{0x01, 0x01, 0x01, 0x04, 0x80, 0x80, 0x80, 0x80, 0x10}, "tid at byte 4: value 4294967296 out of range"},
		{"code count", []byte{0x01, 0x01, 0x01, 0x20, 0x7f}, "codes at byte 4: value 127 out of range"},
		{"trailing", []byte{0x01, 0x01, 0x01, 0x00, 0x00}, "end at byte 4: 1 trailing bytes"},
		{"outcome missing", []byte{0x01, 0x01, 0x01, 0x80, 0x40}, "outcome at byte 5: truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Record{Line: "stale"}
			err := r.UnmarshalBinary(tc.in)
			if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrCorrupt containing %q", err, tc.want)
			}
			if !reflect.DeepEqual(r, Record{}) {
				t.Fatalf("record not reset after error: %+v", r)
			}
		})
	}
}

func TestNamesRoundTrip(t *testing.T) {
	for k := KindUnknown + 1; k <= kindMax; k++ {
		if kindNames[k] == "" {
			continue // a number assigned to a kind not in this tree yet
		}
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	for o := OutcomeNone; o <= outcomeMax; o++ {
		got, err := ParseOutcome(o.String())
		if err != nil || got != o {
			t.Errorf("ParseOutcome(%q) = %v, %v", o.String(), got, err)
		}
	}
	if _, err := ParseKind("bogus"); err == nil {
		t.Error("ParseKind(bogus) accepted")
	}
	if s := Kind(200).String(); s != "kind(200)" {
		t.Errorf("Kind(200) = %q", s)
	}
	for r := uint16(1); r <= 9; r++ {
		o, ok := OutcomeFromResult(r)
		if !ok || uint16(o) != r {
			t.Errorf("OutcomeFromResult(%d) = %v %v", r, o, ok)
		}
	}
	if _, ok := OutcomeFromResult(10); ok {
		t.Error("result 10 mapped")
	}
}

func TestRecordJSON(t *testing.T) {
	r := Record{Seq: 9, Time: time.Unix(1, 0).UTC(), Kind: KindOutcome, TID: 3, Outcome: OutcomeLostAtRestart}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":9,"time":"1970-01-01T00:00:01Z","kind":"outcome","tid":3,"outcome":"lost-at-restart"}`
	if string(b) != want {
		t.Fatalf("json %s, want %s", b, want)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("json round trip: %+v, %v", back, err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range codecCases {
		f.Add(tc.bytes)
	}
	full := fullRecord(KindDecision, OutcomeDiverted)
	b, _ := full.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := r.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, _ := r.MarshalBinary()
		var r2 Record
		if err := r2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, r2)
		}
	})
}

func TestUnnamedKindIsNotEmpty(t *testing.T) {
	// A gap in the numbering reads as kind(n), and "" parses as nothing.
	for k := KindUnknown + 1; k <= kindMax; k++ {
		if kindNames[k] == "" && k.String() != fmt.Sprintf("kind(%d)", uint8(k)) {
			t.Errorf("kind %d reads %q", k, k.String())
		}
	}
	if k, err := ParseKind(""); err == nil {
		t.Errorf("ParseKind(\"\") = %v", k)
	}
}
