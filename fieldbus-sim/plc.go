package fieldbussim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// RingSize is the depth of the divert and confirmation rings. The pinned
// PLCSnapshot uses fixed arrays, so the sim's ring is always 16 deep.
const RingSize = 16

// MaxChutes is the most chutes the sim emulates (the contract's largest map).
const MaxChutes = 2048

// SorterState is the PLC's SORTER_STATE register.
type SorterState uint16

// Sorter states as the contract numbers them.
const (
	StateStopped       SorterState = 0
	StateRunning       SorterState = 1
	StateEmergencyStop SorterState = 2
	StateFault         SorterState = 3
	StateMaintenance   SorterState = 4
)

// String names the state as the PLC's HMI would.
func (s SorterState) String() string {
	switch s {
	case StateStopped:
		return "stopped"
	case StateRunning:
		return "running"
	case StateEmergencyStop:
		return "emergency-stop"
	case StateFault:
		return "fault"
	case StateMaintenance:
		return "maintenance"
	}
	return fmt.Sprintf("state-%d", uint16(s))
}

// Result is a confirmation's RESULT code.
type Result uint16

// Confirmation results as the contract numbers them.
const (
	ResultNone         Result = 0 // not a confirmation (empty slot)
	ResultDiverted     Result = 1
	ResultOverride     Result = 2 // the sim never overrides
	ResultFull         Result = 3
	ResultLate         Result = 4
	ResultReject       Result = 5 // the sim never rejects on its own
	ResultLost         Result = 6
	ResultRefused      Result = 7
	ResultRecirculated Result = 8
	ResultHostLost     Result = 9
)

// resultCount sizes per-result counters (results 0..9).
const resultCount = 10

// FAULT_CODE values the sim sets.
const (
	faultNone     uint16 = 0
	faultHostLost uint16 = 1
)

// Defaults of the PLC's own timing.
const (
	defaultHeartbeatPeriod  = 100 * time.Millisecond
	defaultHostWatchdog     = time.Second
	defaultPLCCycle         = 5 * time.Millisecond
	defaultCommissioningRun = 200 * time.Millisecond
)

// String names the result.
func (r Result) String() string {
	switch r {
	case ResultNone:
		return "none"
	case ResultDiverted:
		return "diverted"
	case ResultOverride:
		return "override"
	case ResultFull:
		return "recirculated-full"
	case ResultLate:
		return "recirculated-late"
	case ResultReject:
		return "reject"
	case ResultLost:
		return "lost"
	case ResultRefused:
		return "refused"
	case ResultRecirculated:
		return "recirculated-as-commanded"
	case ResultHostLost:
		return "recirculated-host-lost"
	}
	return fmt.Sprintf("result-%d", uint16(r))
}

// ErrBadSlot is returned by WriteDivert for a slot outside 0..15.
var ErrBadSlot = errors.New("divert slot out of range")

// DivertSlot is one slot of the host's divert ring.
type DivertSlot struct {
	Seq    uint16
	TID    uint32
	Chute  uint16
	Reason uint16
}

// ConfirmSlot is one slot of the PLC's confirmation ring.
type ConfirmSlot struct {
	Num    uint16
	TID    uint32
	Chute  uint16
	Result uint16
}

// PLCSnapshot is a consistent copy of the whole register image.
type PLCSnapshot struct {
	Heartbeat, SorterState, AckSeq, ConfirmCount, FaultCode, ChuteCount, BootID uint16
	HostHeartbeat, HostState, PlanVersion                                       uint16
	Divert                                                                      [RingSize]DivertSlot
	Confirm                                                                     [RingSize]ConfirmSlot
	Full, Disabled                                                              []bool // len ChuteCount, index 0 = chute 1
}

// plcConfig is the part of Config the PLC core needs.
type plcConfig struct {
	Chutes              int
	Cycle               time.Duration
	ImmediateScan       bool
	Commissioning       bool
	CommissioningTravel time.Duration
	HeartbeatPeriod     time.Duration
	HostWatchdog        time.Duration
	Quirks              Quirks
}

// command is a divert command the PLC took off the ring.
type command struct {
	DivertSlot
	taken time.Time
}

