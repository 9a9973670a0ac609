package scanner

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Real telegrams, as scanners send them.
var seedPayloads = []string{
	"42;1Z999AA10123456784",
	"4294967295;]C1420902101\x1d92012345",
	"7;]d2420100019\x1d00003123450000000017;00003123450000000017",
	"1001;420902109261290100130006123456",
	"8;[)>\x1e06\x1d12Z90210\x1e\x04",
	"5;NoRead",
	"HB",
	"3;A;B;C",
	"42;A;;B",
	"0;A",
	"4294967296;A",
	"\x00\xff\xfe;\x01",
}

func FuzzFramer(f *testing.F) {
	for _, p := range seedPayloads {
		f.Add([]byte("\x02"+p+"\x03junk\x02HB\x03"), false, uint16(0), uint16(3), uint16(9))
		f.Add([]byte(p+"\r\nHB\r\n"+p+"\r"), true, uint16(0), uint16(1), uint16(5))
	}
	f.Add([]byte("\x02"+strings.Repeat("A", 40)+"\x03\x021;A\x03"), false, uint16(16), uint16(10), uint16(30))
	f.Add([]byte(strings.Repeat("A", 16)+"\r\r\n"+strings.Repeat("B", 17)+"\r\n1;A\r\n"), true, uint16(16), uint16(16), uint16(17))
	f.Fuzz(func(t *testing.T, data []byte, crlf bool, max, cut1, cut2 uint16) {
		fr := STX
		if crlf {
			fr = CRLF
		}
		m := int(max%300) + 1
		ref := newRef(fr, m)
		var want []string
		ref.feed(data, func(p []byte) { want = append(want, string(p)) })

		a, b := int(cut1)%(len(data)+1), int(cut2)%(len(data)+1)
		if a > b {
			a, b = b, a
		}
		f := NewFramer(fr, m)
		var got []string
		f.Feed(data[:a], func(p []byte) { got = append(got, string(p)) })
		f.Feed(data[a:b], func(p []byte) { got = append(got, string(p)) })
		f.Feed(data[b:], func(p []byte) { got = append(got, string(p)) })

		if !reflect.DeepEqual(got, want) {
			t.Fatalf("cuts %d,%d: frames %q, reference %q", a, b, got, want)
		}
		if f.Stats() != ref.stats {
			t.Fatalf("cuts %d,%d: stats %+v, reference %+v", a, b, f.Stats(), ref.stats)
		}
		for _, p := range got {
			if len(p) > m {
				t.Fatalf("frame of %d bytes over the limit %d", len(p), m)
			}
			if fr == STX && strings.ContainsAny(p, "\x02\x03") || fr == CRLF && strings.Contains(p, "\r\n") {
				t.Fatalf("frame %q holds a delimiter", p)
			}
		}
		if f.Partial() > m+1 {
			t.Fatalf("holds %d bytes, limit %d", f.Partial(), m)
		}
	})
}

func FuzzParsePayload(f *testing.F) {
	for _, p := range seedPayloads {
		f.Add([]byte(p), ";")
	}
	f.Add([]byte("11|??"), "|")
	f.Add([]byte("12::A:B::C"), "::")
	f.Fuzz(func(t *testing.T, data []byte, sep string) {
		pc := ParseConfig{Separator: sep, NoReadToken: "NoRead", HeartbeatToken: "HB"}
		if pc.check() != nil {
			pc.Separator = ";"
		}
		orig := bytes.Clone(data)
		r, kind, err := ParsePayload(data, pc)
		if !bytes.Equal(data, orig) {
			t.Fatal("parser changed its input")
		}
		if err != nil {
			if kind != KindInvalid || r.TID != 0 || r.Codes != nil {
				t.Fatalf("error %v with a result %v %+v", err, kind, r)
			}
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			return
		}
		switch kind {
		case KindHeartbeat:
			if string(data) != pc.HeartbeatToken {
				t.Fatalf("heartbeat from %q", data)
			}
			return
		case KindNoRead:
			if !r.NoRead || len(r.Codes) != 0 {
				t.Fatalf("noread %+v", r)
			}
		case KindRead:
			if r.NoRead || len(r.Codes) == 0 {
				t.Fatalf("read %+v", r)
			}
		default:
			t.Fatalf("kind %v without an error", kind)
		}
		if r.TID == 0 {
			t.Fatal("tid 0 accepted")
		}
		for _, c := range r.Codes {
			if c == "" || strings.Contains(c, pc.Separator) || c == pc.NoReadToken {
				t.Fatalf("bad code %q", c)
			}
		}
		// The canonical form of the result parses to the same result.
		codes := r.Codes
		if kind == KindNoRead {
			codes = []string{pc.NoReadToken}
		}
		canon := strconv.FormatUint(uint64(r.TID), 10) + pc.Separator + strings.Join(codes, pc.Separator)
		r2, kind2, err := ParsePayload([]byte(canon), pc)
		if err != nil || kind2 != kind || !reflect.DeepEqual(r2, r) {
			t.Fatalf("canonical %q: %v %+v %v, want %v %+v", canon, kind2, r2, err, kind, r)
		}
	})
}
