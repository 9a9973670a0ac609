package demo

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway"
	"sortgw/gateway/journal"
)

// TestDemoTrainingScannerOff drives the training panel's API with the
// demo's real wiring: scanner-off takes the emulated scanner S1 off, the
// line shows the scanner offline with an alarm and what to do; switched
// back, the alarm clears and stays in the history. Every switch is
// journaled and counted in sortgw_training_faults_active.
func TestDemoTrainingScannerOff(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	const tok = "demo-training-token"
	d, url := startDemo(t, tok)

	var list gateway.TrainingList
	if code := getJSON(t, url+"/api/training", &list); code != http.StatusOK || !list.Enabled {
		t.Fatalf("GET /api/training: %d %+v", code, list)
	}
	var ids []string
	for _, f := range list.Faults {
		ids = append(ids, f.ID)
		if f.Label == "" || f.Help == "" || f.Active {
			t.Errorf("fault %+v: want a label, a help line, inactive", f)
		}
	}
	if want := []string{"estop", "sorter-fault", "plc-drop", "scanner-off", "chute-full"}; !slices.Equal(ids, want) {
		t.Fatalf("fault ids %q, want %q", ids, want)
	}
	for _, tc := range []struct {
		name, path, tok, body string
		code                  int
	}{
		{"no token", "/api/training/scanner-off", "", `{"on":true}`, http.StatusUnauthorized},
		{"wrong token", "/api/training/scanner-off", "nope", `{"on":true}`, http.StatusUnauthorized},
		{"unknown fault", "/api/training/flood", tok, `{"on":true}`, http.StatusNotFound},
		{"not JSON", "/api/training/scanner-off", tok, `on`, http.StatusBadRequest},
		{"chute-full without a chute", "/api/training/chute-full", tok, `{"on":true}`, http.StatusBadRequest},
		{"chute-full past the last chute", "/api/training/chute-full", tok, `{"on":true,"chute":17}`, http.StatusBadRequest},
	} {
		if code := postJSON(t, url+tc.path, tc.tok, tc.body, nil); code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.code)
		}
	}
	if d.sim.ScannerStats()[0].Drops != 0 {
		t.Fatal("a refused request switched the scanner off")
	}

	const alarm = "L1/scanner/S1"
	waitFor(t, "scanner S1 online", 15*time.Second, func() bool {
		s := d.line.Snapshot()
		return len(s.Scanners) == 2 && s.Scanners[0].Online
	})
	var res gateway.TrainingList
	if code := postJSON(t, url+"/api/training/scanner-off", tok, `{"on":true}`, &res); code != http.StatusOK {
		t.Fatalf("scanner-off on: %d", code)
	}
	if i := slices.IndexFunc(res.Faults, func(f gateway.TrainingFault) bool { return f.ID == "scanner-off" }); i < 0 || !res.Faults[i].Active {
		t.Fatalf("answer %+v: scanner-off not active", res.Faults)
	}
	if m := metric(t, url, "sortgw_training_faults_active"); m != "1" {
		t.Errorf("sortgw_training_faults_active %q, want 1", m)
	}
	waitFor(t, "scanner alarm active", 15*time.Second, func() bool {
		var l gateway.AlarmList
		getJSON(t, url+"/api/alarms", &l)
		return hasAlarm(l.Active, alarm)
	})
	var l gateway.AlarmList
	getJSON(t, url+"/api/alarms", &l)
	a := l.Active[slices.IndexFunc(l.Active, func(a gateway.Alarm) bool { return a.ID == alarm })]
	if !strings.Contains(a.Text, "S1 offline") || a.Action == "" {
		t.Errorf("alarm %+v: want the text naming S1 and an action", a)
	}
	var st gateway.Snapshot
	getJSON(t, url+"/status.json", &st)
	if ls := st.Lines[0]; ls.Condition == gateway.CondSorting ||
		!slices.ContainsFunc(ls.Reasons, func(r string) bool { return strings.Contains(r, "scanners offline") }) {
		t.Errorf("status.json condition %q reasons %q, want a scanner offline reason", ls.Condition, ls.Reasons)
	}

	if code := postJSON(t, url+"/api/training/scanner-off", tok, `{"on":false}`, nil); code != http.StatusOK {
		t.Fatalf("scanner-off off: %d", code)
	}
	waitFor(t, "scanner alarm cleared", 15*time.Second, func() bool {
		var l gateway.AlarmList
		getJSON(t, url+"/api/alarms", &l)
		return !hasAlarm(l.Active, alarm) && slices.ContainsFunc(l.History, func(a gateway.Alarm) bool { return a.ID == alarm && a.Cleared != nil })
	})
	if m := metric(t, url, "sortgw_training_faults_active"); m != "0" {
		t.Errorf("sortgw_training_faults_active %q after switching off, want 0", m)
	}
	var jv gateway.JournalView
	getJSON(t, url+"/api/journal?kind=alarm", &jv)
	var causes []string
	for _, r := range jv.Records {
		if r.Kind == journal.KindAlarm && r.Alarm == "training/scanner-off" {
			causes = append(causes, r.Cause)
		}
	}
	if !slices.Equal(causes, []string{"raised", "cleared"}) {
		t.Errorf("journaled training switches %q, want raised then cleared", causes)
	}
}

