package gateway

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sortgw/gateway/journal"
)

// AlarmConfig holds a line's alarm thresholds. Zero values take the
// defaults.
type AlarmConfig struct {
	// MinSortedPct: below this share of outcomes sorted in the last
	// minute the line is degraded and the sorted-rate alarm is raised
	// (default 50).
	MinSortedPct float64 `yaml:"min_sorted_pct"`
	// MinOutcomes is the number of outcomes (or reads, for the no-read
	// and unknown rates) in the last minute needed to judge a rate
	// (default 20).
	MinOutcomes int `yaml:"min_outcomes"`
	// MaxNoReadPct and MaxUnknownPct: the no-read and unknown-destination
	// rate alarms (default 10 and 10).
	MaxNoReadPct  float64 `yaml:"max_noread_pct"`
	MaxUnknownPct float64 `yaml:"max_unknown_pct"`
	// ChuteFullFor: a chute full for longer raises an alarm (default 5m).
	ChuteFullFor time.Duration `yaml:"chute_full_for"`
	// HeartbeatStall: a PLC heartbeat unchanged for longer while the link
	// is up raises an alarm (default 5s).
	HeartbeatStall time.Duration `yaml:"heartbeat_stall"`
	// MaxShelve caps how long an alarm can be shelved (default 8h).
	MaxShelve time.Duration `yaml:"max_shelve"`
	// KeepHistory is how many ended alarms are kept per line (default 200).
	KeepHistory int `yaml:"keep_history"`
}

// Validate fills defaults and checks the values.
func (c *AlarmConfig) Validate() error {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MinSortedPct, 50)
	def(&c.MaxNoReadPct, 10)
	def(&c.MaxUnknownPct, 10)
	if c.MinOutcomes == 0 {
		c.MinOutcomes = 20
	}
	if c.ChuteFullFor == 0 {
		c.ChuteFullFor = 5 * time.Minute
	}
	if c.HeartbeatStall == 0 {
		c.HeartbeatStall = 5 * time.Second
	}
	if c.MaxShelve == 0 {
		c.MaxShelve = 8 * time.Hour
	}
	if c.KeepHistory == 0 {
		c.KeepHistory = 200
	}
	if c.MinSortedPct < 0 || c.MinSortedPct > 100 || c.MaxNoReadPct < 0 || c.MaxNoReadPct > 100 ||
		c.MaxUnknownPct < 0 || c.MaxUnknownPct > 100 {
		return fmt.Errorf("alarms: percentages must be within 0..100 (min sorted %g, max no-read %g, max unknown %g)",
			c.MinSortedPct, c.MaxNoReadPct, c.MaxUnknownPct)
	}
	if c.MinOutcomes < 0 || c.ChuteFullFor < 0 || c.HeartbeatStall < 0 || c.MaxShelve < 0 || c.KeepHistory < 0 {
		return errors.New("alarms: negative count or duration")
	}
	return nil
}

// Alarm severities.
const (
	SevCritical = "critical"
	SevWarning  = "warning"
	SevInfo     = "info"
)

// Alarm transitions as the journal records them (Record.Cause).
const (
	alarmRaised    = "raised"
	alarmAcked     = "acked"
	alarmCleared   = "cleared"
	alarmShelved   = "shelved"
	alarmUnshelved = "unshelved"
)

// Errors the alarm API branches on.
var (
	ErrNoAlarm = errors.New("no such alarm")
	ErrNoWho   = errors.New("who acknowledges is required (by)")
)

// Alarm is one occurrence of an alarm: raised once, then acknowledged,
// cleared (return to normal) and perhaps shelved, in any order of ack and
// clear (ISA-18.2).
type Alarm struct {
	ID       string     `json:"id"` // stable per cause: "L1/plc-down"
	Line     string     `json:"line"`
	Severity string     `json:"severity"`
	Text     string     `json:"text"`
	Action   string     `json:"action"`
	State    string     `json:"state"` // unacked, acked, cleared-unacked, cleared, shelved
	Since    time.Time  `json:"since"`
	Cleared  *time.Time `json:"cleared"`
	AckedBy  string     `json:"acked_by"`
	AckedAt  *time.Time `json:"acked_at"`
	// ShelvedBy and ShelvedUntil: shelved alarms are not shown as active
	// until then, when they unshelve by themselves.
	ShelvedBy    string     `json:"shelved_by,omitempty"`
	ShelvedUntil *time.Time `json:"shelved_until,omitempty"`
}

