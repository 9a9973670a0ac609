package gateway

import (
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// stateMetrics exports what the lines last published about the sorter, the
// plan and the build as gauges, read from each line's latest snapshot when
// /metrics is scraped. Reading the snapshot (not setting gauge children on
// publish) means an info series with an old label value (a replaced plan,
// a left state) disappears instead of staying at its last value.
type stateMetrics struct {
	devices *deviceCounters // the lines, registered there once
	version atomic.Value    // string: the build's version

	build, plan, sorter, sorterCode, fault, heartbeat, full, disabled *prometheus.Desc
}

// sorterStates are the label values of sortgw_sorter_state{state}: the
// contract's SORTER_STATE names (spaces as '_'), and unknown before the
// PLC's block was read or for a code the contract does not name. Every
// state gets a series (0 or 1), so an alert on a state also sees it absent.
var sorterStates = []string{"stopped", "running", "emergency_stop", "fault", "maintenance", "unknown"}

func newStateMetrics(d *deviceCounters) *stateMetrics {
	s := &stateMetrics{
		devices: d,
		build: prometheus.NewDesc("sortgw_build_info",
			"Always 1: the running build's version and Go version as labels.",
			[]string{"version", "goversion"}, nil),
		plan: prometheus.NewDesc("sortgw_plan_info",
			"Always 1 for the line's active sort plan: its name and version as labels (absent while no plan is loaded).",
			[]string{"line", "name", "version"}, nil),
		sorter: prometheus.NewDesc("sortgw_sorter_state",
			"1 for the sorter's current SORTER_STATE, 0 for the others (unknown: the PLC's block not read yet).",
			[]string{"line", "state"}, nil),
		sorterCode: prometheus.NewDesc("sortgw_sorter_state_code",
			"SORTER_STATE as the PLC reports it: 0 stopped, 1 running, 2 emergency stop, 3 fault, 4 maintenance (absent before the PLC's block was read).",
			[]string{"line"}, nil),
		fault: prometheus.NewDesc("sortgw_plc_fault_code",
			"FAULT_CODE as the PLC reports it: 0 none, 1 host lost, 100 and above PLC specific (absent before the PLC's block was read).",
			[]string{"line"}, nil),
		heartbeat: prometheus.NewDesc("sortgw_plc_last_heartbeat_timestamp_seconds",
			"When the PLC's heartbeat register last changed (Unix time; absent before it was read).",
			[]string{"line"}, nil),
		full: prometheus.NewDesc("sortgw_chutes_full",
			"Chutes the PLC reports full.",
			[]string{"line"}, nil),
		disabled: prometheus.NewDesc("sortgw_chutes_disabled",
			"Chutes disabled, by who disabled them: plc (the PLC's disabled bits) or technician (the status page). A chute disabled by both counts in both.",
			[]string{"line", "by"}, nil),
	}
	s.version.Store("dev")
	return s
}

// setVersion sets the version sortgw_build_info reports.
func (s *stateMetrics) setVersion(v string) { s.version.Store(v) }

// Describe implements prometheus.Collector.
func (s *stateMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.build, s.plan, s.sorter, s.sorterCode, s.fault, s.heartbeat, s.full, s.disabled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *stateMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(s.build, prometheus.GaugeValue, 1, s.version.Load().(string), runtime.Version())
	s.devices.mu.Lock()
	lines := s.devices.lines
	s.devices.mu.Unlock()
	for _, l := range lines {
		snap := l.Snapshot()
		if snap == nil {
			continue
		}
		s.collectLine(ch, snap)
	}
}

func (s *stateMetrics) collectLine(ch chan<- prometheus.Metric, snap *LineSnapshot) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	line := snap.Name
	if p := snap.Plan; p.Version != 0 {
		gauge(s.plan, 1, line, p.Name, strconv.FormatUint(p.Version, 10))
	}
	cur := strings.ReplaceAll(snap.PLC.SorterState, " ", "_")
	known := false
	for _, st := range sorterStates {
		known = known || st == cur
	}
	if !known {
		cur = "unknown"
	}
	for _, st := range sorterStates {
		v := 0.0
		if st == cur {
			v = 1
		}
		gauge(s.sorter, v, line, st)
	}
	if snap.PLC.Fault != "unknown" {
		// The PLC's block was read: its registers are values, not zeros.
		gauge(s.sorterCode, float64(sorterStateCode(snap.PLC.SorterState)), line)
		gauge(s.fault, float64(snap.PLC.FaultCode), line)
	}
	if t := snap.PLC.LastHeartbeat; !t.IsZero() {
		gauge(s.heartbeat, float64(t.UnixNano())/1e9, line)
	}
	var full, byPLC, byTech int
	for i := range snap.Chutes {
		c := &snap.Chutes[i]
		if c.Full {
			full++
		}
		if c.PLCDisabled {
			byPLC++
		}
		if c.TechDisabled {
			byTech++
		}
	}
	gauge(s.full, float64(full), line)
	gauge(s.disabled, float64(byPLC), line, "plc")
	gauge(s.disabled, float64(byTech), line, "technician")
}

// sorterStateCode is the inverse of SorterStateName for the named states;
// -1 for a code the contract does not name.
func sorterStateCode(name string) int {
	for c := uint16(0); c <= 4; c++ {
		if SorterStateName(c) == name {
			return int(c)
		}
	}
	return -1
}
