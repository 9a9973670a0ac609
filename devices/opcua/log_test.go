package opcua

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// logBuffer keeps every log line for assertions on what was logged.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *logBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// uniqueKeys reports a JSON log line with a key twice (Elasticsearch
// refuses those).
func uniqueKeys(line string) error {
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
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
	}
	return nil
}

// TestLinkLogsAtNormalStart: with the caller's identity fields on the
// logger, a normal start against a freshly powered PLC (FAULT_CODE 1 until
// it sees the heartbeat) logs unique keys and nothing above info.
func TestLinkLogsAtNormalStart(t *testing.T) {
	sim := startSim(t, simOpts{})
	var logs logBuffer
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), &logs)).With().Str("plc", "sorter1").Logger()
	tl := startLinkLog(t, Config{Endpoint: sim.endpoint}, log)
	tl.waitUp(t)
	if err := tl.Send(t.Context(), devices.Command{TID: 5, Chute: 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "confirmed", func() bool { return tl.rec.count(devices.EventConfirmed) == 1 })
	tl.stop(t)
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if err := uniqueKeys(line); err != nil {
			t.Errorf("%v: %s", err, line)
		}
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
			t.Errorf("above info at a normal start: %s", line)
		}
	}
}
