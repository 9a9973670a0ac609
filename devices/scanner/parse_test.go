package scanner

import (
	"errors"
	"reflect"
	"testing"
)

// parseCases are shared by the table test and the benchmark.
var parseCases = []struct {
	name   string
	pc     ParseConfig // zero = DefaultParseConfig
	in     string
	kind   Kind
	tid    uint32
	codes  []string
	err    error
	field  int // of the ParseError
	offset int
}{
	{name: "one code", in: "42;1Z999AA10123456784", kind: KindRead, tid: 42, codes: []string{"1Z999AA10123456784"}},
	{name: "gs1-128 with gs", in: "4294967295;]C1420902101\x1d92012345", kind: KindRead, tid: 4294967295, codes: []string{"]C1420902101\x1d92012345"}},
	{name: "gs1 datamatrix and sscc", in: "7;]d2420100019\x1d00003123450000000017;00003123450000000017", kind: KindRead, tid: 7,
		codes: []string{"]d2420100019\x1d00003123450000000017", "00003123450000000017"}},
	{name: "impb", in: "1001;420902109261290100130006123456", kind: KindRead, tid: 1001, codes: []string{"420902109261290100130006123456"}},
	{name: "iso 15434 envelope", in: "8;[)>\x1e06\x1d12Z90210\x1e\x04", kind: KindRead, tid: 8, codes: []string{"[)>\x1e06\x1d12Z90210\x1e\x04"}},
	{name: "utf-8 code", in: "9;Zürich-8001", kind: KindRead, tid: 9, codes: []string{"Zürich-8001"}},
	{name: "leading zeros in tid", in: "0000012;A", kind: KindRead, tid: 12, codes: []string{"A"}},
	{name: "three codes", in: "3;A;B;C", kind: KindRead, tid: 3, codes: []string{"A", "B", "C"}},
	{name: "noread", in: "5;NoRead", kind: KindNoRead, tid: 5},
	{name: "noread twice", in: "5;NoRead;NoRead", kind: KindNoRead, tid: 5},
	{name: "noread next to a code is dropped", in: "6;NoRead;A;NoRead", kind: KindRead, tid: 6, codes: []string{"A"}},
	{name: "noread token is case sensitive", in: "6;noread", kind: KindRead, tid: 6, codes: []string{"noread"}},
	{name: "heartbeat", in: "HB", kind: KindHeartbeat},
	{name: "custom tokens", pc: ParseConfig{Separator: "|", NoReadToken: "??", HeartbeatToken: "ALIVE"}, in: "11|??", kind: KindNoRead, tid: 11},
	{name: "custom heartbeat", pc: ParseConfig{Separator: "|", NoReadToken: "??", HeartbeatToken: "ALIVE"}, in: "ALIVE", kind: KindHeartbeat},
	{name: "multi-byte separator", pc: ParseConfig{Separator: "::", NoReadToken: "NoRead", HeartbeatToken: "HB"}, in: "12::A:B::C", kind: KindRead, tid: 12, codes: []string{"A:B", "C"}},

	{name: "empty payload", in: "", err: ErrEmptyPayload},
	{name: "heartbeat with tid is a code", in: "1;HB", kind: KindRead, tid: 1, codes: []string{"HB"}},
	{name: "heartbeat lower case", in: "hb", err: ErrNoSeparator},
	{name: "tid only", in: "42", err: ErrNoSeparator},
	{name: "empty code", in: "42;", err: ErrEmptyCode, field: 1, offset: 3},
	{name: "empty middle code", in: "42;A;;B", err: ErrEmptyCode, field: 2, offset: 5},
	{name: "trailing separator", in: "42;A;", err: ErrEmptyCode, field: 2, offset: 5},
	{name: "tid 0", in: "0;A", err: ErrTIDZero},
	{name: "tid 000", in: "000;NoRead", err: ErrTIDZero},
	{name: "empty tid", in: ";A", err: ErrBadTID},
	{name: "non-numeric tid", in: "12a;A", err: ErrBadTID},
	{name: "signed tid", in: "+12;A", err: ErrBadTID},
	{name: "tid with space", in: " 12;A", err: ErrBadTID},
	{name: "tid overflow", in: "4294967296;A", err: ErrTIDOverflow},
	{name: "tid huge", in: "99999999999999999999999;A", err: ErrTIDOverflow},
	{name: "tid huge then letter", in: "99999999999x;A", err: ErrBadTID},
	{name: "binary junk", in: "\x00\xff\xfe;\x01", err: ErrBadTID},
	// Damaged codes still belong to a tracked item: delivered as they are.
	{name: "control byte in code", in: "1;AB\x00C", kind: KindRead, tid: 1, codes: []string{"AB\x00C"}},
	{name: "bare lf in code", in: "1;A\n2;B", kind: KindRead, tid: 1, codes: []string{"A\n2", "B"}},
	{name: "invalid utf-8 in code", in: "1;A\xffB", kind: KindRead, tid: 1, codes: []string{"A\xffB"}},
	{name: "binary junk code", in: "77;\x81\x00\xfe\x1f\x7f", kind: KindRead, tid: 77, codes: []string{"\x81\x00\xfe\x1f\x7f"}},
}

func TestParsePayload(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			pc := tc.pc
			if pc == (ParseConfig{}) {
				pc = DefaultParseConfig
			}
			buf := []byte(tc.in)
			r, kind, err := ParsePayload(buf, pc)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Field != tc.field || pe.Offset != tc.offset {
					t.Fatalf("err %#v, want field %d offset %d", err, tc.field, tc.offset)
				}
				if kind != KindInvalid {
					t.Fatalf("kind %v with an error", kind)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if kind != tc.kind || r.TID != tc.tid || !reflect.DeepEqual(r.Codes, tc.codes) || r.NoRead != (tc.kind == KindNoRead) {
				t.Fatalf("got %v %+v, want %v tid %d codes %q", kind, r, tc.kind, tc.tid, tc.codes)
			}
			// Codes are copies: scribbling over the buffer changes nothing.
			for i := range buf {
				buf[i] = 'X'
			}
			if !reflect.DeepEqual(r.Codes, tc.codes) {
				t.Fatalf("codes alias the input buffer: %q", r.Codes)
			}
		})
	}
}

func TestParseErrorText(t *testing.T) {
	_, _, err := ParsePayload([]byte("42;A;"), DefaultParseConfig)
	if got, want := err.Error(), "field 2 at byte 5: empty code"; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
}

func TestParseAllocs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  float64
		kind Kind
	}{
		{"HB", 0, KindHeartbeat},
		{"5;NoRead", 0, KindNoRead},
		{"42;]C1420902101\x1d92012345;1Z999AA10123456784", 2, KindRead}, // the codes' one string and their slice
	} {
		b := []byte(tc.in)
		got := testing.AllocsPerRun(100, func() {
			if _, k, err := ParsePayload(b, DefaultParseConfig); err != nil || k != tc.kind {
				t.Fatal(k, err)
			}
		})
		if got > tc.max {
			t.Errorf("%q: %v allocs, want at most %v", tc.in, got, tc.max)
		}
	}
}
