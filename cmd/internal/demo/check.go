package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway/journal"
)

// Check is the verdict of `sortgw demo -check`, taken once the gateway has
// stopped: the journal on disk held against the emulator's ground truth,
// and every bounded structure's largest count against its bound. It fails
// only on correctness, never on a memory or timing figure.
type Check struct {
	// From the journal alone: every decided pass has exactly one outcome.
	Passes           int // passes with a decision or an outcome
	Decided          int
	MissingOutcome   int // decided, no outcome
	DuplicateOutcome int // more than one outcome for one pass
	// Item by item, for the items whose ground truth the sim still holds
	// (Config.TruthLimit): the PLC's results and the journal's agree.
	SimItems   int // ground-truth records compared
	SimEvicted int // records the sim dropped to stay in its bound (counted, not compared)
	Phantom    int // a result the journal has that the PLC never gave the item
	Unreported int // a PLC result the journal has no result for ...
	Absorbed   int // ... explained by a lost, missed, timeout or stopped outcome of the item
	// Over every item (the sim's counts include evicted records): the
	// PLC's results and the journal's, the difference at most what the
	// absorbing outcomes explain.
	SimResults, JournalResults, Absorbers int
	Bounds                                []Bound
	Examples                              []string
}

// Bound is one bounded structure: the largest count seen while the demo
// ran (sampled every second and at the end), its limit (the last sampled:
// the sim's moves with the items on the belt) and the samples whose count
// was over the limit of that moment.
type Bound struct {
	Name     string `json:"name"`
	Max      int    `json:"max"`
	Limit    int    `json:"limit"`
	Exceeded int    `json:"exceeded,omitempty"`
}

// OK: one outcome per decided pass, no phantom or unexplained result,
// item by item and over all items, and every bound held.
func (c *Check) OK() bool {
	return c.MissingOutcome == 0 && c.DuplicateOutcome == 0 && c.Phantom == 0 && c.Unreported == c.Absorbed &&
		c.aggregateUnexplained() == 0 && len(c.brokenBounds()) == 0
}

// aggregateUnexplained: journal results the PLC never gave, plus PLC
// results beyond what the absorbing outcomes explain.
func (c *Check) aggregateUnexplained() int {
	n := max(0, c.JournalResults-c.SimResults)
	return n + max(0, c.SimResults-c.JournalResults-c.Absorbers)
}

func (c *Check) brokenBounds() []string {
	var out []string
	for _, b := range c.Bounds {
		if b.Exceeded > 0 {
			out = append(out, b.Name)
		}
	}
	return out
}

