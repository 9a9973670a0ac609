package scanner

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"sortgw/devices"
)

// Kind says what a payload was.
type Kind uint8

// Payload kinds.
const (
	// KindInvalid: the payload did not parse (the error says why).
	KindInvalid Kind = iota
	// KindRead: a TID with one or more codes.
	KindRead
	// KindNoRead: a TID with the no-read token.
	KindNoRead
	// KindHeartbeat: the heartbeat token.
	KindHeartbeat
)

// String names the kind for logs.
func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindRead:
		return "read"
	case KindNoRead:
		return "noread"
	case KindHeartbeat:
		return "heartbeat"
	}
	return "unknown"
}

// ParseConfig holds the tokens of the telegram format.
type ParseConfig struct {
	Separator      string // between the TID and each code; ";"
	NoReadToken    string // the code of a no-read; "NoRead"
	HeartbeatToken string // the whole payload of a heartbeat; "HB"
}

// DefaultParseConfig is the contract's telegram format.
var DefaultParseConfig = ParseConfig{Separator: DefaultSeparator, NoReadToken: DefaultNoReadToken, HeartbeatToken: DefaultHeartbeatToken}

func (pc ParseConfig) check() error {
	switch {
	case pc.Separator == "":
		return errors.New("empty separator")
	case strings.ContainsAny(pc.Separator, "0123456789\x02\x03\r\n"):
		return fmt.Errorf("separator %q holds a digit or a framing byte", pc.Separator)
	case pc.NoReadToken == "" || pc.HeartbeatToken == "":
		return errors.New("empty no-read or heartbeat token")
	case strings.Contains(pc.NoReadToken, pc.Separator):
		return fmt.Errorf("no-read token %q holds the separator", pc.NoReadToken)
	}
	return nil
}

// Errors a payload can have; ParsePayload wraps them in a *ParseError.
var (
	ErrEmptyPayload = errors.New("empty payload")
	ErrNoSeparator  = errors.New("no separator after the tid")
	ErrBadTID       = errors.New("tid is not a decimal number")
	ErrTIDZero      = errors.New("tid 0")
	ErrTIDOverflow  = errors.New("tid above 4294967295")
	ErrEmptyCode    = errors.New("empty code")
)

// ParseError says which field of a payload is wrong and where.
type ParseError struct {
	Field  int // 0 = the tid, 1 = the first code, ...
	Offset int // byte offset of the field in the payload
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("field %d at byte %d: %v", e.Field, e.Offset, e.Err)
}

// Unwrap returns the named error.
func (e *ParseError) Unwrap() error { return e.Err }

// ParsePayload parses one telegram payload (framing already stripped):
// `TID<sep>CODE[<sep>CODE…]`, `TID<sep>NoRead`, or the heartbeat token.
//
// The TID is 1 to 10 decimal digits (leading zeros allowed), non-zero,
// at most 4294967295. Codes are copied out of b (they share one string),
// so b may be reused after the call. A code is whatever bytes the scanner
// decoded, control bytes and invalid UTF-8 included: a damaged label still
// belongs to a tracked item, and the item must get a decision (unknown
// destination, exception chute) rather than recirculate without one, so
// judging a code is left to the sort plan. An empty code (two separators
// in a row, or a trailing separator) is an error: the telegram itself is
// broken. A NoRead
// token next to real codes (a multi-head scanner with one head empty) is
// dropped; a payload whose only codes are NoRead tokens is a no-read.
//
// The returned Read has TID, Codes and NoRead set; the caller fills
// Scanner and At.
func ParsePayload(b []byte, pc ParseConfig) (devices.Read, Kind, error) {
	if len(b) == 0 {
		return devices.Read{}, KindInvalid, &ParseError{Err: ErrEmptyPayload}
	}
	if string(b) == pc.HeartbeatToken {
		return devices.Read{}, KindHeartbeat, nil
	}
	sep := pc.Separator
	i := indexSep(b, sep)
	if i < 0 {
		return devices.Read{}, KindInvalid, &ParseError{Err: ErrNoSeparator}
	}
	tid, err := parseTID(b[:i])
	if err != nil {
		return devices.Read{}, KindInvalid, &ParseError{Err: err}
	}
	rest := b[i+len(sep):]
	off := i + len(sep)

	// One pass to validate and count codes, so the code slice is sized
	// once and nothing is allocated for a no-read.
	n, noreads := 0, 0
	for field, p := 1, rest; ; field++ {
		j := indexSep(p, sep)
		code := p
		if j >= 0 {
			code = p[:j]
		}
		if len(code) == 0 {
			return devices.Read{}, KindInvalid, &ParseError{Field: field, Offset: off, Err: ErrEmptyCode}
		}
		if string(code) == pc.NoReadToken {
			noreads++
		} else {
			n++
		}
		if j < 0 {
			break
		}
		p = p[j+len(sep):]
		off += j + len(sep)
	}
	if n == 0 {
		return devices.Read{TID: tid, NoRead: true}, KindNoRead, nil
	}
	all := string(rest) // one copy; the codes are substrings of it
	codes := make([]string, 0, n)
	for {
		j := strings.Index(all, sep)
		code := all
		if j >= 0 {
			code = all[:j]
		}
		if noreads == 0 || code != pc.NoReadToken {
			codes = append(codes, code)
		}
		if j < 0 {
			break
		}
		all = all[j+len(sep):]
	}
	return devices.Read{TID: tid, Codes: codes}, KindRead, nil
}

func indexSep(b []byte, sep string) int {
	if len(sep) == 1 {
		return bytes.IndexByte(b, sep[0])
	}
	return bytes.Index(b, []byte(sep))
}

func parseTID(b []byte) (uint32, error) {
	if len(b) == 0 {
		return 0, ErrBadTID
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrBadTID
		}
		v = v*10 + uint64(c-'0')
		if v > 0xFFFFFFFF {
			// Keep scanning: a letter further on makes it "not a number".
			for _, c := range b {
				if c < '0' || c > '9' {
					return 0, ErrBadTID
				}
			}
			return 0, ErrTIDOverflow
		}
	}
	if v == 0 {
		return 0, ErrTIDZero
	}
	return uint32(v), nil
}
