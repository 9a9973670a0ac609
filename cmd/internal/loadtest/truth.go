package loadtest

import (
	"fmt"
	"io"
	"slices"

	"sortgw/gateway/journal"
)

// TruthCheck holds the journal against the emulated sorters' ground truth.
type TruthCheck struct {
	Passes           int // passes the gateway tracked (decided or given an outcome)
	Decided          int
	MissingOutcome   int // decided, no outcome
	DuplicateOutcome int // more than one outcome for one pass
	SimPasses        int
	SimCommands      int // commands the PLCs took
	DuplicateCommand int // sim passes with more than one command taken
	Confirmed        int // gateway outcomes carrying a PLC result
	Phantom          int // a result the gateway recorded that the PLC never gave that TID
	Unreported       int // PLC results the gateway has no result for ...
	Absorbed         int // ... of which covered by a lost, missed or timeout outcome of the TID
	Evicted          int // records the sims dropped to bound memory (not checked)
	// NeverRead: sim passes of a TID beyond the gateway's passes of it:
	// scans that never reached the gateway (a scanner down or its port
	// taken), which the PLC recirculated uncommanded. Not an error.
	NeverRead int
	// The direct feed: telegrams its scanners sent, and of them those
	// whose TID the journal holds no outcome for (a pass, or a read the
	// gateway could not queue): must be 0.
	FeedSent, FeedUnrecorded int
	// Missed confirmations: LinkMissed counted by the gateway's links;
	// PLCUnread the emulated PLCs overwrote before a Modbus read of
	// CONFIRM_COUNT saw them; PLCInScan those it wrote more than 16 of in
	// one scan, which no host could read at any poll rate. MissedExact
	// (Modbus, no faults injected): LinkMissed must equal PLCUnread while
	// the links never reconnected. A reconnect (a read timed out under
	// load) can lose a reply the PLC served, so then the gateway may count
	// more than the PLC, never fewer.
	LinkMissed, PLCUnread, PLCInScan uint64
	MissedExact                      bool
	Reconnects                       uint64
	Records                          RecordCheck
	Examples                         []string
}

// RecordCheck: every record the lines handed the journal is kept, or
// counted as not kept.
type RecordCheck struct {
	Appended  uint64 // records the lines and the gateway appended (Append calls)
	Refused   uint64 // ... that the journal refused
	LineErrs  uint64 // the lines' count of refused records (snapshot Totals.JournalErrs)
	Journal   uint64 // records the journal accepted (Stats.Appended)
	Committed uint64 // ... and committed (Stats.Committed, after Close)
	Full      uint64 // refusals the journal counted as full (Stats.Full)
	NotKept   uint64 // records neither kept nor counted: must be 0
}

func (c *RecordCheck) check(tally *tallyJournal, lines []*benchLine, st journal.Stats) {
	c.Appended, c.Refused = tally.records, tally.refused
	for _, bl := range lines {
		c.LineErrs += bl.line.Snapshot().Totals.JournalErrs
	}
	c.Journal, c.Committed, c.Full = st.Appended, st.Committed, st.Full
	if c.Journal > c.Committed {
		c.NotKept += c.Journal - c.Committed
	}
	if c.Refused > c.LineErrs {
		c.NotKept += c.Refused - c.LineErrs
	}
	if accepted := c.Appended - c.Refused; accepted != c.Journal {
		// Handed over and accepted, yet not in the journal's count (or
		// the other way round): the tally and the journal disagree.
		c.NotKept += max(accepted, c.Journal) - min(accepted, c.Journal)
	}
}

// OK: exactly one outcome per pass, no duplicate command, no phantom and
// no unexplained result.
func (t *TruthCheck) OK() bool {
	return t.MissingOutcome == 0 && t.DuplicateOutcome == 0 && t.DuplicateCommand == 0 && t.Phantom == 0 && t.Unreported == t.Absorbed &&
		t.Records.NotKept == 0 && t.FeedUnrecorded == 0 && t.missedOK()
}

// missedOK: the missed confirmations the gateway counted against those
// the PLC overwrote unread (see MissedExact).
func (t *TruthCheck) missedOK() bool {
	switch {
	case !t.MissedExact:
		return true
	case t.Reconnects == 0:
		return t.LinkMissed == t.PLCUnread
	default:
		return t.LinkMissed >= t.PLCUnread
	}
}

