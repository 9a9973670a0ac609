package fieldbussim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// lockedBuffer collects log lines from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// duplicateKeys returns the keys that appear twice in one JSON object line.
func duplicateKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := k.(string)
		if seen[key] {
			dups = append(dups, key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return dups, nil
}

// TestLogLinesHaveUniqueKeys: a caller that tags the sim's logger with
// "part" (as the gateway's binaries do) gets JSON lines with unique keys
// (Elasticsearch refuses a document with a key twice), durations in
// fields named _ms.
func TestLogLinesHaveUniqueKeys(t *testing.T) {
	var buf lockedBuffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel).With().Timestamp().Str("part", "sim").Logger()
	s, err := New(Config{Chutes: 16, PLCCycle: time.Millisecond, HostWatchdog: 50 * time.Millisecond,
		Modbus: ModbusConfig{Addr: "127.0.0.1:0"}, OPCUA: OPCUAConfig{Addr: "127.0.0.1:0"},
		Scanners: ScannerConfig{Addrs: []string{"127.0.0.1:0"}}, Conveyor: ConveyorConfig{Rate: 50}}, log)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "sim", s.Run)
	waitFor(t, "sim ready", 10*time.Second, func() bool {
		select {
		case <-s.Ready():
			return true
		default:
			return false
		}
	})
	c := dial(t, s, 1)
	c.heartbeat(t, 1)
	waitFor(t, "FAULT_CODE 1 again (host watchdog)", 5*time.Second, func() bool {
		return strings.Contains(buf.String(), "host heartbeat lost")
	})
	s.StallPLCHeartbeat(time.Millisecond)
	s.DelayNextReply(time.Millisecond)
	for _, f := range []ModbusFault{FaultSilentWrongUnit, FaultMute} {
		if err := s.SetModbusFault(f, true); err != nil {
			t.Fatal(err)
		}
		if err := s.SetModbusFault(f, false); err != nil {
			t.Fatal(err)
		}
	}
	// One request held, so the Modbus front's own logger writes a line.
	if err := s.SetModbusFault(FaultMute, true); err != nil {
		t.Fatal(err)
	}
	raw := rawDial(t, s)
	if _, err := raw.Write(mbapRead(1, 1, 100)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a held request", 5*time.Second, func() bool { return s.ModbusHeld() > 0 })
	if err := s.SetModbusFault(FaultMute, false); err != nil {
		t.Fatal(err)
	}
	s.DropPLCConnections()
	s.RestartOPCUA()

	lines := 0
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		dups, err := duplicateKeys(sc.Text())
		if err != nil {
			t.Fatalf("not a JSON object: %v: %s", err, sc.Text())
		}
		if len(dups) > 0 {
			t.Errorf("duplicate keys %v in %s", dups, sc.Text())
		}
		for _, k := range []string{`"for":`, `"delay":`, `"silent":`, `"backoff":`} {
			if strings.Contains(sc.Text(), k) {
				t.Errorf("duration without a unit in its key (%s): %s", k, sc.Text())
			}
		}
	}
	if lines < 5 {
		t.Fatalf("only %d log lines", lines)
	}
	t.Logf("%d log lines checked", lines)
}
