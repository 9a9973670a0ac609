package gateway

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// Metrics holds the gateway's Prometheus collectors on its own registry (no
// globals), so tests and several gateways in one process never collide.
type Metrics struct {
	Registry *prometheus.Registry

	reads       *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	outcomes    *prometheus.CounterVec
	results     *prometheus.CounterVec
	chuteDiv    *prometheus.CounterVec
	missed      *prometheus.CounterVec
	unmatched   *prometheus.CounterVec
	decisionDur *prometheus.HistogramVec
	toWritten   *prometheus.HistogramVec
	toTaken     *prometheus.HistogramVec
	toConfirmed *prometheus.HistogramVec
	linkUp      *prometheus.GaugeVec
	linkState   *prometheus.GaugeVec
	ringOut     *prometheus.GaugeVec
	queued      *prometheus.GaugeVec
	tracked     *prometheus.GaugeVec
	forgotten   *prometheus.CounterVec
	planVersion *prometheus.GaugeVec
	containers  *prometheus.CounterVec
	httpRefused *prometheus.CounterVec
	sseClients  prometheus.Gauge
	planReloads *prometheus.CounterVec
	planLastOK  *prometheus.GaugeVec
	devices     *deviceCounters
	journal     *journalCollector
	plcExc      *prometheus.CounterVec
	alarmActive *prometheus.GaugeVec

	// Sorter, plan and build state (monitoring pack).
	state *stateMetrics
}

// deviceCounters exports the devices' own cumulative counters (reconnects,
// scanner frames dropped, connections refused) as Prometheus counters,
// read from each line's latest snapshot when /metrics is scraped: the
// devices count, the gateway does not count them twice.
type deviceCounters struct {
	mu    sync.Mutex
	lines []*Line

	reconnects, frames, refused *prometheus.Desc
}

func newDeviceCounters() *deviceCounters {
	return &deviceCounters{
		reconnects: prometheus.NewDesc("sortgw_link_reconnects_total",
			"Reconnects of the device link since start (as the link counts them: every connection attempt after the first).",
			[]string{"line", "kind", "link"}, nil),
		frames: prometheus.NewDesc("sortgw_scanner_dropped_frames_total",
			"Scanner frames dropped: malformed (did not parse) or oversized (over the frame limit).",
			[]string{"line", "scanner", "reason"}, nil),
		refused: prometheus.NewDesc("sortgw_scanner_refused_connections_total",
			"Connections a server-mode scanner refused: from an IP that is not its peer, or while its live connection was not silent.",
			[]string{"line", "scanner"}, nil),
	}
}

func (d *deviceCounters) add(l *Line) {
	d.mu.Lock()
	d.lines = append(d.lines, l)
	d.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (d *deviceCounters) Describe(ch chan<- *prometheus.Desc) {
	ch <- d.reconnects
	ch <- d.frames
	ch <- d.refused
}

// Collect implements prometheus.Collector.
func (d *deviceCounters) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	lines := d.lines
	d.mu.Unlock()
	for _, l := range lines {
		s := l.Snapshot()
		if s == nil {
			continue
		}
		name := s.PLC.Name
		if name == "" {
			name = "plc"
		}
		ch <- prometheus.MustNewConstMetric(d.reconnects, prometheus.CounterValue, float64(s.PLC.Reconnects), s.Name, "plc", name)
		for _, sc := range s.Scanners {
			ch <- prometheus.MustNewConstMetric(d.reconnects, prometheus.CounterValue, float64(sc.Reconnects), s.Name, "scanner", sc.Name)
			ch <- prometheus.MustNewConstMetric(d.frames, prometheus.CounterValue, float64(sc.Malformed), s.Name, sc.Name, "malformed")
			ch <- prometheus.MustNewConstMetric(d.frames, prometheus.CounterValue, float64(sc.Oversized), s.Name, sc.Name, "oversized")
			ch <- prometheus.MustNewConstMetric(d.refused, prometheus.CounterValue, float64(sc.Refused), s.Name, sc.Name)
		}
	}
}

