package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The record encoding, version 1 (all integers are encoding/binary
// varints; a string is its uvarint length then its bytes):
//
//	byte     format version (1)
//	uvarint  Seq
//	byte     Kind
//	uvarint  field mask: bit i set = field i follows
//	fields, in bit order, only those whose bit is set:
//	  0 Time (varint Unix nanoseconds)   8 Reason (uvarint)
//	  1 Line (string)                     9 Result (uvarint)
//	  2 TID (uvarint)                    10 Route (string)
//	  3 Pass (uvarint)                   11 PlanVersion (uvarint)
//	  4 Scanner (string)                 12 CmdSeq (uvarint)
//	  5 Codes (uvarint n, n strings)     13 Outcome (byte)
//	  6 Dest (string)                    14 Container (string)
//	  7 Chute (uvarint)                  15 Count (uvarint)
//	                                     16 Detail (string)
//	                                     17 NoRead (no payload)
//	                                     18 Cause (string)
//	                                     19 Alarm (string)
//	                                     20 Severity (string)
//	                                     21 By (string)
//
// A field at its zero value is left out, so a typical item record is 20
// to 60 bytes. A new field takes the next bit; a decoder refuses bits it
// does not know rather than guess.

const formatVersion = 1

const (
	fTime = 1 << iota
	fLine
	fTID
	fPass
	fScanner
	fCodes
	fDest
	fChute
	fReason
	fResult
	fRoute
	fPlanVersion
	fCmdSeq
	fOutcome
	fContainer
	fCount
	fDetail
	fNoRead
	fCause
	fAlarm
	fSeverity
	fBy

	fAll = fBy<<1 - 1
)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("corrupt journal record")

// AppendBinary appends r's encoding to b. It implements
// encoding.BinaryAppender and never fails.
func (r *Record) AppendBinary(b []byte) ([]byte, error) {
	return appendRecord(b, r), nil
}

// MarshalBinary returns r's encoding.
func (r *Record) MarshalBinary() ([]byte, error) {
	return appendRecord(make([]byte, 0, 64), r), nil
}

// UnmarshalBinary decodes data into r, replacing every field. Errors wrap
// ErrCorrupt; bad input never panics.
func (r *Record) UnmarshalBinary(data []byte) error {
	return decodeRecord(data, r)
}

func (r *Record) mask() uint64 {
	var m uint64
	set := func(bit uint64, on bool) {
		if on {
			m |= bit
		}
	}
	set(fTime, !r.Time.IsZero())
	set(fLine, r.Line != "")
	set(fTID, r.TID != 0)
	set(fPass, r.Pass != 0)
	set(fScanner, r.Scanner != "")
	set(fCodes, len(r.Codes) != 0)
	set(fDest, r.Dest != "")
	set(fChute, r.Chute != 0)
	set(fReason, r.Reason != 0)
	set(fResult, r.Result != 0)
	set(fRoute, r.Route != "")
	set(fPlanVersion, r.PlanVersion != 0)
	set(fCmdSeq, r.CmdSeq != 0)
	set(fOutcome, r.Outcome != OutcomeNone)
	set(fContainer, r.Container != "")
	set(fCount, r.Count != 0)
	set(fDetail, r.Detail != "")
	set(fNoRead, r.NoRead)
	set(fCause, r.Cause != "")
	set(fAlarm, r.Alarm != "")
	set(fSeverity, r.Severity != "")
	set(fBy, r.By != "")
	return m
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRecord(b []byte, r *Record) []byte {
	m := r.mask()
	b = append(b, formatVersion)
	b = binary.AppendUvarint(b, r.Seq)
	b = append(b, byte(r.Kind))
	b = binary.AppendUvarint(b, m)
	if m&fTime != 0 {
		b = binary.AppendVarint(b, r.Time.UnixNano())
	}
	if m&fLine != 0 {
		b = appendString(b, r.Line)
	}
	if m&fTID != 0 {
		b = binary.AppendUvarint(b, uint64(r.TID))
	}
	if m&fPass != 0 {
		b = binary.AppendUvarint(b, uint64(r.Pass))
	}
	if m&fScanner != 0 {
		b = appendString(b, r.Scanner)
	}
	if m&fCodes != 0 {
		b = binary.AppendUvarint(b, uint64(len(r.Codes)))
		for _, c := range r.Codes {
			b = appendString(b, c)
		}
	}
	if m&fDest != 0 {
		b = appendString(b, r.Dest)
	}
	if m&fChute != 0 {
		b = binary.AppendUvarint(b, uint64(r.Chute))
	}
	if m&fReason != 0 {
		b = binary.AppendUvarint(b, uint64(r.Reason))
	}
	if m&fResult != 0 {
		b = binary.AppendUvarint(b, uint64(r.Result))
	}
	if m&fRoute != 0 {
		b = appendString(b, r.Route)
	}
	if m&fPlanVersion != 0 {
		b = binary.AppendUvarint(b, r.PlanVersion)
	}
	if m&fCmdSeq != 0 {
		b = binary.AppendUvarint(b, uint64(r.CmdSeq))
	}
	if m&fOutcome != 0 {
		b = append(b, byte(r.Outcome))
	}
	if m&fContainer != 0 {
		b = appendString(b, r.Container)
	}
	if m&fCount != 0 {
		b = binary.AppendUvarint(b, uint64(r.Count))
	}
	if m&fDetail != 0 {
		b = appendString(b, r.Detail)
	}
	if m&fCause != 0 {
		b = appendString(b, r.Cause)
	}
	if m&fAlarm != 0 {
		b = appendString(b, r.Alarm)
	}
	if m&fSeverity != 0 {
		b = appendString(b, r.Severity)
	}
	if m&fBy != 0 {
		b = appendString(b, r.By)
	}
	return b
}

// decoder reads a record's fields; the first error sticks and names the
// field.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(field, msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d: %s", ErrCorrupt, field, d.off, msg)
	}
}

