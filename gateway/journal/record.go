package journal

import (
	"fmt"
	"time"
)

// Kind says what a journal record is about. The numeric values are stored
// on disk: never renumber, only add.
type Kind uint8

// Record kinds. The item kinds (KindDecision, KindOutcome, KindDuplicate)
// carry Line, TID and Pass; the others are about the sorter, its links,
// the plan or the gateway.
//
// Every kind below is written by the gateway; docs/operations.md
// ("Journal records") lists each with its fields. A kind nothing writes is
// retired: its number stays reserved (never reused) so that old journals
// still decode, its name stays so they still read well, and Append refuses
// it.
const (
	// KindUnknown is the zero Kind; Append stores it as given.
	KindUnknown Kind = 0
	// 1 was "read" (a scanner telegram): retired, the decision carries the
	// read.
	kindRetiredRead Kind = 1
	// KindDecision: the read and the sort plan's answer (Scanner, Codes,
	// NoRead, Dest, Chute, Reason, Route, PlanVersion). Opens the item.
	KindDecision Kind = 2
	// 3..6 were "command", "written", "taken", "confirmation": retired; the
	// outcome carries the confirmation's result and chute.
	kindRetiredCommand      Kind = 3
	kindRetiredWritten      Kind = 4
	kindRetiredTaken        Kind = 5
	kindRetiredConfirmation Kind = 6
	// KindOutcome: the end of the item's pass (Outcome). It is the only
	// kind that closes an open item: write exactly one per pass.
	KindOutcome Kind = 7
	// 8 and 9 were "late" and "lost" link events: retired; the outcome
	// says host-late or lost-disconnect.
	kindRetiredLate Kind = 8
	kindRetiredLost Kind = 9
	// KindMissed: confirmations were overwritten unread (Count). The
	// passes concerned still need their KindOutcome records.
	KindMissed Kind = 10
	// KindDuplicate: a read of an item whose command is still unconfirmed.
	// It neither opens nor closes the item: it is complete in itself.
	KindDuplicate Kind = 11
	// KindPlanInstalled: a sort plan became active on Line (PlanVersion,
	// Count rules, Detail: name and files, Cause: who asked).
	KindPlanInstalled Kind = 12
	// KindContainerClose: a container left its chute (Chute, Container,
	// Route, Count items, Detail the cause).
	KindContainerClose Kind = 13
	// KindChuteState: a chute's full or disabled bit changed (Chute,
	// Detail "full on" …, Cause plc or technician, Count the changes it
	// stands for: 1, or more when faster changes were coalesced).
	KindChuteState Kind = 14
	// KindLinkState: the line's PLC link changed state (Detail "plc name:
	// from -> to", Cause the link's last error, Count the changes it
	// stands for).
	KindLinkState Kind = 15
	// 16 was "note" (free text): retired; start and stop have kinds.
	kindRetiredNote Kind = 16
	// KindPlanRefused: a plan load failed and the old plan stays (Detail
	// the error with file:line:col, Cause who asked, PlanVersion and Count
	// when the plan parsed).
	KindPlanRefused Kind = 17
	// KindStart: the gateway started (Detail version and lines).
	KindStart Kind = 18
	// KindStop: the gateway stopped (Cause why, Detail the failure if
	// any, Count items recorded lost at the stop).
	KindStop Kind = 19
	// KindAlarm: an alarm changed state (Alarm its id, Severity, Detail
	// its text, Cause the transition: raised, acked, cleared, shelved,
	// unshelved; By the technician for acked and shelved; Count the
	// minutes for shelved).
	KindAlarm Kind = 20
	// KindOperatorAction: a person or machine asked for an action over
	// HTTP (Detail "action=… target=… result=… who=…", By who: the
	// technician's name or "token", Cause the result: ok, failed,
	// refused; Line, Chute, Alarm the target when it has them).
	KindOperatorAction Kind = 21
	// KindLogin: a technician logged in or out, or a login failed (Cause
	// login, logout, failed, locked; By the name given; Detail the role
	// or why, and the client address).
	KindLogin Kind = 22
	// KindContainerLoad: a closed container was loaded onto a van
	// (Container, Chute, Route, Detail the van id, By who, Cause the
	// source: api, page, dock-scan). Kinds 23..29 are consolidation's.
	KindContainerLoad Kind = 23
	// KindVanDepart: a van left with the containers loaded onto it
	// (Route, Detail the van id, Count its containers, By who, Cause
	// the source).
	KindVanDepart Kind = 24
	// KindContainerBook: a divert the PLC confirmed for an item the
	// gateway had no open pass for (its pass was closed lost-at-restart
	// by a crash): TID, Chute entered, Result, Container it is booked to.
	KindContainerBook Kind = 25
	// KindUpstreamCursor: the upstream publisher's cursor (Detail the last
	// seq JetStream acknowledged, in decimal; Cause the stream). Written
	// by gateway/upstream, never published itself.
	KindUpstreamCursor Kind = 30
	// KindUpstreamResult: the result of a plan offered from upstream
	// (Line, PlanVersion, Detail the object and any errors with
	// file:line:col, Cause "installed" or "refused").
	KindUpstreamResult Kind = 31

	kindMax = KindUpstreamResult
)