// commissioningItem is an item that exists only because a host commanded its
// TID (commissioning mode: nothing inducted).
type commissioningItem struct {
	cmd command
	due time.Time
}

// tracker is the conveyor's side of the PLC: it owns the items. All its
// methods run with PLC.mu held.
type tracker interface {
	// command hands over a command for a valid TID and chute; the tracker
	// confirms it (at once or later).
	command(c command)
	// flush drops every tracked item (emergency stop: confirmed 6; cold
	// restart: memory is gone, nothing confirmed).
	flush(confirm bool)
}

// PLC is the emulated sorter PLC: the register image both protocol fronts
// serve, its scan cycle, the host watchdog and the item logic of
// commissioning mode. Every method is safe for concurrent use.
//
// Lock order: PLC.mu is the one lock of the PLC and the conveyor; the
// scheduler's and the clock's locks are taken inside it, never around it.
type PLC struct {
	cfg   plcConfig
	log   zerolog.Logger
	clk   Clock
	sched *scheduler

	mu sync.Mutex
	// host block
	hostHB, hostState, planVersion uint16
	divert                         [RingSize]DivertSlot
	// PLC block
	heartbeat, ackSeq, confirmCount, faultCode, bootID uint16
	state                                              SorterState
	confirm                                            [RingSize]ConfirmSlot
	full, disabled                                     []bool // index chute-1: what the registers show
	manualFull                                         []bool // SetChuteFull; the conveyor adds container fill
	containerFull                                      []bool
	// internals
	hostHBChanged  bool
	hostSeen       bool // a host heartbeat changed since power-on (Quirks.FaultZeroAtPowerOn)
	lastHostChange time.Time
	nextBeat       time.Time
	stallUntil     time.Time
	commissioning  []commissioningItem
	track          tracker
	truth          *truth
	dirty          bool
	subs           map[int]chan struct{}
	nextSub        int
	running        bool
	nextScan       time.Time
	cancelScan     func()
	resultCounts   [resultCount]uint64
	commandsTaken  uint64
	// Confirmations overwritten before any host read them (the contract's
	// "missed confirmation", as the PLC sees it): readCount is
	// CONFIRM_COUNT at the last Modbus read that covered it, sectionCount
	// at the start of the running scan or conveyor event.
	readCount, sectionCount uint16
	written                 uint64 // confirmations since power-on
	unread, unreadInSection uint64
	scans                   uint64
	bootRand                func() uint32
	warmLosesRing           bool // SetWarmRestartLosesDivert
	// plcFault is the PLC-specific FAULT_CODE set by SetFaultCode; the
	// host-lost code 1 (faultCode) shows over it while it lasts.
	plcFault uint16
}

func newPLC(cfg plcConfig, clk Clock, sched *scheduler, tr *truth, log zerolog.Logger) *PLC {
	p := &PLC{
		cfg:      cfg,
		log:      log,
		clk:      clk,
		sched:    sched,
		truth:    tr,
		subs:     make(map[int]chan struct{}),
		bootRand: rand.Uint32, // not the seed: two runs of the sim must not share a BOOT_ID
	}
	n := cfg.Chutes
	p.full = make([]bool, n)
	p.disabled = make([]bool, n)
	p.manualFull = make([]bool, n)
	p.containerFull = make([]bool, n)
	p.mu.Lock()
	p.powerOnLocked(0)
	p.mu.Unlock()
	return p
}

// powerOnLocked sets the cold-start state: host block, rings, ACK_SEQ and
// CONFIRM_COUNT zero, FAULT_CODE 1 until the host heartbeat changes, and a new
// non-zero BOOT_ID different from prev. Chute bits are physical (a full
// container stays full; a disabled chute stays disabled) and survive.
func (p *PLC) powerOnLocked(prev uint16) {
	p.hostHB, p.hostState, p.planVersion = 0, 0, 0
	p.divert = [RingSize]DivertSlot{}
	p.confirm = [RingSize]ConfirmSlot{}
	p.heartbeat, p.ackSeq, p.confirmCount = 0, 0, 0
	p.readCount, p.sectionCount, p.written = 0, 0, 0
	p.faultCode = faultHostLost
	if p.cfg.Quirks.FaultZeroAtPowerOn {
		p.faultCode = faultNone
	}
	p.state = StateRunning
	p.hostHBChanged = false
	p.hostSeen = false
	if p.cfg.Quirks.FrozenHeartbeat {
		p.stallUntil = neverAgain
	}
	p.commissioning = nil
	for {
		id := uint16(p.bootRand())
		if id != 0 && id != prev {
			p.bootID = id
			break
		}
	}
	now := p.clk.Now()
	p.lastHostChange = now
	p.nextBeat = now.Add(p.cfg.HeartbeatPeriod)
	p.dirty = true
}

