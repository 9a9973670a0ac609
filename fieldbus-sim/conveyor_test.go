package fieldbussim

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// vsim is a sim on a virtual clock with no network: the test is the host,
// writing the PLC core directly, and the scanner telegrams are captured.
type vsim struct {
	t     *testing.T
	s     *Sim
	clk   *VirtualClock
	reads []telegram
	// host side
	poll     time.Duration // default 10ms
	sinceHB  time.Duration
	hb       uint16
	seq      uint16
	queue    []DivertSlot
	lastNum  uint16
	confirms []ConfirmSlot
}

var epoch = time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC)

func newVSim(t *testing.T, cfg Config) *vsim {
	t.Helper()
	v := &vsim{t: t, clk: NewVirtualClock(epoch)}
	cfg.Clock = v.clk
	cfg.DisableScanners = true
	if cfg.Chutes == 0 {
		cfg.Chutes = 20
	}
	if cfg.PLCCycle == 0 {
		cfg.PLCCycle = 5 * time.Millisecond
	}
	s, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	s.conv.send = func(tg telegram) { v.reads = append(v.reads, tg) }
	v.s = s
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	<-s.Ready()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
	// Bring the host up: heartbeat, FAULT_CODE 0.
	v.step(max(20*time.Millisecond, 2*cfg.PLCCycle))
	if f := s.PLC().Snapshot().FaultCode; f != 0 {
		t.Fatalf("FAULT_CODE %d after the first heartbeat", f)
	}
	return v
}

// step advances the clock by d in 10ms host polls: heartbeat every 100ms
// (of virtual time), queued commands written as the ring allows, new
// confirmations collected.
func (v *vsim) step(d time.Duration) {
	poll := v.poll
	if poll == 0 {
		poll = 10 * time.Millisecond
	}
	p := v.s.PLC()
	for done := time.Duration(0); done < d; done += poll {
		if v.hb == 0 || v.sinceHB >= 100*time.Millisecond {
			v.hb++
			v.sinceHB = 0
			p.WriteHostHeartbeat(v.hb)
		}
		v.sinceHB += poll
		v.pump()
		v.clk.Advance(poll)
	}
	v.pump()
}

func (v *vsim) pump() {
	p := v.s.PLC()
	snap := p.Snapshot()
	for len(v.queue) > 0 && uint16(v.seq+1-snap.AckSeq) < 16 {
		c := v.queue[0]
		v.queue = v.queue[1:]
		v.seq++
		if err := p.WriteDivert(int(v.seq%16), c.TID, c.Chute, c.Reason, v.seq); err != nil {
			v.t.Fatal(err)
		}
	}
	for v.lastNum != snap.ConfirmCount {
		v.lastNum++
		c := snap.Confirm[v.lastNum%16]
		if c.Num != v.lastNum {
			v.t.Fatalf("confirmation %d: slot holds NUM %d", v.lastNum, c.Num)
		}
		v.confirms = append(v.confirms, c)
	}
}

func (v *vsim) command(tid uint32, chute uint16) {
	v.queue = append(v.queue, DivertSlot{TID: tid, Chute: chute})
}

func (v *vsim) confirmFor(tid uint32) []ConfirmSlot {
	var out []ConfirmSlot
	for _, c := range v.confirms {
		if c.TID == tid {
			out = append(out, c)
		}
	}
	return out
}

// oneItem inducts exactly one item and returns its TID once it was scanned.
func (v *vsim) oneItem() uint32 {
	v.t.Helper()
	n := len(v.reads)
	v.s.conv.event(func() { v.s.conv.inductOneLocked(v.clk.Now()) })
	for len(v.reads) == n {
		v.step(10 * time.Millisecond)
	}
	return v.reads[n].tid
}

func conveyorCfg() ConveyorConfig {
	// 2.5 m/s; scanner -> chute 1 in 1.2 s; chute pitch 0.48 s; lap 20 s.
	return ConveyorConfig{Rate: 1e-9, BeltSpeed: 2.5, ScannerToFirstChute: 3, ChutePitch: 1.2, LoopLength: 50, ContainerCapacity: 2, EmptyAfter: time.Minute}
}

func TestConveyorTimelyCommandDiverts(t *testing.T) {
	v := newVSim(t, Config{Conveyor: conveyorCfg()})
	tid := v.oneItem()
	v.command(tid, 3)
	v.step(5 * time.Second)
	got := v.confirmFor(tid)
	if len(got) != 1 || got[0].Result != 1 || got[0].Chute != 3 {
		t.Fatalf("confirmations %+v, want one result 1 into chute 3", got)
	}
	rep := v.s.Report()
	if rep.Counts.SortedAsCommanded != 1 || rep.Counts.ItemsSorted != 1 {
		t.Errorf("report counts %+v", rep.Counts)
	}
	rec := rep.Items[0]
	if rec.Outcome != "sorted" || rec.Chute != 3 || len(rec.Passes) != 1 || rec.Passes[0].Commands[0].MarginMS <= 0 {
		t.Errorf("record %+v", rec)
	}
}

