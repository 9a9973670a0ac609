package scanner

import "bytes"

// Framing selects how a Framer finds frames in the byte stream.
type Framing uint8

// Framings.
const (
	// STX: 0x02 payload 0x03. Bytes between an ETX and the next STX are
	// outside any frame: ignored and counted.
	STX Framing = iota
	// CRLF: payload then "\r\n". Every byte belongs to some frame; a lone
	// CR or LF is payload data.
	CRLF
)

// String names the framing as in the configuration.
func (f Framing) String() string {
	switch f {
	case STX:
		return FramingSTX
	case CRLF:
		return FramingCRLF
	}
	return "unknown"
}

const (
	stx = 0x02
	etx = 0x03
	cr  = '\r'
	lf  = '\n'
)

type framerState uint8

const (
	fsIdle    framerState = iota // STX: outside a frame, waiting for STX
	fsFrame                      // inside a frame, collecting payload
	fsDiscard                    // inside an oversized frame, dropping it
)

// FramerStats counts what a Framer has seen since it was made or Reset.
type FramerStats struct {
	// Frames handed to the callback (empty ones included).
	Frames uint64
	// Oversized frames dropped for a payload longer than the limit.
	Oversized uint64
	// Truncated frames dropped because a new STX arrived before their ETX.
	Truncated uint64
	// Ignored bytes outside any frame (STX framing only), a stray ETX
	// included.
	Ignored uint64
}

// Framer cuts a byte stream into frames. It is a small state machine: feed
// it whatever the socket returned, in any chunk sizes, and it calls back
// once per complete frame. It never allocates after its first frames: a
// frame that arrives whole in one chunk is handed over in place, a frame
// split over chunks is collected in a buffer of at most max bytes.
//
// A payload longer than max is dropped up to the next frame start (STX,
// or in CRLF framing the byte after the next CR LF) and counted as
// Oversized; the stream goes on. A Framer is not safe for concurrent use.
type Framer struct {
	framing Framing
	max     int
	state   framerState
	buf     []byte
	// pendingCR: CRLF framing, the last byte fed was a CR that may start
	// the terminator. In fsFrame it is also the last byte of buf.
	pendingCR bool
	stats     FramerStats
}

// NewFramer returns a Framer for the given framing and payload limit
// (max < 1 means DefaultMaxFrame).
func NewFramer(framing Framing, max int) *Framer {
	if max < 1 {
		max = DefaultMaxFrame
	}
	f := &Framer{framing: framing, max: max}
	f.Reset()
	return f
}

// Reset forgets any partial frame (after a reconnect) and the counters.
func (f *Framer) Reset() {
	f.buf = f.buf[:0]
	f.pendingCR = false
	f.stats = FramerStats{}
	if f.framing == CRLF {
		f.state = fsFrame
	} else {
		f.state = fsIdle
	}
}

// Stats returns the counters.
func (f *Framer) Stats() FramerStats { return f.stats }

// Partial reports how many payload bytes of an unfinished frame are held.
func (f *Framer) Partial() int { return len(f.buf) }

// Feed consumes p and calls emit for every frame completed in it, with the
// payload (delimiters stripped). The payload slice is only valid during
// the call: it may point into p or into the Framer's buffer.
func (f *Framer) Feed(p []byte, emit func(payload []byte)) {
	if f.framing == CRLF {
		f.feedCRLF(p, emit)
		return
	}
	f.feedSTX(p, emit)
}