func (t *TruthCheck) example(s string) {
	if len(t.Examples) < 10 {
		t.Examples = append(t.Examples, s)
	}
}

func (t *TruthCheck) print(w io.Writer) {
	verdict := "OK"
	if !t.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "ground truth %s: gateway passes %d (decided %d), missing outcome %d, duplicate outcome %d; "+
		"sim passes %d, commands taken %d, duplicate command %d; results matched %d, phantom %d, unreported %d (absorbed by lost/missed/timeout %d)\n",
		verdict, t.Passes, t.Decided, t.MissingOutcome, t.DuplicateOutcome, t.SimPasses, t.SimCommands, t.DuplicateCommand,
		t.Confirmed-t.Phantom, t.Phantom, t.Unreported, t.Absorbed)
	if t.MissedExact {
		m := "matches"
		if !t.missedOK() {
			m = "DOES NOT match"
		} else if t.Reconnects > 0 {
			m = fmt.Sprintf("at least the PLC's: %d reconnects", t.Reconnects)
		}
		fmt.Fprintf(w, "missed confirmations, whole run: the gateway counted %d; the PLC overwrote %d before a read saw them (%s), %d of them more than 16 in one scan, which no host could read\n",
			t.LinkMissed, t.PLCUnread, m, t.PLCInScan)
	} else {
		fmt.Fprintf(w, "missed confirmations, whole run: the gateway counted %d; the PLC wrote %d more than 16 in one scan, which no host could read\n",
			t.LinkMissed, t.PLCInScan)
	}
	r := &t.Records
	fmt.Fprintf(w, "journal records: appended %d, refused %d (lines counted %d, journal full %d); journal accepted %d, committed %d; not kept and not counted %d; sim passes never read by the gateway %d\n",
		r.Appended, r.Refused, r.LineErrs, r.Full, r.Journal, r.Committed, r.NotKept, t.NeverRead)
	if t.FeedSent > 0 {
		fmt.Fprintf(w, "direct feed: telegrams sent %d, without an outcome in the journal %d\n", t.FeedSent, t.FeedUnrecorded)
	}
	for _, e := range t.Examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
}

// absorbs: an outcome that stands for a PLC result the gateway could not
// see (the link went away, the confirmation was overwritten, or the
// gateway stopped first).
func absorbs(o journal.Outcome) bool {
	switch o {
	case journal.OutcomeLostDisconnect, journal.OutcomeMissedConfirmation, journal.OutcomeLostAtRestart, journal.OutcomeTimeout:
		return true
	}
	return false
}

// gwItem is what the journal holds for one TID of one line.
type gwItem struct {
	results  []uint16 // PLC results recorded, one per pass that had one
	absorber int      // outcomes that stand for a result the gateway could not see
	passes   int
}

// checkTruth runs after the gateway stopped (every pass closed, the
// journal closed).
func checkTruth(lines []*benchLine, tally *tallyJournal, st journal.Stats) *TruthCheck {
	t := &TruthCheck{}
	tally.mu.Lock()
	defer tally.mu.Unlock()
	t.Records.check(tally, lines, st)
	gw := t.passes(lines, tally)
	for i, bl := range lines {
		t.line(bl, gw[i])
		if bl.feed != nil {
			t.feed(i, bl, tally)
		}
	}
	return t
}

// feed holds the direct feed's telegrams against the journal: the feed
// numbers its TIDs 1, 2, 3, ... and reads each once, so every TID up to
// the count sent has its first pass in the journal, or an outcome
// without a pass (a read the gateway had no room to queue).
func (t *TruthCheck) feed(i int, bl *benchLine, tally *tallyJournal) {
	n := bl.feed.Sent()
	t.FeedSent += int(n)
	for tid := uint32(1); uint64(tid) <= n && tid != 0; tid++ {
		ps := tally.passes[passKey{line: i, tid: tid, pass: 1}]
		if (ps == nil || ps.outcomes == 0) && tally.passless[passKey{line: i, tid: tid}] == 0 {
			t.FeedUnrecorded++
			t.example(fmt.Sprintf("%s tid %d: sent by the feed, no outcome in the journal", bl.name, tid))
		}
	}
}

