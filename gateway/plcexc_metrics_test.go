package gateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"sortgw/devices"
)

// TestPLCExceptionMetric: sortgw_plc_exceptions_total follows the link's
// per-code exception counts, each reply counted once however often the
// status is read.
func TestPLCExceptionMetric(t *testing.T) {
	m := NewMetrics()
	lm := m.forLine("l1", 16)
	var st devices.PLCStatus
	st.ExceptionsByCode[6] = 3
	lm.links(st, nil)
	st.ExceptionsByCode[6], st.ExceptionsByCode[11], st.ExceptionsByCode[0] = 5, 2, 1
	lm.links(st, nil)
	lm.links(st, nil)
	for code, want := range map[string]float64{"6": 5, "11": 2, "other": 1} {
		if got := testutil.ToFloat64(m.plcExc.WithLabelValues("l1", code)); got != want {
			t.Errorf("code %s: %v, want %v", code, got, want)
		}
	}
}
