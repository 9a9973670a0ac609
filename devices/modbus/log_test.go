package modbus

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// checkLogLine reports a JSON log line with a key twice (Elasticsearch
// refuses those) or a duration key without a unit suffix.
func checkLogLine(line string) error {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := tok.(string)
		if seen[k] {
			return fmt.Errorf("key %q twice", k)
		}
		seen[k] = true
		if (strings.Contains(k, "retry") || strings.Contains(k, "timeout")) && !strings.HasSuffix(k, "_ms") {
			return fmt.Errorf("duration key %q without a unit", k)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
	}
	return nil
}

// TestLogsAtNormalStart: with the caller's identity fields on the logger
// (as cmd attaches them), a normal start and one command log unique keys,
// and nothing above info: the power-on FAULT_CODE 1 every PLC shows until
// it sees the host's heartbeat is an info line.
func TestLogsAtNormalStart(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	var logs logBuffer
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), &logs)).
		With().Timestamp().Str("plc", "sorter1").Logger()
	h := startLinkLog(t, linkConfig(s), true, log)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	send(t, h.link, 31, 3, 0)
	waitFor(t, "confirmed", 5*time.Second, func() bool { return h.ev.count(devices.EventConfirmed) == 1 })
	h.stop()
	sawFault := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if err := checkLogLine(line); err != nil {
			t.Errorf("%v: %s", err, line)
		}
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
			t.Errorf("above info at a normal start: %s", line)
		}
		if strings.Contains(line, "plc fault 1") {
			sawFault = true
		}
	}
	if !sawFault {
		t.Errorf("the power-on fault code 1 was not logged:\n%s", logs.String())
	}
}

// TestDialFailuresRateLimited: a PLC that is off makes the link redial
// every few milliseconds here (every 2 s on a site); the log keeps a few
// lines, each saying how many repeats it held back, durations with units.
func TestDialFailuresRateLimited(t *testing.T) {
	var logs logBuffer
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), &logs)).With().Str("plc", "off")
	h := startLinkLog(t, Config{Addr: "127.0.0.1:1", Timeout: 50 * time.Millisecond,
		BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond}, true, log.Logger())
	waitFor(t, "50 failed dials", 10*time.Second, func() bool { return h.link.Status().Errors >= 50 })
	h.stop()
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if err := checkLogLine(line); err != nil {
			t.Errorf("%v: %s", err, line)
		}
		if strings.Contains(line, "plc link down") {
			lines++
		}
	}
	if lines == 0 || lines > 5 {
		t.Errorf("%d lines for %d failed dials, want 1..5", lines, h.link.Status().Errors)
	}
}