// start begins the scan cycle.
func (p *PLC) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return
	}
	p.running = true
	p.nextBeat = p.clk.Now().Add(p.cfg.HeartbeatPeriod)
	p.lastHostChange = p.clk.Now()
	p.scheduleScanLocked()
}

// scheduleScanLocked arms the next scan on the cycle's own grid, so timer
// latency does not stretch every cycle; a scan missed entirely (the process
// was starved) is skipped, not made up.
func (p *PLC) scheduleScanLocked() {
	now := p.clk.Now()
	if p.nextScan.IsZero() {
		p.nextScan = now
	}
	p.nextScan = p.nextScan.Add(p.cfg.Cycle)
	if !p.nextScan.After(now) {
		p.nextScan = now.Add(p.cfg.Cycle)
	}
	p.cancelScan = p.sched.after(p.nextScan.Sub(now), func() {
		p.mu.Lock()
		if !p.running {
			p.mu.Unlock()
			return
		}
		p.scanLocked()
		p.scheduleScanLocked()
		p.notifyLocked()
		p.mu.Unlock()
	})
}

// stop ends the scan cycle; the scheduler's close waits for a scan in flight.
func (p *PLC) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = false
	if p.cancelScan != nil {
		p.cancelScan()
	}
}

// scanLocked is one PLC scan: heartbeat, host watchdog, the divert ring, then
// the commissioning items that reached their decision point.
func (p *PLC) scanLocked() {
	p.sectionCount = p.confirmCount
	now := p.clk.Now()
	p.scans++
	if !now.Before(p.nextBeat) {
		if now.Before(p.stallUntil) {
			// stalled: the beat is skipped, not saved up
		} else {
			p.heartbeat++
			p.dirty = true
		}
		p.nextBeat = p.nextBeat.Add(p.cfg.HeartbeatPeriod)
		if !p.nextBeat.After(now) { // fell behind (stalled process): do not burst
			p.nextBeat = now.Add(p.cfg.HeartbeatPeriod)
		}
	}
	if p.hostHBChanged {
		p.hostHBChanged = false
		p.hostSeen = true
		p.lastHostChange = now
		if p.faultCode == faultHostLost {
			p.faultCode = faultNone
			p.dirty = true
			p.log.Info().Msg("host heartbeat seen: host fault cleared")
		}
	} else if p.faultCode == faultNone && now.Sub(p.lastHostChange) >= p.cfg.HostWatchdog &&
		(p.hostSeen || !p.cfg.Quirks.FaultZeroAtPowerOn) {
		p.faultCode = faultHostLost
		p.dirty = true
		p.log.Warn().Dur("silent_ms", now.Sub(p.lastHostChange)).Msg("host heartbeat lost: FAULT_CODE 1")
	}
	p.consumeRingLocked(now)
	p.commissioningDueLocked(now)
}

// consumeRingLocked takes commands strictly in order: while slot
// (ACK_SEQ+1) mod 16 holds SEQ = ACK_SEQ+1. It stops by itself after at most
// 16, since the slot after those holds an older SEQ.
func (p *PLC) consumeRingLocked(now time.Time) {
	for {
		next := p.ackSeq + 1
		s := p.divert[int(next)%RingSize]
		if s.Seq != next {
			return
		}
		p.ackSeq = next
		p.dirty = true
		p.commandsTaken++
		p.takeLocked(command{DivertSlot: s, taken: now})
	}
}

func (p *PLC) takeLocked(c command) {
	if c.TID == 0 || int(c.Chute) > p.cfg.Chutes {
		// A refusal wins over result 9 and is confirmed when taken.
		p.truth.refused(c)
		p.confirmLocked(c.TID, 0, ResultRefused)
		return
	}
	if p.cfg.Commissioning || p.track == nil {
		p.commissioning = append(p.commissioning, commissioningItem{cmd: c, due: c.taken.Add(p.cfg.CommissioningTravel)})
		return
	}
	p.track.command(c)
}