func (c *Check) String() string {
	var b strings.Builder
	verdict := "OK"
	if !c.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "ground truth %s: journal passes %d (decided %d), missing outcome %d, duplicate outcome %d\n",
		verdict, c.Passes, c.Decided, c.MissingOutcome, c.DuplicateOutcome)
	fmt.Fprintf(&b, "  item by item: %d sim records compared (%d evicted by the sim's bound), phantom %d, unreported %d (absorbed %d)\n",
		c.SimItems, c.SimEvicted, c.Phantom, c.Unreported, c.Absorbed)
	fmt.Fprintf(&b, "  all items: PLC results %d, journal results %d, absorbing outcomes %d, unexplained %d\n",
		c.SimResults, c.JournalResults, c.Absorbers, c.aggregateUnexplained())
	for _, bd := range c.Bounds {
		mark := "ok"
		if bd.Exceeded > 0 {
			mark = fmt.Sprintf("EXCEEDED in %d samples", bd.Exceeded)
		}
		fmt.Fprintf(&b, "  bound %-24s max %8d of %8d  %s\n", bd.Name, bd.Max, bd.Limit, mark)
	}
	for _, e := range c.Examples {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (c *Check) example(format string, a ...any) {
	if len(c.Examples) < 10 {
		c.Examples = append(c.Examples, fmt.Sprintf(format, a...))
	}
}

// absorbs: an outcome that stands for a PLC result the gateway could not
// see (the link went away, the confirmation was overwritten, the
// gateway stopped first).
func absorbs(o journal.Outcome) bool {
	switch o {
	case journal.OutcomeLostDisconnect, journal.OutcomeMissedConfirmation, journal.OutcomeLostAtRestart, journal.OutcomeTimeout:
		return true
	}
	return false
}

type passKey struct {
	tid  uint32
	pass uint16
}

type passState struct {
	decided  bool
	outcomes uint8
	outcome  journal.Outcome
	result   uint16
}

// gwItem is what the journal holds for one TID.
type gwItem struct {
	results  []uint16
	absorber int
	passes   int
}

// checkJournal reads the closed journal at path and holds it against the
// sim's report.
func checkJournal(ctx context.Context, path, line string, rep fieldbussim.Report, bounds []Bound) (*Check, error) {
	c := &Check{Bounds: bounds, SimEvicted: rep.Evicted}
	passes := map[passKey]*passState{}
	err := journal.ScanFile(ctx, path, time.Time{}, time.Time{}, 5*time.Second, func(r *journal.Record) error {
		if r.Line != line || r.Pass == 0 || (r.Kind != journal.KindDecision && r.Kind != journal.KindOutcome) {
			return nil
		}
		k := passKey{r.TID, r.Pass}
		ps := passes[k]
		if ps == nil {
			ps = &passState{}
			passes[k] = ps
		}
		if r.Kind == journal.KindDecision {
			ps.decided = true
			return nil
		}
		ps.outcomes++
		ps.outcome, ps.result = r.Outcome, r.Result
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("demo: check: %w", err)
	}
	gw := map[uint32]*gwItem{}
	for k, ps := range passes {
		c.Passes++
		if ps.decided {
			c.Decided++
			if ps.outcomes == 0 {
				c.MissingOutcome++
				c.example("tid %d pass %d: decided, no outcome", k.tid, k.pass)
			}
		}
		if ps.outcomes > 1 {
			c.DuplicateOutcome++
			c.example("tid %d pass %d: %d outcomes", k.tid, k.pass, ps.outcomes)
		}
		g := gw[k.tid]
		if g == nil {
			g = &gwItem{}
			gw[k.tid] = g
		}
		g.passes++
		if ps.result != 0 {
			g.results = append(g.results, ps.result)
			c.JournalResults++
		}
		if absorbs(ps.outcome) {
			g.absorber++
			c.Absorbers++
		}
	}
	n := rep.Counts
	c.SimResults = n.SortedAsCommanded + n.RecirculatedFull + n.RecirculatedLate + n.Lost + n.Rejected +
		n.RecirculatedAsCommanded + n.HostLost
	seen := make(map[uint32]bool, len(rep.Items))
	for _, it := range rep.Items {
		seen[it.TID] = true
		c.SimItems++
		var simRes []uint16
		for _, p := range it.Passes {
			for _, cmd := range p.Commands {
				if cmd.Result != 0 {
					simRes = append(simRes, cmd.Result)
				}
			}
		}
		c.results(it.TID, simRes, gw[it.TID])
	}
	if rep.Evicted == 0 {
		// With nothing evicted, a journal result for a TID the sim never
		// had is a phantom too.
		for tid, g := range gw {
			if !seen[tid] && len(g.results) > 0 {
				c.Phantom += len(g.results)
				c.example("tid %d: results for an item the PLC never had", tid)
			}
		}
	}
	return c, nil
}

// results compares one item's PLC results with the journal's, as a
// multiset difference both ways.
func (c *Check) results(tid uint32, simRes []uint16, g *gwItem) {
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
		c.Unreported++
		if absorber > 0 {
			absorber--
			c.Absorbed++
		} else {
			c.example("tid %d: PLC result %d, the journal has none for it", tid, r)
		}
	}
	for _, r := range gres {
		c.Phantom++
		c.example("tid %d: the journal has result %d the PLC never gave", tid, r)
	}
}

// boundWatch keeps the largest count of each bounded structure.
type boundWatch struct {
	mu  sync.Mutex
	max map[string]*Bound
	ord []string
}

func (w *boundWatch) observe(bs []Bound) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.max == nil {
		w.max = map[string]*Bound{}
	}
	for _, b := range bs {
		m := w.max[b.Name]
		if m == nil {
			m = &Bound{Name: b.Name, Limit: b.Limit}
			w.max[b.Name] = m
			w.ord = append(w.ord, b.Name)
		}
		m.Max = max(m.Max, b.Max)
		m.Limit = b.Limit
		if b.Max > b.Limit {
			m.Exceeded++
		}
	}
}

func (w *boundWatch) result() []Bound {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Bound, 0, len(w.ord))
	for _, n := range w.ord {
		out = append(out, *w.max[n])
	}
	return out
}
