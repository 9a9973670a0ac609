package gateway

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"sortgw/devices/modbus"
)

// TestAlarmsAgainstEmulatorScannerAndSortedShare completes the faults of
// TestAlarmsAgainstEmulator with the two the training panel adds: a
// scanner switched off, and a sorter that diverts nothing (every chute
// disabled at the PLC) so that under 50 % of the parcels are sorted. Each
// gives the line's condition with its reason and an active alarm with
// what to do, in /status.json and /api/alarms; when the cause goes the
// alarm clears and stays in the history.
func TestAlarmsAgainstEmulatorScannerAndSortedShare(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e against the emulator")
	}
	const chutes = 16
	// Containers are emptied (startE2E's EmptyAfter): full chutes would
	// keep the share of sorted parcels down after the cause went.
	e := startE2E(t, e2eConfig{Protocol: "modbus", Chutes: chutes, Modbus: func(c *modbus.Config) {
		c.Timeout, c.BackoffMin, c.BackoffMax = 300*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond
	}}, "tok")
	waitForLong(t, "line sorting", 10*time.Second, func() bool { return e.line.Snapshot().Condition == CondSorting })
	e.sim.SetRate(40)
	defer e.sim.SetRate(0)

	setAll := func(disabled bool) {
		for n := uint16(1); n <= chutes; n++ {
			e.sim.SetChuteDisabled(n, disabled)
		}
	}
	for _, tc := range []struct {
		name, cond, reason, alarm, sev, text string
		on, off                              func()
	}{
		{"scanner offline", CondDegraded, "1 of 2 scanners offline", "L1/scanner/S1", SevWarning, "scanner S1 offline",
			func() {
				if err := e.sim.SetScannerOff(0, true); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				if err := e.sim.SetScannerOff(0, false); err != nil {
					t.Fatal(err)
				}
			}},
		{"sorted under 50%", CondDegraded, "sorted in the last minute", "L1/sorted-rate", SevCritical, "of parcels sorted in the last minute",
			func() { setAll(true) }, func() { setAll(false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hasReason := func(rs []string) bool {
				return slices.ContainsFunc(rs, func(r string) bool { return strings.Contains(r, tc.reason) })
			}
			defer func() {
				if t.Failed() {
					s := e.line.Snapshot()
					t.Logf("condition %s %q, per minute %+v", s.Condition, s.Reasons, s.PerMinute)
				}
			}()
			tc.on()
			waitForLong(t, tc.name+": condition", 30*time.Second, func() bool {
				s := e.line.Snapshot()
				return s.Condition == tc.cond && hasReason(s.Reasons)
			})
			waitForLong(t, tc.name+": alarm active", 10*time.Second, func() bool {
				return findAlarm(e.line.Snapshot().Alarms, tc.alarm) != nil
			})
			ls := getStatus(t, e.gw).Lines[0]
			if ls.Condition != tc.cond || !hasReason(ls.Reasons) {
				t.Errorf("status.json condition %q reasons %q, want %q with %q", ls.Condition, ls.Reasons, tc.cond, tc.reason)
			}
			a := findAlarm(ls.Alarms, tc.alarm)
			if a == nil || !strings.Contains(a.Text, tc.text) || a.Action == "" || a.Cleared != nil {
				t.Fatalf("status.json alarm %+v, want %s with %q, an action, not cleared", a, tc.alarm, tc.text)
			}
			list := getAlarms(t, e.gw)
			if a := findAlarm(list.Active, tc.alarm); a == nil || a.Severity != tc.sev || a.Action != actionOf(tc.alarm) || a.State != "unacked" {
				t.Fatalf("/api/alarms active %+v, want %s %s unacked with its action", list.Active, tc.alarm, tc.sev)
			}

			tc.off()
			waitForLong(t, tc.name+": cause gone", 60*time.Second, func() bool {
				return !hasReason(e.line.Snapshot().Reasons)
			})
			waitForLong(t, tc.name+": alarm cleared", 10*time.Second, func() bool {
				h := findAlarm(getAlarms(t, e.gw).History, tc.alarm)
				return h != nil && h.Cleared != nil
			})
			list = getAlarms(t, e.gw)
			if a := findAlarm(list.Active, tc.alarm); a == nil || a.State != "cleared-unacked" {
				t.Fatalf("cleared before the ack: active %+v, want %s cleared-unacked", list.Active, tc.alarm)
			}
			req, _ := http.NewRequest(http.MethodPost, "http://"+e.gw.Addr()+"/api/alarms/"+tc.alarm+"/ack", strings.NewReader(`{"by":"ana"}`))
			req.Header.Set("Authorization", "Bearer tok")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("ack: %d", resp.StatusCode)
			}
			list = getAlarms(t, e.gw)
			if findAlarm(list.Active, tc.alarm) != nil {
				t.Errorf("acked and cleared, still active: %+v", list.Active)
			}
			if h := findAlarm(list.History, tc.alarm); h == nil || h.Cleared == nil || h.AckedBy != "ana" {
				t.Errorf("history %+v, want %s cleared and acked by ana", list.History, tc.alarm)
			}
		})
	}
}