// commissioningDueLocked decides the commissioning items whose travel time
// is over. The belt stands outside SORTER_STATE 1, so nothing is due then.
func (p *PLC) commissioningDueLocked(now time.Time) {
	if p.state != StateRunning {
		return
	}
	n := 0
	for _, it := range p.commissioning {
		if it.due.After(now) {
			break
		}
		n++
		r, chute := p.decideLocked(it.cmd.Chute)
		p.truth.commissioned(it.cmd, it.due, r, chute)
		p.confirmLocked(it.cmd.TID, chute, r)
	}
	if n > 0 {
		p.commissioning = append(p.commissioning[:0], p.commissioning[n:]...)
	}
}

// decideLocked is the PLC's decision at an item's decision point for a
// commanded chute: host lost beats everything, then chute 0, then the chute's
// state.
func (p *PLC) decideLocked(chute uint16) (Result, uint16) {
	switch {
	case p.faultCode == faultHostLost:
		return ResultHostLost, 0
	case chute == 0:
		return ResultRecirculated, 0
	case p.full[chute-1] || p.disabled[chute-1]:
		return ResultFull, 0
	}
	return ResultDiverted, chute
}

// confirmLocked writes confirmation c = CONFIRM_COUNT+1 into slot c mod 16,
// then sets CONFIRM_COUNT (both under the lock, so no reader sees the count
// before the slot).
func (p *PLC) confirmLocked(tid uint32, chute uint16, r Result) {
	c := p.confirmCount + 1
	// The confirmation this one overwrites (c - 16) was never read if it
	// is newer than the last read; if it is newer than the section's
	// start as well, the PLC wrote more than 16 in one go and no host
	// could have read it.
	if old := c - RingSize; p.written >= RingSize {
		if int16(old-p.readCount) > 0 {
			p.unread++
		}
		if int16(old-p.sectionCount) > 0 {
			p.unreadInSection++
		}
	}
	num := c
	if p.cfg.Quirks.NumFromZero {
		num = c - 1
	}
	p.confirm[int(num)%RingSize] = ConfirmSlot{Num: num, TID: tid, Chute: chute, Result: uint16(p.cfg.Quirks.quirkResult(r))}
	p.confirmCount = c
	p.written++
	if int(r) < resultCount {
		p.resultCounts[r]++
	}
	p.dirty = true
}

// WriteHostHeartbeat writes HOST_HEARTBEAT. A value different from the
// register's counts as a heartbeat (checked at the next scan).
func (p *PLC) WriteHostHeartbeat(v uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writeHostHeartbeatLocked(v)
}

func (p *PLC) writeHostHeartbeatLocked(v uint16) {
	if v != p.hostHB {
		p.hostHBChanged = true
	}
	p.hostHB = v
}

// WriteHostState writes HOST_STATE (HMI only).
func (p *PLC) WriteHostState(v uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hostState = v
}

// WritePlanVersion writes PLAN_VERSION (HMI only).
func (p *PLC) WritePlanVersion(v uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.planVersion = v
}

// WriteDivert writes a whole divert slot at once, SEQ last (it is all one
// locked step, so the scan never sees half a command).
func (p *PLC) WriteDivert(slot int, tid uint32, chute, reason, seq uint16) error {
	if slot < 0 || slot >= RingSize {
		return fmt.Errorf("write divert slot %d: %w", slot, ErrBadSlot)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.divert[slot] = DivertSlot{Seq: seq, TID: tid, Chute: chute, Reason: reason}
	p.afterHostWriteLocked()
	return nil
}

// afterHostWriteLocked runs the ring consumer at once in ImmediateScan mode
// (benchmarks: the ring's ceiling is then the link, not the PLC cycle).
func (p *PLC) afterHostWriteLocked() {
	if p.cfg.ImmediateScan && p.running {
		p.consumeRingLocked(p.clk.Now())
		p.notifyLocked()
	}
}

// Snapshot returns a copy of the register image.
func (p *PLC) Snapshot() PLCSnapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PLCSnapshot{
		Heartbeat: p.heartbeat, SorterState: uint16(p.state), AckSeq: p.ackSeq,
		ConfirmCount: p.confirmCount, FaultCode: p.faultCodeLocked(), ChuteCount: uint16(p.cfg.Chutes),
		BootID: p.bootID, HostHeartbeat: p.hostHB, HostState: p.hostState, PlanVersion: p.planVersion,
		Divert: p.divert, Confirm: p.confirm,
		Full: append([]bool(nil), p.full...), Disabled: append([]bool(nil), p.disabled...),
	}
}

