package fieldbussim

import (
	"sort"
	"time"
)

// Report is the sim's ground truth: what physically happened to every item
// and every command, to hold the gateway's journal against. It is
// JSON-serialisable.
type Report struct {
	Inducted uint64       `json:"inducted"`
	Commands uint64       `json:"commands"` // commands the PLC took off the ring (each once)
	Counts   ReportCounts `json:"counts"`
	// Evicted counts the oldest finished records dropped to bound memory
	// (over Config.TruthLimit records, default 200,000); Counts still
	// include them.
	Evicted int `json:"evicted,omitempty"`
	// Kept is the number of per-item records held when the report was
	// taken (len(Items)), for a check that the bound held.
	Kept  int          `json:"kept"`
	Limit int          `json:"limit"` // Config.TruthLimit
	Items []ItemRecord `json:"items"`
}

// ReportCounts counts commands by what the PLC did with them, and items by
// what became of them.
type ReportCounts struct {
	SortedAsCommanded       int `json:"sorted_as_commanded"`       // result 1
	RecirculatedFull        int `json:"recirculated_full"`         // result 3
	RecirculatedLate        int `json:"recirculated_late"`         // result 4
	Lost                    int `json:"lost"`                      // result 6 (jam, gap, e-stop flush)
	Rejected                int `json:"rejected"`                  // result 7
	RecirculatedAsCommanded int `json:"recirculated_as_commanded"` // result 8
	HostLost                int `json:"host_lost"`                 // result 9
	Forgotten               int `json:"forgotten"`                 // commands the PLC dropped unconfirmed (cold restart)
	PassesWithoutCommand    int `json:"passes_without_command"`    // the item reached its decision points with no command
	ItemsSorted             int `json:"items_sorted"`
	ItemsLost               int `json:"items_lost"`          // vanished (LostRate) or flushed, with or without a command
	ItemsMaxPasses          int `json:"items_max_passes"`    // left the loop to the PLC's reject after MaxPasses
	ItemsForgotten          int `json:"items_forgotten"`     // on the belt at a cold restart: the PLC lost track
	ItemsOnBelt             int `json:"items_on_belt"`       // still circulating when the report was taken
	ItemsCommissioning      int `json:"items_commissioning"` // commands decided in commissioning mode (each is an item)
}

// ItemRecord is one item (or, in commissioning mode, one commanded TID).
type ItemRecord struct {
	TID         uint32       `json:"tid"`
	Codes       []string     `json:"codes,omitempty"`
	Destination string       `json:"destination,omitempty"` // true destination printed on the label
	NoRead      bool         `json:"noread,omitempty"`
	Inducted    float64      `json:"inducted_s"` // seconds since the sim started
	Passes      []PassRecord `json:"passes"`
	Outcome     string       `json:"outcome"` // sorted, lost, flushed, forgotten, max-passes, on-belt, commissioning
	Chute       uint16       `json:"chute,omitempty"`
}

// PassRecord is one trip of an item past the scanner and its decision points.
type PassRecord struct {
	Pass     int             `json:"pass"`
	Scanned  float64         `json:"scanned_s"` // seconds since the sim started
	Commands []CommandRecord `json:"commands,omitempty"`
	Result   string          `json:"result"` // physical result of the pass
}

// CommandRecord is one command the PLC took for the item.
type CommandRecord struct {
	Seq    uint16  `json:"seq"`
	Chute  uint16  `json:"chute"`
	Reason uint16  `json:"reason"`
	Taken  float64 `json:"taken_s"`
	// MarginMS is decision point minus the time the command was taken:
	// negative means it came late.
	MarginMS   float64 `json:"margin_ms"`
	Result     uint16  `json:"result"`
	ResultName string  `json:"result_name"`
	EndChute   uint16  `json:"end_chute"`
}

// truth collects the ground truth; it is guarded by PLC.mu.
type truth struct {
	limit   int // records kept; the oldest finished ones go first
	evicted int
	start   time.Time
	items   map[uint32]*ItemRecord
	// done holds TIDs in the order their records finished, oldest at
	// doneHead: eviction takes from its front and never has to walk past
	// the records of items still on the belt. An entry whose TID's record
	// was replaced meanwhile is skipped.
	done     []uint32
	doneHead int
	counts   ReportCounts
	inducted uint64
	commands uint64
}

