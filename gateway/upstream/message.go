// Package upstream publishes the gateway's journal to the site's message
// bus, with the journal as the outbox: records are read in seq order once
// they are durable, published with a message id of <site>/<seq> so that
// the server's de-duplication absorbs a re-publish, and the last seq the
// server acknowledged (the cursor) is written back to the journal. A
// restart or a reconnect resumes from the cursor. Sorting never waits on
// it: the publisher only reads committed records, and an unreachable
// server only grows the backlog, which is a metric and, past a threshold,
// an alarm.
//
// The package knows no NATS: it publishes through the Sink interface.
// cmd/internal/upstream implements Sink with NATS JetStream and wires the
// server, the stream and the configuration (docs/upstream.md).
package upstream

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"sortgw/gateway/journal"
)

// Schema is the version of the message payload (docs/upstream.md). A
// change that removes or renames a field bumps it.
const Schema = 1

// Message is one record ready to publish.
type Message struct {
	// Subject is sortgw.<site>.<line>.<kind>.
	Subject string
	// ID is <site>/<seq>: the Nats-Msg-Id header.
	ID string
	// Seq is the record's journal seq.
	Seq  uint64
	Data []byte
}

// Envelope is the JSON payload of every message.
type Envelope struct {
	// V is the schema version (Schema).
	V int `json:"v"`
	// Site is the site's name; with Record.Seq it identifies the record
	// for good (the message id).
	Site   string         `json:"site"`
	Record journal.Record `json:"record"`
}

// GatewayToken stands for the line of records about the whole gateway
// (start, stop, gateway-wide alarms) in a subject.
const GatewayToken = "_gateway"

// Subject is the subject a record of site is published on:
// sortgw.<site>.<line>.<kind>, every token made safe for NATS ('.', '*',
// '>' and white space become '_'; an empty line is GatewayToken).
func Subject(site string, r *journal.Record) string {
	line := r.Line
	if line == "" {
		line = GatewayToken
	}
	return "sortgw." + Token(site) + "." + Token(line) + "." + Token(r.Kind.String())
}

// Token makes s one NATS subject token.
func Token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(c rune) rune {
		switch {
		case c == '.' || c == '*' || c == '>' || c <= ' ' || c == 0x7f:
			return '_'
		}
		return c
	}, s)
}

// MsgID is the message id of a record: <site>/<seq>.
func MsgID(site string, seq uint64) string { return site + "/" + strconv.FormatUint(seq, 10) }

// Encode makes the message of a record.
func Encode(site string, r *journal.Record) (Message, error) {
	b, err := AppendPayload(nil, site, r)
	if err != nil {
		return Message{}, err
	}
	return Message{Subject: Subject(site, r), ID: MsgID(site, r.Seq), Seq: r.Seq, Data: b}, nil
}

// AppendPayload appends the JSON payload of a record (an Envelope) to dst
// and returns the extended slice. The bytes are exactly what
// encoding/json makes of the Envelope (TestAppendPayloadMatchesJSON,
// FuzzAppendPayload), written without reflection and without allocating
// beyond dst's growth: the publisher encodes every record of a round into
// one buffer, so upstream adds little garbage to the sorting process.
func AppendPayload(dst []byte, site string, r *journal.Record) ([]byte, error) {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, Schema, 10)
	dst = append(dst, `,"site":`...)
	dst = appendString(dst, site)
	dst = append(dst, `,"record":{"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"time":`...)
	if y := r.Time.Year(); r.Time.Location() == time.UTC && y >= 0 && y <= 9999 {
		dst = append(dst, '"')
		dst = r.Time.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	} else { // another zone or a year JSON cannot hold: the library's rules
		b, err := r.Time.MarshalJSON()
		if err != nil {
			return dst, fmt.Errorf("encode record %d: %w", r.Seq, err)
		}
		dst = append(dst, b...)
	}
	dst = appendField(dst, "line", r.Line)
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, r.Kind.String())
	dst = appendUint(dst, "tid", uint64(r.TID))
	dst = appendUint(dst, "pass", uint64(r.Pass))
	dst = appendField(dst, "scanner", r.Scanner)
	if len(r.Codes) > 0 {
		dst = append(dst, `,"codes":[`...)
		for i, c := range r.Codes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, c)
		}
		dst = append(dst, ']')
	}
	if r.NoRead {
		dst = append(dst, `,"noread":true`...)
	}
	dst = appendField(dst, "dest", r.Dest)
	dst = appendUint(dst, "chute", uint64(r.Chute))
	dst = appendUint(dst, "reason", uint64(r.Reason))
	dst = appendUint(dst, "result", uint64(r.Result))
	dst = appendField(dst, "route", r.Route)
	dst = appendUint(dst, "plan_version", r.PlanVersion)
	dst = appendUint(dst, "cmd_seq", uint64(r.CmdSeq))
	if r.Outcome != 0 {
		dst = append(dst, `,"outcome":`...)
		dst = appendString(dst, r.Outcome.String())
	}
	dst = appendField(dst, "container", r.Container)
	dst = appendUint(dst, "count", uint64(r.Count))
	dst = appendField(dst, "detail", r.Detail)
	dst = appendField(dst, "cause", r.Cause)
	dst = appendField(dst, "alarm", r.Alarm)
	dst = appendField(dst, "severity", r.Severity)
	dst = appendField(dst, "by", r.By)
	return append(dst, "}}"...), nil
}

// appendField appends ,"name":"v" unless v is empty (omitempty).
func appendField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendString(dst, v)
}

// appendUint appends ,"name":v unless v is 0 (omitempty).
func appendUint(dst []byte, name string, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendUint(dst, v, 10)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does
// (HTML-safe: <, > and & escaped; invalid UTF-8 as \ufffd; U+2028 and
// U+2029 escaped), so that the payload's bytes do not depend on the
// encoder.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Decode reads a message's payload; it refuses a schema it does not know.
func Decode(data []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("upstream message: %w", err)
	}
	if e.V != Schema {
		return e, fmt.Errorf("upstream message: schema version %d, want %d", e.V, Schema)
	}
	// Every published record has both (Published, Append): a message
	// without them did not come from a gateway.
	if e.Record.Kind == journal.KindUnknown || e.Record.Seq == 0 {
		return e, fmt.Errorf("upstream message: record without kind or seq")
	}
	return e, nil
}

// Published reports whether records of kind k go upstream. Decisions
// stay local (the outcome carries the destination, chute and plan
// version) and the publisher's own cursor is bookkeeping.
func Published(k journal.Kind) bool {
	return k != journal.KindDecision && k != journal.KindUpstreamCursor && k != journal.KindUnknown
}

// Deduper is what a consumer keeps to see each record once even when the
// server's de-duplication window has passed (a hub down longer than the
// window receives a re-publish as a new message): the highest seq seen
// per site. Records of one site arrive in seq order on one stream, so
// anything at or below it is a repeat.
type Deduper struct{ last map[string]uint64 }

// Seen reports whether the record was seen before, and remembers it.
func (d *Deduper) Seen(e *Envelope) bool {
	if d.last == nil {
		d.last = map[string]uint64{}
	}
	if e.Record.Seq <= d.last[e.Site] {
		return true
	}
	d.last[e.Site] = e.Record.Seq
	return false
}