func (f *Framer) feedSTX(p []byte, emit func([]byte)) {
	for len(p) > 0 {
		switch f.state {
		case fsIdle:
			i := bytes.IndexByte(p, stx)
			if i < 0 {
				f.stats.Ignored += uint64(len(p))
				return
			}
			f.stats.Ignored += uint64(i)
			p = p[i+1:]
			f.state = fsFrame
			f.buf = f.buf[:0]
		case fsFrame:
			end := bytes.IndexByte(p, etx)
			seg := p
			if end >= 0 {
				seg = p[:end]
			}
			// A new STX before the ETX: the frame so far never ended.
			if j := bytes.IndexByte(seg, stx); j >= 0 {
				if len(f.buf)+j > f.max {
					f.stats.Oversized++
				} else {
					f.stats.Truncated++
				}
				f.buf = f.buf[:0]
				p = p[j+1:]
				continue
			}
			if len(f.buf)+len(seg) > f.max {
				f.stats.Oversized++
				f.buf = f.buf[:0]
				f.state = fsDiscard
				p = p[len(seg):] // seg holds no STX; an ETX may follow
				continue
			}
			if end < 0 {
				f.buf = append(f.buf, seg...)
				return
			}
			f.stats.Frames++
			f.state = fsIdle
			if len(f.buf) == 0 {
				emit(seg)
			} else {
				f.buf = append(f.buf, seg...)
				emit(f.buf)
				f.buf = f.buf[:0]
			}
			p = p[end+1:]
		case fsDiscard:
			// Drop up to the next STX; an ETX ends the oversized frame, so
			// what follows it is outside any frame again.
			i := bytes.IndexByte(p, etx)
			seg := p
			if i >= 0 {
				seg = p[:i]
			}
			if j := bytes.IndexByte(seg, stx); j >= 0 {
				f.state = fsFrame
				f.buf = f.buf[:0]
				p = p[j+1:]
				continue
			}
			if i < 0 {
				return
			}
			f.state = fsIdle
			p = p[i+1:]
		}
	}
}

func (f *Framer) feedCRLF(p []byte, emit func([]byte)) {
	// A CR that ended the previous chunk: the terminator if p starts with LF.
	if f.pendingCR && len(p) > 0 {
		f.pendingCR = false
		if p[0] == lf {
			p = p[1:]
			if f.state == fsDiscard {
				f.state = fsFrame
			} else {
				f.stats.Frames++
				f.buf = f.buf[:len(f.buf)-1] // the CR
				emit(f.buf)
			}
			f.buf = f.buf[:0]
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, lf)
		if f.state == fsDiscard {
			if i < 0 {
				f.pendingCR = p[len(p)-1] == cr
				return
			}
			if i > 0 && p[i-1] == cr {
				f.state = fsFrame
				f.buf = f.buf[:0]
			}
			p = p[i+1:]
			continue
		}
		if i < 0 {
			// No terminator yet: keep the bytes. One byte over the limit is
			// allowed for a CR that may turn out to be the terminator.
			if len(f.buf)+len(p) > f.max+1 || (len(f.buf)+len(p) == f.max+1 && p[len(p)-1] != cr) {
				f.oversizedCRLF(p)
				return
			}
			f.buf = append(f.buf, p...)
			f.pendingCR = p[len(p)-1] == cr
			return
		}
		seg := p[:i]
		p = p[i+1:]
		var term bool
		if len(seg) > 0 {
			term = seg[len(seg)-1] == cr
		} else {
			term = len(f.buf) > 0 && f.buf[len(f.buf)-1] == cr
		}
		if !term {
			// A bare LF is payload data (and not a CR that could still
			// be the terminator, so max+1 bytes are already too many).
			if len(f.buf)+len(seg)+1 > f.max {
				f.oversizedCRLF(nil)
				// Rescan what follows in fsDiscard.
				continue
			}
			f.buf = append(f.buf, seg...)
			f.buf = append(f.buf, lf)
			continue
		}
		n := len(f.buf) + len(seg) - 1 // payload length without the CR
		if n > f.max {
			f.stats.Oversized++
			f.buf = f.buf[:0]
			continue
		}
		f.stats.Frames++
		if len(f.buf) == 0 {
			emit(seg[:len(seg)-1])
			continue
		}
		f.buf = append(f.buf, seg...)
		emit(f.buf[:n])
		f.buf = f.buf[:0]
	}
}

// oversizedCRLF switches to discarding; tail is the rest of the chunk, if
// it has no LF in it (so only its last byte matters).
func (f *Framer) oversizedCRLF(tail []byte) {
	f.stats.Oversized++
	f.buf = f.buf[:0]
	f.state = fsDiscard
	f.pendingCR = len(tail) > 0 && tail[len(tail)-1] == cr
}
