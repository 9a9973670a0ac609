package fieldbussim

import (
	"strings"
	"testing"
	"time"
)

// TestQuirksModbus: each quirk shows on the wire as the mistake it
// stands for, read with the contract's default map.
func TestQuirksModbus(t *testing.T) {
	fast := ConveyorConfig{CommissioningTravel: 5 * time.Millisecond}
	t.Run("none: first confirmation NUM 1 in slot 1, refusal 7, chute 0 is 8", func(t *testing.T) {
		s := startSim(t, Config{Conveyor: fast})
		c := dial(t, s, 1)
		keepAlive(t, s)
		c.divert(t, 1, 0, 3, 0)  // refused
		c.divert(t, 2, 42, 0, 0) // recirculated as commanded
		waitFor(t, "2 confirmations", 2*time.Second, func() bool { return c.plcBlock(t)[3] == 2 })
		blk := c.plcBlock(t)
		if got, want := confirmAt(blk, 1), (confirm{1, 0, 0, 7}); got != want {
			t.Errorf("confirmation 1 = %+v, want %+v", got, want)
		}
		if got, want := confirmAt(blk, 2), (confirm{2, 42, 0, 8}); got != want {
			t.Errorf("confirmation 2 = %+v, want %+v", got, want)
		}
	})
	t.Run("NumFromZero", func(t *testing.T) {
		s := startSim(t, Config{Conveyor: fast, Quirks: Quirks{NumFromZero: true}})
		c := dial(t, s, 1)
		keepAlive(t, s)
		c.divert(t, 1, 0, 3, 0)
		waitFor(t, "CONFIRM_COUNT 1", 2*time.Second, func() bool { return c.plcBlock(t)[3] == 1 })
		blk := c.plcBlock(t)
		if got, want := confirmAt(blk, 0), (confirm{0, 0, 0, 7}); got != want {
			t.Errorf("slot 0 = %+v, want %+v", got, want)
		}
		if got := confirmAt(blk, 1); got != (confirm{}) {
			t.Errorf("slot 1 = %+v, want empty", got)
		}
	})
	t.Run("OldResults", func(t *testing.T) {
		s := startSim(t, Config{Conveyor: fast, Quirks: Quirks{OldResults: true}})
		c := dial(t, s, 1)
		keepAlive(t, s)
		c.divert(t, 1, 0, 3, 0)
		c.divert(t, 2, 42, 0, 0)
		c.divert(t, 3, 43, 2, 0)
		waitFor(t, "3 confirmations", 2*time.Second, func() bool { return c.plcBlock(t)[3] == 3 })
		blk := c.plcBlock(t)
		for num, want := range map[uint16]uint16{1: 6, 2: 3, 3: 1} {
			if got := confirmAt(blk, num).Result; got != want {
				t.Errorf("confirmation %d result %d, want %d", num, got, want)
			}
		}
	})
	t.Run("FaultZeroAtPowerOn", func(t *testing.T) {
		s := startSim(t, Config{HostWatchdog: 50 * time.Millisecond, Quirks: Quirks{FaultZeroAtPowerOn: true}})
		c := dial(t, s, 1)
		// Several watchdog periods without a host: still 0.
		n := s.PLC().Snapshot().Heartbeat
		waitFor(t, "a few PLC beats", 3*time.Second, func() bool { return s.PLC().Snapshot().Heartbeat >= n+3 })
		if f := c.plcBlock(t)[4]; f != 0 {
			t.Fatalf("FAULT_CODE %d before any host, want 0 (the quirk)", f)
		}
		// Once a host was seen, the watchdog works as usual.
		c.heartbeat(t, 1)
		waitFor(t, "FAULT_CODE 1 after the host went silent", 3*time.Second, func() bool { return c.plcBlock(t)[4] == 1 })
	})
	t.Run("FrozenHeartbeat", func(t *testing.T) {
		s := startSim(t, Config{Quirks: Quirks{FrozenHeartbeat: true}})
		c := dial(t, s, 1)
		c.heartbeat(t, 1)
		scans := func() uint64 { s.plc.mu.Lock(); defer s.plc.mu.Unlock(); return s.plc.scans }
		n := scans()
		waitFor(t, "300 ms of scans", 5*time.Second, func() bool { return scans() >= n+300 })
		if h := c.plcBlock(t)[0]; h != 0 {
			t.Errorf("PLC_HEARTBEAT %d, want 0 (frozen)", h)
		}
		if f := c.plcBlock(t)[4]; f != 0 {
			t.Errorf("FAULT_CODE %d: the PLC itself still runs, want 0", f)
		}
	})
	t.Run("ShiftPLCBlock", func(t *testing.T) {
		s := startSim(t, Config{Chutes: 32, Quirks: Quirks{ShiftPLCBlock: 1}})
		c := dial(t, s, 1)
		b, err := c.ReadHoldingRegisters(100, 120)
		if err != nil {
			t.Fatal(err)
		}
		r := regs(b)
		// 100 reads 0 (nothing there), CHUTE_COUNT sits at 106, BOOT_ID at 219.
		if r[0] != 0 || r[6] != 32 || r[119] == 0 || r[5] != 1 {
			t.Errorf("registers 100, 105, 106, 219 = %d %d %d %d; want 0, FAULT_CODE 1, 32, a BOOT_ID", r[0], r[5], r[6], r[119])
		}
	})
	t.Run("ShiftPLCBlock is not applied twice", func(t *testing.T) {
		cfg := Config{Modbus: ModbusConfig{Addr: "127.0.0.1:0"}, DisableScanners: true, Quirks: Quirks{ShiftPLCBlock: 1}}
		for range 2 {
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
		}
		if m := newRegMap(cfg.Modbus, cfg.Chutes); m.plcBase != 101 {
			t.Errorf("plc base %d after two Validates, want 101", m.plcBase)
		}
	})
	t.Run("bad quirk values", func(t *testing.T) {
		for _, q := range []Quirks{{ShiftPLCBlock: -1}, {ShiftPLCBlock: 11}, {ExtraNamespaces: 17}} {
			cfg := Config{DisableScanners: true, Quirks: q}
			if err := cfg.Validate(); err == nil {
				t.Errorf("%+v: no error", q)
			}
		}
	})
}

