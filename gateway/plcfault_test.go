package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/modbus"
	fieldbussim "sortgw/fieldbus-sim"
)

// TestModbusLinkAgainstSilentPLC runs the Modbus link (through its public
// New/Run/Status/Send only) against the emulator's silent faults: a PLC
// that ignores another unit id, one that accepts the connection and never
// answers, and a listener that never completes the connection. Each time
// the link must report down with a clear LastError within its timeout,
// write no command while the PLC is silent, and, where the fault can be
// switched off, come up and get the held command taken exactly once.
func TestModbusLinkAgainstSilentPLC(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name    string
		fault   fieldbussim.ModbusFault
		sim     func(*fieldbussim.ModbusConfig)
		unit    byte   // the link's unit id
		wantErr string // in LastError while the PLC is silent
		// recovers: switching the fault off lets the link come up. With a
		// wrong unit id it cannot; the PLC then answers exception 0B.
		recovers  bool
		offErr    string
		wantsHeld bool // the emulator left requests unanswered
	}{
		{name: "wrong unit id answered with silence", fault: fieldbussim.FaultSilentWrongUnit,
			sim: func(c *fieldbussim.ModbusConfig) { c.SilentWrongUnit = true }, unit: 2,
			wantErr: "timeout", offErr: "exception", wantsHeld: true},
		{name: "accepts and never answers", fault: fieldbussim.FaultMute,
			sim: func(c *fieldbussim.ModbusConfig) { c.Mute = true }, unit: 1,
			wantErr: "timeout", recovers: true, wantsHeld: true},
		{name: "never completes the connection", fault: fieldbussim.FaultNeverAccept,
			sim: func(c *fieldbussim.ModbusConfig) { c.NeverAccept = true }, unit: 1,
			wantErr: "dial", recovers: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
			scfg := fieldbussim.Config{
				Chutes: 16, PLCCycle: time.Millisecond, DisableScanners: true,
				Modbus:   fieldbussim.ModbusConfig{Addr: "127.0.0.1:0"},
				Conveyor: fieldbussim.ConveyorConfig{CommissioningTravel: 20 * time.Millisecond},
			}
			tc.sim(&scfg.Modbus)
			sim := startSim(t, scfg, log)

			link, err := modbus.New(modbus.Config{Name: "plc", Addr: sim.ModbusAddr(), UnitID: tc.unit, Chutes: 16,
				Timeout: timeout, Poll: 5 * time.Millisecond, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond}, log)
			if err != nil {
				t.Fatal(err)
			}
			// The command is queued before the link ever connects: it must
			// wait, not be written into a silent PLC.
			const tid = 4711
			if err := link.Send(context.Background(), devices.Command{TID: tid, Chute: 3, Deadline: time.Now().Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			runUntilCleanup(t, "link", link.Run)

			waitForLong(t, "link down with an error", 5*time.Second, func() bool {
				st := link.Status()
				return st.State == devices.LinkDown && st.LastError != ""
			})
			st := link.Status()
			took := time.Since(start)
			t.Logf("down after %v: %s", took.Round(time.Millisecond), st.LastError)
			if !strings.Contains(st.LastError, tc.wantErr) {
				t.Errorf("LastError %q, want it to say %q", st.LastError, tc.wantErr)
			}
			// Timeout bounds the dial and every request; the session's
			// first error comes within about one of them (slack for a
			// loaded machine).
			if took > 3*timeout+time.Second {
				t.Errorf("down after %v, want within about the %v timeout", took, timeout)
			}
			// A second failed attempt: the link keeps trying, and still
			// writes nothing.
			waitForLong(t, "a second failed session", 5*time.Second, func() bool { return link.Status().Errors >= 2 })
			if st := link.Status(); st.Written != 0 || st.State == devices.LinkUp {
				t.Fatalf("link %s wrote %d commands to a silent PLC", st.State, st.Written)
			}
			if n := sim.PLC().CommandsTaken(); n != 0 {
				t.Fatalf("the PLC took %d commands while silent", n)
			}
			if tc.wantsHeld && sim.ModbusHeld() == 0 {
				t.Error("the emulator held no request: the fault did not apply")
			}

			if err := sim.SetModbusFault(tc.fault, false); err != nil {
				t.Fatal(err)
			}
			off := time.Now()
			if !tc.recovers {
				waitForLong(t, "LastError once the PLC answers again", 5*time.Second, func() bool {
					return strings.Contains(link.Status().LastError, tc.offErr)
				})
				t.Logf("with the fault off: %s", link.Status().LastError)
				if n := sim.PLC().CommandsTaken(); n != 0 {
					t.Fatalf("the PLC took %d commands from a link with the wrong unit id", n)
				}
				return
			}
			waitForLong(t, "link up once the PLC behaves", 10*time.Second, func() bool { return link.Status().State == devices.LinkUp })
			t.Logf("up %v after the fault was switched off", time.Since(off).Round(time.Millisecond))
			waitForLong(t, "the held command confirmed", 10*time.Second, func() bool { return link.Status().Confirmed >= 1 })
			if n := sim.PLC().CommandsTaken(); n != 1 {
				t.Fatalf("the PLC took %d commands, want the one held", n)
			}
			if got := sim.PLC().Snapshot().Confirm[1]; got.TID != tid || got.Result != uint16(fieldbussim.ResultDiverted) {
				t.Fatalf("confirmation 1 = %+v, want tid %d diverted", got, tid)
			}
		})
	}
}

// startSim runs an emulator until the test ends.
func startSim(t *testing.T, cfg fieldbussim.Config, log zerolog.Logger) *fieldbussim.Sim {
	t.Helper()
	sim, err := fieldbussim.New(cfg, log.With().Str("part", "sim").Logger())
	if err != nil {
		t.Fatal(err)
	}
	done := runUntilCleanup(t, "sim", sim.Run)
	select {
	case <-sim.Ready():
	case <-done:
		t.Fatal("sim stopped before it was ready")
	}
	return sim
}

// runUntilCleanup runs run in a goroutine until the test ends; the channel
// is closed when run returned.
func runUntilCleanup(t *testing.T, name string, run func(context.Context) error) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if err != nil && err != context.Canceled {
			t.Errorf("%s: %v", name, err)
		}
	})
	return done
}