// NewMetrics makes the collectors and registers them, with the Go and
// process collectors, on a fresh registry.
func NewMetrics() *Metrics {
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		devices:  newDeviceCounters(),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_reads_total", Help: "Scanner reads taken by the pipeline, by scanner and kind (code, noread).",
		}, []string{"line", "scanner", "kind"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_duplicate_reads_total", Help: "Reads of a TID whose command was still unconfirmed; answered by nothing new.",
		}, []string{"line"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_decisions_total", Help: "Divert decisions by reason code.",
		}, []string{"line", "reason"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_outcomes_total", Help: "Item pass outcomes: the PLC result names and the host verdicts (host-late, lost-disconnect, missed-confirmation, timeout, not-sent).",
		}, []string{"line", "outcome"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_confirmations_total", Help: "PLC confirmations of tracked items by result name (the contract's result codes 1..9: diverted, diverted-other, recirculated-full, recirculated-late, rejected, lost, refused, recirculated, host-lost; invalid: any other code).",
		}, []string{"line", "result"}),
		chuteDiv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_chute_diverts_total", Help: "Confirmed diverts (result 1 or 2) by the chute entered.",
		}, []string{"line", "chute"}),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_missed_confirmations_total", Help: "Confirmations the PLC overwrote before the host read them.",
		}, []string{"line"}),
		unmatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_unmatched_events_total", Help: "Link events for TIDs with no open item (e.g. after a gateway restart).",
		}, []string{"line", "kind"}),
		decisionDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sortgw_decision_seconds", Help: "Time to decide one read (table lookup and send to the link queue).",
			Buckets: []float64{.000001, .0000025, .000005, .00001, .000025, .00005, .0001, .00025, .0005, .001, .01},
		}, []string{"line"}),
		toWritten: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sortgw_read_to_written_seconds", Help: "From the scanner frame to the PLC's reply to the command write.", Buckets: latency,
		}, []string{"line"}),
		toTaken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sortgw_read_to_taken_seconds", Help: "From the scanner frame to the PLC taking the command off the ring.", Buckets: latency,
		}, []string{"line"}),
		toConfirmed: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sortgw_read_to_confirmation_seconds", Help: "From the scanner frame to the PLC's confirmation.", Buckets: latency,
		}, []string{"line"}),
		linkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sortgw_link_up", Help: "1 when the device link is up (PLC: commands allowed; scanner: online).",
		}, []string{"line", "kind", "link"}),
		linkState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sortgw_link_state", Help: "Device link state: 0 down, 1 connecting, 2 syncing, 3 up, 4 closed.",
		}, []string{"line", "kind", "link"}),
		ringOut: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sortgw_plc_ring_outstanding", Help: "Divert commands written but not yet taken by the PLC.",
		}, []string{"line"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sortgw_plc_queued_commands", Help: "Divert commands waiting for a ring slot.",
		}, []string{"line"}),
		tracked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sortgw_open_items", Help: "Item passes waiting for their outcome.",
		}, []string{"line"}),
		planVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sortgw_plan_version", Help: "Version of the active sort plan (0: none loaded).",
		}, []string{"line"}),
		containers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_containers_closed_total", Help: "Containers closed, by cause (technician, emptied).",
		}, []string{"line", "cause"}),
		httpRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_http_refused_total", Help: "HTTP requests refused by a limit: sse-clients (too many live status streams), unauthorized (bad or missing token).",
		}, []string{"reason"}),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sortgw_http_sse_clients", Help: "Live status streams (/events) being served.",
		}),
		planReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_plan_reloads_total", Help: "Plan and manifest loads by result: installed, or refused (bad file, cut off, too large, older version; the old plan stays).",
		}, []string{"line", "result"}),
		planLastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sortgw_plan_last_install_timestamp_seconds", Help: "When the active plan was installed (Unix time).",
		}, []string{"line"}),
		journal: newJournalCollector(),
		plcExc: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_plc_exceptions_total", Help: "Modbus exception replies from the PLC by exception code (the connection is kept; 16 and above: other).",
		}, []string{"line", "code"}),
		forgotten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_tracking_forgotten_total", Help: "Finished passes the item table dropped before the line's remember time because it was full (capacity): the item's next pass counts from 1. The journal keeps their records.",
		}, []string{"line"}),
		alarmActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sortgw_alarm_active", Help: "1 while the alarm's cause is present (acknowledged or shelved included); the series goes when it clears. Alarm ids and what to do: docs/operations.md, Alarms.",
		}, []string{"line", "alarm", "severity"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.reads, m.duplicates, m.decisions, m.outcomes, m.results, m.chuteDiv, m.missed, m.unmatched,
		m.decisionDur, m.toWritten, m.toTaken, m.toConfirmed,
		m.linkUp, m.linkState, m.ringOut, m.queued, m.tracked, m.forgotten, m.planVersion, m.containers,
		m.httpRefused, m.sseClients, m.planReloads, m.planLastOK, m.devices, m.journal, m.plcExc,
		m.alarmActive,
	)

	// Sorter, plan and build state (monitoring pack), from the snapshots.
	m.state = newStateMetrics(m.devices)
	m.Registry.MustRegister(m.state)
	return m
}