func (a *Alarm) state() string {
	switch {
	case a.ShelvedUntil != nil && a.Cleared == nil:
		return "shelved"
	case a.Cleared != nil && a.AckedAt != nil:
		return "cleared"
	case a.Cleared != nil:
		return "cleared-unacked"
	case a.AckedAt != nil:
		return "acked"
	}
	return "unacked"
}

// alarmCause is one alarm condition present now, as the evaluation finds
// it.
type alarmCause struct {
	key, sev, text, action string
}

// alarmBook keeps one line's alarms. The line's loop evaluates it; the
// HTTP side acknowledges and shelves; mu guards everything.
type alarmBook struct {
	line  string
	cfg   AlarmConfig
	j     Journal
	gauge *prometheus.GaugeVec
	// refused counts a record the journal refused (the line's journal
	// errors: nothing is lost silently).
	refused func()

	mu      sync.Mutex
	live    map[string]*Alarm // raised and not yet cleared, or cleared but not acknowledged
	history []*Alarm          // cleared, oldest first, at most cfg.KeepHistory
	// Evaluation state (loop only, under mu for simplicity).
	fullSince map[uint16]time.Time
	start     time.Time
	unjudged  []string // alarm keys (or key prefixes) whose cause is unknown now: set by causes
}

func newAlarmBook(line string, cfg AlarmConfig, j Journal, gauge *prometheus.GaugeVec, now time.Time) *alarmBook {
	return &alarmBook{line: line, cfg: cfg, j: j, gauge: gauge, live: map[string]*Alarm{},
		fullSince: map[uint16]time.Time{}, start: now}
}

func tptr(t time.Time) *time.Time { return &t }

func (b *alarmBook) id(key string) string { return b.line + "/" + key }

func (b *alarmBook) record(a *Alarm, transition, by string, minutes int, at time.Time) {
	if b.j == nil {
		return
	}
	if _, err := b.j.Append(journal.Record{Time: at, Line: b.line, Kind: journal.KindAlarm, Alarm: a.ID,
		Severity: a.Severity, Detail: clip(a.Text), Cause: transition, By: by, Count: uint32(max(minutes, 0))}); err != nil && b.refused != nil {
		b.refused()
	}
}

func (b *alarmBook) setGauge(a *Alarm, on bool) {
	if b.gauge == nil {
		return
	}
	if on {
		b.gauge.WithLabelValues(b.line, a.ID, a.Severity).Set(1)
	} else {
		b.gauge.DeleteLabelValues(b.line, a.ID, a.Severity)
	}
}

// end moves a cleared and acknowledged (or shelved) alarm to the history.
func (b *alarmBook) end(a *Alarm) {
	delete(b.live, a.ID)
}

func (b *alarmBook) pushHistory(a *Alarm) {
	b.history = append(b.history, a)
	if n := len(b.history) - b.cfg.KeepHistory; n > 0 {
		b.history = slices.Delete(b.history, 0, n)
	}
}

// evaluate applies the causes present now: new ones are raised, gone
// ones cleared, expired shelves lifted.
func (b *alarmBook) evaluate(now time.Time, causes []alarmCause) {
	b.mu.Lock()
	defer b.mu.Unlock()
	present := make(map[string]alarmCause, len(causes))
	for _, c := range causes {
		id := b.id(c.key)
		present[id] = c
		a := b.live[id]
		if a != nil && a.Cleared != nil {
			// Back before it was acknowledged: the old occurrence stays
			// in the history, a new one starts.
			delete(b.live, id)
			a = nil
		}
		if a == nil {
			a = &Alarm{ID: id, Line: b.line, Severity: c.sev, Text: c.text, Action: c.action, Since: now}
			b.live[id] = a
			b.record(a, alarmRaised, "", 0, now)
			b.setGauge(a, true)
			continue
		}
		// The text may carry a changing detail (the link's last error).
		a.Text, a.Action = c.text, c.action
		if a.ShelvedUntil != nil && !now.Before(*a.ShelvedUntil) {
			a.ShelvedUntil, a.ShelvedBy = nil, ""
			b.record(a, alarmUnshelved, "", 0, now)
		}
	}
	for id, a := range b.live {
		if _, ok := present[id]; ok || a.Cleared != nil || b.unknown(id) {
			continue
		}
		a.Cleared = tptr(now)
		b.record(a, alarmCleared, "", 0, now)
		b.setGauge(a, false)
		b.pushHistory(a)
		if a.AckedAt != nil || a.ShelvedUntil != nil {
			a.ShelvedUntil = nil
			b.end(a)
		}
	}
}

