package fieldbussim

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"time"

	"github.com/rs/zerolog"
)

// ConveyorConfig describes the loop sorter. Distances are in metres along
// the belt; an item's decision point for chute c lies
// ScannerToFirstChute + (c-1)*ChutePitch after the scanner.
type ConveyorConfig struct {
	// Rate is the induction rate in items/s (Poisson arrivals from the seed);
	// 0 inducts nothing and puts the PLC in commissioning mode (every
	// commanded TID is an item).
	Rate float64
	// BeltSpeed in m/s (default 2.5).
	BeltSpeed float64
	// InductToScanner is the distance from induction to the scanner (default 3).
	InductToScanner float64
	// ScannerToFirstChute is the distance from the scanner to chute 1's
	// decision point (default 3, 1.2 s at 2.5 m/s).
	ScannerToFirstChute float64
	// ChutePitch is the distance between neighbouring chutes' decision points (default 1.2).
	ChutePitch float64
	// LoopLength is one lap; an item recirculating passes the scanner again
	// LoopLength/BeltSpeed after its last pass (default: the sort zone + 20 m).
	LoopLength float64
	// ContainerCapacity is how many items a chute's container holds before
	// its full bit is set (default 60; -1 = never full).
	ContainerCapacity int
	// EmptyAfter is how long the associate takes to swap a full container (default 2m).
	EmptyAfter time.Duration
	// LostRate is the chance per pass that an item vanishes (jam, fall-off):
	// a commanded item is confirmed with result 6.
	LostRate float64
	// MaxPasses is how many passes the PLC allows before it sends an item to
	// its own reject without a command (default 10).
	MaxPasses int
	// CommissioningTravel is how long a commissioning item takes from its
	// command to its decision point (default 200ms).
	CommissioningTravel time.Duration
}

func (c *ConveyorConfig) validate(chutes int) error {
	bad := func(name string, v float64) bool { return v < 0 || math.IsNaN(v) || math.IsInf(v, 0) }
	for _, f := range []struct {
		name string
		v    float64
	}{{"rate", c.Rate}, {"belt speed", c.BeltSpeed}, {"induct to scanner", c.InductToScanner},
		{"scanner to first chute", c.ScannerToFirstChute}, {"chute pitch", c.ChutePitch}, {"loop length", c.LoopLength}} {
		if bad(f.name, f.v) {
			return fmt.Errorf("conveyor: %s %v: want a finite value >= 0", f.name, f.v)
		}
	}
	if c.LostRate < 0 || c.LostRate > 1 || math.IsNaN(c.LostRate) {
		return fmt.Errorf("conveyor: lost rate %v: want 0..1", c.LostRate)
	}
	if c.BeltSpeed == 0 {
		c.BeltSpeed = 2.5
	}
	if c.InductToScanner == 0 {
		c.InductToScanner = 3
	}
	if c.ScannerToFirstChute == 0 {
		c.ScannerToFirstChute = 3
	}
	if c.ChutePitch == 0 {
		c.ChutePitch = 1.2
	}
	zone := c.ScannerToFirstChute + float64(chutes)*c.ChutePitch
	if c.LoopLength == 0 {
		c.LoopLength = zone + 20
	}
	if c.LoopLength <= zone {
		return fmt.Errorf("conveyor: loop length %v m: want more than the sort zone's %v m", c.LoopLength, zone)
	}
	if c.ContainerCapacity == 0 {
		c.ContainerCapacity = 60
	}
	if c.ContainerCapacity < -1 {
		return fmt.Errorf("conveyor: container capacity %d: want >= 1 or -1", c.ContainerCapacity)
	}
	if c.EmptyAfter == 0 {
		c.EmptyAfter = 2 * time.Minute
	}
	if c.MaxPasses == 0 {
		c.MaxPasses = 10
	}
	if c.MaxPasses < 1 {
		return fmt.Errorf("conveyor: max passes %d: want >= 1", c.MaxPasses)
	}
	if c.CommissioningTravel == 0 {
		c.CommissioningTravel = defaultCommissioningRun
	}
	if c.CommissioningTravel < 0 {
		return fmt.Errorf("conveyor: commissioning travel %v: negative", c.CommissioningTravel)
	}
	return nil
}