// Changed returns a channel signalled (capacity 1, never blocking the PLC)
// after each scan cycle that changed the PLC block, and after faults that
// change it; the func unsubscribes.
func (p *PLC) Changed() (<-chan struct{}, func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{}, 1)
	id := p.nextSub
	p.nextSub++
	p.subs[id] = ch
	return ch, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.subs, id)
	}
}

func (p *PLC) notifyLocked() {
	if !p.dirty {
		return
	}
	p.dirty = false
	for _, ch := range p.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// markReadLocked records that a host read CONFIRM_COUNT (and the ring
// with it): the confirmations up to it were readable.
func (p *PLC) markReadLocked() { p.readCount = p.confirmCount }

// beginSectionLocked starts a run of PLC logic under the lock (a scan, a
// conveyor event, a flush): confirmations it writes past the 16th
// overwrite ones no host could have read.
func (p *PLC) beginSectionLocked() { p.sectionCount = p.confirmCount }

// UnreadConfirmations is how many confirmations the PLC overwrote before
// any Modbus read of CONFIRM_COUNT saw them (what a Modbus host counts as
// missed; OPC UA reads are not followed, so over OPC UA it counts nearly
// every confirmation), and how many it overwrote within the scan or
// conveyor event that wrote them (more than 16 at once), which no host
// could have read at any poll rate, over either protocol. Since the PLC
// was created; a cold restart does not reset them.
func (p *PLC) UnreadConfirmations() (unread, inOneScan uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unread, p.unreadInSection
}

// ResultCounts returns how many confirmations of each result the PLC wrote,
// indexed by result code.
func (p *PLC) ResultCounts() [resultCount]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resultCounts
}

// CommandsTaken is how many commands the PLC took off the ring since it was created.
func (p *PLC) CommandsTaken() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.commandsTaken
}

// State returns SORTER_STATE.
func (p *PLC) State() SorterState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// setChuteBitLocked recomputes a chute's full register bit.
func (p *PLC) refreshFullLocked(chute uint16) {
	i := int(chute) - 1
	v := p.manualFull[i] || p.containerFull[i]
	if p.full[i] != v {
		p.full[i] = v
		p.dirty = true
	}
}

func (p *PLC) checkChute(n uint16) error {
	if n == 0 || int(n) > p.cfg.Chutes {
		return fmt.Errorf("chute %d: %w", n, ErrBadChute)
	}
	return nil
}

// ErrBadChute is returned for a chute outside 1..CHUTE_COUNT.
var ErrBadChute = errors.New("no such chute")

// SetChuteFull sets or clears a chute's full bit as a technician would (a
// container that fills up sets it too, independently).
func (p *PLC) SetChuteFull(n uint16, on bool) error {
	if err := p.checkChute(n); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.manualFull[n-1] = on
	p.refreshFullLocked(n)
	p.notifyLocked()
	return nil
}

// SetChuteDisabled sets or clears a chute's disabled bit.
func (p *PLC) SetChuteDisabled(n uint16, on bool) error {
	if err := p.checkChute(n); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disabled[n-1] != on {
		p.disabled[n-1] = on
		p.dirty = true
	}
	p.notifyLocked()
	return nil
}

// StallHeartbeat keeps PLC_HEARTBEAT still for d (a PLC whose program hangs
// while its communication processor still answers).
func (p *PLC) StallHeartbeat(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stallUntil = p.clk.Now().Add(d)
}

