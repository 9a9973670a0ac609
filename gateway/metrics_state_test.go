package gateway

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"sortgw/sortplan"
)

// TestStateMetrics: what the line's snapshot says about the sorter, its
// chutes, the plan and the build reaches /metrics, and the registry stays
// lint-clean.
func TestStateMetrics(t *testing.T) {
	link := newFakeLink()
	link.st.SorterState, link.st.FaultCode, link.st.BootID = 2, 117, 9
	hb := time.Unix(1_800_000_000, 500_000_000)
	link.st.LastHeartbeat = hb
	m := NewMetrics()
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 16}, link, nil, nil, m, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", Version: "1.2.3"}, []*Line{l}, nil, m, zerolog.New(zerolog.NewTestWriter(t))); err != nil {
		t.Fatal(err)
	}
	p, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(testPlan), 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.InstallPlan(p, nil); err != nil {
		t.Fatal(err)
	}
	l.plcStatus = link.Status()
	l.full.Set(2, true)
	l.full.Set(5, true)
	l.plcDisabled.Set(5, true)
	l.plcDisabled.Set(6, true)
	l.plcDisabled.Set(7, true)
	l.techDisabled.Set(7, true)
	l.publish(time.Now())
	pi := l.PlanInfo()

	want := `
# HELP sortgw_build_info Always 1: the running build's version and Go version as labels.
# TYPE sortgw_build_info gauge
sortgw_build_info{goversion="` + runtime.Version() + `",version="1.2.3"} 1
# HELP sortgw_plan_info Always 1 for the line's active sort plan: its name and version as labels (absent while no plan is loaded).
# TYPE sortgw_plan_info gauge
sortgw_plan_info{line="L1",name="` + pi.Name + `",version="` + uitoaTest(pi.Version) + `"} 1
# HELP sortgw_sorter_state 1 for the sorter's current SORTER_STATE, 0 for the others (unknown: the PLC's block not read yet).
# TYPE sortgw_sorter_state gauge
sortgw_sorter_state{line="L1",state="emergency_stop"} 1
sortgw_sorter_state{line="L1",state="fault"} 0
sortgw_sorter_state{line="L1",state="maintenance"} 0
sortgw_sorter_state{line="L1",state="running"} 0
sortgw_sorter_state{line="L1",state="stopped"} 0
sortgw_sorter_state{line="L1",state="unknown"} 0
# HELP sortgw_sorter_state_code SORTER_STATE as the PLC reports it: 0 stopped, 1 running, 2 emergency stop, 3 fault, 4 maintenance (absent before the PLC's block was read).
# TYPE sortgw_sorter_state_code gauge
sortgw_sorter_state_code{line="L1"} 2
# HELP sortgw_plc_fault_code FAULT_CODE as the PLC reports it: 0 none, 1 host lost, 100 and above PLC specific (absent before the PLC's block was read).
# TYPE sortgw_plc_fault_code gauge
sortgw_plc_fault_code{line="L1"} 117
# HELP sortgw_plc_last_heartbeat_timestamp_seconds When the PLC's heartbeat register last changed (Unix time; absent before it was read).
# TYPE sortgw_plc_last_heartbeat_timestamp_seconds gauge
sortgw_plc_last_heartbeat_timestamp_seconds{line="L1"} 1.8000000005e+09
# HELP sortgw_chutes_full Chutes the PLC reports full.
# TYPE sortgw_chutes_full gauge
sortgw_chutes_full{line="L1"} 2
# HELP sortgw_chutes_disabled Chutes disabled, by who disabled them: plc (the PLC's disabled bits) or technician (the status page). A chute disabled by both counts in both.
# TYPE sortgw_chutes_disabled gauge
sortgw_chutes_disabled{by="plc",line="L1"} 3
sortgw_chutes_disabled{by="technician",line="L1"} 1
`
	names := []string{"sortgw_build_info", "sortgw_plan_info", "sortgw_sorter_state", "sortgw_sorter_state_code",
		"sortgw_plc_fault_code", "sortgw_plc_last_heartbeat_timestamp_seconds", "sortgw_chutes_full", "sortgw_chutes_disabled"}
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	lintClean(t, m)
}

// TestStateMetricsUnheardPLC: before the PLC's block was read, its zero
// registers are not reported as a stopped sorter with no fault.
func TestStateMetricsUnheardPLC(t *testing.T) {
	link := newFakeLink()
	m := NewMetrics()
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 4}, link, nil, nil, m, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	l.plcStatus = link.Status()
	l.publish(time.Now())
	want := `
# HELP sortgw_sorter_state 1 for the sorter's current SORTER_STATE, 0 for the others (unknown: the PLC's block not read yet).
# TYPE sortgw_sorter_state gauge
sortgw_sorter_state{line="L1",state="emergency_stop"} 0
sortgw_sorter_state{line="L1",state="fault"} 0
sortgw_sorter_state{line="L1",state="maintenance"} 0
sortgw_sorter_state{line="L1",state="running"} 0
sortgw_sorter_state{line="L1",state="stopped"} 0
sortgw_sorter_state{line="L1",state="unknown"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"sortgw_sorter_state", "sortgw_sorter_state_code", "sortgw_plc_fault_code",
		"sortgw_plc_last_heartbeat_timestamp_seconds", "sortgw_plan_info"); err != nil {
		t.Fatal(err)
	}
}

// TestConfirmationsByName: confirmation results are labelled by the
// contract's result names; a code outside 1..9 counts as invalid.
func TestConfirmationsByName(t *testing.T) {
	m := NewMetrics()
	lm := m.forLine("L1", 4)
	lm.result(ResultDiverted)
	lm.result(ResultRecircFull)
	lm.result(ResultRecircFull)
	lm.result(ResultRecircHostLost)
	lm.result(0)
	lm.result(42)
	var b strings.Builder
	b.WriteString(`
# HELP sortgw_confirmations_total PLC confirmations of tracked items by result name (the contract's result codes 1..9: diverted, diverted-other, recirculated-full, recirculated-late, rejected, lost, refused, recirculated, host-lost; invalid: any other code).
# TYPE sortgw_confirmations_total counter
`)
	counts := map[string]int{"diverted": 1, "recirculated-full": 2, "host-lost": 1, "invalid": 2}
	for _, name := range []string{"diverted", "diverted-other", "host-lost", "invalid", "lost", "recirculated",
		"recirculated-full", "recirculated-late", "refused", "rejected"} {
		b.WriteString(`sortgw_confirmations_total{line="L1",result="` + name + `"} ` + uitoaTest(uint64(counts[name])) + "\n")
	}
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(b.String()), "sortgw_confirmations_total"); err != nil {
		t.Fatal(err)
	}
	lintClean(t, m)
}

func lintClean(t *testing.T, m *Metrics) {
	t.Helper()
	probs, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

func uitoaTest(v uint64) string { return strconv.FormatUint(v, 10) }
