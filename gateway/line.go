package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// LineConfig configures one sorter line: one PLC, its scanners, one plan.
type LineConfig struct {
	Name string `yaml:"name"`
	// Chutes is the sorter's chute count (1..devices.MaxChutes).
	Chutes int `yaml:"chutes"`
	// RecircLimit: an item seen for the (RecircLimit+1)th time goes to the
	// exception chute with reason 6. Default 3.
	RecircLimit int `yaml:"recirculation_limit"`
	// Budget is the decision budget: a command not written within Budget of
	// its scan is not sent (host late). Default 500ms.
	Budget time.Duration `yaml:"decision_budget"`
	// ConfirmTimeout: an item whose command was sent but that got no
	// outcome within this time is closed as missed or timeout. Default 2m
	// (longer than one lap of the loop).
	ConfirmTimeout time.Duration `yaml:"confirm_timeout"`
	// Remember is how long a finished pass is kept so that the item's next
	// pass knows its recirculation count. Default 10m.
	Remember time.Duration `yaml:"remember"`
	// Capacity is the number of items tracked at once (open and
	// remembered). Default 65536.
	Capacity int `yaml:"capacity"`
	// ReadQueue is the depth of the bounded channel between the scanners
	// and the pipeline. Default 4096.
	ReadQueue int `yaml:"read_queue"`
	// StatusEvery is how often PLC full/disabled bits are copied into the
	// availability used by decisions. Default 20ms.
	StatusEvery time.Duration `yaml:"status_every"`
	// ContainerCapacity is the nominal number of items per container, for
	// the fill gauge on the status page; 0 = unknown.
	ContainerCapacity int `yaml:"container_capacity"`
	// PlanFile and ManifestFile are read by ReloadPlan.
	PlanFile     string                  `yaml:"plan"`
	ManifestFile string                  `yaml:"manifest"`
	Resolver     sortplan.ResolverConfig `yaml:"resolver"`
	// KeepManifests is how many closed container manifests stay in memory
	// for download. Default 5000.
	KeepManifests int `yaml:"keep_manifests"`
	// MaxManifestBytes caps the manifest file a reload reads (default 64
	// MiB, about 1.5 million rows; -1: no cap). A manifest costs about 2.5
	// times its size in memory while it loads beside the one in use; a
	// larger file is refused like a bad plan, and the old one stays.
	MaxManifestBytes int64 `yaml:"max_manifest_bytes"`
	// Alarms are the thresholds of the line's alarms and condition.
	Alarms AlarmConfig `yaml:"alarms"`
	// CloseBefore closes a route's open containers this long before its
	// departure (0: no automatic close; the departure alarm still rises
	// 10 minutes before).
	CloseBefore time.Duration `yaml:"close_before_departure"`
	// KeepVans is how many departed van manifests stay in memory.
	// Default 500.
	KeepVans int `yaml:"keep_vans"`
	// DockClock, when set, is the clock departures are judged by (the
	// demo's virtual day); nil: the wall clock.
	DockClock func() time.Time `yaml:"-"`
}

// Validate fills defaults and checks the values.
func (c *LineConfig) Validate() error {
	if c.Name == "" {
		return errors.New("line: name is empty")
	}
	if c.Chutes == 0 {
		c.Chutes = 256
	}
	if c.Chutes < 1 || c.Chutes > devices.MaxChutes {
		return fmt.Errorf("line %s: chutes %d out of range 1..%d", c.Name, c.Chutes, devices.MaxChutes)
	}
	if c.RecircLimit == 0 {
		c.RecircLimit = 3
	}
	if c.RecircLimit < 0 {
		return fmt.Errorf("line %s: recirculation limit %d is negative", c.Name, c.RecircLimit)
	}
	if c.Budget == 0 {
		c.Budget = 500 * time.Millisecond
	}
	if c.Budget < 0 {
		return fmt.Errorf("line %s: decision budget %v is negative", c.Name, c.Budget)
	}
	if c.ConfirmTimeout == 0 {
		c.ConfirmTimeout = 2 * time.Minute
	}
	if c.Remember == 0 {
		c.Remember = 10 * time.Minute
	}
	if c.Capacity == 0 {
		c.Capacity = 65536
	}
	if c.Capacity < 16 {
		return fmt.Errorf("line %s: capacity %d below 16", c.Name, c.Capacity)
	}
	if c.ReadQueue == 0 {
		c.ReadQueue = 4096
	}
	if c.StatusEvery == 0 {
		c.StatusEvery = 20 * time.Millisecond
	}
	if c.KeepManifests == 0 {
		c.KeepManifests = 5000
	}
	if c.KeepVans == 0 {
		c.KeepVans = 500
	}
	if c.CloseBefore < 0 || c.KeepVans < 0 {
		return fmt.Errorf("line %s: close_before_departure %v or keep_vans %d is negative", c.Name, c.CloseBefore, c.KeepVans)
	}
	if c.MaxManifestBytes == 0 {
		c.MaxManifestBytes = 64 << 20
	}
	if c.MaxManifestBytes < -1 {
		return fmt.Errorf("line %s: max manifest bytes %d: want a size, or -1 for no cap", c.Name, c.MaxManifestBytes)
	}
	if err := c.Alarms.Validate(); err != nil {
		return fmt.Errorf("line %s: %w", c.Name, err)
	}
	return nil
}