// telegram is a scanner read to send once the PLC lock is released.
type telegram struct {
	tid   uint32
	label Label
}

// item is one parcel on the belt.
type item struct {
	tid     uint32
	label   Label
	pass    int
	scanAt  time.Time
	cmd     *command
	cancelD func() // pending decision
	cancelP func() // pending scan or pass end
	rec     *ItemRecord
}

// conveyor is the physical sorter and the PLC's item tracking. Its state is
// guarded by PLC.mu (one lock for the whole PLC).
type conveyor struct {
	cfg    ConveyorConfig
	chutes int
	p      *PLC
	sched  *scheduler
	log    zerolog.Logger
	rnd    *rand.Rand

	labels func() Label     // under PLC.mu
	send   func(t telegram) // outside PLC.mu
	tr     *truth

	items        map[uint32]*item
	nextTID      uint32
	rate         float64
	nextInduct   time.Time // the next arrival's time (zero: not yet drawn)
	running      bool
	cancelInduct func()
	fill         []int
	outbox       []telegram
}

func newConveyor(cfg ConveyorConfig, chutes int, seed int64, p *PLC, tr *truth, sched *scheduler, log zerolog.Logger) *conveyor {
	c := &conveyor{
		cfg: cfg, chutes: chutes, p: p, sched: sched, log: log, tr: tr,
		rnd:   rand.New(rand.NewSource(seed ^ 0x5eed)),
		items: make(map[uint32]*item),
		rate:  cfg.Rate,
		fill:  make([]int, chutes),
	}
	c.labels = func() Label { return Label{Codes: []string{"NOLABEL"}} }
	c.send = func(telegram) {}
	if !p.cfg.Commissioning {
		p.track = c
	}
	return c
}

// dist converts metres of belt into time.
func (c *conveyor) dist(m float64) time.Duration {
	return time.Duration(m / c.cfg.BeltSpeed * float64(time.Second))
}

// dp is the decision time for chute (chute 0: the last chute's decision point).
func (c *conveyor) dp(it *item, chute uint16) time.Time {
	if chute == 0 {
		chute = uint16(c.chutes)
	}
	return it.scanAt.Add(c.dist(c.cfg.ScannerToFirstChute + float64(chute-1)*c.cfg.ChutePitch))
}

// passEnd is just past the last decision point.
func (c *conveyor) passEnd(it *item) time.Time {
	return c.dp(it, uint16(c.chutes)).Add(c.dist(c.cfg.ChutePitch / 2))
}

func (c *conveyor) start() {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.running = true
	c.scheduleInductLocked()
}

func (c *conveyor) stop() {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.running = false
	if c.cancelInduct != nil {
		c.cancelInduct()
		c.cancelInduct = nil
	}
}

func (c *conveyor) setRate(r float64) {
	if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		r = 0
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.rate = r
	if c.cancelInduct != nil {
		c.cancelInduct()
		c.cancelInduct = nil
	}
	c.nextInduct = time.Time{}
	c.scheduleInductLocked()
}

// scheduleInductLocked arms the timer for the next arrival. Arrival times
// follow their own schedule (nextInduct), not the timer's firing: a timer
// that fires late inducts every item that was due, each at its own time, so
// timer latency does not cap the rate.
func (c *conveyor) scheduleInductLocked() {
	if !c.running || c.rate <= 0 {
		return
	}
	now := c.p.clk.Now()
	if c.nextInduct.IsZero() {
		c.nextInduct = now.Add(c.gap())
	}
	c.cancelInduct = c.sched.after(c.nextInduct.Sub(now), func() { c.event(c.inductLocked) })
}

