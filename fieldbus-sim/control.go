package fieldbussim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ControlHandler serves the sim's control endpoint: faults to inject, the
// ground truth and the manifest. Faults are POSTs with query parameters;
// every answer is JSON except the manifest (CSV) and the route list (text).
//
//	POST /fault/drop-plc                  close every Modbus client connection
//	POST /fault/stall-heartbeat?for=2s    PLC_HEARTBEAT stands still
//	POST /fault/delay-reply?for=500ms     the next Modbus reply comes late
//	POST /fault/modbus-exception?code=6&n=3[&on=any|reads|writes|divert]
//	POST /fault/silent-unit?on=true|false  another unit id gets no answer
//	POST /fault/mute?on=true|false         Modbus requests get no answer
//	POST /fault/never-accept?on=true|false Modbus dials hang
//	POST /fault/restart-opcua
//	POST /fault/estop?on=true|false
//	POST /fault/chute-full?chute=5&on=true|false
//	POST /fault/chute-disabled?chute=5&on=true|false
//	POST /fault/sorter-state?state=4      0 stopped, 1 running, 2 e-stop, 3 fault, 4 maintenance
//	POST /fault/warm-restart
//	POST /fault/cold-restart
//	POST /fault/drop-scanner?i=0
//	POST /fault/scanner-off?i=0&on=true|false  scanner i refuses connections and sends nothing
//	POST /fault/plc-down?on=true|false      PLC off the network (Modbus and OPC UA)
//	POST /fault/sorter-fault?code=101&on=true|false  SORTER_STATE 3 with FAULT_CODE code
//	POST /fault/scanner-garbage?i=0&n=3
//	POST /fault/scanner-oversize?i=0&n=1
//	POST /rate?items=5.5                  induction rate, items/s
//	GET  /report                          ground truth (JSON)
//	GET  /manifest                        package_id,destination (CSV)
//	GET  /status                          PLC registers, endpoints, counters (JSON)
func (s *Sim) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	fault := func(name string, f func(q query) error) {
		mux.HandleFunc("POST /fault/"+name, func(w http.ResponseWriter, r *http.Request) {
			q := query{r: r}
			if err := f(q); err != nil {
				httpError(w, http.StatusBadRequest, fmt.Errorf("fault %s: %w", name, err))
				return
			}
			writeJSON(w, map[string]any{"ok": true, "fault": name, "params": r.URL.Query()})
		})
	}
	fault("drop-plc", func(query) error { s.DropPLCConnections(); return nil })
	fault("stall-heartbeat", func(q query) error {
		d, err := q.duration("for")
		if err == nil {
			s.StallPLCHeartbeat(d)
		}
		return err
	})
	fault("delay-reply", func(q query) error {
		d, err := q.duration("for")
		if err != nil {
			return err
		}
		on, err := q.target()
		if err == nil {
			s.DelayNextReplyOn(d, on)
		}
		return err
	})
	fault("modbus-exception", func(q query) error {
		code, err := q.int("code", 1, 255)
		if err != nil {
			return err
		}
		if !SupportedException(byte(code)) {
			return fmt.Errorf("code %d: want one of 1..6, 8, 10, 11", code)
		}
		n, err := q.intDefault("n", 1, 1, 1<<30)
		if err != nil {
			return err
		}
		on, err := q.target()
		if err == nil {
			s.InjectModbusExceptionOn(byte(code), n, on)
		}
		return err
	})
	for _, f := range []ModbusFault{FaultSilentWrongUnit, FaultMute, FaultNeverAccept} {
		fault(string(f), func(q query) error {
			on, err := q.bool("on")
			if err != nil {
				return err
			}
			return s.SetModbusFault(f, on)
		})
	}
	fault("restart-opcua", func(query) error { s.RestartOPCUA(); return nil })
	fault("estop", func(q query) error {
		on, err := q.bool("on")
		if err == nil {
			s.EmergencyStop(on)
		}
		return err
	})
	chuteFault := func(set func(uint16, bool) error) func(q query) error {
		return func(q query) error {
			n, err := q.int("chute", 1, s.cfg.Chutes)
			if err != nil {
				return err
			}
			on, err := q.bool("on")
			if err != nil {
				return err
			}
			return set(uint16(n), on)
		}
	}
	fault("chute-full", chuteFault(s.plc.SetChuteFull))
	fault("chute-disabled", chuteFault(s.plc.SetChuteDisabled))
	fault("sorter-state", func(q query) error {
		st, err := q.int("state", 0, 4)
		if err != nil {
			return err
		}
		if SorterState(st) == StateEmergencyStop {
			s.EmergencyStop(true)
		} else {
			s.EmergencyStop(false)
			s.plc.SetSorterState(SorterState(st))
		}
		return nil
	})
	fault("warm-restart", func(query) error { s.WarmRestart(); return nil })
	fault("cold-restart", func(query) error { s.ColdRestart(); return nil })
	scannerFault := func(f func(i, n int), withN bool) func(q query) error {
		return func(q query) error {
			i, err := q.intDefault("i", 0, 0, len(s.ScannerAddrs())-1)
			if err != nil {
				return err
			}
			n := 1
			if withN {
				if n, err = q.intDefault("n", 1, 1, 1<<20); err != nil {
					return err
				}
			}
			f(i, n)
			return nil
		}
	}
	fault("drop-scanner", scannerFault(func(i, _ int) { s.DropScanner(i) }, false))
	fault("scanner-off", func(q query) error {
		i, err := q.intDefault("i", 0, 0, len(s.ScannerAddrs())-1)
		if err != nil {
			return err
		}
		on, err := q.bool("on")
		if err != nil {
			return err
		}
		return s.SetScannerOff(i, on)
	})
	fault("plc-down", func(q query) error {
		on, err := q.bool("on")
		if err != nil {
			return err
		}
		return s.SetPLCDown(on)
	})
	fault("sorter-fault", func(q query) error {
		code, err := q.intDefault("code", 100, 0, 65535)
		if err != nil {
			return err
		}
		on, err := q.bool("on")
		if err != nil {
			return err
		}
		return s.SorterFault(on, uint16(code))
	})
	fault("scanner-garbage", scannerFault(s.ScannerGarbage, true))
	fault("scanner-oversize", scannerFault(s.ScannerOversize, true))
	mux.HandleFunc("POST /rate", func(w http.ResponseWriter, r *http.Request) {
		q := query{r: r}
		v, err := strconv.ParseFloat(q.r.URL.Query().Get("items"), 64)
		if err != nil || v < 0 || v > 1e5 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("rate: items %q: want 0..100000 items/s", q.r.URL.Query().Get("items")))
			return
		}
		s.SetRate(v)
		writeJSON(w, map[string]any{"ok": true, "rate": v})
	})
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Report()) })
	mux.HandleFunc("GET /manifest", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		if err := s.WriteManifest(w); err != nil {
			s.log.Warn().Err(err).Msg("control: manifest")
		}
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Status()) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		routes := []string{"POST /fault/drop-plc", "POST /fault/stall-heartbeat?for=2s", "POST /fault/delay-reply?for=500ms",
			"POST /fault/modbus-exception?code=6&n=3", "POST /fault/silent-unit?on=true", "POST /fault/mute?on=true",
			"POST /fault/never-accept?on=true", "POST /fault/restart-opcua", "POST /fault/estop?on=true",
			"POST /fault/chute-full?chute=5&on=true", "POST /fault/chute-disabled?chute=5&on=true", "POST /fault/sorter-state?state=4",
			"POST /fault/warm-restart", "POST /fault/cold-restart", "POST /fault/drop-scanner?i=0",
			"POST /fault/scanner-off?i=0&on=true", "POST /fault/plc-down?on=true", "POST /fault/sorter-fault?code=101&on=true",
			"POST /fault/scanner-garbage?i=0&n=3", "POST /fault/scanner-oversize?i=0&n=1", "POST /rate?items=5",
			"GET /report", "GET /manifest", "GET /status"}
		sort.Strings(routes)
		fmt.Fprintln(w, "fieldbus-sim control endpoint\n\n"+strings.Join(routes, "\n"))
	})
	return mux
}

