package fieldbussim

import (
	"testing"
	"time"

	"github.com/goburrow/modbus"
)

func TestPLCHeartbeatMovesAndStalls(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s, 1)
	h0 := c.plcBlock(t)[0]
	waitFor(t, "PLC heartbeat +2", 2*time.Second, func() bool { return c.plcBlock(t)[0]-h0 >= 2 })
	s.StallPLCHeartbeat(time.Hour)
	h1 := c.plcBlock(t)[0]
	// The PLC keeps scanning (ACK moves) while the heartbeat stands.
	keepAlive(t, s)
	c.divert(t, 1, 9, 1, 0)
	waitFor(t, "ACK_SEQ 1", 2*time.Second, func() bool { return c.plcBlock(t)[2] == 1 })
	if h := c.plcBlock(t)[0]; h != h1 && h != h1+1 { // one beat may have been due already
		t.Errorf("heartbeat moved %d -> %d while stalled", h1, h)
	}
	s.StallPLCHeartbeat(0)
	h2 := c.plcBlock(t)[0]
	waitFor(t, "heartbeat moves again", 2*time.Second, func() bool { return c.plcBlock(t)[0] != h2 })
}

func TestHostWatchdogRecirculatesWithResult9(t *testing.T) {
	s := startSim(t, Config{HostWatchdog: 200 * time.Millisecond, Conveyor: ConveyorConfig{CommissioningTravel: 5 * time.Millisecond}})
	c := dial(t, s, 1)
	c.heartbeat(t, 1)
	waitFor(t, "FAULT_CODE 0", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 0 })
	// No further heartbeat: the watchdog fires.
	waitFor(t, "FAULT_CODE 1", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 1 })
	// Commands are still taken; items recirculate with 9; refusals still win.
	c.divert(t, 1, 41, 3, 0)
	c.divert(t, 2, 0, 3, 0)
	waitFor(t, "2 confirmations", 2*time.Second, func() bool { return c.plcBlock(t)[3] == 2 })
	blk := c.plcBlock(t)
	if got, want := confirmAt(blk, 1), (confirm{1, 0, 0, 7}); got != want {
		t.Errorf("refusal = %+v, want %+v", got, want)
	}
	if got, want := confirmAt(blk, 2), (confirm{2, 41, 0, 9}); got != want {
		t.Errorf("host lost = %+v, want %+v", got, want)
	}
	// Writing the same value is not a heartbeat; a new one clears the fault.
	c.heartbeat(t, 1)
	c.heartbeat(t, 2)
	waitFor(t, "FAULT_CODE 0 again", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 0 })
}

func TestChuteBitsLayout(t *testing.T) {
	s := startSim(t, Config{Chutes: 256})
	c := dial(t, s, 1)
	s.SetChuteFull(1, true)
	s.SetChuteFull(16, true)
	s.SetChuteFull(17, true)
	s.SetChuteFull(256, true)
	s.SetChuteDisabled(2, true)
	s.SetChuteDisabled(255, true)
	blk := c.plcBlock(t)
	want := map[int]uint16{6: 1 | 1<<15, 7: 1, 21: 1 << 15, 22: 1 << 1, 37: 1 << 14}
	for i := 6; i < 38; i++ {
		if blk[i] != want[i] {
			t.Errorf("register %d = %#04x, want %#04x", 100+i, blk[i], want[i])
		}
	}
	s.SetChuteFull(16, false)
	if got := c.plcBlock(t)[6]; got != 1 {
		t.Errorf("register 106 after clearing chute 16 = %#04x, want 0x0001", got)
	}
}

func TestFullAndDisabledChuteResult3AndChute0Result8(t *testing.T) {
	s := startSim(t, Config{Conveyor: ConveyorConfig{CommissioningTravel: 5 * time.Millisecond}})
	c := dial(t, s, 1)
	keepAlive(t, s)
	s.SetChuteFull(4, true)
	s.SetChuteDisabled(5, true)
	c.divert(t, 1, 11, 4, 0)
	c.divert(t, 2, 12, 5, 0)
	c.divert(t, 3, 13, 0, 5)
	c.divert(t, 4, 14, 6, 0)
	waitFor(t, "4 confirmations", 2*time.Second, func() bool { return c.plcBlock(t)[3] == 4 })
	blk := c.plcBlock(t)
	want := []confirm{{1, 11, 0, 3}, {2, 12, 0, 3}, {3, 13, 0, 8}, {4, 14, 6, 1}}
	for _, w := range want {
		if got := confirmAt(blk, w.Num); got != w {
			t.Errorf("confirmation %d = %+v, want %+v", w.Num, got, w)
		}
	}
}