// manifestLimit is MaxManifestBytes as sortplan.LoadManifestLimit takes it.
func (c *LineConfig) manifestLimit() int64 { return max(c.MaxManifestBytes, 0) }

// Errors callers branch on.
var (
	// ErrNoChute: the chute number is outside 1..Chutes.
	ErrNoChute = errors.New("no such chute")
	// ErrChuteAtPLC: the chute is disabled at the PLC, which the gateway
	// cannot override; enabling it is done at the sorter.
	ErrChuteAtPLC = errors.New("disabled at the PLC")
	// ErrNotDisabled: an enable for a chute no technician disabled.
	ErrNotDisabled = errors.New("not disabled by a technician")
	// ErrStopped: the line is not running.
	ErrStopped = errors.New("line stopped")
	// ErrNoPlan: no plan is loaded.
	ErrNoPlan = errors.New("no plan loaded")
)

// counters are the line's running totals, written only by the loop.
type counters struct {
	Reads, NoReads, Duplicates, Decided     uint64
	Unknown, MultiRead, Recirculated, Late  uint64
	Sorted, Lost, Missed, Timeout, NotSent  uint64
	Outcomes, Exceptions, Unmatched, Booked uint64
	JournalHeld                             uint64 // reads not commanded: journal full, stop-reads
	// ForgottenEarly: finished passes dropped from the item table before
	// Remember elapsed, to make room (Capacity).
	ForgottenEarly uint64
	// ManifestsDropped and VansDropped: closed container and van
	// manifests let go from memory past KeepManifests and KeepVans (the
	// journal's consolidation records keep them).
	ManifestsDropped, VansDropped uint64
	Reasons                       [8]uint64
	Results                       [maxResult + 1]uint64
	ByOutcome                     [maxOutcome]uint64
	// Buckets: the outcomes by the status page's tiles (pageview.go).
	Buckets [nBuckets]uint64
}

// Line is the item pipeline of one sorter line. One goroutine (the loop)
// owns every piece of item, chute and container state; scanners feed it
// through a bounded channel, the PLC link through its event channel, and the
// status page and actions through a control channel. Nothing on the
// decision path waits on a device or the journal.
type Line struct {
	cfg      LineConfig
	plc      devices.PLCLink
	scanners devices.ScannerSource
	journal  Journal
	met      *lineMetrics
	log      zerolog.Logger

	plans    sortplan.Holder
	reads    chan devices.Read
	ctl      chan func()
	draining atomic.Bool
	running  atomic.Bool
	ran      atomic.Bool // Run was called: plan loads are no longer "start"
	snap     atomic.Pointer[LineSnapshot]
	overflow atomic.Uint64
	// journalErrs counts records the journal refused (queue full, closed).
	journalErrs atomic.Uint64
	// stopReads is the journal's StopReads when it has one (the
	// stop-reads policy for a full queue); held is its last value as the
	// loop acted on it (HOST_STATE degraded, log).
	stopReads func() bool
	held      atomic.Bool

	chuteRoutes atomic.Pointer[[]string]   // route per chute from the active plan
	routes      atomic.Pointer[routeIndex] // route rows of the active plan

	planMu   sync.Mutex // guards plan, lastPlan* (reloads are rare and off the item path)
	plan     *sortplan.Plan
	planAt   time.Time
	lastDiff []sortplan.Change
	lastErr  string
	lastAt   time.Time

	// Loop-owned state below.
	tab          *table
	open         fifo         // items by send time, for the confirmation timeout
	taken        fifo         // items by take time, for missed confirmations
	closed       fifo         // finished passes by close time, for eviction
	openCount    atomic.Int64 // written by the loop, read by Drain
	avail        sortplan.Availability
	full         devices.ChuteBits // PLC full bits last seen
	plcDisabled  devices.ChuteBits
	techDisabled devices.ChuteBits
	chuteCount   []uint64 // confirmed diverts per chute since start
	lastRoute    []string
	conts        []container
	manifests    []Manifest    // closed, oldest first, bounded
	vans         []VanManifest // departed, oldest first, bounded
	rebuilt      RebuildStats
	dueFix       bool // rebuilt containers wait for the routes to know their departure
	recent       [recentN]journal.Record
	rec          journal.Record // scratch record, reused
	recentPos    int
	c            counters
	rates        rateRing
	plcStatus    devices.PLCStatus
	scanStatus   []devices.ScannerStatus
	states       *stateJournal // link and chute state as journaled

	// chuteSince: when each chute's full, PLC-disabled and technician-
	// disabled bit last changed; techBy who disabled it.
	chuteSince [3][]time.Time
	techBy     []string
	trend      trendRing
	shift      shiftCounter
	shifts     atomic.Pointer[[]Shift] // set by gateway.New, perhaps after Run
	links      linkLog

	alarms        *alarmBook
	journalHealth func() journal.Health // nil: the journal has none
	upstreamAlarm func() string         // nil: no upstream (Config.Upstream)
}