// Status is the sim's state for the control endpoint.
type Status struct {
	Modbus        string         `json:"modbus,omitempty"`
	OPCUA         string         `json:"opcua,omitempty"`
	Scanners      []string       `json:"scanners,omitempty"`
	SorterState   string         `json:"sorter_state"`
	Inducted      uint64         `json:"inducted"`
	CommandsTaken uint64         `json:"commands_taken"`
	Results       map[string]int `json:"results"`
	PLC           PLCSnapshot    `json:"plc"`
	ScannerStats  []ScannerStats `json:"scanner_stats,omitempty"`
}

// Status returns a snapshot of the sim.
func (s *Sim) Status() Status {
	st := Status{Modbus: s.ModbusAddr(), OPCUA: s.OPCUAEndpoint(), Scanners: s.ScannerAddrs(),
		SorterState: s.plc.State().String(), Inducted: s.Inducted(), CommandsTaken: s.plc.CommandsTaken(),
		Results: map[string]int{}, PLC: s.plc.Snapshot(), ScannerStats: s.ScannerStats()}
	for r, n := range s.plc.ResultCounts() {
		if n > 0 {
			st.Results[Result(r).String()] = int(n)
		}
	}
	return st
}

type query struct{ r *http.Request }

func (q query) duration(k string) (time.Duration, error) {
	v := q.r.URL.Query().Get(k)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a duration like 500ms", k, v)
	}
	return d, nil
}

// target reads "on": which requests a Modbus fault hits (default any).
func (q query) target() (ExceptionTarget, error) {
	v := q.r.URL.Query().Get("on")
	on, ok := map[string]ExceptionTarget{"": ExceptionAny, "any": ExceptionAny, "reads": ExceptionReads,
		"writes": ExceptionWrites, "divert": ExceptionDivert}[v]
	if !ok {
		return 0, fmt.Errorf("on %q: want any, reads, writes or divert", v)
	}
	return on, nil
}

func (q query) int(k string, lo, hi int) (int, error) {
	v := q.r.URL.Query().Get(k)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s %q: want %d..%d", k, v, lo, hi)
	}
	return n, nil
}

func (q query) intDefault(k string, def, lo, hi int) (int, error) {
	if q.r.URL.Query().Get(k) == "" {
		return def, nil
	}
	return q.int(k, lo, hi)
}

func (q query) bool(k string) (bool, error) {
	v := q.r.URL.Query().Get(k)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s %q: want true or false", k, v)
	}
	return b, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