// EmergencyStop sets SORTER_STATE 2 (on) or back to 1 (off). At the moment of
// the stop the PLC flushes its tracking: every item with a command not yet
// decided is confirmed with result 6, items without one are dropped.
// Commands taken during the stop find no item: in conveyor mode they are
// refused (7); in commissioning mode they wait for the belt to run again.
func (p *PLC) EmergencyStop(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		if p.state == StateEmergencyStop {
			return
		}
		p.state = StateEmergencyStop
		p.dirty = true
		p.beginSectionLocked()
		for _, it := range p.commissioning {
			p.truth.commissioned(it.cmd, p.clk.Now(), ResultLost, 0)
			p.confirmLocked(it.cmd.TID, 0, ResultLost)
		}
		p.commissioning = nil
		if p.track != nil {
			p.track.flush(true)
		}
		p.log.Warn().Msg("emergency stop: tracking flushed")
	} else {
		if p.state != StateEmergencyStop {
			return
		}
		p.state = StateRunning
		p.dirty = true
		p.log.Info().Msg("emergency stop released: running")
	}
	p.notifyLocked()
}

// SetSorterState sets SORTER_STATE directly (0 stopped, 3 fault, 4
// maintenance): the belt stands and items keep their commands. Use
// EmergencyStop for state 2.
func (p *PLC) SetSorterState(s SorterState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != s {
		p.state = s
		p.dirty = true
	}
	p.notifyLocked()
}

// faultCodeLocked is FAULT_CODE as the PLC publishes it: host lost (1)
// while it lasts, else the fault SetFaultCode set (0 none).
func (p *PLC) faultCodeLocked() uint16 {
	if p.faultCode != faultNone {
		return p.faultCode
	}
	return p.plcFault
}

// ErrBadFaultCode: SetFaultCode with 1, the PLC's own host-lost code.
var ErrBadFaultCode = errors.New("fault code 1 is the PLC's own host-lost code")

// SetFaultCode sets a persistent FAULT_CODE (0 clears it), as a PLC whose
// program found a fault of its own: 2..99 are reserved by the contract
// (the gateway holds its commands), 100 and above PLC-specific. It does
// not change SORTER_STATE (SorterFault does both). Code 1 is refused: the
// PLC raises and clears host lost itself.
func (p *PLC) SetFaultCode(code uint16) error {
	if code == faultHostLost {
		return ErrBadFaultCode
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plcFault != code {
		p.plcFault = code
		p.dirty = true
		p.log.Warn().Uint16("fault_code", code).Msg("fault code set")
	}
	p.notifyLocked()
	return nil
}

// SetWarmRestartLosesDivert makes every later warm restart lose the divert
// slots the PLC has not consumed yet, as a PLC whose communication buffer
// does not survive a restart would (the interface allows it: a host
// rewrites every unacknowledged command after a reconnect with the same
// BOOT_ID). Off by default.
func (p *PLC) SetWarmRestartLosesDivert(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.warmLosesRing = on
}

// warmRestart keeps the memory and BOOT_ID; only connections drop (done by
// the sim). The heartbeat goes on. With SetWarmRestartLosesDivert, slots
// holding a SEQ after ACK_SEQ are lost: they read back as the consumed SEQ
// ACK_SEQ, never ACK_SEQ+1, so the PLC takes nothing from them until the
// host rewrites them.
func (p *PLC) warmRestart() {
	p.mu.Lock()
	defer p.mu.Unlock()
	lost := 0
	if p.warmLosesRing {
		for k, d := range p.divert {
			if ahead := d.Seq - p.ackSeq; ahead != 0 && ahead < RingSize {
				p.divert[k] = DivertSlot{Seq: p.ackSeq}
				lost++
			}
		}
		p.dirty = true
		p.notifyLocked()
	}
	p.log.Warn().Uint16("boot_id", p.bootID).Int("divert_slots_lost", lost).Msg("warm restart")
}

// coldRestart returns the PLC to its power-on state with a new BOOT_ID; the
// items it tracked are forgotten without confirmation (its memory is gone).
func (p *PLC) coldRestart() {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.bootID
	if p.track != nil {
		p.track.flush(false)
	}
	for _, it := range p.commissioning {
		p.truth.forgotten(it.cmd)
	}
	p.powerOnLocked(prev)
	p.log.Warn().Uint16("old_boot_id", prev).Uint16("boot_id", p.bootID).Msg("cold restart")
	p.notifyLocked()
}