// passes counts the journal's passes and gathers its results by line and
// TID.
func (t *TruthCheck) passes(lines []*benchLine, tally *tallyJournal) []map[uint32]*gwItem {
	gw := make([]map[uint32]*gwItem, len(lines))
	for i := range gw {
		gw[i] = map[uint32]*gwItem{}
	}
	for k, ps := range tally.passes {
		t.Passes++
		if ps.decided {
			t.Decided++
			if ps.outcomes == 0 {
				t.MissingOutcome++
				t.example(fmt.Sprintf("%s tid %d pass %d: decided, no outcome", lines[k.line].name, k.tid, k.pass))
			}
		}
		if ps.outcomes > 1 {
			t.DuplicateOutcome++
			t.example(fmt.Sprintf("%s tid %d pass %d: %d outcomes", lines[k.line].name, k.tid, k.pass, ps.outcomes))
		}
		g := gw[k.line][k.tid]
		if g == nil {
			g = &gwItem{}
			gw[k.line][k.tid] = g
		}
		g.passes++
		if ps.result != 0 {
			g.results = append(g.results, ps.result)
			t.Confirmed++
		}
		if absorbs(ps.outcome) {
			g.absorber++
		}
	}
	return gw
}

// line holds one line's sim record against the journal's.
func (t *TruthCheck) line(bl *benchLine, gw map[uint32]*gwItem) {
	rep := bl.sim.Report()
	snap := bl.line.Snapshot()
	t.LinkMissed += snap.PLC.Missed
	t.Reconnects += snap.PLC.Reconnects
	unread, inScan := bl.sim.PLC().UnreadConfirmations()
	t.PLCUnread += unread
	t.PLCInScan += inScan
	seen := map[uint32]bool{}
	for _, it := range rep.Items {
		seen[it.TID] = true
		if bl.feed != nil && len(it.Passes) > 1 {
			// Commissioning: each command is an item of its own, and
			// the direct feed reads every TID once.
			t.DuplicateCommand++
			t.example(fmt.Sprintf("%s tid %d: %d commands taken", bl.name, it.TID, len(it.Passes)))
		}
		var simRes []uint16
		for _, p := range it.Passes {
			t.SimPasses++
			t.SimCommands += len(p.Commands)
			if len(p.Commands) > 1 {
				t.DuplicateCommand++
				t.example(fmt.Sprintf("%s tid %d pass %d: %d commands taken", bl.name, it.TID, p.Pass, len(p.Commands)))
			}
			for _, c := range p.Commands {
				if c.Result != 0 {
					simRes = append(simRes, c.Result)
				}
			}
		}
		if g := gw[it.TID]; g == nil {
			t.NeverRead += len(it.Passes)
		} else if len(it.Passes) > g.passes {
			t.NeverRead += len(it.Passes) - g.passes
		}
		t.results(bl.name, it.TID, simRes, gw[it.TID])
	}
	t.Evicted += rep.Evicted
	if rep.Evicted > 0 {
		return // the sim dropped its oldest records: absence proves nothing
	}
	for tid, g := range gw {
		if !seen[tid] && len(g.results) > 0 {
			t.Phantom += len(g.results)
			t.example(fmt.Sprintf("%s tid %d: results for an item the PLC never had", bl.name, tid))
		}
	}
}

// results compares one TID's PLC results with the gateway's, as a
// multiset difference both ways.
func (t *TruthCheck) results(line string, tid uint32, simRes []uint16, g *gwItem) {
	var gres []uint16
	absorber := 0
	if g != nil {
		gres, absorber = slices.Clone(g.results), g.absorber
	}
	for _, r := range simRes {
		if j := slices.Index(gres, r); j >= 0 {
			gres = slices.Delete(gres, j, j+1)
			continue
		}
		t.Unreported++
		if absorber > 0 {
			absorber--
			t.Absorbed++
		} else {
			t.example(fmt.Sprintf("%s tid %d: PLC result %d, gateway has none for it", line, tid, r))
		}
	}
	for _, r := range gres {
		t.Phantom++
		t.example(fmt.Sprintf("%s tid %d: gateway recorded result %d the PLC never gave", line, tid, r))
	}
}
