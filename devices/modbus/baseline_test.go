package modbus

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
)

// runBaselineSim runs an emulated sorter with the given Modbus map until
// the test ends. Its PLC takes commands as they are written, so a write the
// PLC would take is visible as soon as the request returns.
func runBaselineSim(t *testing.T, mb fieldbussim.ModbusConfig) *fieldbussim.Sim {
	t.Helper()
	mb.Addr = "127.0.0.1:0"
	s, err := fieldbussim.New(fieldbussim.Config{Modbus: mb, ImmediateScan: true},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("sim run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("sim run: %v", err)
		}
	})
	return s
}

// TestRawClient writes through the raw baseline client against the
// emulated sorter: the registers land where the link's map puts them, in
// its word order, and the idle slot is never taken.
func TestRawClient(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sim     fieldbussim.ModbusConfig
		cfg     Config // Addr filled in
		wantTID uint32 // as the (high-first) emulator reads it
		wantErr bool   // every write fails
	}{
		{name: "default map", wantTID: 40000},
		{name: "moved map", sim: fieldbussim.ModbusConfig{HostBase: 1000}, cfg: Config{HostBase: 1000, DivertBase: 1010, PLCBase: 1100}, wantTID: 40000},
		{name: "low-first word order", cfg: Config{WordOrder: WordOrderLowFirst}, wantTID: 40000<<16 | 40000>>16},
		{name: "wrong unit id", cfg: Config{UnitID: 9}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := runBaselineSim(t, tc.sim)
			ctx := context.Background()
			cfg := tc.cfg
			cfg.Addr = sim.ModbusAddr()
			r, err := DialRaw(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			dh, errHost := r.WriteHostState(ctx, 1)
			ds, errSlot := r.WriteIdleSlot(ctx)
			if tc.wantErr {
				if errHost == nil || errSlot == nil {
					t.Fatalf("host state err %v, idle slot err %v; want both to fail", errHost, errSlot)
				}
				return
			}
			if errHost != nil || errSlot != nil {
				t.Fatalf("host state err %v, idle slot err %v", errHost, errSlot)
			}
			if dh <= 0 || ds <= 0 {
				t.Errorf("round trips %v, %v: want > 0", dh, ds)
			}
			snap := sim.PLC().Snapshot()
			if snap.HostState != 1 || snap.HostHeartbeat != 0 || snap.PlanVersion != 0 {
				t.Errorf("host block heartbeat %d state %d plan %d, want 0 1 0", snap.HostHeartbeat, snap.HostState, snap.PlanVersion)
			}
			want := fieldbussim.DivertSlot{Seq: 0, TID: tc.wantTID, Chute: 1, Reason: 0}
			if snap.Divert[0] != want {
				t.Errorf("divert slot 0 = %+v, want %+v", snap.Divert[0], want)
			}
			if snap.Divert[1] != (fieldbussim.DivertSlot{}) {
				t.Errorf("divert slot 1 = %+v, want it untouched", snap.Divert[1])
			}
			if n := sim.PLC().CommandsTaken(); n != 0 {
				t.Errorf("PLC took %d commands from the idle slot", n)
			}
		})
	}
}

func TestDialRawRefusesBadConfig(t *testing.T) {
	_, err := DialRaw(context.Background(), Config{Addr: "127.0.0.1:1", Ring: 3})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
}

// TestRawSpare: the spare write, the bench's rate-matched floor, is a
// five-register function-16 request that completes (the emulator refuses
// reserved registers with exception 02) and leaves the PLC's image and
// ring exactly as they were, so it can run beside a link.
func TestRawSpare(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sim      fieldbussim.ModbusConfig
		cfg      Config
		wantAddr uint16
	}{
		{name: "default map", wantAddr: 5},
		{name: "moved map", sim: fieldbussim.ModbusConfig{HostBase: 1000}, cfg: Config{HostBase: 1000, DivertBase: 1010, PLCBase: 1100}, wantAddr: 1005},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := runBaselineSim(t, tc.sim)
			ctx := context.Background()
			cfg := tc.cfg
			cfg.Addr = sim.ModbusAddr()
			r, err := DialRaw(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if a, ok := r.SpareAddr(); !ok || a != tc.wantAddr {
				t.Fatalf("SpareAddr = %d, %v; want %d", a, ok, tc.wantAddr)
			}
			before := sim.PLC().Snapshot()
			for range 20 {
				d, err := r.WriteSpare(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if d <= 0 {
					t.Errorf("round trip %v: want > 0", d)
				}
			}
			after := sim.PLC().Snapshot()
			if after.Divert != before.Divert || after.HostState != before.HostState || after.HostHeartbeat != before.HostHeartbeat ||
				after.PlanVersion != before.PlanVersion || after.AckSeq != before.AckSeq {
				t.Errorf("spare writes changed the PLC: before %+v, after %+v", before, after)
			}
			if n := sim.PLC().CommandsTaken(); n != 0 {
				t.Errorf("PLC took %d commands", n)
			}
		})
	}
}

// TestRawSpareNoGap: a map whose ring follows the host block at once has
// no reserved registers to write: an error, never a write into the ring.
func TestRawSpareNoGap(t *testing.T) {
	sim := runBaselineSim(t, fieldbussim.ModbusConfig{DivertBase: 3})
	ctx := context.Background()
	r, err := DialRaw(ctx, Config{Addr: sim.ModbusAddr(), DivertBase: 3, PLCBase: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.WriteSpare(ctx); err == nil {
		t.Fatal("spare write with no reserved registers succeeded")
	}
	if snap := sim.PLC().Snapshot(); snap.Divert != ([16]fieldbussim.DivertSlot{}) {
		t.Errorf("divert ring = %+v, want untouched", snap.Divert)
	}
}
