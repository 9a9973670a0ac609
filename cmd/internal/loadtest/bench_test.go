package loadtest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
}

// TestRunDirect is a short `sortgw bench` on each protocol: the direct
// feed's load goes through, the raw baselines are measured before and
// during it, every latency series has samples, and the ground truth holds.
func TestRunDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end bench: skipped with -short")
	}
	for _, proto := range []string{"modbus", "opcua"} {
		t.Run(proto, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rep, err := Run(ctx, Config{Protocol: proto, Rate: 200, Duration: 2 * time.Second, Warmup: 500 * time.Millisecond,
				Chutes: 64, Baselines: 100, SkipDecide: true, Dir: t.TempDir()}, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.Print(&out)
			t.Log("\n" + out.String())
			if rep.Inducted == 0 || rep.Reads == 0 || rep.Taken == 0 {
				t.Fatalf("no load went through: inducted %d, reads %d, commands taken %d", rep.Inducted, rep.Reads, rep.Taken)
			}
			for name, st := range map[string]LatStats{"cold floor": rep.BaseCold, "rate-matched floor": rep.BaseRate,
				"hot floor": rep.BaseHot, "decided": rep.Decided, "written": rep.Written, "taken": rep.TakenLat} {
				if st.N == 0 || st.P50 <= 0 {
					t.Errorf("%s: %+v, want samples", name, st)
				}
			}
			if !rep.Check.OK() || rep.Check.Decided == 0 {
				t.Errorf("ground truth: %+v", rep.Check)
			}
			if !rep.OK() {
				t.Error("report not OK")
			}
			for _, want := range []string{"== " + proto + ", direct feed", "floor hot", "read-to-written: p50", "x " + rawName(proto) + "@200/s", "read-to-taken", "ground truth OK"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("printed report lacks %q", want)
				}
			}
		})
	}
}

// TestChaosShort is the CI version of `sortgw bench -duration 10m -chaos`:
// the same bench code, a short window, a fault every few seconds, and the
// abuse soak between them (a scanner's port taken, 100 status streams
// instead of 500, slow readers, Modbus exception bursts), then the ground
// truth. It asserts correctness only: exactly one outcome per pass, no
// duplicate command, every PLC result accounted for, every journal record
// kept or counted, every link and scanner back, each abuse fault's own
// invariant (refusals counted, slow streams dropped, the line reading
// through its other scanner). Speed (the 2 s reconnect goal, latencies)
// is for `sortgw bench`.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of chaos: skipped with -short")
	}
	for _, tc := range []struct {
		name     string
		protocol string
		window   time.Duration
		every    time.Duration
	}{
		{"modbus", "modbus", 30 * time.Second, 5 * time.Second},
		{"opcua", "opcua", 20 * time.Second, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Mostly waiting on the belt: the two protocols share the
			// machine well and the test stays near a minute.
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cfg := Config{
				Protocol: tc.protocol, Rate: 25, Duration: tc.window, Warmup: time.Second, Chutes: 64,
				Chaos: true, ChaosEvery: tc.every, ContainerCapacity: 15, EmptyAfter: 3 * time.Second,
				LostRate: 0.002, GarbageRate: 0.01, Baselines: 100, SkipDecide: true, Dir: t.TempDir(),
				Abuse: true, Soak: SoakConfig{SSEClients: 100, SlowReaders: 4, PortHold: 2 * time.Second, ExceptionsPerCode: 3, JournalFull: 3 * time.Second},
			}
			rep, err := Run(ctx, cfg, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.Print(&out)
			t.Log("\n" + out.String())
			if rep.Reads == 0 || rep.Taken == 0 {
				t.Fatalf("no load went through: reads %d, commands taken %d", rep.Reads, rep.Taken)
			}
			checkTruthReport(t, rep.Check)
			checkChaosReport(t, rep.Chaos, tc.protocol)
		})
	}
}

func checkTruthReport(t *testing.T, c *TruthCheck) {
	t.Helper()
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
	if r := c.Records; r.NotKept != 0 || r.Appended == 0 || r.Committed == 0 {
		t.Errorf("journal records neither kept nor counted: %+v", r)
	}
}

