package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"sortgw/devices"
)

// fixedScanners is a scanner source whose counters the test sets.
type fixedScanners struct{ st []devices.ScannerStatus }

func (f *fixedScanners) Run(ctx context.Context, _ func(devices.Read)) error {
	<-ctx.Done()
	return nil
}
func (f *fixedScanners) Status() []devices.ScannerStatus { return f.st }

// TestDeviceCountersInMetrics: the scanners' dropped-frame and refusal
// counters and the links' reconnects reach /metrics as counters.
func TestDeviceCountersInMetrics(t *testing.T) {
	link := newFakeLink()
	link.st.Reconnects = 4
	sc := &fixedScanners{st: []devices.ScannerStatus{{Name: "S1", State: devices.LinkUp, Malformed: 3, Oversized: 2, Refused: 7, Reconnects: 1}}}
	m := NewMetrics()
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 16}, link, sc, nil, m, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	l.plcStatus, l.scanStatus = link.Status(), sc.Status()
	l.publish(time.Now())
	want := `
# HELP sortgw_link_reconnects_total Reconnects of the device link since start (as the link counts them: every connection attempt after the first).
# TYPE sortgw_link_reconnects_total counter
sortgw_link_reconnects_total{kind="plc",line="L1",link="fake"} 4
sortgw_link_reconnects_total{kind="scanner",line="L1",link="S1"} 1
# HELP sortgw_scanner_dropped_frames_total Scanner frames dropped: malformed (did not parse) or oversized (over the frame limit).
# TYPE sortgw_scanner_dropped_frames_total counter
sortgw_scanner_dropped_frames_total{line="L1",reason="malformed",scanner="S1"} 3
sortgw_scanner_dropped_frames_total{line="L1",reason="oversized",scanner="S1"} 2
# HELP sortgw_scanner_refused_connections_total Connections a server-mode scanner refused: from an IP that is not its peer, or while its live connection was not silent.
# TYPE sortgw_scanner_refused_connections_total counter
sortgw_scanner_refused_connections_total{line="L1",scanner="S1"} 7
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"sortgw_link_reconnects_total", "sortgw_scanner_dropped_frames_total", "sortgw_scanner_refused_connections_total"); err != nil {
		t.Fatal(err)
	}
	probs, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}