func TestColdRestart(t *testing.T) {
	s := startSim(t, Config{Conveyor: ConveyorConfig{CommissioningTravel: time.Hour}})
	c := dial(t, s, 1)
	c.heartbeat(t, 5)
	waitFor(t, "FAULT_CODE 0", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 0 })
	c.divert(t, 1, 0, 1, 0) // refused: one confirmation
	waitFor(t, "ACK 1", 2*time.Second, func() bool { return c.plcBlock(t)[2] == 1 })
	boot := c.plcBlock(t)[118]
	for i := 0; i < 5; i++ {
		s.ColdRestart()
		c2 := dial(t, s, 1)
		blk := c2.plcBlock(t)
		if blk[118] == 0 || blk[118] == boot {
			t.Fatalf("BOOT_ID after cold restart = %d, before %d", blk[118], boot)
		}
		boot = blk[118]
		if blk[2] != 0 || blk[3] != 0 || blk[4] != 1 {
			t.Errorf("after cold restart ACK %d COUNT %d FAULT %d, want 0 0 1", blk[2], blk[3], blk[4])
		}
		if confirmAt(blk, 1) != (confirm{}) {
			t.Errorf("confirmation slot not cleared: %+v", confirmAt(blk, 1))
		}
		b, err := c2.ReadHoldingRegisters(0, 15)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range regs(b) {
			if v != 0 {
				t.Errorf("host register %d = %d after cold restart", i, v)
			}
		}
	}
	// The old connection was dropped.
	if _, err := c.ReadHoldingRegisters(100, 1); err == nil {
		t.Error("connection survived a cold restart")
	}
}

func TestWarmRestartKeepsMemory(t *testing.T) {
	s := startSim(t, Config{Conveyor: ConveyorConfig{CommissioningTravel: time.Hour}})
	c := dial(t, s, 1)
	keepAlive(t, s)
	c.divert(t, 1, 0, 1, 0)
	c.divert(t, 2, 50, 1, 0)
	waitFor(t, "ACK 2", 2*time.Second, func() bool { return c.plcBlock(t)[2] == 2 })
	before := c.plcBlock(t)
	s.WarmRestart()
	if _, err := c.ReadHoldingRegisters(100, 1); err == nil {
		t.Error("connection survived a warm restart")
	}
	c2 := dial(t, s, 1)
	after := c2.plcBlock(t)
	if after[118] != before[118] || after[2] != 2 || after[3] != 1 {
		t.Errorf("after warm restart BOOT %d ACK %d COUNT %d, want %d 2 1", after[118], after[2], after[3], before[118])
	}
	waitFor(t, "heartbeat continues", 2*time.Second, func() bool { return c2.plcBlock(t)[0] != after[0] })
}

func TestEmergencyStopFlushesWithResult6(t *testing.T) {
	s := startSim(t, Config{Conveyor: ConveyorConfig{CommissioningTravel: time.Hour}})
	c := dial(t, s, 1)
	keepAlive(t, s)
	c.divert(t, 1, 61, 1, 0)
	c.divert(t, 2, 62, 2, 0)
	waitFor(t, "ACK 2", 2*time.Second, func() bool { return c.plcBlock(t)[2] == 2 })
	s.EmergencyStop(true)
	blk := c.plcBlock(t)
	if blk[1] != 2 {
		t.Errorf("SORTER_STATE = %d, want 2", blk[1])
	}
	if got, want := confirmAt(blk, 1), (confirm{1, 61, 0, 6}); got != want {
		t.Errorf("flushed = %+v, want %+v", got, want)
	}
	if got, want := confirmAt(blk, 2), (confirm{2, 62, 0, 6}); got != want {
		t.Errorf("flushed = %+v, want %+v", got, want)
	}
	// Commands are still taken during the stop.
	c.divert(t, 3, 63, 3, 0)
	waitFor(t, "ACK 3 during e-stop", 2*time.Second, func() bool { return c.plcBlock(t)[2] == 3 })
	s.EmergencyStop(false)
	if st := c.plcBlock(t)[1]; st != 1 {
		t.Errorf("SORTER_STATE after release = %d, want 1", st)
	}
}

