package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// TestMain checks that no test of the package leaks a goroutine (the
// package's only TestMain).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestChaosShort is the CI version of `sortgw bench -duration 10m -chaos`:
// the same bench code, a short window, a fault every few seconds (every
// fault kind of the protocol comes once), then the ground truth. It
// asserts correctness only: exactly one outcome per pass, no duplicate
// command, every PLC result accounted for, every link and scanner back.
// Speed (the 2 s reconnect goal, latencies) is for `sortgw bench`.
func TestChaosShort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		protocol string
		window   time.Duration
		every    time.Duration
	}{
		{"modbus", "modbus", 30 * time.Second, 5 * time.Second},
		{"opcua", "opcua", 16 * time.Second, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Mostly waiting on the belt: the two protocols share the
			// machine well and the test stays near a minute.
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cfg := benchConfig{
				Protocol: tc.protocol, Rate: 25, Duration: tc.window, Warmup: time.Second, Chutes: 64,
				Chaos: true, ChaosEvery: tc.every, ContainerCapacity: 15, EmptyAfter: 3 * time.Second,
				LostRate: 0.002, GarbageRate: 0.01, Baselines: 100, SkipDecide: true,
				Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel),
			}
			rep, err := runBench(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.print(&out)
			t.Log("\n" + out.String())
			if rep.Reads == 0 || rep.Taken == 0 {
				t.Fatalf("no load went through: reads %d, commands taken %d", rep.Reads, rep.Taken)
			}
			c := rep.Check
			if c.MissingOutcome != 0 || c.DuplicateOutcome != 0 {
				t.Errorf("passes without exactly one outcome: %d missing, %d duplicate", c.MissingOutcome, c.DuplicateOutcome)
			}
			if c.DuplicateCommand != 0 {
				t.Errorf("%d passes got more than one command", c.DuplicateCommand)
			}
			if c.Phantom != 0 {
				t.Errorf("%d results the PLC never gave", c.Phantom)
			}
			if c.Unreported != c.Absorbed {
				t.Errorf("%d PLC results neither recorded nor covered by a lost/missed/timeout outcome", c.Unreported-c.Absorbed)
			}
			if c.Decided == 0 || c.SimCommands == 0 {
				t.Errorf("nothing to check: %d decided, %d commands", c.Decided, c.SimCommands)
			}
			plcFaults, scanFaults := 0, 0
			for _, f := range rep.Chaos.Runs {
				if strings.HasPrefix(f.Note, "not back") {
					t.Errorf("%s on %s at %v: %s", f.Fault, f.Line, f.At, f.Note)
				}
				if strings.HasPrefix(f.Fault, "Scanner") || f.Fault == "DropScanner" {
					scanFaults++
				} else {
					plcFaults++
				}
			}
			if plcFaults < 3 || scanFaults < 3 {
				t.Errorf("only %d PLC and %d scanner faults injected", plcFaults, scanFaults)
			}
		})
	}
}

func TestLatencyQuantiles(t *testing.T) {
	ms := func(v ...int) latencies {
		var l latencies
		for _, x := range v {
			l = append(l, time.Duration(x)*time.Millisecond)
		}
		return l
	}
	thousand := make(latencies, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(1000-i) * time.Microsecond
	}
	for _, tc := range []struct {
		name string
		in   latencies
		want latStats
	}{
		{"empty", nil, latStats{}},
		{"one", ms(7), latStats{N: 1, P50: 7 * time.Millisecond, P99: 7 * time.Millisecond, P999: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{"unsorted four", ms(4, 1, 3, 2), latStats{N: 4, P50: 2 * time.Millisecond, P99: 4 * time.Millisecond, P999: 4 * time.Millisecond, Max: 4 * time.Millisecond}},
		{"thousand", thousand, latStats{N: 1000, P50: 500 * time.Microsecond, P99: 990 * time.Microsecond, P999: 999 * time.Microsecond, Max: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarise(tc.in); got != tc.want {
				t.Errorf("summarise = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBenchConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     benchConfig
		rate    float64
		wantErr string
	}{
		{"defaults", benchConfig{}, 1000, ""},
		{"max at 5/10 ms is the ring ceiling", benchConfig{Rate: -1}, 1000, ""},
		{"max at 1/1 ms", benchConfig{Rate: -1, PLCCycle: time.Millisecond, Poll: time.Millisecond}, 7500, ""},
		{"bad protocol", benchConfig{Protocol: "profinet"}, 0, `protocol "profinet"`},
		{"too many lines", benchConfig{Lines: 1000}, 0, "lines 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.defaults()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.cfg.Rate != tc.rate {
				t.Errorf("rate = %v, want %v", tc.cfg.Rate, tc.rate)
			}
		})
	}
}

func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad rate", []string{"-rate", "fast"}, `-rate "fast"`},
		{"zero rate", []string{"-rate", "0"}, `-rate "0"`},
		{"bad protocol", []string{"-protocol", "s7", "-skip-decide", "-duration", "1ms"}, `protocol "s7"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := dispatch(context.Background(), append([]string{"bench"}, tc.args...), &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("code %d, stderr %q, want it to contain %q", code, stderr.String(), tc.want)
			}
		})
	}
}
