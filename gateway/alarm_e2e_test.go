package gateway

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"sortgw/devices/modbus"
	fieldbussim "sortgw/fieldbus-sim"
)

// getAlarms reads /api/alarms over HTTP.
func getAlarms(t *testing.T, gw *Gateway) AlarmList {
	t.Helper()
	resp, err := http.Get("http://" + gw.Addr() + "/api/alarms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l AlarmList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	return l
}

// getStatus reads /status.json over HTTP.
func getStatus(t *testing.T, gw *Gateway) Snapshot {
	t.Helper()
	resp, err := http.Get("http://" + gw.Addr() + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// getPage reads the status page.
func getPage(t *testing.T, gw *Gateway) string {
	t.Helper()
	resp, err := http.Get("http://" + gw.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func findAlarm(as []Alarm, id string) *Alarm {
	i := slices.IndexFunc(as, func(a Alarm) bool { return a.ID == id })
	if i < 0 {
		return nil
	}
	return &as[i]
}

// TestAlarmsAgainstEmulator: each fault of the emulated sorter gives the
// line's condition and an active alarm with what to do, in /status.json
// and /api/alarms; when the fault goes the alarm clears, stays in the
// history, and an acknowledgement (with the technician's name) ends it.
func TestAlarmsAgainstEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e against the emulator")
	}
	e := startE2E(t, e2eConfig{Protocol: "modbus", Chutes: 16, Sim: func(c *fieldbussim.Config) {
		// Only the chutes the test sets full are full.
		c.Conveyor.EmptyAfter = 0
	}, Modbus: func(c *modbus.Config) {
		c.Timeout, c.BackoffMin, c.BackoffMax = 300*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond
	}}, "tok")
	waitForLong(t, "line sorting", 10*time.Second, func() bool { return e.line.Snapshot().Condition == CondSorting })

	for _, tc := range []struct {
		name, cond, alarm, text string
		on, off                 func()
	}{
		{"e-stop", CondStopped, "L1/estop", "emergency stop",
			func() { e.sim.EmergencyStop(true) }, func() { e.sim.EmergencyStop(false) }},
		{"sorter fault", CondFault, "L1/sorter-fault", "sorter fault",
			func() { e.sim.PLC().SetSorterState(fieldbussim.StateFault) },
			func() { e.sim.PLC().SetSorterState(fieldbussim.StateRunning) }},
		{"plc link down", CondDown, "L1/plc-down", "PLC link down",
			func() {
				if err := e.sim.SetModbusFault(fieldbussim.FaultNeverAccept, true); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				if err := e.sim.SetModbusFault(fieldbussim.FaultNeverAccept, false); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.on()
			waitForLong(t, tc.name+": condition "+tc.cond, 10*time.Second, func() bool {
				return e.line.Snapshot().Condition == tc.cond
			})
			s := getStatus(t, e.gw)
			ls := s.Lines[0]
			if ls.Condition != tc.cond || len(ls.Reasons) == 0 {
				t.Errorf("status.json condition %q reasons %q, want %q with reasons", ls.Condition, ls.Reasons, tc.cond)
			}
			waitForLong(t, tc.name+": alarm active", 5*time.Second, func() bool {
				return findAlarm(e.line.Snapshot().Alarms, tc.alarm) != nil
			})
			a := findAlarm(getStatus(t, e.gw).Lines[0].Alarms, tc.alarm)
			if a == nil || !strings.Contains(a.Text, tc.text) || a.Action == "" || a.Cleared != nil {
				t.Fatalf("status.json alarm %+v, want %s with %q, an action, not cleared", a, tc.alarm, tc.text)
			}
			// The page: the condition on the line badge, the alarm on top,
			// its count in the tab title.
			if page := getPage(t, e.gw); !strings.Contains(page, ">"+tc.cond+"</span>") || !strings.Contains(page, "<title>(") ||
				!strings.Contains(page, html.EscapeString(a.Action)) {
				t.Errorf("page without the condition %q, the alarm's action or the count in the title", tc.cond)
			}
			list := getAlarms(t, e.gw)
			if a := findAlarm(list.Active, tc.alarm); a == nil || a.Severity != SevCritical || a.Action == "" || a.State != "unacked" {
				t.Fatalf("/api/alarms active %+v, want %s critical unacked with an action", list.Active, tc.alarm)
			}
			tc.off()
			waitForLong(t, tc.name+": sorting again", 10*time.Second, func() bool {
				return e.line.Snapshot().Condition == CondSorting
			})
			list = getAlarms(t, e.gw)
			if h := findAlarm(list.History, tc.alarm); h == nil || h.Cleared == nil {
				t.Fatalf("/api/alarms history %+v, want %s cleared", list.History, tc.alarm)
			}
			if a := findAlarm(list.Active, tc.alarm); a == nil || a.State != "cleared-unacked" {
				t.Fatalf("cleared before the ack: active %+v, want %s cleared-unacked", list.Active, tc.alarm)
			}
			// Acknowledge: the token authorises, the name is required.
			post := func(body, tok string) int {
				req, _ := http.NewRequest(http.MethodPost, "http://"+e.gw.Addr()+"/api/alarms/"+tc.alarm+"/ack", strings.NewReader(body))
				req.Header.Set("Authorization", "bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := post(`{"by":"ana"}`, "wrong"); code != http.StatusUnauthorized {
				t.Errorf("ack with a wrong token: %d", code)
			}
			if code := post(`{"by":" "}`, "tok"); code != http.StatusBadRequest {
				t.Errorf("ack without a name: %d", code)
			}
			if code := post(`{"by":"ana"}`, "tok"); code != http.StatusOK {
				t.Fatalf("ack: %d", code)
			}
			list = getAlarms(t, e.gw)
			if findAlarm(list.Active, tc.alarm) != nil {
				t.Errorf("acked and cleared, still active: %+v", list.Active)
			}
			if h := findAlarm(list.History, tc.alarm); h == nil || h.AckedBy != "ana" {
				t.Errorf("history %+v, want %s acked by ana", list.History, tc.alarm)
			}
		})
	}

	// Sorting under 50 %: every chute full, the items recirculate.
	t.Run("sorted under threshold", func(t *testing.T) {
		for n := uint16(1); n <= 16; n++ {
			e.sim.SetChuteFull(n, true)
		}
		e.sim.SetRate(40)
		defer e.sim.SetRate(0)
		defer func() {
			if t.Failed() {
				s := e.line.Snapshot()
				t.Logf("per minute %+v, condition %s %q, results %v", s.PerMinute, s.Condition, s.Reasons, s.Totals.Results)
			}
		}()
		waitForLong(t, "degraded", 30*time.Second, func() bool {
			s := e.line.Snapshot()
			return s.Condition == CondDegraded && slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, "sorted") })
		})
		waitForLong(t, "sorted-rate alarm", 5*time.Second, func() bool {
			return findAlarm(getAlarms(t, e.gw).Active, "L1/sorted-rate") != nil
		})
		a := findAlarm(getAlarms(t, e.gw).Active, "L1/sorted-rate")
		if a.Action == "" || !strings.Contains(a.Text, "sorted in the last minute") {
			t.Errorf("sorted-rate alarm %+v", a)
		}
		// Shelved for a while: off the active list, on the shelved one.
		req, _ := http.NewRequest(http.MethodPost, "http://"+e.gw.Addr()+"/api/alarms/L1/sorted-rate/shelve",
			strings.NewReader(`{"by":"bo","minutes":100000}`))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("shelve: %d", resp.StatusCode)
		}
		list := getAlarms(t, e.gw)
		if findAlarm(list.Active, "L1/sorted-rate") != nil {
			t.Errorf("shelved alarm still active: %+v", list.Active)
		}
		if sh := findAlarm(list.Shelved, "L1/sorted-rate"); sh == nil || sh.ShelvedBy != "bo" || sh.ShelvedUntil.After(time.Now().Add(8*time.Hour+time.Minute)) {
			t.Errorf("shelved %+v, want by bo, at most 8h", list.Shelved)
		}
		// The plan's routes have no usable chute left either.
		if !slices.ContainsFunc(getAlarms(t, e.gw).Active, func(a Alarm) bool { return strings.HasPrefix(a.ID, "L1/route-blocked/") }) {
			t.Errorf("no route-blocked alarm with every chute full: %+v", getAlarms(t, e.gw).Active)
		}
	})
}