func TestConveyorLateCommandRecirculatesSameTID(t *testing.T) {
	v := newVSim(t, Config{Conveyor: conveyorCfg()})
	tid := v.oneItem()
	// Chute 1's decision point is 1.2 s after the scanner: 2 s is too late.
	v.step(2 * time.Second)
	v.command(tid, 1)
	v.step(100 * time.Millisecond)
	got := v.confirmFor(tid)
	if len(got) != 1 || got[0].Result != 4 || got[0].Chute != 0 {
		t.Fatalf("confirmations %+v, want one result 4", got)
	}
	// The item comes round (20 s lap) with the same TID: a new telegram.
	n := len(v.reads)
	v.step(17 * time.Second)
	if len(v.reads) != n {
		t.Fatalf("item back before its lap of 20 s")
	}
	for len(v.reads) == n {
		v.step(10 * time.Millisecond)
	}
	if len(v.reads) != n+1 || v.reads[n].tid != tid {
		t.Fatalf("reads after a lap: %d (want %d), tid %v", len(v.reads), n+1, v.reads[len(v.reads)-1].tid)
	}
	v.command(tid, 1)
	v.step(2 * time.Second)
	got = v.confirmFor(tid)
	if len(got) != 2 || got[1].Result != 1 || got[1].Chute != 1 {
		t.Fatalf("second pass confirmations %+v", got)
	}
	rep := v.s.Report()
	if rep.Counts.RecirculatedLate != 1 || rep.Counts.SortedAsCommanded != 1 {
		t.Errorf("counts %+v", rep.Counts)
	}
	if m := rep.Items[0].Passes[0].Commands[0].MarginMS; m >= 0 {
		t.Errorf("late command margin %v ms, want negative", m)
	}
	if len(rep.Items[0].Passes) != 2 {
		t.Errorf("passes %+v", rep.Items[0].Passes)
	}
}

func TestConveyorFullChuteAndContainers(t *testing.T) {
	v := newVSim(t, Config{Conveyor: conveyorCfg()})
	// Capacity 2: two items fill chute 5; the third recirculates with 3.
	var tids []uint32
	for i := 0; i < 3; i++ {
		tid := v.oneItem()
		tids = append(tids, tid)
		v.command(tid, 5)
		v.step(4 * time.Second)
	}
	want := []uint16{1, 1, 3}
	for i, tid := range tids {
		got := v.confirmFor(tid)
		if len(got) != 1 || got[0].Result != want[i] {
			t.Errorf("item %d: confirmations %+v, want result %d", i, got, want[i])
		}
	}
	if !v.s.PLC().Snapshot().Full[4] {
		t.Fatal("chute 5 not full at capacity")
	}
	// The associate swaps the container after a minute.
	v.step(61 * time.Second)
	if v.s.PLC().Snapshot().Full[4] {
		t.Fatal("chute 5 still full after EmptyAfter")
	}
	// A disabled chute also gives 3; chute 0 gives 8.
	v.s.SetChuteDisabled(6, true)
	a, b := v.oneItem(), uint32(0)
	v.command(a, 6)
	v.step(3 * time.Second)
	b = v.oneItem()
	v.command(b, 0)
	v.step(15 * time.Second)
	if got := v.confirmFor(a); len(got) != 1 || got[0].Result != 3 {
		t.Errorf("disabled chute: %+v", got)
	}
	if got := v.confirmFor(b); len(got) != 1 || got[0].Result != 8 {
		t.Errorf("chute 0: %+v", got)
	}
}

func TestConveyorUnknownAndDuplicateCommandsRefused(t *testing.T) {
	v := newVSim(t, Config{Conveyor: conveyorCfg()})
	tid := v.oneItem()
	v.command(tid+100, 2) // unknown
	v.command(tid, 8)
	v.command(tid, 9) // second command for the pass
	v.step(6 * time.Second)
	if got := v.confirmFor(tid + 100); len(got) != 1 || got[0].Result != 7 {
		t.Errorf("unknown: %+v", got)
	}
	got := v.confirmFor(tid)
	if len(got) != 2 || got[0].Result != 7 || got[1].Result != 1 || got[1].Chute != 8 {
		t.Errorf("duplicate: %+v, want 7 then 1 into chute 8", got)
	}
}