// defaultTruthLimit bounds the per-item records (Config.TruthLimit's
// default); counts are kept for every item regardless.
const defaultTruthLimit = 200_000

// maxCommissioningPasses bounds the passes kept for one commissioning TID.
const maxCommissioningPasses = 32

func newTruth(start time.Time) *truth {
	return &truth{start: start, items: make(map[uint32]*ItemRecord), limit: defaultTruthLimit}
}

// evict drops the oldest finished records while there are more than
// limit: at most limit records are kept, or the unfinished ones (items on
// the belt) if there are more of those. Each finished record is looked at
// once, so eviction costs O(1) per record.
func (t *truth) evict() {
	for len(t.items) > t.limit && t.doneHead < len(t.done) {
		tid := t.done[t.doneHead]
		t.doneHead++
		if r, ok := t.items[tid]; ok && r.Outcome != "" {
			delete(t.items, tid)
			t.evicted++
		}
	}
	if t.doneHead > 1024 && 2*t.doneHead > len(t.done) {
		n := copy(t.done, t.done[t.doneHead:])
		t.done, t.doneHead = t.done[:n], 0
	}
}

// setOutcome gives r its outcome; a record finishing now joins the
// eviction queue.
func (t *truth) setOutcome(r *ItemRecord, outcome string) {
	if r.Outcome == "" {
		t.done = append(t.done, r.TID)
	}
	r.Outcome = outcome
	t.evict()
}

func (t *truth) secs(at time.Time) float64 { return at.Sub(t.start).Seconds() }

func (t *truth) record(tid uint32) *ItemRecord {
	r, ok := t.items[tid]
	if !ok {
		r = &ItemRecord{TID: tid}
		t.items[tid] = r
		t.evict()
	}
	return r
}

func (t *truth) countResult(r Result) {
	switch r {
	case ResultDiverted:
		t.counts.SortedAsCommanded++
	case ResultFull:
		t.counts.RecirculatedFull++
	case ResultLate:
		t.counts.RecirculatedLate++
	case ResultLost:
		t.counts.Lost++
	case ResultRefused:
		t.counts.Rejected++
	case ResultRecirculated:
		t.counts.RecirculatedAsCommanded++
	case ResultHostLost:
		t.counts.HostLost++
	}
}

func (t *truth) cmdRecord(c command, decision time.Time, r Result, chute uint16) CommandRecord {
	t.commands++
	t.countResult(r)
	return CommandRecord{
		Seq: c.Seq, Chute: c.Chute, Reason: c.Reason, Taken: t.secs(c.taken),
		MarginMS: float64(decision.Sub(c.taken).Microseconds()) / 1000,
		Result:   uint16(r), ResultName: r.String(), EndChute: chute,
	}
}

// refused records a command refused with 7; a TID the sim tracks gets it in
// its current pass, any other TID a record of its own.
func (t *truth) refused(c command) {
	_, known := t.items[c.TID]
	rec := t.record(c.TID)
	if !known {
		t.setOutcome(rec, "refused") // not an item: a TID only a command named
	}
	cr := t.cmdRecord(c, c.taken, ResultRefused, 0)
	if len(rec.Passes) == 0 {
		rec.Passes = append(rec.Passes, PassRecord{Pass: 0, Scanned: cr.Taken, Result: ResultRefused.String()})
	}
	p := &rec.Passes[len(rec.Passes)-1]
	p.Commands = append(p.Commands, cr)
}

// commissioned records a commissioning-mode command and its result; each
// command is an item of its own, so each gets a pass.
func (t *truth) commissioned(c command, decision time.Time, r Result, chute uint16) {
	rec := t.record(c.TID)
	cr := t.cmdRecord(c, decision, r, chute)
	pass := 1
	if n := len(rec.Passes); n > 0 {
		pass = rec.Passes[n-1].Pass + 1
	}
	if len(rec.Passes) >= maxCommissioningPasses {
		// A host that reuses one TID forever: keep the latest passes only.
		rec.Passes = append(rec.Passes[:0], rec.Passes[1:]...)
	}
	rec.Passes = append(rec.Passes, PassRecord{Pass: pass, Scanned: cr.Taken, Commands: []CommandRecord{cr}, Result: r.String()})
	t.setOutcome(rec, "commissioning")
	rec.Chute = chute
	t.counts.ItemsCommissioning++
}

