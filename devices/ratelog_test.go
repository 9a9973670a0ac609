package devices

import (
	"fmt"
	"testing"
	"time"
)

func TestRateLog(t *testing.T) {
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at         time.Duration
		key        string
		ok         bool
		suppressed int
	}{
		{0, "dial: refused", true, 0},
		{100 * time.Millisecond, "dial: refused", false, 0},
		{900 * time.Millisecond, "dial: refused", false, 0},
		{1100 * time.Millisecond, "dial: refused", true, 2}, // after 1s; next after 2s
		{1200 * time.Millisecond, "read: timeout", true, 0}, // another key is its own
		{2500 * time.Millisecond, "dial: refused", false, 0},
		{3100 * time.Millisecond, "dial: refused", true, 1}, // after 2s; next after 4s
		{6 * time.Second, "dial: refused", false, 0},
		{7100 * time.Millisecond, "dial: refused", true, 1},
		{15100 * time.Millisecond, "dial: refused", true, 0}, // 8s
		{31100 * time.Millisecond, "dial: refused", true, 0}, // 16s
		{63100 * time.Millisecond, "dial: refused", true, 0}, // 32s
		{100 * time.Second, "dial: refused", false, 0},       // capped at Max 1min
		{123100 * time.Millisecond, "dial: refused", true, 1},
		{10 * time.Minute, "dial: refused", true, 0}, // quiet for 2 x Max: starts over
		{10*time.Minute + 500*time.Millisecond, "dial: refused", false, 0},
		{10*time.Minute + 1000*time.Millisecond, "dial: refused", true, 1},
	}
	var r RateLog
	for i, s := range steps {
		ok, n := r.Allow(s.key, t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Errorf("step %d (%s at %v): Allow = %v, %d; want %v, %d", i, s.key, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}

// TestRateLogDialEveryTwoSeconds is the case from the field: a scanner
// that is off redials every 2s (the back-off cap); an hour of it must
// leave a few dozen lines, with the repeats counted.
func TestRateLogDialEveryTwoSeconds(t *testing.T) {
	var r RateLog
	t0 := time.Unix(0, 0)
	lines, held := 0, 0
	for at := time.Duration(0); at < time.Hour; at += 2 * time.Second {
		if ok, n := r.Allow("dial tcp 10.0.0.5:2001: connection refused", t0.Add(at)); ok {
			lines++
			held += n
		}
	}
	// The repeats after the last line written are reported with the next.
	if lines > 70 || lines+held > 1800 || lines+held < 1800-30 {
		t.Errorf("%d lines, %d held back in an hour of redials every 2s; want at most 70, and all but the last minute's counted", lines, held)
	}
}

func TestRateLogBoundsKeys(t *testing.T) {
	var r RateLog
	t0 := time.Unix(0, 0)
	for i := range 200 {
		r.Allow(fmt.Sprint("dial 10.0.0.", i), t0)
	}
	if len(r.keys) > maxRateKeys {
		t.Fatalf("%d keys remembered, want at most %d", len(r.keys), maxRateKeys)
	}
}