// lineMetrics are one line's children, resolved once so the item path does
// no label lookups.
type lineMetrics struct {
	m           *Metrics
	line        string
	duplicates  prometheus.Counter
	decisions   [8]prometheus.Counter
	outcomes    [maxOutcome]prometheus.Counter
	results     [maxResult + 2]prometheus.Counter // index maxResult+1: out of range
	missed      prometheus.Counter
	decisionDur prometheus.Observer
	toWritten   prometheus.Observer
	toTaken     prometheus.Observer
	toConfirmed prometheus.Observer
	ringOut     prometheus.Gauge
	queued      prometheus.Gauge
	tracked     prometheus.Gauge
	forgotten   prometheus.Counter
	planVersion prometheus.Gauge
	planOK      prometheus.Counter
	planRefused prometheus.Counter
	planLastOK  prometheus.Gauge
	chutes      []prometheus.Counter // resolved on first divert
	scanners    map[string]*[2]prometheus.Counter
	excSeen     [16]uint64 // PLCStatus.ExceptionsByCode already counted
}

func (m *Metrics) forLine(line string, chutes int) *lineMetrics {
	lm := &lineMetrics{
		m:           m,
		line:        line,
		duplicates:  m.duplicates.WithLabelValues(line),
		missed:      m.missed.WithLabelValues(line),
		decisionDur: m.decisionDur.WithLabelValues(line),
		toWritten:   m.toWritten.WithLabelValues(line),
		toTaken:     m.toTaken.WithLabelValues(line),
		toConfirmed: m.toConfirmed.WithLabelValues(line),
		ringOut:     m.ringOut.WithLabelValues(line),
		queued:      m.queued.WithLabelValues(line),
		tracked:     m.tracked.WithLabelValues(line),
		forgotten:   m.forgotten.WithLabelValues(line),
		planVersion: m.planVersion.WithLabelValues(line),
		planOK:      m.planReloads.WithLabelValues(line, "installed"),
		planRefused: m.planReloads.WithLabelValues(line, "refused"),
		planLastOK:  m.planLastOK.WithLabelValues(line),
		chutes:      make([]prometheus.Counter, chutes+1),
		scanners:    make(map[string]*[2]prometheus.Counter),
	}
	for r := range lm.decisions {
		lm.decisions[r] = m.decisions.WithLabelValues(line, sortplan.Reason(r).String())
	}
	for o := journal.OutcomeDiverted; int(o) < maxOutcome; o++ {
		if name := o.String(); !strings.HasPrefix(name, "outcome(") {
			lm.outcomes[o] = m.outcomes.WithLabelValues(line, name)
		} else {
			lm.outcomes[o] = m.outcomes.WithLabelValues(line, "other")
		}
	}
	for r := 1; r <= maxResult; r++ {
		// By the contract's result name (diverted, recirculated-full, ...),
		// the names sortgw_outcomes_total and the journal use.
		lm.results[r] = m.results.WithLabelValues(line, journal.Outcome(r).String())
	}
	lm.results[0] = m.results.WithLabelValues(line, "invalid")
	lm.results[maxResult+1] = lm.results[0]
	return lm
}

func (lm *lineMetrics) read(scanner string, noRead bool) {
	c := lm.scanners[scanner]
	if c == nil {
		// First read from this scanner: the one allocation per scanner.
		c = &[2]prometheus.Counter{
			lm.m.reads.WithLabelValues(lm.line, scanner, "code"),
			lm.m.reads.WithLabelValues(lm.line, scanner, "noread"),
		}
		lm.scanners[scanner] = c
	}
	if noRead {
		c[1].Inc()
	} else {
		c[0].Inc()
	}
}

// planReload counts a plan load's result.
func (lm *lineMetrics) planReload(ok bool, at time.Time) {
	if !ok {
		lm.planRefused.Inc()
		return
	}
	lm.planOK.Inc()
	lm.planLastOK.Set(float64(at.UnixNano()) / 1e9)
}

func (lm *lineMetrics) result(r uint16) {
	if r > maxResult {
		r = maxResult + 1
	}
	lm.results[r].Inc()
}

func (lm *lineMetrics) divert(chute uint16) {
	if int(chute) >= len(lm.chutes) {
		return
	}
	c := lm.chutes[chute]
	if c == nil {
		c = lm.m.chuteDiv.WithLabelValues(lm.line, strconv.Itoa(int(chute)))
		lm.chutes[chute] = c
	}
	c.Inc()
}

