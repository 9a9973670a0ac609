package fieldbussim

import (
	"testing"
	"time"
)

func TestPowerOnState(t *testing.T) {
	s := startSim(t, Config{Chutes: 256})
	c := dial(t, s, 1)
	blk := c.plcBlock(t)
	if blk[1] != 1 {
		t.Errorf("SORTER_STATE = %d, want 1 running", blk[1])
	}
	if blk[2] != 0 || blk[3] != 0 {
		t.Errorf("ACK_SEQ, CONFIRM_COUNT = %d, %d, want 0, 0", blk[2], blk[3])
	}
	if blk[4] != 1 {
		t.Errorf("FAULT_CODE = %d, want 1 until the host heartbeat changes", blk[4])
	}
	if blk[5] != 256 {
		t.Errorf("CHUTE_COUNT = %d, want 256", blk[5])
	}
	if blk[118] == 0 {
		t.Error("BOOT_ID is 0")
	}
	for i := 6; i < 118; i++ {
		if blk[i] != 0 {
			t.Errorf("register %d = %d at power-on, want 0", 100+i, blk[i])
		}
	}
	b, err := c.ReadHoldingRegisters(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range regs(b) {
		if v != 0 {
			t.Errorf("host register %d = %d at power-on, want 0", i, v)
		}
	}
	c.heartbeat(t, 1)
	waitFor(t, "FAULT_CODE 0 after a heartbeat", 2*time.Second, func() bool { return s.PLC().Snapshot().FaultCode == 0 })
}

func TestRingConsumedInOrderAndStopsAtGap(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s, 1)
	keepAlive(t, s)
	// 1, 2, 3 then a gap (4 missing), 5 and 6 written: ACK stops at 3.
	for _, seq := range []uint16{1, 2, 3, 5, 6} {
		c.divert(t, seq, 1000+uint32(seq), 7, 0)
	}
	waitFor(t, "ACK_SEQ 3", 2*time.Second, func() bool { return c.plcBlock(t)[2] == 3 })
	// A few more cycles: the gap holds.
	start := s.PLC().Snapshot().Heartbeat
	waitFor(t, "two heartbeats", 2*time.Second, func() bool { return s.PLC().Snapshot().Heartbeat-start >= 2 })
	if ack := c.plcBlock(t)[2]; ack != 3 {
		t.Fatalf("ACK_SEQ = %d past a gap, want 3", ack)
	}
	c.divert(t, 4, 1004, 7, 0)
	waitFor(t, "ACK_SEQ 6 once the gap is filled", 2*time.Second, func() bool { return c.plcBlock(t)[2] == 6 })
	// Rewriting a taken command (warm reconnect) is harmless.
	c.divert(t, 5, 1005, 7, 0)
	c.divert(t, 7, 1007, 7, 0)
	waitFor(t, "ACK_SEQ 7", 2*time.Second, func() bool { return c.plcBlock(t)[2] == 7 })
	// Every command is confirmed once, in command order, NUM 1..7.
	waitFor(t, "7 confirmations", 2*time.Second, func() bool { return c.plcBlock(t)[3] == 7 })
	blk := c.plcBlock(t)
	for n := uint16(1); n <= 7; n++ {
		got := confirmAt(blk, n)
		want := confirm{Num: n, TID: 1000 + uint32(n), Chute: 7, Result: 1}
		if got != want {
			t.Errorf("confirmation %d = %+v, want %+v", n, got, want)
		}
	}
}

func TestRingWrapsAndFullRingOf15(t *testing.T) {
	s := startSim(t, Config{Conveyor: ConveyorConfig{CommissioningTravel: time.Millisecond}})
	c := dial(t, s, 1)
	keepAlive(t, s)
	// Run the sequence past 65535 -> 0 quickly by driving the PLC core:
	// the register image is the same one Modbus serves.
	seq := uint16(0)
	send := func(n int) {
		for i := 0; i < n; i++ {
			seq++
			c.divert(t, seq, 77, uint16(seq%32)+1, 0)
		}
		want := seq
		waitFor(t, "ACK_SEQ catches up", 5*time.Second, func() bool { return c.plcBlock(t)[2] == want })
	}
	send(15)
	// Jump: set ACK_SEQ near the wrap through the core so the test stays fast.
	p := s.PLC()
	p.mu.Lock()
	p.ackSeq = 65530
	for k := range p.divert { // as if the host had written every command up to 65530
		p.divert[k].Seq = 65530 - uint16((65530-k)%16)
	}
	p.mu.Unlock()
	seq = 65530
	send(15) // 65531..65535, 0, 1..9
	if seq != 9 {
		t.Fatalf("seq = %d, want 9 after the wrap", seq)
	}
}