// TestQuirkExtraNamespaces: the sorter's namespace is found by URI at an
// index after the vendor's.
func TestQuirkExtraNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an OPC UA server")
	}
	p := newTestPLC(t, 8)
	cfg := OPCUAConfig{extraNamespaces: 2}
	o := runOPCUA(t, cfg, p)
	c := connect(t, o.Endpoint())
	plain := runOPCUA(t, OPCUAConfig{}, newTestPLC(t, 8))
	c0 := connect(t, plain.Endpoint())
	ns0, err := c0.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	if ns != ns0+2 {
		t.Fatalf("sorter namespace at %d, want %d (2 after the plain server's %d)", ns, ns0+2, ns0)
	}
	v := readValues(t, c, sorterNode(ns, "Plc.ChuteCount"))[0]
	if v.Status != 0 || v.Value.Value() != uint16(8) {
		t.Errorf("ChuteCount at ns=%d: %v %v", ns, v.Status, v.Value)
	}
	if v := readValues(t, c, sorterNode(ns0, "Plc.ChuteCount"))[0]; v.Status == 0 {
		t.Errorf("ChuteCount also at ns=%d", ns0)
	}
}

func TestParseQuirks(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Quirks
		err  string
	}{
		{"", Quirks{}, ""},
		{"num-from-zero, old-results", Quirks{NumFromZero: true, OldResults: true}, ""},
		{"fault-zero-at-power-on,frozen-heartbeat", Quirks{FaultZeroAtPowerOn: true, FrozenHeartbeat: true}, ""},
		{"shift-plc-block,extra-namespaces", Quirks{ShiftPLCBlock: 1, ExtraNamespaces: 2}, ""},
		{"shift-plc-block=3,extra-namespaces=0", Quirks{ShiftPLCBlock: 3}, ""},
		{"shift-plc-block=x", Quirks{}, `quirk "shift-plc-block=x": want a number`},
		{"old-results=1", Quirks{}, "takes no value"},
		{"numfromzero", Quirks{}, `unknown quirk "numfromzero"`},
	} {
		got, err := ParseQuirks(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseQuirks(f *testing.F) {
	for _, s := range []string{"", "num-from-zero", "shift-plc-block=1,extra-namespaces=16", "a=b=c", ",,", "old-results=", "shift-plc-block=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuirks(s)
		if err != nil {
			return
		}
		if q.ShiftPLCBlock < 0 || q.ShiftPLCBlock > 16 || q.ExtraNamespaces < 0 || q.ExtraNamespaces > 16 {
			t.Fatalf("%q parsed to out-of-range %+v", s, q)
		}
	})
}
