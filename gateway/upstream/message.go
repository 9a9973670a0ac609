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
	b, err := json.Marshal(Envelope{V: Schema, Site: site, Record: *r})
	if err != nil {
		return Message{}, fmt.Errorf("encode record %d: %w", r.Seq, err)
	}
	return Message{Subject: Subject(site, r), ID: MsgID(site, r.Seq), Seq: r.Seq, Data: b}, nil
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