func TestRefusalsConfirmedAtOnce(t *testing.T) {
	s := startSim(t, Config{Chutes: 32, Conveyor: ConveyorConfig{CommissioningTravel: time.Hour}})
	c := dial(t, s, 1)
	keepAlive(t, s)
	c.divert(t, 1, 5, 3, 0)    // ordinary: waits an hour
	c.divert(t, 2, 0, 3, 0)    // TID 0: refused
	c.divert(t, 3, 6, 33, 0)   // chute above CHUTE_COUNT: refused
	c.divert(t, 4, 7, 32, 999) // last chute, any reason: accepted
	waitFor(t, "2 refusals", 2*time.Second, func() bool { return c.plcBlock(t)[3] == 2 })
	blk := c.plcBlock(t)
	if blk[2] != 4 {
		t.Errorf("ACK_SEQ = %d, want 4", blk[2])
	}
	if got, want := confirmAt(blk, 1), (confirm{1, 0, 0, 7}); got != want {
		t.Errorf("confirmation 1 = %+v, want %+v", got, want)
	}
	if got, want := confirmAt(blk, 2), (confirm{2, 6, 0, 7}); got != want {
		t.Errorf("confirmation 2 = %+v, want %+v", got, want)
	}
}

func TestWriteRules(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s, 1)
	cases := []struct {
		name string
		addr uint16
		n    int
		exc  byte
	}{
		{"heartbeat", 0, 1, 0},
		{"host block 0..2", 0, 3, 0},
		{"divert slot 0", 10, 5, 0},
		{"divert slot 15", 85, 5, 0},
		{"whole ring", 10, 80, 0},
		{"reserved 3", 3, 1, 2},
		{"0..3 spills into reserved", 0, 4, 2},
		{"reserved 9", 9, 1, 2},
		{"reserved 90..99", 90, 10, 2},
		{"slot 15 spills into reserved", 85, 6, 2},
		{"plc heartbeat", 100, 1, 2},
		{"plc ack seq", 102, 1, 2},
		{"boot id", 218, 1, 2},
		{"beyond map", 300, 1, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.WriteMultipleRegisters(tc.addr, uint16(tc.n), make([]byte, 2*tc.n))
			if got := exceptionCode(err); got != tc.exc || (tc.exc == 0 && err != nil) {
				t.Errorf("write %d x%d: err %v (exception %d), want exception %d", tc.addr, tc.n, err, got, tc.exc)
			}
		})
	}
	reads := []struct {
		name string
		addr uint16
		n    uint16
		exc  byte
	}{
		{"host block with reserved", 0, 100, 0},
		{"plc block", 100, 119, 0},
		{"across both", 50, 125, 0},
		{"past boot id", 200, 20, 2},
		{"beyond", 219, 1, 2},
	}
	for _, tc := range reads {
		t.Run("read "+tc.name, func(t *testing.T) {
			_, err := c.ReadHoldingRegisters(tc.addr, tc.n)
			if got := exceptionCode(err); got != tc.exc || (tc.exc == 0 && err != nil) {
				t.Errorf("read %d x%d: err %v, want exception %d", tc.addr, tc.n, err, tc.exc)
			}
		})
	}
	if _, err := c.ReadInputRegisters(100, 1); exceptionCode(err) != 1 {
		t.Errorf("function 4: %v, want exception 1", err)
	}
	other := dial(t, s, 2)
	if _, err := other.ReadHoldingRegisters(100, 1); exceptionCode(err) != 0x0b {
		t.Errorf("unit 2: %v, want exception 0x0b", err)
	}
}

// TestLargeMapMovesBlocks: above 256 chutes the chute bit fields grow and
// CONFIRM and BOOT_ID move up; the host splits reads at 125 registers.
func TestLargeMapMovesBlocks(t *testing.T) {
	s := startSim(t, Config{Chutes: 1000, Modbus: ModbusConfig{HostBase: 0, DivertBase: 10, PLCBase: 100}})
	c := dial(t, s, 1)
	s.SetChuteFull(1000, true)     // word (999/16)=62, bit 7
	s.SetChuteDisabled(1000, true) // word 63+62
	// W = 63 words: FULL 106..168, DISABLED 169..231, CONFIRM 232..311, BOOT_ID 312.
	var blk []uint16
	for addr := uint16(100); addr <= 312; addr += 125 {
		n := min(125, 313-addr)
		b, err := c.ReadHoldingRegisters(addr, n)
		if err != nil {
			t.Fatalf("read %d x%d: %v", addr, n, err)
		}
		blk = append(blk, regs(b)...)
	}
	if blk[5] != 1000 || blk[6+62] != 1<<7 || blk[6+63+62] != 1<<7 || blk[212] == 0 || blk[212] != s.PLC().Snapshot().BootID {
		t.Errorf("large map: count %d full %#x disabled %#x boot %d", blk[5], blk[68], blk[131], blk[212])
	}
	if _, err := c.ReadHoldingRegisters(313, 1); exceptionCode(err) != 2 {
		t.Errorf("read past BOOT_ID: %v", err)
	}
}