// unknown reports whether the alarm's cause cannot be judged now, so the
// alarm must neither clear nor be raised: the sorter's own alarms before
// the PLC was read (after a restart, an e-stop from before stays active
// until the PLC says otherwise), and scanners in their start grace.
func (b *alarmBook) unknown(id string) bool {
	key := id[min(len(b.line)+1, len(id)):]
	for _, p := range b.unjudged {
		if key == p || strings.HasPrefix(key, p+"/") {
			return true
		}
	}
	return false
}

// Ack acknowledges the alarm id for by.
func (b *alarmBook) Ack(id, by string, now time.Time) (Alarm, error) {
	if by == "" {
		return Alarm{}, ErrNoWho
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.live[id]
	if a == nil {
		return Alarm{}, fmt.Errorf("alarm %s: %w", id, ErrNoAlarm)
	}
	if a.AckedAt == nil {
		a.AckedBy, a.AckedAt = clip(by), tptr(now)
		b.record(a, alarmAcked, a.AckedBy, 0, now)
	}
	if a.Cleared != nil {
		b.end(a)
	}
	v := *a
	v.State = v.state()
	return v, nil
}

// Shelve hides the alarm id for d (capped at MaxShelve); it unshelves by
// itself then.
func (b *alarmBook) Shelve(id, by string, d time.Duration, now time.Time) (Alarm, error) {
	if by == "" {
		return Alarm{}, ErrNoWho
	}
	if d <= 0 {
		return Alarm{}, errors.New("shelve: minutes must be above 0")
	}
	d = min(d, b.cfg.MaxShelve)
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.live[id]
	if a == nil || a.Cleared != nil {
		return Alarm{}, fmt.Errorf("alarm %s (active): %w", id, ErrNoAlarm)
	}
	a.ShelvedBy, a.ShelvedUntil = clip(by), tptr(now.Add(d))
	b.record(a, alarmShelved, a.ShelvedBy, int(d/time.Minute), now)
	v := *a
	v.State = v.state()
	return v, nil
}

// Lists: active (not shelved; cleared but unacknowledged included),
// shelved, and the history (cleared, newest first). Copies.
func (b *alarmBook) lists() (active, shelved, history []Alarm) {
	b.mu.Lock()
	defer b.mu.Unlock()
	active, shelved, history = []Alarm{}, []Alarm{}, make([]Alarm, 0, len(b.history))
	for _, a := range b.live {
		v := *a
		v.State = v.state()
		if v.State == "shelved" {
			shelved = append(shelved, v)
		} else {
			active = append(active, v)
		}
	}
	for i := len(b.history) - 1; i >= 0; i-- {
		v := *b.history[i]
		v.State = v.state()
		history = append(history, v)
	}
	sortAlarms(active)
	sortAlarms(shelved)
	return active, shelved, history
}

var sevRank = map[string]int{SevCritical: 0, SevWarning: 1, SevInfo: 2}

// sortAlarms orders by severity, then newest first, then id.
func sortAlarms(as []Alarm) {
	sort.Slice(as, func(i, j int) bool {
		if sevRank[as[i].Severity] != sevRank[as[j].Severity] {
			return sevRank[as[i].Severity] < sevRank[as[j].Severity]
		}
		if !as[i].Since.Equal(as[j].Since) {
			return as[i].Since.After(as[j].Since)
		}
		return as[i].ID < as[j].ID
	})
}

// rebuild replays the journal's alarm records of this line (oldest
// first): the history and the alarms still live at the last stop come
// back. Alarms live then are re-evaluated on the first publish.
func (b *alarmBook) rebuild(recs []journal.Record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		if r.Kind != journal.KindAlarm || r.Line != b.line || r.Alarm == "" {
			continue
		}
		a := b.live[r.Alarm]
		switch r.Cause {
		case alarmRaised:
			a = &Alarm{ID: r.Alarm, Line: b.line, Severity: r.Severity, Text: r.Detail, Action: actionOf(r.Alarm), Since: r.Time}
			b.live[r.Alarm] = a
			b.setGauge(a, true)
		case alarmAcked:
			if a != nil {
				a.AckedBy, a.AckedAt = r.By, tptr(r.Time)
				if a.Cleared != nil {
					b.end(a)
				}
			}
		case alarmCleared:
			if a != nil && a.Cleared == nil {
				a.Cleared = tptr(r.Time)
				b.setGauge(a, false)
				b.pushHistory(a)
				if a.AckedAt != nil || a.ShelvedUntil != nil {
					a.ShelvedUntil = nil
					b.end(a)
				}
			}
		case alarmShelved:
			if a != nil {
				a.ShelvedBy, a.ShelvedUntil = r.By, tptr(r.Time.Add(time.Duration(r.Count)*time.Minute))
			}
		case alarmUnshelved:
			if a != nil {
				a.ShelvedBy, a.ShelvedUntil = "", nil
			}
		}
	}
}