const recentN = 40

// NewLine makes a line. plc and scanners are run by Line.Run. journal may be
// nil (records are dropped).
func NewLine(cfg LineConfig, plc devices.PLCLink, scanners devices.ScannerSource, journal Journal, m *Metrics, log zerolog.Logger) (*Line, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if plc == nil {
		return nil, fmt.Errorf("line %s: no plc link", cfg.Name)
	}
	if journal == nil {
		journal = nopJournal{}
	}
	if m == nil {
		m = NewMetrics()
	}
	l := &Line{
		cfg:        cfg,
		plc:        plc,
		scanners:   scanners,
		journal:    journal,
		met:        m.forLine(cfg.Name, cfg.Chutes),
		log:        log.With().Str("line", cfg.Name).Logger(),
		reads:      make(chan devices.Read, cfg.ReadQueue),
		ctl:        make(chan func()),
		tab:        newTable(cfg.Capacity),
		open:       newFIFO(cfg.Capacity),
		taken:      newFIFO(cfg.Capacity),
		closed:     newFIFO(cfg.Capacity),
		chuteCount: make([]uint64, cfg.Chutes+1),
		lastRoute:  make([]string, cfg.Chutes+1),
		conts:      make([]container, cfg.Chutes+1),
		states:     newStateJournal(cfg.Chutes),
		techBy:     make([]string, cfg.Chutes+1),
	}
	for b := range l.chuteSince {
		l.chuteSince[b] = make([]time.Time, cfg.Chutes+1)
	}
	now := time.Now()
	for i := 1; i <= cfg.Chutes; i++ {
		l.conts[i] = container{n: 1, opened: now}
	}
	if sr, ok := journal.(interface{ StopReads() bool }); ok {
		l.stopReads = sr.StopReads
	}
	l.initAlarms(journal, m, now)
	if sc, ok := journal.(consolScanner); ok {
		st, err := l.rebuildContainers(sc, now)
		if err != nil {
			return nil, fmt.Errorf("line %s: rebuild containers from the journal: %w", cfg.Name, err)
		}
		l.rebuilt = st
		l.log.Info().Int("records", st.Records).Int("parcels", st.Booked).Int("stray", st.Stray).Msg("containers rebuilt from the journal")
	}
	l.snap.Store(&LineSnapshot{Name: cfg.Name, Condition: CondNoData, Reasons: []string{"not started"}, Alarms: []Alarm{}})
	m.devices.add(l)
	return l, nil
}

// alarmHistorian is the journal's query for the alarm history
// (*journal.Journal has it).
type alarmHistorian interface {
	ByKind(k journal.Kind, n, scan int) ([]journal.Record, error)
}

// alarmReplayScan bounds the journal records walked at start for the
// alarm history (only their kind byte is read).
const alarmReplayScan = 5_000_000

// initAlarms makes the alarm book and replays the history in j.
func (l *Line) initAlarms(j Journal, m *Metrics, now time.Time) {
	if h, ok := j.(interface{ Health() journal.Health }); ok {
		l.journalHealth = h.Health
	}
	l.alarms = newAlarmBook(l.cfg.Name, l.cfg.Alarms, j, m.alarmActive, now)
	l.alarms.refused = func() { l.journalErrs.Add(1) }
	if q, ok := j.(alarmHistorian); ok {
		recs, err := q.ByKind(journal.KindAlarm, 0, alarmReplayScan)
		if err != nil {
			l.log.Warn().Err(err).Msg("alarm history not read from the journal")
		}
		l.alarms.rebuild(recs)
	}
}

// Name is the line's configured name.
func (l *Line) Name() string { return l.cfg.Name }

// Config returns the line's configuration with defaults filled.
func (l *Line) Config() LineConfig { return l.cfg }

// Sink takes one scanner read; it never blocks. A read that finds the queue
// full is recorded as not sent (the PLC recirculates the item).
func (l *Line) Sink(r devices.Read) {
	select {
	case l.reads <- r:
	default:
		l.overflow.Add(1)
		l.append(journal.Record{Time: time.Now(), Line: l.cfg.Name, Kind: journal.KindOutcome, TID: r.TID,
			Scanner: r.Scanner, Codes: r.Codes, NoRead: r.NoRead, Outcome: journal.OutcomeNotSent, Detail: "read queue full"})
	}
}

// Table returns the active compiled plan, nil before the first plan.
func (l *Line) Table() *sortplan.Table { return l.plans.Load() }

// Ready reports whether the line can sort: a plan is loaded, the PLC link
// is up, the line is not draining nor holding reads back for a full
// journal, and at least one of its scanners is online (a line without
// scanners, as in tests, needs none).
func (l *Line) Ready() bool {
	return l.plans.Load() != nil && !l.draining.Load() && !l.held.Load() && l.plc.Status().State == devices.LinkUp && l.scannerOnline()
}

