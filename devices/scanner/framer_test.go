package scanner

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// refFramer is the contract's framing written the slow, obvious way, one
// byte at a time. The fuzz test holds the real Framer to it.
type refFramer struct {
	framing Framing
	max     int
	state   framerState
	buf     []byte
	prevCR  bool // CRLF discard: the previous byte was CR
	stats   FramerStats
}

func newRef(f Framing, max int) *refFramer {
	r := &refFramer{framing: f, max: max}
	if f == CRLF {
		r.state = fsFrame
	}
	return r
}

func (r *refFramer) feed(p []byte, emit func([]byte)) {
	for _, b := range p {
		if r.framing == STX {
			r.stx(b, emit)
		} else {
			r.crlf(b, emit)
		}
	}
}

func (r *refFramer) stx(b byte, emit func([]byte)) {
	switch r.state {
	case fsIdle:
		if b == stx {
			r.state, r.buf = fsFrame, r.buf[:0]
		} else {
			r.stats.Ignored++
		}
	case fsFrame:
		switch b {
		case stx:
			r.stats.Truncated++
			r.buf = r.buf[:0]
		case etx:
			r.stats.Frames++
			emit(r.buf)
			r.state = fsIdle
		default:
			r.buf = append(r.buf, b)
			if len(r.buf) > r.max {
				r.stats.Oversized++
				r.state = fsDiscard
			}
		}
	case fsDiscard:
		switch b {
		case stx:
			r.state, r.buf = fsFrame, r.buf[:0]
		case etx:
			r.state = fsIdle
		}
	}
}

func (r *refFramer) crlf(b byte, emit func([]byte)) {
	switch r.state {
	case fsFrame:
		if b == lf && len(r.buf) > 0 && r.buf[len(r.buf)-1] == cr {
			p := r.buf[:len(r.buf)-1]
			if len(p) > r.max {
				r.stats.Oversized++
			} else {
				r.stats.Frames++
				emit(p)
			}
			r.buf = r.buf[:0]
			return
		}
		r.buf = append(r.buf, b)
		n := len(r.buf)
		if n > r.max+1 || n == r.max+1 && b != cr {
			r.stats.Oversized++
			r.state = fsDiscard
			r.prevCR = b == cr
			r.buf = r.buf[:0]
		}
	case fsDiscard:
		if b == lf && r.prevCR {
			r.state = fsFrame
		}
		r.prevCR = b == cr
	}
}

// collect feeds chunks and returns copies of the frames.
func collect(f *Framer, chunks ...[]byte) []string {
	var out []string
	for _, c := range chunks {
		f.Feed(c, func(p []byte) { out = append(out, string(p)) })
	}
	return out
}