// Alarm causes: the key (after "<line>/"), its severity and what to do.
// docs/operations.md ("Alarms") lists the same.
var alarmActions = map[string]string{
	"departure":     "Close the route's open containers (status page or dock board), load them onto the van, then depart it; or hold them for the next departure.",
	"estop":         "Find and clear the cause of the emergency stop, release the e-stop button, then restart the sorter at its control panel.",
	"sorter-fault":  "Read the fault on the sorter's control panel, fix it, reset the fault, then restart the sorter.",
	"plc-down":      "Check the PLC is powered and its network cable and switch; the gateway reconnects by itself once the PLC answers.",
	"plc-heartbeat": "The PLC program is not running its cycle: check the PLC's run mode and its diagnostics.",
	"scanner":       "Check the scanner's power, cable and network; clean its window; it reconnects by itself.",
	"noread-rate":   "Check the scanners: dirty windows, focus, lighting, labels out of reach; see the no-read items on the page.",
	"unknown-rate":  "Check the sort plan and the manifest are current (reload them); see the unknown items on the page.",
	"sorted-rate":   "Most parcels are not sorted: check chutes full or disabled, the PLC's confirmations and the link; see outcomes on the page.",
	"chute-full":    "Empty the chute's container and close it on the page, or clear what blocks the full sensor.",
	"route-blocked": "Empty or enable a chute of the route (or reload a plan that gives it another chute); its parcels recirculate meanwhile.",
	"journal":       "Free space on the journal's disk or fix its I/O error; see docs/operations.md, Journal health.",
	"journal-disk":  "Free space on the journal's disk before it fills (old records are pruned by retention; move or delete other files).",
	"plan-refused":  "Fix the plan file at the position the error names and reload; the previous plan stays active meanwhile.",
	"upstream":      "Check the WAN link and the NATS server, credentials and stream (docs/upstream.md); records wait in the journal and go out when it returns.",
}

// actionOf finds the action of an alarm id ("L1/scanner/S1" -> scanner).
func actionOf(id string) string {
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			rest := id[i+1:]
			for j := 0; j < len(rest); j++ {
				if rest[j] == '/' {
					rest = rest[:j]
					break
				}
			}
			return alarmActions[rest]
		}
	}
	return ""
}

func cause(key, sev, text string) alarmCause {
	k := key
	for j := 0; j < len(k); j++ {
		if k[j] == '/' {
			k = k[:j]
			break
		}
	}
	return alarmCause{key: key, sev: sev, text: text, action: alarmActions[k]}
}