// holdReads reports whether the journal asks for no new reads to be
// commanded (policy stop-reads, queue full).
func (l *Line) holdReads() bool { return l.stopReads != nil && l.stopReads() }

// checkJournalHold follows the journal's stop-reads signal on the loop:
// HOST_STATE degraded while reads are held back, ready again after, and
// an alarm in the log at each change.
func (l *Line) checkJournalHold() {
	held := l.holdReads()
	if held == l.held.Load() {
		return
	}
	l.held.Store(held)
	if held {
		if !l.draining.Load() {
			l.plc.SetHostState(devices.HostDegraded)
		}
		l.log.Error().Uint64("held_total", l.c.JournalHeld).
			Msg("ALARM journal full (policy stop-reads): new reads are not commanded, items recirculate until it drains")
		return
	}
	if !l.draining.Load() {
		if l.plans.Load() != nil {
			l.plc.SetHostState(devices.HostReady)
		} else {
			l.plc.SetHostState(devices.HostDegraded)
		}
	}
	l.log.Warn().Uint64("held_total", l.c.JournalHeld).Msg("journal drained: commanding reads again")
}

// scannerOnline reports whether any scanner of the line can deliver a
// read now (connected and heard within its heartbeat timeout), true for a
// line without scanners.
func (l *Line) scannerOnline() bool {
	return l.scanners == nil || anyOnline(l.scanners.Status())
}

// anyOnline reports whether one of st is online, true for none at all.
func anyOnline(st []devices.ScannerStatus) bool {
	for _, s := range st {
		if s.Online {
			return true
		}
	}
	return len(st) == 0
}

// Drain stops the line from commanding new reads; outstanding commands
// still finish. It tells the PLC's HMI the host is draining.
func (l *Line) Drain() {
	l.draining.Store(true)
	l.plc.SetHostState(devices.HostDraining)
}

// OpenNow returns the number of item passes still waiting for an outcome.
func (l *Line) OpenNow() int { return int(l.openCount.Load()) }

// Snapshot returns the latest status snapshot of the line (refreshed by the
// loop a few times a second).
func (l *Line) Snapshot() *LineSnapshot { return l.snap.Load() }

// Run runs the line's PLC link, its scanners and the item loop until ctx is
// done or one of them fails, then records every still-open item as lost.
// The three run as one group: a PLC link or scanner source whose Run fails
// stops the item loop too, so the line never takes reads it cannot divert,
// and the failure is returned.
func (l *Line) Run(ctx context.Context) error {
	l.ran.Store(true)
	l.running.Store(true)
	defer l.running.Store(false)
	g := newRunGroup(ctx)
	g.Go(func(ctx context.Context) error {
		if err := l.plc.Run(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("line %s: plc: %w", l.cfg.Name, err)
		}
		return nil
	})
	if l.scanners != nil {
		g.Go(func(ctx context.Context) error {
			if err := l.scanners.Run(ctx, l.Sink); err != nil && ctx.Err() == nil {
				return fmt.Errorf("line %s: scanners: %w", l.cfg.Name, err)
			}
			return nil
		})
	}
	g.Go(l.loop)
	err := g.Wait()
	// The link may have reported events for items while stopping.
	l.drainEvents()
	l.closeAll(time.Now())
	l.publish(time.Now())
	return err
}

func (l *Line) loop(ctx context.Context) error {
	if l.plans.Load() != nil {
		l.plc.SetHostState(devices.HostReady)
	} else {
		l.plc.SetHostState(devices.HostDegraded)
	}
	l.refreshAvailability(time.Now())
	l.publish(time.Now())
	tick := time.NewTicker(l.cfg.StatusEvery)
	defer tick.Stop()
	lastSlow := time.Now()
	events := l.plc.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-l.reads:
			l.handleRead(ctx, r)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			l.handleEvent(ev)
		case f := <-l.ctl:
			f()
		case now := <-tick.C:
			l.checkJournalHold()
			l.refreshAvailability(now)
			if now.Sub(lastSlow) >= 250*time.Millisecond {
				lastSlow = now
				l.sweep(now)
				l.publish(now)
			}
		}
	}
}