func TestFramerBytes(t *testing.T) {
	big := strings.Repeat("A", 17)
	cases := []struct {
		name    string
		framing Framing
		max     int
		in      string
		frames  []string
		stats   FramerStats
	}{
		{
			name: "stx one read",
			// 02 "42;1Z999AA10123456784" 03
			in:     "\x0242;1Z999AA10123456784\x03",
			frames: []string{"42;1Z999AA10123456784"},
			stats:  FramerStats{Frames: 1},
		},
		{
			name:   "stx gs1 with group separators",
			in:     "\x027;]C1420902101\x1d92012345\x03",
			frames: []string{"7;]C1420902101\x1d92012345"},
			stats:  FramerStats{Frames: 1},
		},
		{
			name:   "stx heartbeat, noread, two reads back to back",
			in:     "\x02HB\x03\x029;NoRead\x03\x0210;A;B\x03",
			frames: []string{"HB", "9;NoRead", "10;A;B"},
			stats:  FramerStats{Frames: 3},
		},
		{
			name:   "stx bytes outside frames ignored and counted",
			in:     "xx\r\n\x02HB\x03\x03junk\x021;A\x03!",
			frames: []string{"HB", "1;A"},
			stats:  FramerStats{Frames: 2, Ignored: 4 + 1 + 4 + 1},
		},
		{
			name:   "stx empty frame is a frame",
			in:     "\x02\x03",
			frames: []string{""},
			stats:  FramerStats{Frames: 1},
		},
		{
			name:   "stx new stx before etx truncates",
			in:     "\x021;AB\x022;CD\x03",
			frames: []string{"2;CD"},
			stats:  FramerStats{Frames: 1, Truncated: 1},
		},
		{
			name:   "stx exactly max is kept",
			max:    16,
			in:     "\x02" + big[:16] + "\x03",
			frames: []string{big[:16]},
			stats:  FramerStats{Frames: 1},
		},
		{
			name:   "stx max+1 dropped, then junk counted, next frame kept",
			max:    16,
			in:     "\x02" + big + "\x03zz\x021;A\x03",
			frames: []string{"1;A"},
			stats:  FramerStats{Frames: 1, Oversized: 1, Ignored: 2},
		},
		{
			name:   "stx oversized without etx dropped up to next stx",
			max:    16,
			in:     "\x02" + big + big + "\x021;A\x03",
			frames: []string{"1;A"},
			stats:  FramerStats{Frames: 1, Oversized: 1},
		},
		{
			name:    "crlf reads",
			framing: CRLF,
			in:      "HB\r\n5;NoRead\r\n6;]d2010950123456789034202902\x1d\r\n",
			frames:  []string{"HB", "5;NoRead", "6;]d2010950123456789034202902\x1d"},
			stats:   FramerStats{Frames: 3},
		},
		{
			name:    "crlf lone cr and lf are payload",
			framing: CRLF,
			in:      "1;A\rB\nC\r\n",
			frames:  []string{"1;A\rB\nC"},
			stats:   FramerStats{Frames: 1},
		},
		{
			name:    "crlf empty line is an empty frame",
			framing: CRLF,
			in:      "\r\n1;A\r\n",
			frames:  []string{"", "1;A"},
			stats:   FramerStats{Frames: 2},
		},
		{
			name:    "crlf exactly max kept",
			framing: CRLF,
			max:     16,
			in:      big[:16] + "\r\n",
			frames:  []string{big[:16]},
			stats:   FramerStats{Frames: 1},
		},
		{
			name:    "crlf oversized dropped up to the next line",
			framing: CRLF,
			max:     16,
			in:      big + "\r\n" + big + big + "\r\n1;A\r\n",
			frames:  []string{"1;A"},
			stats:   FramerStats{Frames: 1, Oversized: 2},
		},
		{
			name:    "crlf unfinished line is held",
			framing: CRLF,
			in:      "1;A\r\n2;B",
			frames:  []string{"1;A"},
			stats:   FramerStats{Frames: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Every way of cutting the input in two must give the same
			// frames: the socket decides the chunk sizes, not the scanner.
			for cut := 0; cut <= len(tc.in); cut++ {
				f := NewFramer(tc.framing, tc.max)
				got := collect(f, []byte(tc.in[:cut]), []byte(tc.in[cut:]))
				if !reflect.DeepEqual(got, tc.frames) {
					t.Fatalf("cut %d: frames %q, want %q", cut, got, tc.frames)
				}
				if f.Stats() != tc.stats {
					t.Fatalf("cut %d: stats %+v, want %+v", cut, f.Stats(), tc.stats)
				}
			}
			// And one byte at a time.
			f := NewFramer(tc.framing, tc.max)
			var chunks [][]byte
			for i := range len(tc.in) {
				chunks = append(chunks, []byte{tc.in[i]})
			}
			if got := collect(f, chunks...); !reflect.DeepEqual(got, tc.frames) || f.Stats() != tc.stats {
				t.Fatalf("bytewise: frames %q stats %+v, want %q %+v", got, f.Stats(), tc.frames, tc.stats)
			}
		})
	}
}

func TestFramerMemoryBounded(t *testing.T) {
	for _, fr := range []Framing{STX, CRLF} {
		f := NewFramer(fr, 64)
		junk := bytes.Repeat([]byte("x"), 1000)
		if fr == STX {
			f.Feed([]byte{stx}, func([]byte) {})
		}
		for range 100 {
			f.Feed(junk, func([]byte) { t.Fatal("no frame expected") })
		}
		if f.Partial() != 0 || cap(f.buf) > 128 {
			t.Fatalf("%v: holds %d bytes, cap %d", fr, f.Partial(), cap(f.buf))
		}
		if f.Stats().Oversized != 1 {
			t.Fatalf("%v: oversized %d, want 1", fr, f.Stats().Oversized)
		}
	}
}

func TestFramerReset(t *testing.T) {
	f := NewFramer(STX, 0)
	collect(f, []byte("\x021;AB"))
	f.Reset()
	if got := collect(f, []byte("C\x03\x022;D\x03")); !reflect.DeepEqual(got, []string{"2;D"}) {
		t.Fatalf("after reset: %q", got)
	}
}
