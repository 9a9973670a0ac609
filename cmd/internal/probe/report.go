// Package probe checks a sorter PLC against the host interface before the
// first parcel (`sortgw probe`): it connects with a line's own settings,
// reads the contract's registers or nodes and reports one check per rule,
// with its evidence and, for a failure, a hint naming the usual
// commissioning mistake (a block base off by one, swapped 32-bit words,
// the wrong unit id, a namespace index assumed instead of looked up).
//
// Read-only unless Options.DivertChute is set: the probe then writes the
// host heartbeat and a few divert commands, and stops the heartbeat once
// to see the PLC's host watchdog. A divert test moves a real parcel if one
// is on the sorter; it refuses to run unless the PLC reports maintenance.
package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is a check's verdict.
type Status string

// Verdicts.
const (
	Pass   Status = "pass"
	Fail   Status = "fail"
	NotRun Status = "not-run"
)

// Check is one rule of the interface, checked.
type Check struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Status   Status `json:"status"`
	Evidence string `json:"evidence,omitempty"`
	// Hint says what is probably wrong and where to fix it (failures, and
	// checks that could not run).
	Hint string `json:"hint,omitempty"`
}

// Report is the outcome of one probe.
type Report struct {
	Line     string        `json:"line"`
	Protocol string        `json:"protocol"`
	Addr     string        `json:"addr"`
	Started  time.Time     `json:"started"`
	Took     time.Duration `json:"took_ns"`
	Checks   []Check       `json:"checks"`
}

// OK reports whether every check that ran passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return false
		}
	}
	return true
}

// Get returns the check with this id (zero Check if none).
func (r *Report) Get(id string) Check {
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	return Check{}
}

func (r *Report) add(id, title string, st Status, evidence, hint string) {
	r.Checks = append(r.Checks, Check{ID: id, Title: title, Status: st, Evidence: evidence, Hint: hint})
}

func (r *Report) pass(id, title, evidence string) { r.add(id, title, Pass, evidence, "") }
func (r *Report) fail(id, title, evidence, hint string) {
	r.add(id, title, Fail, evidence, hint)
}
func (r *Report) notRun(id, title, why string) { r.add(id, title, NotRun, "", why) }

// WriteText prints the report for a person: one line per check, the
// evidence and hint indented below.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "probe of line %s: %s %s (%s)\n", r.Line, r.Protocol, r.Addr, r.Took.Round(time.Millisecond))
	var n [3]int
	for _, c := range r.Checks {
		mark := map[Status]string{Pass: "PASS", Fail: "FAIL", NotRun: "----"}[c.Status]
		fmt.Fprintf(&b, "  %s  %-20s %s\n", mark, c.ID, c.Title)
		if c.Evidence != "" {
			fmt.Fprintf(&b, "        %s\n", c.Evidence)
		}
		if c.Hint != "" {
			fmt.Fprintf(&b, "        hint: %s\n", c.Hint)
		}
		switch c.Status {
		case Pass:
			n[0]++
		case Fail:
			n[1]++
		default:
			n[2]++
		}
	}
	fmt.Fprintf(&b, "%d passed, %d failed, %d not run\n", n[0], n[1], n[2])
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as one JSON document, for the record.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// Options select what a probe does besides reading.
type Options struct {
	// Line names the line in the report.
	Line string
	// DivertChute, when not 0, runs the divert test on this chute: it
	// writes commands and stops the host heartbeat once. Only while the
	// PLC reports SORTER_STATE 4 (maintenance).
	DivertChute uint16
	// Sample is how long the PLC heartbeat is watched (default 1.5s).
	Sample time.Duration
	// ConfirmWait bounds the wait for each confirmation of the divert
	// test (default 30s: the belt must carry the test item to its chute).
	ConfirmWait time.Duration
	// Watchdog is how long the PLC may take to raise FAULT_CODE 1 once the
	// host heartbeat stops, and to clear it once it runs (default 2s;
	// the contract's is 1s).
	Watchdog time.Duration
	// Progress, if set, is told what the probe waits for (a person
	// watching a divert test needs to know it is waiting for the belt).
	Progress func(msg string)
}

func (o *Options) defaults() {
	if o.Sample <= 0 {
		o.Sample = 1500 * time.Millisecond
	}
	if o.ConfirmWait <= 0 {
		o.ConfirmWait = 30 * time.Second
	}
	if o.Watchdog <= 0 {
		o.Watchdog = 2 * time.Second
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}
