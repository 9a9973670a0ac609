package probe

import (
	"context"
	"io"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"sortgw/devices/modbus"
	fieldbussim "sortgw/fieldbus-sim"
)

// TestMain checks that no test of the package leaks a goroutine.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard) // the OPC UA server library prints through the global logger
	goleak.VerifyTestMain(m)
}

const testChutes = 32

// startSim runs an emulated sorter with a Modbus front until the test ends.
func startSim(t *testing.T, cfg fieldbussim.Config) *fieldbussim.Sim {
	t.Helper()
	if cfg.Modbus.Addr == "" {
		cfg.Modbus.Addr = "127.0.0.1:0"
	}
	cfg.Chutes = testChutes
	cfg.PLCCycle = time.Millisecond
	cfg.DisableScanners = true
	cfg.Conveyor.CommissioningTravel = 5 * time.Millisecond
	s, err := fieldbussim.New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("sim: %v", err)
	case <-time.After(2 * time.Minute): // building an OPC UA server takes seconds, more under -race
		t.Fatal("sim not ready")
	}
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestModbusProbe: the well-behaved emulator passes every check; each
// quirk fails the check that names it, with its hint.
func TestModbusProbe(t *testing.T) {
	type tc struct {
		name   string
		sim    fieldbussim.Config
		before func(*fieldbussim.Sim) // traffic before the probe
		divert bool
		// failing check id and hint substring; "" = every check passes
		fail, hint string
	}
	refusals := func(s *fieldbussim.Sim) {
		for i := uint16(1); i <= 3; i++ {
			_ = s.PLC().WriteDivert(int(i), uint32(i)+4, 99, 0, i) // chute 99 > 32: refused, TID echoed
		}
		deadline := time.Now().Add(5 * time.Second)
		for s.PLC().Snapshot().ConfirmCount < 3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling interval, not synchronisation
		}
	}
	cases := []tc{
		{name: "contract PLC, read-only"},
		{name: "contract PLC, divert test", divert: true},
		{name: "wrong unit id", sim: fieldbussim.Config{Modbus: fieldbussim.ModbusConfig{UnitID: 2}}, fail: CheckUnitID, hint: "answers unit id 2; set unit_id: 2"},
		{name: "block shifted by one", sim: fieldbussim.Config{Quirks: fieldbussim.Quirks{ShiftPLCBlock: 1}}, fail: CheckBlockBase, hint: "block base off by +1"},
		{name: "swapped words", sim: fieldbussim.Config{Modbus: fieldbussim.ModbusConfig{WordOrder: fieldbussim.WordOrderLowFirst}}, before: refusals, fail: CheckWordOrder, hint: "word order swapped"},
		{name: "frozen heartbeat", sim: fieldbussim.Config{Quirks: fieldbussim.Quirks{FrozenHeartbeat: true}}, fail: CheckPLCHeartbeat, hint: "heartbeat not moving"},
		{name: "FAULT_CODE 0 at power-on", sim: fieldbussim.Config{Quirks: fieldbussim.Quirks{FaultZeroAtPowerOn: true}}, fail: CheckFaultNoHost, hint: "power on with FAULT_CODE 1"},
		{name: "NUM from 0", sim: fieldbussim.Config{Quirks: fieldbussim.Quirks{NumFromZero: true}}, divert: true, fail: CheckConfirmNum, hint: "numbered from 0"},
		{name: "old result codes: refusal", sim: fieldbussim.Config{Quirks: fieldbussim.Quirks{OldResults: true}}, divert: true, fail: CheckRefusal, hint: "older contract version"},
		{name: "old result codes: chute 0", sim: fieldbussim.Config{Quirks: fieldbussim.Quirks{OldResults: true}}, divert: true, fail: CheckChute0, hint: "older contract version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startSim(t, c.sim)
			if c.before != nil {
				c.before(s)
			}
			opt := Options{Line: "A", Sample: 700 * time.Millisecond, ConfirmWait: 5 * time.Second}
			var once sync.Once
			if c.divert {
				opt.DivertChute = 3
				s.PLC().SetSorterState(fieldbussim.StateMaintenance)
				// The technician jogs the belt once the commands are in.
				opt.Progress = func(string) { once.Do(func() { s.PLC().SetSorterState(fieldbussim.StateRunning) }) }
			}
			rep := Modbus(testCtx(t), modbus.Config{Addr: s.ModbusAddr(), Chutes: testChutes}, opt)
			var text strings.Builder
			_ = rep.WriteText(&text)
			t.Log(text.String())
			if c.fail == "" {
				for _, ch := range rep.Checks {
					if ch.Status != Pass && !(ch.ID == CheckWordOrder && ch.Status == NotRun) {
						t.Errorf("%s: %s (%s; %s)", ch.ID, ch.Status, ch.Evidence, ch.Hint)
					}
				}
				if !rep.OK() {
					t.Error("report not OK")
				}
				if c.divert && rep.Get(CheckHostWatchdog).Status != Pass {
					t.Error("divert test did not run the watchdog check")
				}
				return
			}
			ch := rep.Get(c.fail)
			if ch.Status != Fail {
				t.Fatalf("check %s: %q, want fail", c.fail, ch.Status)
			}
			if !strings.Contains(ch.Hint, c.hint) {
				t.Errorf("check %s hint %q, want it to say %q", c.fail, ch.Hint, c.hint)
			}
			if rep.OK() {
				t.Error("report OK with a failed check")
			}
		})
	}
}

// TestDivertTestNeedsMaintenance: outside maintenance nothing is written.
func TestDivertTestNeedsMaintenance(t *testing.T) {
	s := startSim(t, fieldbussim.Config{})
	rep := Modbus(testCtx(t), modbus.Config{Addr: s.ModbusAddr(), Chutes: testChutes}, Options{Sample: 500 * time.Millisecond, DivertChute: 3})
	if ch := rep.Get(CheckDivert); ch.Status != NotRun || !strings.Contains(ch.Hint, "only in maintenance") {
		t.Errorf("divert check %+v, want not run for want of maintenance", ch)
	}
	if n := s.PLC().CommandsTaken(); n != 0 {
		t.Errorf("%d commands taken outside maintenance", n)
	}
}

// TestModbusProbeLargeSorter: above 256 chutes the block is read in
// requests of 125, as the link reads it, and the probe passes.
func TestModbusProbeLargeSorter(t *testing.T) {
	s, err := fieldbussim.New(fieldbussim.Config{Chutes: 600, PLCCycle: time.Millisecond, DisableScanners: true,
		Modbus: fieldbussim.ModbusConfig{Addr: "127.0.0.1:0", PLCBase: 1000}}, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-s.Ready()
	rep := Modbus(testCtx(t), modbus.Config{Addr: s.ModbusAddr(), Chutes: 600, PLCBase: 1000}, Options{Sample: 500 * time.Millisecond})
	for _, ch := range rep.Checks {
		if ch.Status != Pass && ch.ID != CheckWordOrder {
			t.Errorf("%s: %s (%s; %s)", ch.ID, ch.Status, ch.Evidence, ch.Hint)
		}
	}
	if ev := rep.Get(CheckBlockRead).Evidence; !strings.Contains(ev, "163 registers at 1000 in 2 requests") {
		t.Errorf("block read evidence %q, want 163 registers in 2 requests", ev)
	}
}
