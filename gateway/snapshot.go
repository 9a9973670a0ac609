package gateway

import (
	"slices"
	"strconv"
	"time"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// Snapshot is the whole gateway's state at one moment. The status page,
// its live updates and /status.json all render this one struct.
type Snapshot struct {
	At       time.Time `json:"at"`
	Version  string    `json:"version"`
	Ready    bool      `json:"ready"`
	Draining bool      `json:"draining"`
	// Journal is the audit journal's health (nil: the gateway runs none).
	Journal *JournalHealthView `json:"journal,omitempty"`
	Lines   []LineSnapshot     `json:"lines"`
}

// JournalHealthView is the journal's health as the status page shows it.
type JournalHealthView struct {
	// State is ok, failing (commits fail; records wait in memory) or full
	// (the queue filled: records are not kept until it drains).
	State string    `json:"state"`
	Since time.Time `json:"since"`
	For   string    `json:"for"`
	// Ready is false while the journal keeps the gateway from being
	// ready; Warning then says why and what to do (also set for a disk
	// below its warning threshold).
	Ready        bool      `json:"ready"`
	Warning      string    `json:"warning,omitempty"`
	Policy       string    `json:"when_full"`
	HoldingReads bool      `json:"holding_reads"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	LastCommit   time.Time `json:"last_commit,omitzero"`
	CommitAge    string    `json:"last_commit_age"`
	CommitErrors uint64    `json:"commit_errors"`
	Queued       int       `json:"queued"`
	Capacity     int       `json:"capacity"`
	Fill         float64   `json:"fill"` // 0..1
	// NotKept counts records lost to the audit trail by reason
	// (queue-full, closed, uncommitted-at-close).
	NotKept      map[string]uint64 `json:"not_kept"`
	NotKeptTotal uint64            `json:"not_kept_total"`
	Disk         JournalDiskView   `json:"disk"`
}

// JournalDiskView is the free space of the journal's filesystem.
type JournalDiskView struct {
	State    string  `json:"state"` // unknown, ok, low, critical
	Dir      string  `json:"dir"`
	Free     uint64  `json:"free_bytes"`
	Total    uint64  `json:"total_bytes"`
	FreePct  float64 `json:"free_pct"`
	FreeText string  `json:"free"`
	Warning  string  `json:"warning,omitempty"`
}

func journalViewOf(h journal.Health, now time.Time) JournalHealthView {
	v := JournalHealthView{State: h.State.String(), Since: h.Since, For: age(now, h.Since), Ready: h.Unready == "",
		Policy: h.Policy, HoldingReads: h.HoldingReads, LastError: h.LastError, LastErrorAt: h.LastErrorAt,
		LastCommit: h.LastCommit, CommitAge: age(now, h.LastCommit), CommitErrors: h.CommitErrors,
		Queued: h.QueueLen, Capacity: h.QueueCap, NotKept: map[string]uint64{}, NotKeptTotal: h.NotKeptTotal(),
		Disk: JournalDiskView{State: h.Disk.State.String(), Dir: h.Disk.Dir, Free: h.Disk.Free, Total: h.Disk.Total,
			FreePct: float64(int(h.Disk.FreePct*10+0.5)) / 10, FreeText: bytesText(h.Disk.Free), Warning: h.Disk.Warning}}
	if h.QueueCap > 0 {
		v.Fill = float64(h.QueueLen) / float64(h.QueueCap)
	}
	for r := range h.NotKept {
		v.NotKept[journal.NotKeptReason(r).String()] = h.NotKept[r]
	}
	switch {
	case h.Unready != "":
		v.Warning = h.Unready + ". Free space on the journal's disk or fix its I/O error; see docs/operations.md, Journal health."
	case h.State != journal.StateOK:
		v.Warning = "journal commits failing: " + h.LastError
	case h.Disk.State == journal.DiskLow:
		v.Warning = "journal disk low: " + h.Disk.Warning + ". Free space before it fills."
	case h.NotKeptTotal() > 0:
		v.Warning = strconv.FormatUint(h.NotKeptTotal(), 10) + " journal records were not kept since start (see not kept)."
	}
	return v
}

// stateClass is the badge colour of a journal or disk state: none for
// normal (grey), warn, bad.
func stateClass(state string) string {
	switch state {
	case "ok":
		return "ok"
	case "failing", "low", "unknown":
		return "warn"
	}
	return "bad"
}

func bytesText(b uint64) string {
	const unit = 1024
	if b < unit {
		return strconv.FormatUint(b, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(b)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}

// LineSnapshot is one line's state.
type LineSnapshot struct {
	Name     string    `json:"name"`
	At       time.Time `json:"at"`
	Ready    bool      `json:"ready"`
	Draining bool      `json:"draining"`
	// HoldingReads: the journal is full under policy stop-reads; new
	// reads are not commanded (not-sent) until it drains.
	HoldingReads bool          `json:"holding_reads"`
	PLC          PLCView       `json:"plc"`
	Scanners     []ScannerView `json:"scanners"`
	Plan         PlanInfo      `json:"plan"`
	Totals       Totals        `json:"totals"`
	PerMinute    Rates         `json:"per_minute"`
	Open         int           `json:"open"`
	Chutes       []ChuteView   `json:"chutes"`
	Recent       []ItemView    `json:"recent"`
	// Condition is the line's condition in one word (sorting, degraded,
	// stopped, fault, down, no-data) and Reasons why it is not sorting.
	Condition string   `json:"condition"`
	Reasons   []string `json:"reasons"`
	// Alarms are the line's active alarms (cleared but unacknowledged
	// included; shelved ones left out), most severe first.
	Alarms []Alarm `json:"alarms"`
	// Routes is the departures board: the plan's routes with departures,
	// soonest first (empty when the plan has no route rows).
	Routes []RouteBoard `json:"routes"`
	// Tiles are the last minute's outcomes, all of them, as the page's
	// tiles; Trend the last hour per minute; Shift the current shift's
	// counts (nil without shifts configured).
	Tiles OutcomeTiles `json:"outcome_tiles"`
	Trend []TrendPoint `json:"trend"`
	Shift *ShiftView   `json:"shift,omitempty"`
	// Link is the PLC link for the page's banner; LinkEvents its recent
	// state changes, newest first (kept after it recovers).
	Link       LinkBanner  `json:"link"`
	LinkEvents []LinkEvent `json:"link_events"`
	// BlockedRoutes are the plan's routes with no usable chute left.
	BlockedRoutes []string `json:"blocked_routes"`
}

// PLCView is the PLC link as the status page shows it.
type PLCView struct {
	Name          string    `json:"name"`
	Protocol      string    `json:"protocol"`
	Addr          string    `json:"addr"`
	State         string    `json:"state"`
	LastError     string    `json:"last_error,omitempty"`
	Reconnects    uint64    `json:"reconnects"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	HeartbeatAge  string    `json:"heartbeat_age"`
	SorterState   string    `json:"sorter_state"`
	FaultCode     uint16    `json:"fault_code"`
	Fault         string    `json:"fault"`
	BootID        uint16    `json:"boot_id"`
	AckSeq        uint16    `json:"ack_seq"`
	Outstanding   int       `json:"outstanding"`
	Queued        int       `json:"queued"`
	RoundTripP50  string    `json:"round_trip_p50"`
	RoundTripP99  string    `json:"round_trip_p99"`
	Written       uint64    `json:"written"`
	Taken         uint64    `json:"taken"`
	Confirmed     uint64    `json:"confirmed"`
	Late          uint64    `json:"late"`
	Lost          uint64    `json:"lost"`
	Missed        uint64    `json:"missed"`
	Errors        uint64    `json:"errors"`
	// Exceptions: Modbus exception replies (the connection is kept);
	// LastException is the newest one's code.
	Exceptions    uint64 `json:"exceptions"`
	LastException uint8  `json:"last_exception,omitempty"`
}

// ScannerView is one scanner connection.
type ScannerView struct {
	Name          string    `json:"name"`
	Addr          string    `json:"addr"`
	State         string    `json:"state"`
	Online        bool      `json:"online"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	HeardAge      string    `json:"heard_age"`
	Reads         uint64    `json:"reads"`
	NoReads       uint64    `json:"noreads"`
	Malformed     uint64    `json:"malformed"`
	Oversized     uint64    `json:"oversized"`
	Reconnects    uint64    `json:"reconnects"`
	Refused       uint64    `json:"refused"` // connections refused (server mode: wrong peer, or the live one not silent)
	LastError     string    `json:"last_error,omitempty"`
}

// Totals are counters since the gateway started.
type Totals struct {
	Reads        uint64            `json:"reads"`
	NoReads      uint64            `json:"noreads"`
	Duplicates   uint64            `json:"duplicates"`
	Decided      uint64            `json:"decided"`
	Unknown      uint64            `json:"unknown"`
	MultiRead    uint64            `json:"multiread"`
	Outcomes     uint64            `json:"outcomes"`
	Sorted       uint64            `json:"sorted"`
	Recirculated uint64            `json:"recirculated"`
	Late         uint64            `json:"late"`
	Lost         uint64            `json:"lost"`
	Missed       uint64            `json:"missed"`
	Timeout      uint64            `json:"timeout"`
	NotSent      uint64            `json:"not_sent"`
	Exceptions   uint64            `json:"recirc_limit"`
	Unmatched    uint64            `json:"unmatched"`
	Overflow     uint64            `json:"read_overflow"`
	JournalErrs  uint64            `json:"journal_errors"` // records the journal refused (queue full, closed)
	JournalHeld  uint64            `json:"journal_held"`   // reads not commanded: journal full, policy stop-reads
	Results      map[string]uint64 `json:"outcomes_by_kind"`
	// Tracked is the items in the line's item table (open and remembered
	// passes), at most TrackCapacity (LineConfig.Capacity);
	// ForgottenEarly the finished passes it dropped before their remember
	// time to make room.
	Tracked        int    `json:"tracked"`
	TrackCapacity  int    `json:"track_capacity"`
	ForgottenEarly uint64 `json:"forgotten_early"`
	// Manifests and Vans are the closed container and departed van
	// manifests held in memory, at most KeepManifests and KeepVans
	// (LineConfig); the Dropped counts are those let go past them.
	Manifests        int    `json:"manifests_kept"`
	KeepManifests    int    `json:"keep_manifests"`
	ManifestsDropped uint64 `json:"manifests_dropped"`
	Vans             int    `json:"vans_kept"`
	KeepVans         int    `json:"keep_vans"`
	VansDropped      uint64 `json:"vans_dropped"`
}

// Rates are the last minute's counts and shares (percent).
type Rates struct {
	Reads        uint64  `json:"reads"`
	Outcomes     uint64  `json:"outcomes"`
	NoReadPct    float64 `json:"noread_pct"`
	UnknownPct   float64 `json:"unknown_pct"`
	MultiReadPct float64 `json:"multiread_pct"`
	SortedPct    float64 `json:"sorted_pct"`
	Recirculated uint64  `json:"recirculated"`
	Late         uint64  `json:"late"`
	Lost         uint64  `json:"lost"`
	Window       string  `json:"window"`
}

// ChuteView is one chute tile.
type ChuteView struct {
	N            uint16  `json:"n"`
	Count        uint64  `json:"count"`
	Full         bool    `json:"full"`
	PLCDisabled  bool    `json:"plc_disabled"`
	TechDisabled bool    `json:"tech_disabled"`
	Route        string  `json:"route,omitempty"`
	Container    string  `json:"container"`
	Items        int     `json:"items"`
	Fill         float64 `json:"fill"` // 0..1 of the nominal capacity, 0 if unknown
	// FullSince and DisabledSince: when the bit last changed (zero: not
	// seen change since start); DisabledBy is "PLC" or the technician.
	FullSince     time.Time `json:"full_since,omitzero"`
	DisabledSince time.Time `json:"disabled_since,omitzero"`
	DisabledBy    string    `json:"disabled_by,omitempty"`
}

// ItemView is one recent outcome.
type ItemView struct {
	TID       uint32    `json:"tid"`
	Pass      uint16    `json:"pass"`
	Kind      string    `json:"kind"`
	Scanner   string    `json:"scanner"`
	Codes     []string  `json:"codes"`
	Dest      string    `json:"dest"`
	Chute     uint16    `json:"chute"` // commanded, or entered once confirmed
	Reason    string    `json:"reason"`
	Route     string    `json:"route,omitempty"`
	Version   uint64    `json:"plan_version"`
	Outcome   string    `json:"outcome"`
	Result    uint16    `json:"result,omitempty"`
	Container string    `json:"container,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	At        time.Time `json:"at"`
}

// ItemViewOf renders a journal record for the page.
func ItemViewOf(r *journal.Record) ItemView {
	v := ItemView{TID: r.TID, Pass: r.Pass, Kind: r.Kind.String(), Scanner: r.Scanner, Codes: r.Codes, Dest: r.Dest,
		Chute: r.Chute, Reason: sortplan.Reason(r.Reason).String(), Route: r.Route, Version: r.PlanVersion,
		Outcome: r.Outcome.String(), Result: r.Result, Container: r.Container, Detail: r.Detail, At: r.Time}
	if v.Codes == nil {
		v.Codes = []string{}
	}
	return v
}

// SorterStateName names SORTER_STATE.
func SorterStateName(s uint16) string {
	switch s {
	case 0:
		return "stopped"
	case 1:
		return "running"
	case 2:
		return "emergency stop"
	case 3:
		return "fault"
	case 4:
		return "maintenance"
	}
	return "unknown"
}

// plcHeard reports whether the PLC's block was ever read: BOOT_ID is
// never 0 on a PLC that keeps the interface, and its heartbeat time is
// set with the first read.
func plcHeard(st *devices.PLCStatus) bool {
	return st.BootID != 0 || !st.LastHeartbeat.IsZero()
}

// FaultName names FAULT_CODE.
func FaultName(f uint16) string {
	switch {
	case f == 0:
		return "none"
	case f == 1:
		return "host lost"
	case f < 100:
		return "reserved"
	}
	return "plc specific"
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(100 * time.Millisecond).String()
}

// rateRing keeps one sample of the counters per second for a minute.
type rateRing struct {
	buf  [61]rateSample
	n    int
	last time.Time
}

type rateSample struct {
	at                                         time.Time
	reads, noreads, unknown, multi, decided    uint64
	outcomes, sorted, recirculated, late, lost uint64
	buckets                                    [nBuckets]uint64
}

func (r *rateRing) add(now time.Time, c *counters) {
	if !r.last.IsZero() && now.Sub(r.last) < time.Second {
		return
	}
	r.last = now
	r.buf[r.n%len(r.buf)] = rateSample{at: now, reads: c.Reads, noreads: c.NoReads, unknown: c.Unknown, multi: c.MultiRead,
		decided: c.Decided, outcomes: c.Outcomes, sorted: c.Sorted, recirculated: c.Recirculated, late: c.Late, lost: c.Lost,
		buckets: c.Buckets}
	r.n++
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(int(float64(a)/float64(b)*1000+0.5)) / 10
}

func (r *rateRing) rates(now time.Time, c *counters) Rates {
	if r.n == 0 {
		return Rates{Window: "0s"}
	}
	base := r.base(now)
	reads := c.Reads - base.reads
	return Rates{
		Reads:        reads,
		Outcomes:     c.Outcomes - base.outcomes,
		NoReadPct:    pct(c.NoReads-base.noreads, reads),
		UnknownPct:   pct(c.Unknown-base.unknown, c.Decided-base.decided),
		MultiReadPct: pct(c.MultiRead-base.multi, c.Decided-base.decided),
		SortedPct:    pct(c.Sorted-base.sorted, c.Outcomes-base.outcomes),
		Recirculated: c.Recirculated - base.recirculated,
		Late:         c.Late - base.late,
		Lost:         c.Lost - base.lost,
		Window:       now.Sub(base.at).Round(time.Second).String(),
	}
}

// tiles are the outcome tiles of the same window as rates.
func (r *rateRing) tiles(now time.Time, c *counters, cfg *AlarmConfig) OutcomeTiles {
	if r.n == 0 {
		return outcomeTiles(&[nBuckets]uint64{}, "0s", cfg)
	}
	base := r.base(now)
	var b [nBuckets]uint64
	for i := range b {
		b[i] = c.Buckets[i] - base.buckets[i]
	}
	return outcomeTiles(&b, now.Sub(base.at).Round(time.Second).String(), cfg)
}

// base is the oldest sample at most a minute old.
func (r *rateRing) base(now time.Time) rateSample {
	oldest := r.n - len(r.buf)
	if oldest < 0 {
		oldest = 0
	}
	var base rateSample
	for i := oldest; i < r.n; i++ {
		s := r.buf[i%len(r.buf)]
		if now.Sub(s.at) <= 60*time.Second+500*time.Millisecond {
			base = s
			break
		}
	}
	return base
}

// publish builds the line snapshot (on the loop) and stores it for readers.
func (l *Line) publish(now time.Time) {
	l.rates.add(now, &l.c)
	if l.scanners != nil {
		l.scanStatus = l.scanners.Status()
	}
	st := l.plcStatus
	if st.Name == "" && st.State == 0 {
		st = l.plc.Status()
		l.plcStatus = st
	}
	l.met.links(st, l.scanStatus)
	s := &LineSnapshot{
		Name: l.cfg.Name, At: now, Draining: l.draining.Load(), Open: int(l.openCount.Load()),
		Plan: l.PlanInfo(),
		PLC: PLCView{
			Name: st.Name, Protocol: st.Protocol, Addr: st.Addr, State: st.State.String(), LastError: st.LastError,
			Reconnects: st.Reconnects, LastHeartbeat: st.LastHeartbeat, HeartbeatAge: age(now, st.LastHeartbeat),
			SorterState: SorterStateName(st.SorterState), FaultCode: st.FaultCode, Fault: FaultName(st.FaultCode),
			BootID: st.BootID, AckSeq: st.AckSeq, Outstanding: st.Outstanding, Queued: st.Queued,
			RoundTripP50: st.RoundTrip.P50.String(), RoundTripP99: st.RoundTrip.P99.String(),
			Written: st.Written, Taken: st.Taken, Confirmed: st.Confirmed, Late: st.Late, Lost: st.Lost, Missed: st.Missed, Errors: st.Errors,
			Exceptions: st.Exceptions, LastException: st.LastException,
		},
		Totals: Totals{
			Reads: l.c.Reads, NoReads: l.c.NoReads, Duplicates: l.c.Duplicates, Decided: l.c.Decided, Unknown: l.c.Unknown,
			MultiRead: l.c.MultiRead, Outcomes: l.c.Outcomes, Sorted: l.c.Sorted, Recirculated: l.c.Recirculated, Late: l.c.Late,
			Lost: l.c.Lost, Missed: l.c.Missed, Timeout: l.c.Timeout, NotSent: l.c.NotSent, Exceptions: l.c.Exceptions,
			Unmatched: l.c.Unmatched, Overflow: l.overflow.Load(), JournalErrs: l.journalErrs.Load(), JournalHeld: l.c.JournalHeld,
			Results: map[string]uint64{}, Tracked: l.tab.live, TrackCapacity: len(l.tab.items), ForgottenEarly: l.c.ForgottenEarly,
			Manifests: len(l.manifests), KeepManifests: l.cfg.KeepManifests, ManifestsDropped: l.c.ManifestsDropped,
			Vans: len(l.vans), KeepVans: l.cfg.KeepVans, VansDropped: l.c.VansDropped,
		},
		PerMinute: l.rates.rates(now, &l.c),
		Tiles:     l.rates.tiles(now, &l.c, &l.cfg.Alarms),
	}
	l.trend.add(now, l.c.Buckets[bucketSorted], l.c.Outcomes)
	s.Trend = l.trend.points()
	var shifts []Shift
	if p := l.shifts.Load(); p != nil {
		shifts = *p
	}
	s.Shift = l.shift.view(shifts, now, &l.c)
	s.LinkEvents = l.links.events()
	s.Link = LinkBanner{Up: st.State == devices.LinkUp}
	if !s.Link.Up {
		s.Link.Cause, s.Link.Since = st.LastError, l.links.downSince
		if s.Link.Cause == "" {
			s.Link.Cause = "link " + st.State.String()
		}
		if !s.Link.Since.IsZero() {
			s.Link.For = now.Sub(s.Link.Since).Round(time.Second).String()
		}
		s.Link.Next = linkNext(st.LastError, st.Addr)
	}
	if !plcHeard(&st) {
		// Nothing read from the PLC yet: its zero registers are not a
		// stopped sorter with no fault.
		s.PLC.SorterState, s.PLC.Fault = "unknown", "unknown"
	}
	s.HoldingReads = l.held.Load()
	s.Ready = l.plans.Load() != nil && !s.Draining && st.State == devices.LinkUp && !s.HoldingReads && (l.scanners == nil || anyOnline(l.scanStatus))
	for o, n := range l.c.ByOutcome {
		if n > 0 {
			s.Totals.Results[journal.Outcome(o).String()] = n
		}
	}
	s.Scanners = make([]ScannerView, 0, len(l.scanStatus))
	for _, sc := range l.scanStatus {
		s.Scanners = append(s.Scanners, ScannerView{Name: sc.Name, Addr: sc.Addr, State: sc.State.String(), Online: sc.Online,
			LastHeartbeat: sc.LastHeartbeat, HeardAge: age(now, sc.LastHeard), Reads: sc.Reads, NoReads: sc.NoReads,
			Malformed: sc.Malformed, Oversized: sc.Oversized, Reconnects: sc.Reconnects, Refused: sc.Refused, LastError: sc.LastError})
	}
	var routes []string
	if rp := l.chuteRoutes.Load(); rp != nil {
		routes = *rp
	}
	s.Chutes = make([]ChuteView, l.cfg.Chutes)
	for n := 1; n <= l.cfg.Chutes; n++ {
		ch := uint16(n)
		c := &l.conts[n]
		v := ChuteView{N: ch, Count: l.chuteCount[n], Full: l.full.Has(ch), PLCDisabled: l.plcDisabled.Has(ch),
			TechDisabled: l.techDisabled.Has(ch), Route: c.route, Container: containerID(l.cfg.Name, ch, c.n), Items: len(c.items)}
		if v.Route == "" && n < len(routes) {
			v.Route = routes[n]
		}
		if v.Route == "" {
			v.Route = l.lastRoute[n]
		}
		if l.cfg.ContainerCapacity > 0 {
			v.Fill = float64(len(c.items)) / float64(l.cfg.ContainerCapacity)
		}
		if v.Full {
			v.FullSince = l.chuteSince[bitFull][n]
		}
		switch {
		case v.TechDisabled:
			v.DisabledSince, v.DisabledBy = l.chuteSince[2][n], l.techBy[n]
		case v.PLCDisabled:
			v.DisabledSince, v.DisabledBy = l.chuteSince[bitDisabled][n], "PLC"
		}
		s.Chutes[n-1] = v
	}
	s.Recent = make([]ItemView, 0, recentN)
	for i := 0; i < recentN && i < l.recentPos; i++ {
		r := &l.recent[(l.recentPos-1-i)%recentN]
		s.Recent = append(s.Recent, ItemViewOf(r))
	}
	s.Routes = l.board(l.dockNow())
	s.BlockedRoutes = blockedRoutes(s.Chutes, l.plans.Load() != nil)
	l.evaluate(now, s, &st)
	// Alarm transitions the journal refused count too.
	s.Totals.JournalErrs = l.journalErrs.Load()
	l.snap.Store(s)
}

// evaluate sets the line's condition and evaluates its alarms, from the
// snapshot being built (on the loop).
func (l *Line) evaluate(now time.Time, s *LineSnapshot, st *devices.PLCStatus) {
	in := ConditionInput{PLCHeard: plcHeard(st), LinkUp: st.State == devices.LinkUp, LinkState: st.State.String(),
		LinkError: st.LastError, SorterState: st.SorterState, FaultCode: st.FaultCode,
		Scanners: len(s.Scanners), PlanLoaded: l.plans.Load() != nil,
		Outcomes: s.PerMinute.Outcomes, SortedPct: s.PerMinute.SortedPct,
		MinSortedPct: l.cfg.Alarms.MinSortedPct, MinOutcomes: uint64(l.cfg.Alarms.MinOutcomes)}
	heard := make(map[string]bool, len(l.scanStatus))
	for _, sc := range l.scanStatus {
		if sc.Online {
			in.ScannersOnline++
		}
		heard[sc.Name] = !sc.LastHeard.IsZero()
	}
	var jv *JournalHealthView
	if l.journalHealth != nil {
		v := journalViewOf(l.journalHealth(), now)
		jv = &v
		in.JournalState = v.State
		in.JournalDiskLow = v.Disk.State == "low" || v.Disk.State == "critical"
	}
	s.Condition, s.Reasons = Condition(in)
	var hb time.Time
	if in.PLCHeard {
		hb = st.LastHeartbeat
	}
	causes := append(l.alarms.causes(now, s, in, jv, hb, heard), departureCauses(s.Routes)...)
	if l.upstreamAlarm != nil {
		if t := l.upstreamAlarm(); t != "" {
			causes = append(causes, cause("upstream", SevWarning, t))
		}
	}
	l.alarms.evaluate(now, causes)
	s.Alarms, _, _ = l.alarms.lists()
}

// Alarms lists the line's alarms: active (cleared but unacknowledged
// included), shelved, and the history (cleared, newest first).
func (l *Line) Alarms() (active, shelved, history []Alarm) { return l.alarms.lists() }

// AckAlarm acknowledges the line's alarm id for the technician by.
func (l *Line) AckAlarm(id, by string) (Alarm, error) { return l.alarms.Ack(id, by, time.Now()) }

// ShelveAlarm shelves the line's alarm id for d (capped).
func (l *Line) ShelveAlarm(id, by string, d time.Duration) (Alarm, error) {
	return l.alarms.Shelve(id, by, d, time.Now())
}

// blockedRoutes lists the routes whose chutes are all full or disabled
// (sorted by name), the same rule as the route-blocked alarm.
func blockedRoutes(cs []ChuteView, planLoaded bool) []string {
	out := []string{}
	if !planLoaded {
		return out
	}
	usable := map[string]bool{}
	for i := range cs {
		c := &cs[i]
		if c.Route == "" {
			continue
		}
		usable[c.Route] = usable[c.Route] || !c.Full && !c.PLCDisabled && !c.TechDisabled
	}
	for r, ok := range usable {
		if !ok {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}
