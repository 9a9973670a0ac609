package loadtest

import (
	"sync"

	"sortgw/gateway"
	"sortgw/gateway/journal"
)

// passKey names one pass of one item on one line.
type passKey struct {
	line int
	tid  uint32
	pass uint16
}

// passState is what the journal saw of one pass.
type passState struct {
	decided  bool
	outcomes uint8
	outcome  journal.Outcome
	result   uint16
}

// tallyJournal counts what the lines record on the way to the real
// journal: outcomes by kind, and every pass's decision and outcomes, so the
// bench can check "exactly one outcome per pass".
type tallyJournal struct {
	inner  gateway.Journal
	lineNo map[string]int

	mu         sync.Mutex
	byOutcome  [32]uint64
	passes     map[passKey]*passState
	passless   map[passKey]uint8 // outcomes of reads that never became a pass (read queue full), by line and TID
	duplicates uint64            // duplicate reads
	missed     uint64            // confirmations the PLC overwrote unread
	records    uint64
	refused    uint64 // records the journal refused

	// tamper, in tests only, stands for a gateway bug: each record the
	// lines hand over is replaced by what it returns (none: dropped).
	tamper func(journal.Record) []journal.Record
}

func newTallyJournal(inner gateway.Journal, lines []string) *tallyJournal {
	t := &tallyJournal{inner: inner, lineNo: map[string]int{}, passes: map[passKey]*passState{}, passless: map[passKey]uint8{}}
	for i, n := range lines {
		t.lineNo[n] = i
	}
	return t
}

func (t *tallyJournal) Append(rec journal.Record) (uint64, error) {
	if t.tamper == nil {
		return t.append(rec)
	}
	var seq uint64
	var err error
	for _, r := range t.tamper(rec) {
		seq, err = t.append(r)
	}
	return seq, err
}

func (t *tallyJournal) append(rec journal.Record) (uint64, error) {
	t.mu.Lock()
	t.records++
	switch rec.Kind {
	case journal.KindDecision, journal.KindOutcome:
		var ps *passState
		if rec.Pass > 0 {
			k := passKey{line: t.lineNo[rec.Line], tid: rec.TID, pass: rec.Pass}
			ps = t.passes[k]
			if ps == nil {
				ps = &passState{}
				t.passes[k] = ps
			}
		}
		if rec.Kind == journal.KindDecision {
			if ps != nil {
				ps.decided = true
			}
			break
		}
		if int(rec.Outcome) < len(t.byOutcome) {
			t.byOutcome[rec.Outcome]++
		}
		if ps != nil {
			ps.outcomes++
			ps.outcome, ps.result = rec.Outcome, rec.Result
		} else {
			t.passless[passKey{line: t.lineNo[rec.Line], tid: rec.TID}]++
		}
	case journal.KindDuplicate:
		t.duplicates++
	case journal.KindMissed:
		t.missed += uint64(rec.Count)
	}
	t.mu.Unlock()
	seq, err := t.inner.Append(rec)
	if err != nil {
		t.mu.Lock()
		t.refused++
		t.mu.Unlock()
	}
	return seq, err
}

// lateMissed: host-late outcomes and missed confirmations so far.
func (t *tallyJournal) lateMissed() (late, missed uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byOutcome[journal.OutcomeHostLate], t.missed
}

// tallyRunner is the journal as the gateway runs it, its own start and
// stop records counted with the lines' (so that every record the journal
// was handed is in the tally).
type tallyRunner struct {
	*journal.Journal
	t *tallyJournal
}

func (r tallyRunner) Append(rec journal.Record) (uint64, error) { return r.t.Append(rec) }
