package gateway

import (
	"sortgw/gateway/journal"
)

// Journal is what a line needs from the audit journal; *journal.Journal
// satisfies it. Append must not block: the line calls it on its decision
// path. An error (queue full, closed) is counted, never waited on.
type Journal interface {
	Append(rec journal.Record) (uint64, error)
}

// nopJournal discards records (a line without a journal, in tests).
type nopJournal struct{}

func (nopJournal) Append(journal.Record) (uint64, error) { return 0, nil }

// Result codes of a PLC confirmation (contract "Result").
const (
	ResultDiverted        = 1
	ResultOverride        = 2
	ResultRecircFull      = 3
	ResultRecircLate      = 4
	ResultReject          = 5
	ResultLostTracking    = 6
	ResultRefused         = 7
	ResultRecircCommanded = 8
	ResultRecircHostLost  = 9
	maxResult             = 9
)

// outcomeOf maps a confirmation result to its journal outcome.
func outcomeOf(result uint16) journal.Outcome {
	if o, ok := journal.OutcomeFromResult(result); ok {
		return o
	}
	return journal.OutcomeRefused
}

// maxOutcome bounds the per-outcome arrays.
const maxOutcome = 32