// alarmCauses finds the alarm causes present in a line snapshot (the
// same inputs as the condition). fullSince is updated with the chutes'
// full bits.
func (b *alarmBook) causes(now time.Time, s *LineSnapshot, in ConditionInput, j *JournalHealthView, plcHB time.Time, scannersHeard map[string]bool) []alarmCause {
	cfg := &b.cfg
	var out []alarmCause
	b.unjudged = b.unjudged[:0]
	if !in.PLCHeard {
		b.unjudged = append(b.unjudged, "estop", "sorter-fault", "plc-heartbeat")
	}
	if now.Sub(b.start) <= 2*cfg.HeartbeatStall {
		b.unjudged = append(b.unjudged, "scanner")
	}
	if in.PLCHeard || in.LinkError != "" {
		if !in.LinkUp {
			t := linkDownText(in.LinkState)
			if in.LinkError != "" {
				t += ": " + in.LinkError
			}
			out = append(out, cause("plc-down", SevCritical, t))
		} else if !plcHB.IsZero() && now.Sub(plcHB) > cfg.HeartbeatStall {
			out = append(out, cause("plc-heartbeat", SevCritical,
				"PLC heartbeat unchanged for "+now.Sub(plcHB).Round(time.Second).String()))
		}
	}
	if in.PLCHeard && in.LinkUp {
		if in.SorterState == 2 {
			out = append(out, cause("estop", SevCritical, "emergency stop"))
		}
		if in.SorterState == 3 || in.FaultCode != 0 {
			out = append(out, cause("sorter-fault", SevCritical, faultText(in.FaultCode)))
		}
	}
	for _, sc := range s.Scanners {
		if !sc.Online && scannersHeard[sc.Name] || !sc.Online && now.Sub(b.start) > 2*cfg.HeartbeatStall {
			t := "scanner " + sc.Name + " offline (" + sc.State + ")"
			if sc.LastError != "" {
				t += ": " + sc.LastError
			}
			out = append(out, cause("scanner/"+sc.Name, SevWarning, t))
		}
	}
	r := &s.PerMinute
	if r.Reads >= uint64(cfg.MinOutcomes) {
		if r.NoReadPct > cfg.MaxNoReadPct {
			out = append(out, cause("noread-rate", SevWarning, fmt.Sprintf("%.1f%% no-reads in the last minute (above %g%%)", r.NoReadPct, cfg.MaxNoReadPct)))
		}
		if r.UnknownPct > cfg.MaxUnknownPct {
			out = append(out, cause("unknown-rate", SevWarning, fmt.Sprintf("%.1f%% unknown destinations in the last minute (above %g%%)", r.UnknownPct, cfg.MaxUnknownPct)))
		}
	}
	if r.Outcomes >= uint64(cfg.MinOutcomes) && r.Outcomes > 0 && r.SortedPct < cfg.MinSortedPct {
		out = append(out, cause("sorted-rate", SevCritical, fmt.Sprintf("%.1f%% of parcels sorted in the last minute (below %g%%)", r.SortedPct, cfg.MinSortedPct)))
	}
	// Chutes full for long, and routes with no usable chute.
	type route struct{ chutes, usable int }
	routes := map[string]*route{}
	for i := range s.Chutes {
		c := &s.Chutes[i]
		if c.Full {
			since, ok := b.fullSince[c.N]
			if !ok {
				since = now
				b.fullSince[c.N] = now
			}
			if now.Sub(since) > cfg.ChuteFullFor {
				out = append(out, cause("chute-full/"+strconv.Itoa(int(c.N)), SevWarning,
					"chute "+strconv.Itoa(int(c.N))+" full for "+now.Sub(since).Round(time.Second).String()))
			}
		} else {
			delete(b.fullSince, c.N)
		}
		if c.Route == "" || !in.PlanLoaded {
			continue
		}
		rt := routes[c.Route]
		if rt == nil {
			rt = &route{}
			routes[c.Route] = rt
		}
		rt.chutes++
		if !c.Full && !c.PLCDisabled && !c.TechDisabled {
			rt.usable++
		}
	}
	for name, rt := range routes {
		if rt.usable == 0 {
			out = append(out, cause("route-blocked/"+name, SevWarning,
				"route "+name+": all "+strconv.Itoa(rt.chutes)+" chutes full or disabled"))
		}
	}
	if j != nil {
		if j.State != "ok" {
			t := "journal " + j.State
			if j.LastError != "" {
				t += ": " + j.LastError
			}
			out = append(out, cause("journal", SevCritical, t))
		}
		if j.Disk.State == "low" || j.Disk.State == "critical" {
			sev := SevWarning
			if j.Disk.State == "critical" {
				sev = SevCritical
			}
			out = append(out, cause("journal-disk", sev, "journal disk "+j.Disk.State+": "+j.Disk.FreeText+" free"))
		}
	}
	if s.Plan.LastError != "" {
		out = append(out, cause("plan-refused", SevWarning, "plan reload refused: "+s.Plan.LastError))
	}
	return out
}