func (lm *lineMetrics) links(plc devices.PLCStatus, scanners []devices.ScannerStatus) {
	up := 0.0
	if plc.State == devices.LinkUp {
		up = 1
	}
	name := plc.Name
	if name == "" {
		name = "plc"
	}
	lm.m.linkUp.WithLabelValues(lm.line, "plc", name).Set(up)
	lm.m.linkState.WithLabelValues(lm.line, "plc", name).Set(float64(plc.State))
	lm.ringOut.Set(float64(plc.Outstanding))
	lm.queued.Set(float64(plc.Queued))
	for code, n := range plc.ExceptionsByCode {
		if n > lm.excSeen[code] {
			label := strconv.Itoa(code)
			if code == 0 {
				label = "other"
			}
			lm.m.plcExc.WithLabelValues(lm.line, label).Add(float64(n - lm.excSeen[code]))
			lm.excSeen[code] = n
		}
	}
	for _, s := range scanners {
		on := 0.0
		if s.Online {
			on = 1
		}
		lm.m.linkUp.WithLabelValues(lm.line, "scanner", s.Name).Set(on)
		lm.m.linkState.WithLabelValues(lm.line, "scanner", s.Name).Set(float64(s.State))
	}
}

// watchJournal makes /metrics report the journal's health from h.
func (m *Metrics) watchJournal(h func() journal.Health) { m.journal.health.Store(&h) }

// journalCollector reads the journal's health at scrape time: the journal
// keeps its own counters, so nothing is copied on the record path.
type journalCollector struct {
	health atomic.Pointer[func() journal.Health]

	healthy, state, commitErrs, queued, capacity, notKept, lastCommit, holding, diskFree, diskSize, diskState *prometheus.Desc
}

func newJournalCollector() *journalCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sortgw_journal_"+name, help, labels, nil)
	}
	return &journalCollector{
		healthy:    d("healthy", "1 when the journal keeps every record (state ok) and it does not keep the gateway from being ready."),
		state:      d("state", "Journal state: 0 ok, 1 failing (commits fail, records wait in memory), 2 full (records are not kept)."),
		commitErrs: d("commit_errors_total", "Journal commits that failed (disk full, I/O error); each is retried."),
		queued:     d("queue_records", "Records waiting in memory for the journal's writer."),
		capacity:   d("queue_capacity", "Records the journal's in-memory queue holds (journal.queue_size)."),
		notKept:    d("records_not_kept_total", "Audit records lost to the journal, by reason (queue-full, closed, uncommitted-at-close).", "reason"),
		lastCommit: d("last_commit_timestamp_seconds", "Unix time of the journal's last successful commit (0: none since start)."),
		holding:    d("holding_reads", "1 while the journal is full under when_full stop-reads: the lines command no new reads."),
		diskFree:   d("disk_free_bytes", "Free bytes (for an unprivileged writer) on the journal's filesystem, as last measured."),
		diskSize:   d("disk_size_bytes", "Size of the journal's filesystem in bytes."),
		diskState:  d("disk_state", "Free space of the journal's filesystem: 0 unknown, 1 ok, 2 below the warning threshold, 3 below the critical threshold."),
	}
}

func (c *journalCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.healthy, c.state, c.commitErrs, c.queued, c.capacity, c.notKept, c.lastCommit,
		c.holding, c.diskFree, c.diskSize, c.diskState} {
		ch <- d
	}
}

func (c *journalCollector) Collect(ch chan<- prometheus.Metric) {
	hp := c.health.Load()
	if hp == nil {
		return
	}
	h := (*hp)()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	cnt := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g(c.healthy, b(h.State == journal.StateOK && h.Unready == ""))
	g(c.state, float64(h.State))
	cnt(c.commitErrs, h.CommitErrors)
	g(c.queued, float64(h.QueueLen))
	g(c.capacity, float64(h.QueueCap))
	for r, n := range h.NotKept {
		cnt(c.notKept, n, journal.NotKeptReason(r).String())
	}
	last := 0.0
	if !h.LastCommit.IsZero() {
		last = float64(h.LastCommit.UnixNano()) / 1e9
	}
	g(c.lastCommit, last)
	g(c.holding, b(h.HoldingReads))
	g(c.diskFree, float64(h.Disk.Free))
	g(c.diskSize, float64(h.Disk.Total))
	g(c.diskState, float64(h.Disk.State))
}