var kindNames = [...]string{
	KindUnknown:             "unknown",
	kindRetiredRead:         "read",
	KindDecision:            "decision",
	kindRetiredCommand:      "command",
	kindRetiredWritten:      "written",
	kindRetiredTaken:        "taken",
	kindRetiredConfirmation: "confirmation",
	KindOutcome:             "outcome",
	kindRetiredLate:         "late",
	kindRetiredLost:         "lost",
	KindMissed:              "missed",
	KindDuplicate:           "duplicate",
	KindPlanInstalled:       "plan-installed",
	KindContainerClose:      "container-close",
	KindChuteState:          "chute-state",
	KindLinkState:           "link-state",
	kindRetiredNote:         "note",
	KindPlanRefused:         "plan-refused",
	KindStart:               "start",
	KindStop:                "stop",
	KindAlarm:               "alarm",
	KindOperatorAction:      "operator-action",
	KindLogin:               "login",
	KindContainerLoad:       "container-load",
	KindVanDepart:           "van-depart",
	KindContainerBook:       "container-book",
	KindUpstreamCursor:      "upstream-cursor",
	KindUpstreamResult:      "upstream-result",
}

// String names the kind as the status page and the JSON show it.
func (k Kind) String() string {
	if k <= kindMax && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Retired reports whether k is a kind nothing writes any more: records of
// it decode (and are named) as before, but Append refuses new ones.
func (k Kind) Retired() bool {
	switch k {
	case kindRetiredRead, kindRetiredCommand, kindRetiredWritten, kindRetiredTaken,
		kindRetiredConfirmation, kindRetiredLate, kindRetiredLost, kindRetiredNote:
		return true
	}
	return false
}

// opens reports whether a record of this kind marks its item as open. The
// retired read and command kinds opened items too; their open entries in
// an old journal are closed lost-at-restart when it is opened.
func (k Kind) opens() bool {
	return k == KindDecision || k == kindRetiredRead || k == kindRetiredCommand
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s && n != "" && k != int(KindUnknown) {
			return Kind(k), nil
		}
	}
	// A kind this build has no name for reads as "kind(N)" (String).
	var n uint8
	if _, err := fmt.Sscanf(s, "kind(%d)", &n); err == nil && Kind(n).String() == s {
		return Kind(n), nil
	}
	return KindUnknown, fmt.Errorf("journal: unknown record kind %q", s)
}

// MarshalText makes a Kind a string in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText accepts the names Kind.String gives.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Outcome is how one pass of an item ended. Values 1..9 are the PLC's
// confirmation result codes (contract "Result"); the rest are the host's
// own verdicts when no confirmation can come. The values are stored on
// disk: never renumber, only add.
type Outcome uint8

// Outcomes.
const (
	// OutcomeNone: the record is not an outcome.
	OutcomeNone Outcome = 0
	// OutcomeDiverted: result 1, diverted into the commanded chute.
	OutcomeDiverted Outcome = 1
	// OutcomeDivertedOther: result 2, the PLC put it into another chute.
	OutcomeDivertedOther Outcome = 2
	// OutcomeRecirculatedFull: result 3, chute full or disabled on arrival.
	OutcomeRecirculatedFull Outcome = 3
	// OutcomeRecirculatedLate: result 4, no command before the decision point.
	OutcomeRecirculatedLate Outcome = 4
	// OutcomeRejected: result 5, sent to the reject chute.
	OutcomeRejected Outcome = 5
	// OutcomeLost: result 6, the PLC lost tracking.
	OutcomeLost Outcome = 6
	// OutcomeRefused: result 7, the PLC refused the command.
	OutcomeRefused Outcome = 7
	// OutcomeRecirculated: result 8, recirculated as commanded (chute 0).
	OutcomeRecirculated Outcome = 8
	// OutcomeHostLost: result 9, the PLC had declared the host lost.
	OutcomeHostLost Outcome = 9
	// OutcomeHostLate: the command could not be written within the
	// decision budget; never sent, the PLC recirculates the item.
	OutcomeHostLate Outcome = 10
	// OutcomeLostDisconnect: the command was written but the link lost it
	// (cold PLC restart, link closed with the command outstanding).
	OutcomeLostDisconnect Outcome = 11
	// OutcomeMissedConfirmation: the PLC overwrote the confirmation unread.
	OutcomeMissedConfirmation Outcome = 12
	// OutcomeLostAtRestart: the gateway stopped (or crashed) with the item
	// open; recorded by Open when the journal is reopened.
	OutcomeLostAtRestart Outcome = 13
	// OutcomeDuplicate: a second read while the command was unconfirmed.
	OutcomeDuplicate Outcome = 14
	// OutcomeNotSent: the gateway did not command the item at all (queue
	// full, draining, link down); the PLC recirculates it.
	OutcomeNotSent Outcome = 15
	// OutcomeTimeout: no confirmation came within the gateway's
	// confirmation timeout and none was reported missed.
	OutcomeTimeout Outcome = 16

	outcomeMax = OutcomeTimeout
)