func checkChaosReport(t *testing.T, r *ChaosReport, protocol string) {
	t.Helper()
	plcFaults, scanFaults := 0, 0
	abuse := map[string]bool{}
	for _, f := range abuseFaults(protocol) {
		abuse[f.name] = false
	}
	for _, f := range r.Runs {
		if strings.HasPrefix(f.Note, "not back") || strings.HasPrefix(f.Note, "could not") || f.Broken != "" {
			t.Errorf("%s on %s at %v: %s %s", f.Fault, f.Line, f.At, f.Note, f.Broken)
		}
		switch _, ok := abuse[f.Fault]; {
		case ok:
			abuse[f.Fault] = true
		case strings.HasPrefix(f.Fault, "Scanner") || f.Fault == "DropScanner":
			scanFaults++
		default:
			plcFaults++
		}
	}
	if plcFaults < 3 || scanFaults < 3 {
		t.Errorf("only %d PLC and %d scanner faults injected", plcFaults, scanFaults)
	}
	for name, seen := range abuse {
		if !seen {
			t.Errorf("abuse fault %s never injected", name)
		}
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
		want LatStats
	}{
		{"empty", nil, LatStats{}},
		{"one", ms(7), LatStats{N: 1, P50: 7 * time.Millisecond, P99: 7 * time.Millisecond, P999: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{"unsorted four", ms(4, 1, 3, 2), LatStats{N: 4, P50: 2 * time.Millisecond, P99: 4 * time.Millisecond, P999: 4 * time.Millisecond, Max: 4 * time.Millisecond}},
		{"thousand", thousand, LatStats{N: 1000, P50: 500 * time.Microsecond, P99: 990 * time.Microsecond, P999: 999 * time.Microsecond, Max: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarise(tc.in); got != tc.want {
				t.Errorf("summarise = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    Config // fields checked: Rate, Feed, ContainerCapacity, LostRate
		wantErr string
	}{
		{"defaults", Config{}, Config{Rate: 1000, Feed: FeedDirect, ContainerCapacity: -1}, ""},
		{"max at 5/10 ms offers twice the ring ceiling", Config{Rate: -1}, Config{Rate: 2000, Max: true, Feed: FeedDirect, ContainerCapacity: -1}, ""},
		{"max at 1/1 ms", Config{Rate: -1, PLCCycle: time.Millisecond, Poll: time.Millisecond}, Config{Rate: 15000, Max: true, Feed: FeedDirect, ContainerCapacity: -1}, ""},
		{"chaos", Config{Chaos: true}, Config{Rate: 200, Feed: FeedConveyor, ContainerCapacity: 40, LostRate: 0.001}, ""},
		{"abuse needs two scanners", Config{Chaos: true, Abuse: true, Scanners: 1}, Config{}, "2 scanners"},
		{"slow readers within the stream cap", Config{Chaos: true, Abuse: true, Soak: SoakConfig{SlowReaders: 65}}, Config{}, "at most 64"},
		{"chaos keeps what is set", Config{Chaos: true, Rate: 25, ContainerCapacity: 15, LostRate: 0.002},
			Config{Rate: 25, Feed: FeedConveyor, ContainerCapacity: 15, LostRate: 0.002}, ""},
		{"bad protocol", Config{Protocol: "profinet"}, Config{}, `protocol "profinet"`},
		{"too many lines", Config{Lines: 1000}, Config{}, "lines 1000"},
		{"chaos needs the conveyor", Config{Chaos: true, Feed: FeedDirect}, Config{}, "conveyor feed"},
		{"bad feed", Config{Feed: "hose"}, Config{}, `feed "hose"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			type fields struct {
				Rate              float64
				Max               bool
				Feed              string
				ContainerCapacity int
				LostRate          float64
			}
			f := func(c Config) fields { return fields{c.Rate, c.Max, c.Feed, c.ContainerCapacity, c.LostRate} }
			if got, want := f(tc.cfg), f(tc.want); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}