func TestConveyorLostItems(t *testing.T) {
	cfg := conveyorCfg()
	cfg.LostRate = 1
	v := newVSim(t, Config{Conveyor: cfg})
	tid := v.oneItem()
	v.command(tid, 2)
	v.step(3 * time.Second)
	if got := v.confirmFor(tid); len(got) != 1 || got[0].Result != 6 {
		t.Fatalf("lost: %+v", got)
	}
	if rep := v.s.Report(); rep.Counts.Lost != 1 || rep.Counts.ItemsLost != 1 {
		t.Errorf("counts %+v", rep.Counts)
	}
}

func TestConveyorHostLostAndUncommandedPasses(t *testing.T) {
	cfg := conveyorCfg()
	cfg.MaxPasses = 2
	v := newVSim(t, Config{Conveyor: cfg})
	tid := v.oneItem()
	// No command: two passes, then the PLC's own reject.
	v.step(45 * time.Second)
	rep := v.s.Report()
	if rep.Counts.PassesWithoutCommand != 2 || rep.Items[0].Outcome != "max-passes" {
		t.Errorf("counts %+v outcome %q", rep.Counts, rep.Items[0].Outcome)
	}
	// Host silent: FAULT_CODE 1, commands confirmed 9.
	tid = v.oneItem()
	v.command(tid, 4)
	v.pump()
	v.clk.Advance(3 * time.Second) // no heartbeat: FAULT_CODE 1 before the decision point
	v.pump()
	if got := v.confirmFor(tid); len(got) != 1 || got[0].Result != 9 {
		t.Errorf("host lost: %+v", got)
	}
}

func TestConveyorEmergencyStopFlushes(t *testing.T) {
	v := newVSim(t, Config{Conveyor: conveyorCfg()})
	a := v.oneItem()
	v.command(a, 15)
	v.step(50 * time.Millisecond)
	b := v.oneItem()
	v.s.EmergencyStop(true)
	v.step(50 * time.Millisecond)
	if got := v.confirmFor(a); len(got) != 1 || got[0].Result != 6 {
		t.Errorf("flushed commanded item: %+v", got)
	}
	v.command(b, 3) // the item is gone: refused
	v.step(50 * time.Millisecond)
	if got := v.confirmFor(b); len(got) != 1 || got[0].Result != 7 {
		t.Errorf("command after flush: %+v", got)
	}
	v.s.EmergencyStop(false)
}

// TestConveyorHourOfSorting runs an hour at 5 items/s with a prompt host and
// checks the ground truth adds up and the run is deterministic.
func TestConveyorHourOfSorting(t *testing.T) {
	run := func(d time.Duration) Report {
		cfg := conveyorCfg()
		cfg.Rate = 5
		cfg.ContainerCapacity = 40
		cfg.EmptyAfter = 30 * time.Second
		cfg.LostRate = 0.001
		v := newVSim(t, Config{Chutes: 20, PLCCycle: 100 * time.Millisecond, Seed: 42, Conveyor: cfg})
		v.poll = 100 * time.Millisecond
		seen := 0
		for elapsed := time.Duration(0); elapsed < d; elapsed += 100 * time.Millisecond {
			for ; seen < len(v.reads); seen++ {
				r := v.reads[seen]
				v.command(r.tid, uint16(r.tid%20)+1)
			}
			v.step(100 * time.Millisecond)
		}
		return v.s.Report()
	}
	a := run(time.Hour)
	c := a.Counts
	t.Logf("inducted %d commands %d counts %+v", a.Inducted, a.Commands, c)
	if a.Inducted < 17000 || a.Inducted > 19000 {
		t.Errorf("inducted %d in an hour at 5/s", a.Inducted)
	}
	if c.SortedAsCommanded == 0 || c.RecirculatedFull == 0 || c.Lost == 0 {
		t.Errorf("expected sorted, full and lost items: %+v", c)
	}
	if c.RecirculatedLate != 0 || c.HostLost != 0 || c.Rejected != 0 {
		t.Errorf("a prompt host should see no 4, 7 or 9: %+v", c)
	}
	if got := c.ItemsSorted + c.ItemsLost + c.ItemsMaxPasses + c.ItemsForgotten + c.ItemsOnBelt; uint64(got) != a.Inducted {
		t.Errorf("items accounted %d, inducted %d", got, a.Inducted)
	}
	b, b2 := run(5*time.Minute), run(5*time.Minute)
	if b.Counts != b2.Counts || b.Inducted != b2.Inducted || len(b.Items) != len(b2.Items) {
		t.Errorf("same seed, different run: %+v vs %+v", b.Counts, b2.Counts)
	}
}