func (c *conveyor) gap() time.Duration {
	return time.Duration(c.rnd.ExpFloat64() / c.rate * float64(time.Second))
}

// event runs f under the PLC lock, then sends the telegrams it queued.
func (c *conveyor) event(f func()) {
	c.p.mu.Lock()
	c.p.beginSectionLocked()
	f()
	out := c.outbox
	c.outbox = nil
	c.p.notifyLocked()
	c.p.mu.Unlock()
	for _, t := range out {
		c.send(t)
	}
}

func (c *conveyor) inductLocked() {
	c.cancelInduct = nil
	if !c.running || c.rate <= 0 {
		return
	}
	now := c.p.clk.Now()
	for n := 0; !c.nextInduct.After(now); n++ {
		if n == maxCatchUp {
			// A process stalled for long: do not pour the backlog onto the belt.
			c.nextInduct = now
			break
		}
		c.inductOneLocked(c.nextInduct)
		c.nextInduct = c.nextInduct.Add(c.gap())
	}
	c.scheduleInductLocked()
}

// maxCatchUp bounds the arrivals one late induction timer makes up for.
const maxCatchUp = 1000

// inductOneLocked puts one item on the belt, unless the belt stands (outside
// SORTER_STATE 1 nothing is inducted).
func (c *conveyor) inductOneLocked(at time.Time) {
	if c.p.state == StateRunning {
		c.nextTID++
		if c.nextTID == 0 {
			c.nextTID = 1
		}
		it := &item{tid: c.nextTID, label: c.labels()}
		if old, ok := c.items[it.tid]; ok { // 4 billion items later
			c.removeLocked(old)
		}
		c.items[it.tid] = it
		it.rec = c.tr.inductedItem(it.tid, it.label, at)
		c.scheduleScanLocked(it, at.Add(c.dist(c.cfg.InductToScanner)))
	}
}

// scheduleScanLocked arms the item's pass of the scanner at its physical time.
func (c *conveyor) scheduleScanLocked(it *item, at time.Time) {
	it.cancelP = c.sched.after(at.Sub(c.p.clk.Now()), func() { c.event(func() { c.scanLocked(it, at) }) })
}

// scanLocked is the item passing the scanner at time at: a new pass, a
// telegram. Decision points count from at, not from when the timer fired.
func (c *conveyor) scanLocked(it *item, at time.Time) {
	if c.items[it.tid] != it {
		return
	}
	it.pass++
	it.scanAt = at
	c.tr.newPass(it.rec, it.pass, it.scanAt)
	c.outbox = append(c.outbox, telegram{tid: it.tid, label: it.label})
	it.cancelP = c.sched.after(c.passEnd(it).Sub(c.p.clk.Now()), func() { c.event(func() { c.passEndLocked(it) }) })
}

// command is a command for a TID the PLC took off the ring.
func (c *conveyor) command(cmd command) {
	it, ok := c.items[cmd.TID]
	if !ok || it.pass == 0 {
		c.refuseLocked(cmd) // unknown TID (or not yet scanned)
		return
	}
	if it.cmd != nil {
		c.refuseLocked(cmd) // a second command for one pass: the first stands
		return
	}
	dp := c.dp(it, cmd.Chute)
	if !cmd.taken.Before(dp) {
		r := ResultLate
		if cmd.Chute == 0 {
			r = ResultRecirculated // recirculating anyway, as commanded
		}
		c.tr.passCommand(it.rec, cmd, dp, r, 0)
		c.p.confirmLocked(cmd.TID, 0, r)
		return
	}
	cc := cmd
	it.cmd = &cc
	it.cancelD = c.sched.after(dp.Sub(cmd.taken), func() { c.event(func() { c.decideLocked(it) }) })
}

func (c *conveyor) refuseLocked(cmd command) {
	c.tr.refused(cmd)
	c.p.confirmLocked(cmd.TID, 0, ResultRefused)
}