// TestDemoTrainingPLCDropOPCUA: plc-drop takes an OPC UA PLC off the
// network too, and the link comes back when it is switched off.
func TestDemoTrainingPLCDropOPCUA(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	const tok = "demo-training-token"
	d, url := startDemoProto(t, tok, "opcua")
	up := func() bool {
		s := d.line.Snapshot()
		return s.Condition != gateway.CondNoData && s.Condition != gateway.CondDown
	}
	waitFor(t, "PLC link up", 30*time.Second, up)
	if code := postJSON(t, url+"/api/training/plc-drop", tok, `{"on":true}`, nil); code != http.StatusOK {
		t.Fatalf("plc-drop on: %d", code)
	}
	waitFor(t, "line down", 30*time.Second, func() bool { return d.line.Snapshot().Condition == gateway.CondDown })
	if code := postJSON(t, url+"/api/training/plc-drop", tok, `{"on":false}`, nil); code != http.StatusOK {
		t.Fatalf("plc-drop off: %d", code)
	}
	waitFor(t, "PLC link back", 60*time.Second, up)
}

// metric reads one unlabelled metric's value from /metrics.
func metric(t *testing.T, url, name string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestDemoTrainingFaults switches every fault of the panel on and off
// through the API and checks the emulator and the line follow.
func TestDemoTrainingFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	const tok = "demo-training-token"
	d, url := startDemo(t, tok)
	waitFor(t, "line sorting", 20*time.Second, func() bool { return d.line.Snapshot().Condition != gateway.CondNoData })
	active := func(id string) bool {
		var l gateway.TrainingList
		getJSON(t, url+"/api/training", &l)
		i := slices.IndexFunc(l.Faults, func(f gateway.TrainingFault) bool { return f.ID == id })
		return i >= 0 && l.Faults[i].Active
	}
	plc := d.sim.PLC()
	for _, tc := range []struct {
		id      string
		chute   int
		on, off func() bool
	}{
		{"estop", 0, func() bool { return plc.State() == fieldbussim.StateEmergencyStop },
			func() bool { return plc.State() == fieldbussim.StateRunning }},
		{"sorter-fault", 0, func() bool {
			return plc.State() == fieldbussim.StateFault && plc.Snapshot().FaultCode == trainingFaultCode
		},
			func() bool { return plc.State() == fieldbussim.StateRunning && plc.Snapshot().FaultCode == 0 }},
		{"plc-drop", 0, func() bool { return d.line.Snapshot().Condition == gateway.CondDown },
			func() bool { return d.line.Snapshot().Condition != gateway.CondDown }},
		{"chute-full", 3, func() bool { return plc.Snapshot().Full[2] }, func() bool { return !plc.Snapshot().Full[2] }},
	} {
		body := `{"on":true,"chute":` + strconv.Itoa(tc.chute) + `}`
		if code := postJSON(t, url+"/api/training/"+tc.id, tok, body, nil); code != http.StatusOK {
			t.Fatalf("%s on: %d", tc.id, code)
		}
		waitFor(t, tc.id+" on", 20*time.Second, tc.on)
		if !active(tc.id) {
			t.Errorf("%s on: not active in /api/training", tc.id)
		}
		if code := postJSON(t, url+"/api/training/"+tc.id, tok, `{"on":false}`, nil); code != http.StatusOK {
			t.Fatalf("%s off: %d", tc.id, code)
		}
		waitFor(t, tc.id+" off", 20*time.Second, tc.off)
		if active(tc.id) {
			t.Errorf("%s off: still active in /api/training", tc.id)
		}
	}
}