// forgotten records a commissioning command lost to a cold restart.
func (t *truth) forgotten(c command) {
	rec := t.record(c.TID)
	t.counts.Forgotten++
	rec.Passes = append(rec.Passes, PassRecord{Pass: len(rec.Passes) + 1, Scanned: t.secs(c.taken), Result: "forgotten",
		Commands: []CommandRecord{{Seq: c.Seq, Chute: c.Chute, Reason: c.Reason, Taken: t.secs(c.taken), ResultName: "forgotten"}}})
	t.setOutcome(rec, "forgotten")
}

// report builds the Report; onBelt counts the items still circulating.
func (t *truth) report(onBelt int, isOnBelt func(uint32) bool) Report {
	rep := Report{Inducted: t.inducted, Commands: t.commands, Counts: t.counts, Evicted: t.evicted,
		Kept: len(t.items), Limit: t.limit}
	rep.Counts.ItemsOnBelt = onBelt
	ids := make([]uint32, 0, len(t.items))
	for id := range t.items {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	rep.Items = make([]ItemRecord, 0, len(ids))
	for _, id := range ids {
		r := *t.items[id]
		r.Passes = append([]PassRecord(nil), r.Passes...)
		if r.Outcome == "" && isOnBelt(id) {
			r.Outcome = "on-belt"
		}
		rep.Items = append(rep.Items, r)
	}
	return rep
}

// inductedItem opens the record of a new item.
func (t *truth) inductedItem(tid uint32, l Label, at time.Time) *ItemRecord {
	t.inducted++
	if old, ok := t.items[tid]; ok && old.Outcome == "" {
		old.Outcome = "replaced"
	}
	r := &ItemRecord{TID: tid, Codes: l.Codes, Destination: l.Destination, NoRead: l.NoRead, Inducted: t.secs(at)}
	t.items[tid] = r
	t.evict()
	return r
}

// newPass opens a pass: the item passed the scanner.
func (t *truth) newPass(r *ItemRecord, pass int, at time.Time) {
	r.Passes = append(r.Passes, PassRecord{Pass: pass, Scanned: t.secs(at)})
}

func (t *truth) lastPass(r *ItemRecord) *PassRecord {
	if len(r.Passes) == 0 {
		r.Passes = append(r.Passes, PassRecord{})
	}
	return &r.Passes[len(r.Passes)-1]
}

// passCommand records a command of the current pass and what it did.
func (t *truth) passCommand(r *ItemRecord, c command, decision time.Time, res Result, chute uint16) {
	p := t.lastPass(r)
	p.Commands = append(p.Commands, t.cmdRecord(c, decision, res, chute))
	p.Result = res.String()
}

// passForgotten records a command the PLC forgot (cold restart).
func (t *truth) passForgotten(r *ItemRecord, c command) {
	t.counts.Forgotten++
	p := t.lastPass(r)
	p.Commands = append(p.Commands, CommandRecord{Seq: c.Seq, Chute: c.Chute, Reason: c.Reason, Taken: t.secs(c.taken), ResultName: "forgotten"})
	p.Result = "forgotten"
}

// passEnd closes a pass that is going round again.
func (t *truth) passEnd(r *ItemRecord) {
	p := t.lastPass(r)
	if len(p.Commands) == 0 {
		t.counts.PassesWithoutCommand++
		p.Result = "no-command"
	}
}

// itemDone records how an item left the belt.
func (t *truth) itemDone(r *ItemRecord, outcome string, chute uint16) {
	switch outcome {
	case "sorted":
		t.counts.ItemsSorted++
	case "lost", "flushed":
		t.counts.ItemsLost++
	case "max-passes":
		t.counts.ItemsMaxPasses++
	case "forgotten":
		t.counts.ItemsForgotten++
	}
	r.Chute = chute
	if p := t.lastPass(r); p.Result == "" {
		p.Result = outcome
	}
	// Records over the limit while their items were on the belt can go
	// now: the bound holds when induction stops, too.
	t.setOutcome(r, outcome)
}