// decideLocked is the item at its commanded chute's decision point.
func (c *conveyor) decideLocked(it *item) {
	if c.items[it.tid] != it || it.cmd == nil {
		return
	}
	cmd := *it.cmd
	it.cmd, it.cancelD = nil, nil
	now := c.p.clk.Now()
	if c.cfg.LostRate > 0 && c.rnd.Float64() < c.cfg.LostRate {
		c.tr.passCommand(it.rec, cmd, now, ResultLost, 0)
		c.p.confirmLocked(cmd.TID, 0, ResultLost)
		c.tr.itemDone(it.rec, "lost", 0)
		c.removeLocked(it)
		return
	}
	r, chute := c.p.decideLocked(cmd.Chute)
	c.tr.passCommand(it.rec, cmd, now, r, chute)
	c.p.confirmLocked(cmd.TID, chute, r)
	if r == ResultDiverted {
		c.tr.itemDone(it.rec, "sorted", chute)
		c.removeLocked(it)
		c.fillLocked(chute)
	}
}

// fillLocked books an item into a chute's container; at capacity the full
// bit goes up until the associate swaps the container.
func (c *conveyor) fillLocked(chute uint16) {
	if c.cfg.ContainerCapacity < 0 {
		return
	}
	i := int(chute) - 1
	c.fill[i]++
	if c.fill[i] < c.cfg.ContainerCapacity || c.p.containerFull[i] {
		return
	}
	c.p.containerFull[i] = true
	c.p.refreshFullLocked(chute)
	c.sched.after(c.cfg.EmptyAfter, func() {
		c.event(func() {
			c.fill[i] = 0
			c.p.containerFull[i] = false
			c.p.refreshFullLocked(chute)
		})
	})
}

// passEndLocked is the item past the sort zone: it goes round again, unless
// it was lost or passed too often.
func (c *conveyor) passEndLocked(it *item) {
	if c.items[it.tid] != it {
		return
	}
	it.cancelP = nil
	c.tr.passEnd(it.rec)
	if c.cfg.LostRate > 0 && c.rnd.Float64() < c.cfg.LostRate {
		c.tr.itemDone(it.rec, "lost", 0)
		c.removeLocked(it)
		return
	}
	if it.pass >= c.cfg.MaxPasses {
		c.tr.itemDone(it.rec, "max-passes", 0)
		c.removeLocked(it)
		return
	}
	c.scheduleScanLocked(it, it.scanAt.Add(c.dist(c.cfg.LoopLength)))
}

func (c *conveyor) removeLocked(it *item) {
	if it.cancelD != nil {
		it.cancelD()
		it.cancelD = nil
	}
	if it.cancelP != nil {
		it.cancelP()
		it.cancelP = nil
	}
	delete(c.items, it.tid)
}

// flush drops every item: at an emergency stop each commanded item is
// confirmed 6; at a cold restart the memory is gone and nothing is confirmed.
func (c *conveyor) flush(confirm bool) {
	now := c.p.clk.Now()
	for _, it := range c.sortedItemsLocked() {
		if it.cmd != nil {
			if confirm {
				c.tr.passCommand(it.rec, *it.cmd, now, ResultLost, 0)
				c.p.confirmLocked(it.tid, 0, ResultLost)
			} else {
				c.tr.passForgotten(it.rec, *it.cmd)
			}
		}
		outcome := "flushed"
		if !confirm {
			outcome = "forgotten"
		}
		c.tr.itemDone(it.rec, outcome, 0)
		c.removeLocked(it)
	}
}

// sortedItemsLocked lists items in TID order, so flushes are deterministic.
func (c *conveyor) sortedItemsLocked() []*item {
	out := make([]*item, 0, len(c.items))
	for _, it := range c.items {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].tid < out[j].tid })
	return out
}

func (c *conveyor) onBeltLocked(tid uint32) bool {
	_, ok := c.items[tid]
	return ok
}