func (d *decoder) byte1(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail(field, "truncated")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uvarint(field string, max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(field, "bad varint")
		return 0
	}
	if v > max {
		d.fail(field, fmt.Sprintf("value %d out of range", v))
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail(field, "bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) str(field string) string {
	start := d.off
	n := d.uvarint(field, uint64(len(d.b)))
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)-d.off) {
		d.off = start
		d.fail(field, fmt.Sprintf("length %d beyond end", n))
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

const (
	maxU16 = 1<<16 - 1
	maxU32 = 1<<32 - 1
)

func decodeRecord(data []byte, r *Record) error {
	*r = Record{}
	d := decoder{b: data}
	if v := d.byte1("version"); d.err == nil && v != formatVersion {
		d.fail("version", fmt.Sprintf("unknown format %d", v))
	}
	r.Seq = d.uvarint("seq", 1<<64-1)
	r.Kind = Kind(d.byte1("kind"))
	m := d.uvarint("mask", 1<<64-1)
	if d.err == nil && m&^fAll != 0 {
		d.fail("mask", fmt.Sprintf("unknown fields %#x", m&^fAll))
	}
	if m&fTime != 0 {
		if ns := d.varint("time"); d.err == nil {
			r.Time = time.Unix(0, ns).UTC()
		}
	}
	if m&fLine != 0 {
		r.Line = d.str("line")
	}
	if m&fTID != 0 {
		r.TID = uint32(d.uvarint("tid", maxU32))
	}
	if m&fPass != 0 {
		r.Pass = uint16(d.uvarint("pass", maxU16))
	}
	if m&fScanner != 0 {
		r.Scanner = d.str("scanner")
	}
	if m&fCodes != 0 {
		// Each code takes at least one byte, which bounds the count.
		n := d.uvarint("codes", uint64(len(d.b)))
		if d.err == nil && n > 0 {
			r.Codes = make([]string, 0, min(int(n), len(d.b)-d.off))
			for i := uint64(0); i < n && d.err == nil; i++ {
				r.Codes = append(r.Codes, d.str("code"))
			}
		}
	}
	if m&fDest != 0 {
		r.Dest = d.str("dest")
	}
	if m&fChute != 0 {
		r.Chute = uint16(d.uvarint("chute", maxU16))
	}
	if m&fReason != 0 {
		r.Reason = uint16(d.uvarint("reason", maxU16))
	}
	if m&fResult != 0 {
		r.Result = uint16(d.uvarint("result", maxU16))
	}
	if m&fRoute != 0 {
		r.Route = d.str("route")
	}
	if m&fPlanVersion != 0 {
		r.PlanVersion = d.uvarint("plan version", 1<<64-1)
	}
	if m&fCmdSeq != 0 {
		r.CmdSeq = uint16(d.uvarint("cmd seq", maxU16))
	}
	if m&fOutcome != 0 {
		r.Outcome = Outcome(d.byte1("outcome"))
	}
	if m&fContainer != 0 {
		r.Container = d.str("container")
	}
	if m&fCount != 0 {
		r.Count = uint32(d.uvarint("count", maxU32))
	}
	if m&fDetail != 0 {
		r.Detail = d.str("detail")
	}
	r.NoRead = m&fNoRead != 0
	if m&fCause != 0 {
		r.Cause = d.str("cause")
	}
	if m&fAlarm != 0 {
		r.Alarm = d.str("alarm")
	}
	if m&fSeverity != 0 {
		r.Severity = d.str("severity")
	}
	if m&fBy != 0 {
		r.By = d.str("by")
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail("end", fmt.Sprintf("%d trailing bytes", len(d.b)-d.off))
	}
	if d.err != nil {
		*r = Record{}
		return d.err
	}
	return nil
}