// do runs f on the loop and waits for it.
func (l *Line) do(ctx context.Context, f func()) error {
	if !l.running.Load() {
		return ErrStopped
	}
	done := make(chan struct{})
	select {
	case l.ctl <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Line) handleRead(ctx context.Context, r devices.Read) {
	now := time.Now()
	l.c.Reads++
	if r.NoRead {
		l.c.NoReads++
	}
	l.met.read(r.Scanner, r.NoRead)
	if r.TID == 0 {
		l.record(r, now, journal.OutcomeNotSent, "tid 0")
		return
	}
	idx := l.tab.lookup(r.TID)
	var it *item
	if idx >= 0 {
		it = &l.tab.items[idx]
		if it.state != itemClosed {
			// Still unconfirmed: a second read of the same pass.
			it.dups++
			l.c.Duplicates++
			l.met.duplicates.Inc()
			l.rec = journal.Record{Time: now, Line: l.cfg.Name, Kind: journal.KindDuplicate, TID: r.TID, Pass: it.pass,
				Scanner: r.Scanner, Codes: r.Codes, NoRead: r.NoRead, Outcome: journal.OutcomeDuplicate}
			l.append(l.rec)
			return
		}
		it.pass++
		it.gen++
	} else {
		idx = l.tab.insert(r.TID)
		if idx < 0 && l.evictOldest() {
			idx = l.tab.insert(r.TID)
		}
		if idx < 0 {
			l.record(r, now, journal.OutcomeNotSent, "tracking table full")
			return
		}
		it = &l.tab.items[idx]
		it.pass = 1
	}
	it.scanner, it.codes, it.noRead, it.readAt = r.Scanner, r.Codes, r.NoRead, r.At
	it.dups = 0
	it.takenAt, it.closedAt = time.Time{}, time.Time{}

	if l.draining.Load() {
		it.state = itemQueued
		l.openCount.Add(1)
		l.finish(idx, now, journal.OutcomeNotSent, 0, 0, "draining")
		return
	}
	if l.holdReads() {
		// Policy stop-reads: no command without an audit trail. The
		// outcome record is refused too and counted as not kept.
		it.state = itemQueued
		l.openCount.Add(1)
		l.c.JournalHeld++
		l.finish(idx, now, journal.OutcomeNotSent, 0, 0, "journal full: reads stopped")
		return
	}
	tbl := l.plans.Load()
	switch {
	case tbl == nil:
		it.decision = sortplan.Decision{Chute: 0, Reason: sortplan.ReasonDegraded}
	case int(it.pass) > l.cfg.RecircLimit:
		it.decision = tbl.DecideException(sortplan.ReasonRecircLimit, &l.avail)
		l.c.Exceptions++
	default:
		it.decision = tbl.Decide(r.Codes, &l.avail)
		l.missedCutoff(&it.decision)
	}
	d := it.decision
	if int(d.Reason) < len(l.c.Reasons) {
		l.c.Reasons[d.Reason]++
		l.met.decisions[d.Reason].Inc()
	}
	switch d.Reason {
	case sortplan.ReasonUnknown:
		l.c.Unknown++
	case sortplan.ReasonMultiRead:
		l.c.MultiRead++
	}
	l.c.Decided++
	it.state = itemQueued
	it.sentAt = now
	l.openCount.Add(1)
	deadline := r.At.Add(l.cfg.Budget)
	if !now.Before(deadline) {
		l.met.decisionDur.Observe(time.Since(now).Seconds())
		l.journalDecided(it)
		l.finish(idx, now, journal.OutcomeHostLate, 0, 0, "budget spent before decision")
		return
	}
	err := l.plc.Send(ctx, devices.Command{TID: r.TID, Chute: d.Chute, Reason: uint16(d.Reason), Deadline: deadline})
	l.met.decisionDur.Observe(time.Since(now).Seconds())
	l.journalDecided(it)
	if err != nil {
		l.finish(idx, now, journal.OutcomeNotSent, 0, 0, sendErrDetail(err))
		return
	}
	l.open.push(ref{idx: idx, gen: it.gen})
}

func sendErrDetail(err error) string {
	switch {
	case errors.Is(err, devices.ErrQueueFull):
		return "plc queue full"
	case errors.Is(err, devices.ErrClosed):
		return "plc link closed"
	case errors.Is(err, devices.ErrBadCommand):
		return "bad command"
	}
	return "send failed"
}

func (l *Line) journalDecided(it *item) {
	d := &it.decision
	l.rec = journal.Record{Time: it.sentAt, Line: l.cfg.Name, Kind: journal.KindDecision, TID: it.tid, Pass: it.pass,
		Scanner: it.scanner, Codes: it.codes, NoRead: it.noRead, Dest: d.Dest, Chute: d.Chute, Reason: uint16(d.Reason),
		Route: d.Route, PlanVersion: d.Version}
	l.append(l.rec)
	l.recent[l.recentPos%recentN] = l.rec
	l.recentPos++
}

func (l *Line) handleEvent(ev devices.Event) {
	if ev.Kind == devices.EventMissed {
		l.met.missed.Add(float64(ev.Count))
		l.markMissed(ev.Count, ev.At)
		l.log.Warn().Int("count", ev.Count).Msg("plc overwrote confirmations before they were read")
		l.rec = journal.Record{Time: ev.At, Line: l.cfg.Name, Kind: journal.KindMissed, Count: uint32(ev.Count)}
		l.append(l.rec)
		return
	}
	idx := l.tab.lookup(ev.TID)
	if idx < 0 || l.tab.items[idx].state == itemClosed {
		l.c.Unmatched++
		l.met.m.unmatched.WithLabelValues(l.cfg.Name, ev.Kind.String()).Inc()
		if ev.Kind == devices.EventConfirmed {
			l.log.Debug().Uint32("tid", ev.TID).Uint16("result", ev.Result).Msg("confirmation for no open item")
			if idx < 0 {
				l.lateBook(ev)
			}
		}
		return
	}
	it := &l.tab.items[idx]
	at := ev.At
	if at.IsZero() {
		at = time.Now()
	}
	switch ev.Kind {
	case devices.EventWritten:
		if it.state == itemQueued {
			it.state = itemWritten
		}
		l.met.toWritten.Observe(at.Sub(it.readAt).Seconds())
	case devices.EventTaken:
		if it.state < itemTaken {
			it.state = itemTaken
			it.takenAt = at
			l.taken.push(ref{idx: idx, gen: it.gen})
		}
		l.met.toTaken.Observe(at.Sub(it.readAt).Seconds())
	case devices.EventLate:
		l.finish(idx, at, journal.OutcomeHostLate, 0, 0, "")
	case devices.EventLost:
		l.finish(idx, at, journal.OutcomeLostDisconnect, 0, 0, "")
	case devices.EventConfirmed:
		l.met.toConfirmed.Observe(at.Sub(it.readAt).Seconds())
		l.finish(idx, at, outcomeOf(ev.Result), ev.Result, ev.Chute, "")
	}
}

// finish gives the open pass at idx its one outcome.
func (l *Line) finish(idx int32, at time.Time, o journal.Outcome, result, entered uint16, detail string) {
	it := &l.tab.items[idx]
	if it.state == itemClosed || it.state == itemFree {
		return
	}
	it.state = itemClosed
	it.closedAt = at
	it.gen++
	l.openCount.Add(-1)
	cont := ""
	if result != 0 {
		l.met.result(result)
		if int(result) < len(l.c.Results) {
			l.c.Results[result]++
		}
		if (result == ResultDiverted || result == ResultOverride) && entered >= 1 && int(entered) <= l.cfg.Chutes {
			cont = l.book(it, entered, result, at)
		}
	}
	l.count(o, it.decision.Reason)
	d := &it.decision
	chute := d.Chute
	if result != 0 {
		chute = entered
	}
	l.rec = journal.Record{Time: at, Line: l.cfg.Name, Kind: journal.KindOutcome, TID: it.tid, Pass: it.pass,
		Scanner: it.scanner, Codes: it.codes, NoRead: it.noRead, Dest: d.Dest, Chute: chute, Reason: uint16(d.Reason),
		Result: result, Route: d.Route, PlanVersion: d.Version, Outcome: o, Container: cont, Detail: detail}
	l.append(l.rec)
	if cont != "" {
		// After the outcome: a capacity close must follow the booking in
		// the journal, or the rebuild would book it to the next container.
		l.afterBook(entered, at)
	}
	l.recent[l.recentPos%recentN] = l.rec
	l.recentPos++
	if dropped, ok := l.closed.push(ref{idx: idx, gen: it.gen}); ok && l.evict(dropped) {
		l.forgotEarly()
	}
}

// append hands a record to the journal without waiting.
func (l *Line) append(rec journal.Record) {
	if _, err := l.journal.Append(rec); err != nil {
		l.journalErrs.Add(1)
	}
}

// count adds one outcome to the counters.
func (l *Line) count(o journal.Outcome, reason sortplan.Reason) {
	l.c.Outcomes++
	l.c.Buckets[bucketOf(o, reason)]++
	if int(o) < len(l.c.ByOutcome) {
		l.c.ByOutcome[o]++
		l.met.outcomes[o].Inc()
	}
	switch o {
	case journal.OutcomeDiverted, journal.OutcomeDivertedOther:
		l.c.Sorted++
	case journal.OutcomeHostLate:
		l.c.Late++
	case journal.OutcomeLostDisconnect, journal.OutcomeLostAtRestart:
		l.c.Lost++
	case journal.OutcomeMissedConfirmation:
		l.c.Missed++
	case journal.OutcomeTimeout:
		l.c.Timeout++
	case journal.OutcomeNotSent:
		l.c.NotSent++
	}
	if o.Recirculates() && o != journal.OutcomeHostLate && o != journal.OutcomeNotSent {
		l.c.Recirculated++
	}
}

// record journals an outcome for a read that never became a tracked pass.
func (l *Line) record(r devices.Read, at time.Time, o journal.Outcome, detail string) {
	l.count(o, sortplan.ReasonSorted)
	l.rec = journal.Record{Time: at, Line: l.cfg.Name, Kind: journal.KindOutcome, TID: r.TID, Scanner: r.Scanner,
		Codes: r.Codes, NoRead: r.NoRead, Outcome: o, Detail: detail}
	l.append(l.rec)
	l.recent[l.recentPos%recentN] = l.rec
	l.recentPos++
}

// book puts a confirmed divert into the container of the chute entered.
func (l *Line) book(it *item, chute, result uint16, at time.Time) string {
	c := &l.conts[chute]
	if c.route == "" && l.lastRoute[chute] == "" {
		// An alternate chute's first parcel: the plan says which route
		// the chute feeds.
		if rp := l.chuteRoutes.Load(); rp != nil && int(chute) < len(*rp) {
			c.route = (*rp)[chute]
		}
	}
	if c.route == "" || chute == it.decision.Chute {
		if it.decision.Route != "" && chute == it.decision.Chute {
			c.route = it.decision.Route
			l.lastRoute[chute] = it.decision.Route
		}
	}
	c.items = append(c.items, ManifestItem{TID: it.tid, Codes: it.codes, Dest: it.decision.Dest, Result: result,
		Version: it.decision.Version, At: at})
	l.chuteCount[chute]++
	l.c.Booked++
	l.met.divert(chute)
	return containerID(l.cfg.Name, chute, c.n)
}

// closeContainer ends the chute's container manifest and opens the next.
func (l *Line) closeContainer(chute uint16, cause string, at time.Time) Manifest {
	c := &l.conts[chute]
	m := c.manifest(l.cfg.Name, chute)
	m.Closed, m.Cause, m.State = at, cause, StateClosed
	l.manifests = append(l.manifests, m)
	l.trimManifests()
	*c = container{n: c.n + 1, opened: at, route: l.lastRoute[chute]}
	l.met.m.containers.WithLabelValues(l.cfg.Name, cause).Inc()
	l.append(journal.Record{Time: at, Line: l.cfg.Name, Kind: journal.KindContainerClose, Chute: chute,
		Container: m.Container, Route: m.Route, Count: uint32(len(m.Items)), Detail: cause})
	l.log.Info().Str("container", m.Container).Int("items", len(m.Items)).Str("cause", cause).Msg("container closed")
	return m
}

// refreshAvailability copies the PLC's full and disabled bits into the
// decision availability, closes containers whose chute was emptied, and
// journals link and chute state changes.
func (l *Line) refreshAvailability(now time.Time) {
	l.plcStatus = l.plc.Status()
	st := &l.plcStatus
	l.observeStatus(st, now)
	l.links.observe(st, now)
	for n := 1; n <= l.cfg.Chutes; n++ {
		ch := uint16(n)
		wasFull := l.full.Has(ch)
		isFull := st.Full.Has(ch)
		if st.State == devices.LinkUp {
			if wasFull != isFull {
				l.chuteSince[bitFull][n] = now
			}
			if l.plcDisabled.Has(ch) != st.Disabled.Has(ch) {
				l.chuteSince[bitDisabled][n] = now
			}
		}
		if wasFull && !isFull && st.State == devices.LinkUp {
			// The full bit cleared: the container was swapped.
			l.closeContainer(ch, "emptied", now)
		}
		l.avail.Set(ch, isFull || st.Disabled.Has(ch) || l.techDisabled.Has(ch))
	}
	l.full = st.Full
	l.plcDisabled = st.Disabled
}

// sweep times out open items and forgets old finished passes.
func (l *Line) sweep(now time.Time) {
	for {
		r, ok := l.open.peek()
		if !ok {
			break
		}
		it := &l.tab.items[r.idx]
		if it.gen != r.gen || it.state == itemClosed || it.state == itemFree {
			l.open.pop()
			continue
		}
		if now.Sub(it.sentAt) < l.cfg.ConfirmTimeout {
			break
		}
		l.open.pop()
		l.finish(r.idx, now, journal.OutcomeTimeout, 0, 0, "no confirmation within "+l.cfg.ConfirmTimeout.String())
	}
	for {
		r, ok := l.closed.peek()
		if !ok {
			break
		}
		it := &l.tab.items[r.idx]
		if it.gen == r.gen && it.state == itemClosed && now.Sub(it.closedAt) < l.cfg.Remember {
			break
		}
		l.closed.pop()
		l.evict(r)
	}
	l.cutoffClose(now)
	l.met.tracked.Set(float64(l.openCount.Load()))
	if tbl := l.plans.Load(); tbl != nil {
		l.met.planVersion.Set(float64(tbl.Version()))
	}
}

// evict forgets a finished pass if it is still the same finished pass,
// and says whether it did.
func (l *Line) evict(r ref) bool {
	it := &l.tab.items[r.idx]
	if it.gen == r.gen && it.state == itemClosed {
		l.tab.remove(it.tid)
		return true
	}
	return false
}

// evictOldest frees the oldest finished pass to make room: the table is
// full (Capacity) before Remember let it go, so it is counted.
func (l *Line) evictOldest() bool {
	for {
		r, ok := l.closed.pop()
		if !ok {
			return false
		}
		if l.evict(r) {
			l.forgotEarly()
			return true
		}
	}
}

// forgotEarly counts a finished pass dropped before Remember elapsed.
func (l *Line) forgotEarly() {
	l.c.ForgottenEarly++
	l.met.forgotten.Inc()
}

// markMissed closes the n oldest taken-but-unconfirmed passes as missed
// confirmation. The PLC confirms roughly in take order (items reach their
// decision points in belt order), so these are the likeliest owners of the
// overwritten confirmations; an item whose confirmation still arrives is
// counted as unmatched. Closing them now, not at the timeout, keeps the
// item's next read a new pass instead of a duplicate.
func (l *Line) markMissed(n int, at time.Time) {
	if at.IsZero() {
		at = time.Now()
	}
	for n > 0 {
		r, ok := l.taken.pop()
		if !ok {
			return
		}
		it := &l.tab.items[r.idx]
		if it.gen != r.gen || it.state != itemTaken {
			continue
		}
		l.finish(r.idx, at, journal.OutcomeMissedConfirmation, 0, 0, "confirmation overwritten before it was read")
		n--
	}
}

// drainEvents takes whatever the link has left after it stopped.
func (l *Line) drainEvents() {
	for {
		select {
		case ev, ok := <-l.plc.Events():
			if !ok {
				return
			}
			l.handleEvent(ev)
		default:
			return
		}
	}
}

// closeAll gives every still-open pass an outcome when the line stops.
func (l *Line) closeAll(now time.Time) {
	for {
		r, ok := l.open.pop()
		if !ok {
			return
		}
		it := &l.tab.items[r.idx]
		if it.gen == r.gen && it.state != itemClosed && it.state != itemFree {
			l.finish(r.idx, now, journal.OutcomeLostAtRestart, 0, 0, "gateway stopped")
		}
	}
}

// SetChuteDisabled disables (or enables) a chute for the gateway's
// decisions, as a technician does from the status page.
func (l *Line) SetChuteDisabled(ctx context.Context, chute uint16, disabled bool) error {
	return l.SetChuteDisabledBy(ctx, chute, disabled, "")
}

// SetChuteDisabledBy is SetChuteDisabled on behalf of the named
// technician (empty: "technician"). Enabling a chute no technician
// disabled is refused (ErrChuteAtPLC when the PLC disabled it,
// ErrNotDisabled otherwise): it would answer done and change nothing.
func (l *Line) SetChuteDisabledBy(ctx context.Context, chute uint16, disabled bool, by string) error {
	if chute < 1 || int(chute) > l.cfg.Chutes {
		return fmt.Errorf("line %s chute %d: %w", l.cfg.Name, chute, ErrNoChute)
	}
	if by == "" {
		by = "technician"
	}
	var refused error
	err := l.do(ctx, func() {
		if !disabled && !l.techDisabled.Has(chute) {
			refused = ErrNotDisabled
			if l.plcDisabled.Has(chute) {
				refused = ErrChuteAtPLC
			}
			return
		}
		now := time.Now()
		if l.techDisabled.Has(chute) != disabled {
			l.chuteSince[2][chute] = now
		}
		l.techDisabled.Set(chute, disabled)
		l.techBy[chute] = by
		l.avail.Set(chute, disabled || l.full.Has(chute) || l.plcDisabled.Has(chute))
		l.log.Info().Uint16("chute", chute).Bool("disabled", disabled).Str("by", by).Msg("chute set by technician")
		detail := "disabled off"
		if disabled {
			detail = "disabled on"
		}
		cause := "technician"
		if by != "technician" {
			cause = "technician " + by
		}
		l.append(journal.Record{Time: now, Line: l.cfg.Name, Kind: journal.KindChuteState, Chute: chute,
			Detail: detail, Cause: cause})
		l.publish(now)
	})
	if err != nil {
		return err
	}
	if refused != nil {
		return fmt.Errorf("line %s chute %d: %w", l.cfg.Name, chute, refused)
	}
	return nil
}

// CloseContainer closes the container in a chute and returns its manifest.
func (l *Line) CloseContainer(ctx context.Context, chute uint16) (Manifest, error) {
	if chute < 1 || int(chute) > l.cfg.Chutes {
		return Manifest{}, fmt.Errorf("line %s chute %d: %w", l.cfg.Name, chute, ErrNoChute)
	}
	var m Manifest
	err := l.do(ctx, func() {
		m = l.closeContainer(chute, "technician", time.Now())
		l.publish(time.Now())
	})
	return m, err
}

// Manifests returns the closed manifests (oldest first) and the open
// containers' current content that match: container id, or route, or all
// when both are empty.
func (l *Line) Manifests(ctx context.Context, container, route string) ([]Manifest, error) {
	var out []Manifest
	match := func(m *Manifest) bool {
		return (container == "" || m.Container == container) && (route == "" || m.Route == route)
	}
	err := l.do(ctx, func() {
		for i := range l.manifests {
			if match(&l.manifests[i]) {
				out = append(out, l.manifests[i])
			}
		}
		for n := 1; n <= l.cfg.Chutes; n++ {
			c := &l.conts[n]
			if len(c.items) == 0 && container == "" {
				continue
			}
			m := c.manifest(l.cfg.Name, uint16(n))
			if match(&m) {
				out = append(out, m)
			}
		}
	})
	return out, err
}