// TestConfirmCountNeverAheadOfItsSlot reads the PLC block while the PLC
// confirms a burst: every read that shows CONFIRM_COUNT = c finds NUM c in
// slot c mod 16, and the 15 before it complete.
func TestConfirmCountNeverAheadOfItsSlot(t *testing.T) {
	s := startSim(t, Config{ImmediateScan: true, HostWatchdog: time.Hour, Conveyor: ConveyorConfig{CommissioningTravel: time.Millisecond}})
	w := dial(t, s, 1)
	r := dial(t, s, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		seq, ack := uint16(0), uint16(0)
		for seq < 400 {
			for uint16(seq+1-ack) >= 16 {
				b, err := w.ReadHoldingRegisters(102, 1)
				if err != nil {
					t.Error(err)
					return
				}
				ack = regs(b)[0]
			}
			seq++
			if err := w.tryDivert(seq, uint32(seq), 0, 0); err != nil { // TID = SEQ, so NUM c confirms TID c
				t.Error(err)
				return
			}
		}
	}()
	reads := 0
	for {
		select {
		case <-done:
			if reads == 0 {
				t.Error("no reads during the burst")
			}
			waitFor(t, "400 confirmations", 5*time.Second, func() bool { return r.plcBlock(t)[3] == 400 })
			return
		default:
		}
		blk := r.plcBlock(t)
		reads++
		count := blk[3]
		for k := uint16(0); k < 16 && k < count; k++ {
			if c := confirmAt(blk, count-k); c.Num != count-k || c.TID != uint32(count-k) {
				t.Fatalf("CONFIRM_COUNT %d: slot of %d holds %+v", count, count-k, c)
			}
		}
	}
}

func TestMovedMapAndUnitID(t *testing.T) {
	s := startSim(t, Config{Modbus: ModbusConfig{HostBase: 1000, UnitID: 7}})
	c := dial(t, s, 7)
	if _, err := c.WriteMultipleRegisters(1000, 1, u16bytes(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteMultipleRegisters(1010+5, 5, u16bytes(1, 0, 99, 2, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ACK_SEQ 1 at 1102", 2*time.Second, func() bool {
		b, err := c.ReadHoldingRegisters(1102, 1)
		return err == nil && regs(b)[0] == 1
	})
	b, err := c.ReadHoldingRegisters(1218, 1)
	if err != nil || regs(b)[0] != s.PLC().Snapshot().BootID {
		t.Errorf("BOOT_ID at 1218: %v %v", err, b)
	}
	if _, err := c.WriteMultipleRegisters(0, 1, u16bytes(1)); exceptionCode(err) != 2 {
		t.Errorf("write at 0 with the map moved: %v", err)
	}
	if _, err := dial(t, s, 1).ReadHoldingRegisters(1100, 1); exceptionCode(err) != 0x0b {
		t.Errorf("unit 1 on a unit-7 PLC: %v", err)
	}
}

// TestUnreadConfirmations: the PLC counts each confirmation it overwrites
// before a Modbus read of CONFIRM_COUNT saw it (what a host counts as
// missed), and apart those no host could have read: more than 16 written
// in one scan.
func TestUnreadConfirmations(t *testing.T) {
	s := startSim(t, Config{Chutes: 32})
	c := dial(t, s, 1)
	p := s.PLC()
	confirm := func(n int) {
		p.mu.Lock()
		p.beginSectionLocked()
		for i := 0; i < n; i++ {
			p.confirmLocked(uint32(i+1), 1, ResultDiverted)
		}
		p.mu.Unlock()
	}
	check := func(step string, unread, inScan uint64) {
		t.Helper()
		if u, s := p.UnreadConfirmations(); u != unread || s != inScan {
			t.Errorf("%s: unread %d (in one scan %d), want %d (%d)", step, u, s, unread, inScan)
		}
	}
	confirm(20) // 1..20 in one scan: 1..4 overwritten before anyone could read
	check("20 in one scan", 4, 4)
	c.plcBlock(t) // a host reads 20
	confirm(10)
	confirm(10) // 21..40 in two scans, no read between: 21..24 overwritten unread
	check("20 in two scans", 8, 4)
	c.plcBlock(t)
	for i := 0; i < 4; i++ {
		confirm(16) // 16 a scan, read after each: nothing lost
		c.plcBlock(t)
	}
	check("16 a read", 8, 4)
	if _, err := c.ReadHoldingRegisters(0, 3); err != nil { // the host block only
		t.Fatal(err)
	}
	confirm(17)
	check("a read that did not cover CONFIRM_COUNT", 9, 5)
}