var outcomeNames = [...]string{
	OutcomeNone:               "none",
	OutcomeDiverted:           "diverted",
	OutcomeDivertedOther:      "diverted-other",
	OutcomeRecirculatedFull:   "recirculated-full",
	OutcomeRecirculatedLate:   "recirculated-late",
	OutcomeRejected:           "rejected",
	OutcomeLost:               "lost",
	OutcomeRefused:            "refused",
	OutcomeRecirculated:       "recirculated",
	OutcomeHostLost:           "host-lost",
	OutcomeHostLate:           "host-late",
	OutcomeLostDisconnect:     "lost-disconnect",
	OutcomeMissedConfirmation: "missed-confirmation",
	OutcomeLostAtRestart:      "lost-at-restart",
	OutcomeDuplicate:          "duplicate",
	OutcomeNotSent:            "not-sent",
	OutcomeTimeout:            "timeout",
}

// String names the outcome for the journal, metrics and the status page.
func (o Outcome) String() string {
	if o <= outcomeMax {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// ParseOutcome is the inverse of Outcome.String.
func ParseOutcome(s string) (Outcome, error) {
	for o, n := range outcomeNames {
		if n == s {
			return Outcome(o), nil
		}
	}
	return OutcomeNone, fmt.Errorf("journal: unknown outcome %q", s)
}

// MarshalText makes an Outcome a string in JSON.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText accepts the names Outcome.String gives.
func (o *Outcome) UnmarshalText(b []byte) error {
	v, err := ParseOutcome(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// OutcomeFromResult maps a PLC confirmation result code (1..9) to its
// Outcome; ok is false for any other code.
func OutcomeFromResult(result uint16) (o Outcome, ok bool) {
	if result >= 1 && result <= 9 {
		return Outcome(result), true
	}
	return OutcomeNone, false
}

// Recirculates reports whether the item stays on the sorter after this
// outcome, so its next read is a new pass.
func (o Outcome) Recirculates() bool {
	switch o {
	case OutcomeRecirculatedFull, OutcomeRecirculatedLate, OutcomeRecirculated,
		OutcomeHostLost, OutcomeHostLate, OutcomeNotSent:
		return true
	}
	return false
}

// Record is one journal entry. Which fields are set depends on Kind; unset
// fields cost nothing on disk.
type Record struct {
	// Seq is the journal's sequence number, assigned by Append (any value
	// the caller sets is replaced). Seq order is append order.
	Seq uint64 `json:"seq"`
	// Time is when the event happened; Append sets it to the journal's
	// clock when zero. Stored with nanosecond precision, read back in UTC.
	Time time.Time `json:"time"`
	// Line is the sorter line's configured name.
	Line string `json:"line,omitempty"`
	Kind Kind   `json:"kind"`
	// TID and Pass (1 for the first read, +1 per recirculation) name one
	// pass of one item on Line. Pass 0 marks a read that never became a
	// tracked pass (its outcome record stands alone).
	TID     uint32   `json:"tid,omitempty"`
	Pass    uint16   `json:"pass,omitempty"`
	Scanner string   `json:"scanner,omitempty"`
	Codes   []string `json:"codes,omitempty"`
	NoRead  bool     `json:"noread,omitempty"`
	// Dest is the destination key found in the codes.
	Dest string `json:"dest,omitempty"`
	// Chute is the commanded chute, or for a confirmation the chute the
	// item entered (0 if none).
	Chute  uint16 `json:"chute,omitempty"`
	Reason uint16 `json:"reason,omitempty"` // contract reason code
	Result uint16 `json:"result,omitempty"` // contract result code
	Route  string `json:"route,omitempty"`
	// PlanVersion is the version of the plan the item was decided under.
	PlanVersion uint64 `json:"plan_version,omitempty"`
	// CmdSeq is the divert command's ring sequence number (written, taken,
	// lost) or the confirmation's NUM.
	CmdSeq    uint16  `json:"cmd_seq,omitempty"`
	Outcome   Outcome `json:"outcome,omitempty"`
	Container string  `json:"container,omitempty"`
	// Count is a number that goes with the kind: items in a closed
	// container, confirmations missed, rules in a plan, the state changes
	// a chute-state or link-state record stands for, lines at start, items
	// open at stop.
	Count  uint32 `json:"count,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Cause says who or what made a sorter, plan or gateway event
	// happen: who asked for a plan (start, sighup, reload-button, api),
	// who changed a chute (plc, technician), a link's last error, why the
	// gateway stopped.
	Cause string `json:"cause,omitempty"`
	// Alarm, Severity and By describe an alarm transition (KindAlarm):
	// the alarm's id, its severity, and who acknowledged or shelved it.
	Alarm    string `json:"alarm,omitempty"`
	Severity string `json:"severity,omitempty"`
	By       string `json:"by,omitempty"`
}