func TestDropConnections(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s, 1)
	c.plcBlock(t)
	addr := s.ModbusAddr()
	s.DropPLCConnections()
	if _, err := c.ReadHoldingRegisters(100, 1); err == nil {
		t.Fatal("connection survived the drop")
	}
	if s.ModbusAddr() != addr {
		t.Errorf("address moved %s -> %s", addr, s.ModbusAddr())
	}
	// goburrow keeps the broken connection: close it, and the next request redials.
	c.h.Close()
	c.plcBlock(t)
}

func TestDelayedReplyArrivesStale(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s, 1)
	c.h.Timeout = 100 * time.Millisecond
	keepAlive(t, s)
	s.DelayNextReply(400 * time.Millisecond)
	// The write takes effect; only its reply is late.
	if err := c.tryDivert(1, 70, 1, 0); err == nil {
		t.Fatal("delayed reply did not time out")
	}
	waitFor(t, "ACK 1", 2*time.Second, func() bool { return s.PLC().Snapshot().AckSeq == 1 })
	// The late reply sits on the socket: the next request on the same
	// connection reads it and sees a transaction id mismatch.
	c.h.Timeout = 2 * time.Second
	_, err := c.ReadHoldingRegisters(100, 119)
	if err == nil {
		t.Fatal("stale reply not seen")
	}
	t.Logf("stale reply: %v", err)
	c.h.Close()
	c.plcBlock(t)
}

// TestDelayedReplyOnReads: a delay aimed at reads passes writes by (a
// bench's raw writes share the PLC with the host it means to hit) and
// holds the next read's reply.
func TestDelayedReplyOnReads(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s, 1)
	c.h.Timeout = 200 * time.Millisecond
	keepAlive(t, s)
	s.DelayNextReplyOn(time.Second, ExceptionReads)
	if err := c.tryDivert(1, 70, 1, 0); err != nil {
		t.Fatalf("a write took a delay aimed at reads: %v", err)
	}
	if _, err := c.ReadHoldingRegisters(100, 19); err == nil {
		t.Fatal("the read after it was not delayed")
	}
	c.h.Close()
}

func TestInjectedExceptions(t *testing.T) {
	for _, code := range []byte{6, 2, 4, 0x0b} {
		s := startSim(t, Config{})
		c := dial(t, s, 1)
		s.InjectModbusException(code, 2)
		for i := 0; i < 2; i++ {
			_, err := c.ReadHoldingRegisters(100, 119)
			var got byte
			if me, ok := err.(*modbus.ModbusError); ok {
				got = me.ExceptionCode
			}
			if got != code {
				t.Errorf("request %d: %v, want exception %d", i, err, code)
			}
		}
		c.plcBlock(t)
	}
}

func TestChangedSignalsAfterScans(t *testing.T) {
	v := newVSim(t, Config{Conveyor: ConveyorConfig{CommissioningTravel: 50 * time.Millisecond}})
	p := v.s.PLC()
	ch, cancel := p.Changed()
	defer cancel()
	drain := func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	drain()
	v.clk.Advance(time.Millisecond) // a scan with nothing new: no signal
	if drain() {
		t.Error("signalled without a change")
	}
	v.command(5, 2)
	v.pump()
	v.clk.Advance(5 * time.Millisecond) // ACK_SEQ moves
	if !drain() {
		t.Error("no signal after ACK_SEQ moved")
	}
	v.s.SetChuteFull(3, true)
	if !drain() {
		t.Error("no signal after a chute went full")
	}
}

func TestCommissioningItemsWaitWhileTheBeltStands(t *testing.T) {
	v := newVSim(t, Config{Conveyor: ConveyorConfig{CommissioningTravel: 100 * time.Millisecond}})
	v.s.PLC().SetSorterState(StateMaintenance)
	v.command(9, 4)
	v.step(time.Second)
	if len(v.confirms) != 0 {
		t.Fatalf("confirmed while the belt stood: %+v", v.confirms)
	}
	if ack := v.s.PLC().Snapshot().AckSeq; ack != 1 {
		t.Errorf("ACK_SEQ %d: commands are taken in every state", ack)
	}
	v.s.PLC().SetSorterState(StateRunning)
	v.step(50 * time.Millisecond)
	if got := v.confirmFor(9); len(got) != 1 || got[0].Result != 1 || got[0].Chute != 4 {
		t.Errorf("after the belt ran again: %+v", got)
	}
}
