package modbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/hostif"
	fieldbussim "sortgw/fieldbus-sim"
)

// checkLifecycle checks every command's events: Written, Taken, Confirmed
// in that order, sequence numbers in send order starting at first, and
// never more than ring-1 commands written and not yet taken. A PLC may
// confirm more than 16 items between two polls (the emulated one does when
// its scans are delayed on a loaded machine): those confirmations are
// reported missed, with a count, which is the contract's outcome; every
// command must then be confirmed or counted missed.
func checkLifecycle(t *testing.T, evs []devices.Event, tids []uint32, first uint16, ring int, wantResult uint16) {
	t.Helper()
	seqOf := make(map[uint32]uint16)
	stage := make(map[uint32]int)
	outstanding := make(map[uint16]bool)
	maxOut, missed := 0, 0
	for _, e := range evs {
		switch e.Kind {
		case devices.EventWritten:
			if stage[e.TID] != 0 {
				t.Errorf("tid %d: written at stage %d", e.TID, stage[e.TID])
			}
			stage[e.TID] = 1
			seqOf[e.TID] = e.Seq
			outstanding[e.Seq] = true
			maxOut = max(maxOut, len(outstanding))
		case devices.EventTaken:
			if stage[e.TID] != 1 {
				t.Errorf("tid %d: taken at stage %d", e.TID, stage[e.TID])
			}
			stage[e.TID] = 2
			delete(outstanding, e.Seq)
		case devices.EventConfirmed:
			if stage[e.TID] != 2 {
				t.Errorf("tid %d: confirmed at stage %d", e.TID, stage[e.TID])
			}
			stage[e.TID] = 3
			if e.Result != wantResult {
				t.Errorf("tid %d: result %d, want %d", e.TID, e.Result, wantResult)
			}
		case devices.EventMissed:
			missed += e.Count
			t.Logf("%d confirmations missed (the plc confirmed more than 16 between two polls)", e.Count)
		default:
			t.Errorf("unexpected event %s tid %d seq %d", e.Kind, e.TID, e.Seq)
		}
	}
	if maxOut > ring-1 {
		t.Errorf("%d commands written and not taken at once, want at most %d", maxOut, ring-1)
	}
	confirmed := 0
	for i, tid := range tids {
		switch stage[tid] {
		case 3:
			confirmed++
		case 2:
		default:
			t.Errorf("tid %d ended at stage %d: %s", tid, stage[tid], kinds(evs, tid))
		}
		if want := first + uint16(i); seqOf[tid] != want {
			t.Errorf("tid %d: seq %d, want %d", tid, seqOf[tid], want)
		}
	}
	if confirmed+missed != len(tids) {
		t.Errorf("%d confirmed + %d missed, want %d commands", confirmed, missed, len(tids))
	}
}

// settled reports whether every one of n commands was confirmed or
// counted missed.
func settled(c *collector, n int) func() bool {
	return func() bool {
		m := 0
		for _, e := range c.of(devices.EventMissed) {
			m += e.Count
		}
		return c.count(devices.EventConfirmed)+m >= n
	}
}

// watchRing checks the PLC's divert ring after every scan: no slot may
// ever hold a SEQ 16 or more ahead of ACK_SEQ.
func watchRing(t *testing.T, s *fieldbussim.Sim) (stop func()) {
	ch, cancel := s.PLC().Changed()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				snap := s.PLC().Snapshot()
				for k, d := range snap.Divert {
					if ahead := d.Seq - snap.AckSeq; ahead >= 16 && ahead < 1<<15 {
						t.Errorf("slot %d holds seq %d with ack_seq %d: %d ahead", k, d.Seq, snap.AckSeq, ahead)
					}
				}
			}
		}
	})
	return func() { cancel(); close(done); wg.Wait() }
}

func TestRingUnderLoad(t *testing.T) {
	cases := []struct {
		name        string
		connections int
		cycle, poll time.Duration
		n           int
	}{
		// At the ring's full rate the PLC confirms about 15 x poll/(cycle+poll)
		// items per poll; the commissioning PLC confirms them in bursts, so a
		// poll no longer than the cycle keeps missed confirmations rare.
		{"two connections, cycle 5ms poll 5ms", 2, 5 * time.Millisecond, 5 * time.Millisecond, 300},
		{"two connections, cycle 5ms poll 10ms", 2, 5 * time.Millisecond, 10 * time.Millisecond, 150},
		{"one connection, cycle 2ms poll 2ms", 1, 2 * time.Millisecond, 2 * time.Millisecond, 300},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, simConfig(tc.cycle, 20*time.Millisecond))
			stopWatch := watchRing(t, s)
			defer stopWatch()
			cfg := linkConfig(s)
			cfg.Connections, cfg.Poll = tc.connections, tc.poll
			h := startLink(t, cfg, true)
			var tids []uint32
			for i := range tc.n {
				tid := uint32(1000 + i)
				tids = append(tids, tid)
				send(t, h.link, tid, uint16(1+i%256), 0)
			}
			waitFor(t, "every confirmation", 30*time.Second, settled(h.ev, tc.n))
			st := h.link.Status()
			if st.Written != uint64(tc.n) || st.Taken != uint64(tc.n) || st.Confirmed+st.Missed != uint64(tc.n) ||
				st.Outstanding != 0 || st.Queued != 0 || st.Lost != 0 || st.Late != 0 {
				t.Errorf("status counters %+v", st)
			}
			checkLifecycle(t, h.ev.all(), tids, 1, 16, 1)
			// Ground truth: the PLC took each command once, in order.
			rep := s.Report()
			if rep.Commands != uint64(tc.n) || rep.Counts.SortedAsCommanded != tc.n {
				t.Errorf("sim took %d commands, sorted %d; want %d", rep.Commands, rep.Counts.SortedAsCommanded, tc.n)
			}
			snap := s.PLC().Snapshot()
			if snap.AckSeq != uint16(tc.n) || st.AckSeq != snap.AckSeq || st.NextSeq != snap.AckSeq+1 {
				t.Errorf("plc ack_seq %d, link ack %d next %d", snap.AckSeq, st.AckSeq, st.NextSeq)
			}
			if st.RoundTrip.Count == 0 || st.State != devices.LinkUp || st.BootID != snap.BootID {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// TestSequenceWrap drives the PLC's ring to ACK_SEQ 65529 (commands
// refused at once, so CONFIRM_COUNT follows) before the link connects: the
// link follows the PLC on its first BOOT_ID and carries on across 65535 ->
// 0 for both the ring and the confirmations.
func TestSequenceWrap(t *testing.T) {
	cfg := simConfig(time.Millisecond, 10*time.Millisecond)
	cfg.ImmediateScan = true
	s := startSim(t, cfg)
	const start = 65529
	for seq := 1; seq <= start; seq++ {
		if err := s.PLC().WriteDivert(seq%16, 0, 1, 0, uint16(seq)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "ack_seq at 65529", 5*time.Second, func() bool {
		snap := s.PLC().Snapshot()
		return snap.AckSeq == start && snap.ConfirmCount == start
	})
	h := startLink(t, linkConfig(s), true)
	const n = 40
	var tids []uint32
	for i := range n {
		tid := uint32(7000 + i)
		tids = append(tids, tid)
		send(t, h.link, tid, uint16(1+i), 0)
	}
	waitFor(t, "every confirmation", 20*time.Second, settled(h.ev, n))
	evs := h.ev.all()
	checkLifecycle(t, evs, tids, start+1, 16, 1)
	// Confirmation numbers wrap too: 65530 .. 65535, 0 .. 33, each with
	// the TID of the command of the same number.
	for _, e := range h.ev.of(devices.EventConfirmed) {
		if want := uint32(7000) + uint32(e.Seq-(start+1)); e.TID != want {
			t.Errorf("confirmation NUM %d: tid %d, want %d", e.Seq, e.TID, want)
		}
	}
	if c := h.ev.of(devices.EventConfirmed); len(c) == 0 || c[len(c)-1].Seq != 33 {
		t.Errorf("last confirmation %+v, want NUM 33", c)
	}
	snap := s.PLC().Snapshot()
	if snap.AckSeq != 33 || snap.ConfirmCount != 33 {
		t.Errorf("plc ack_seq %d confirm_count %d, want 33, 33", snap.AckSeq, snap.ConfirmCount)
	}
}

func TestWarmRestartRewritesInPlace(t *testing.T) {
	// A slow scan keeps the commands on the ring across the restart.
	s := startSim(t, simConfig(400*time.Millisecond, 10*time.Millisecond))
	h := startLink(t, linkConfig(s), true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	boot := h.link.Status().BootID
	const n = 10
	var tids []uint32
	for i := range n {
		tids = append(tids, uint32(500+i))
		send(t, h.link, uint32(500+i), uint16(10+i), 0)
	}
	waitFor(t, "all written", 5*time.Second, func() bool { return h.ev.count(devices.EventWritten) == n })
	// The PLC may take them at any scan; the restart must leave no gap either way.
	s.WarmRestart()
	waitFor(t, "every confirmation", 10*time.Second, settled(h.ev, n))
	st := h.link.Status()
	if st.Reconnects == 0 {
		t.Error("warm restart did not make the link reconnect")
	}
	if st.BootID != boot || st.Lost != 0 {
		t.Errorf("boot id %d (was %d), lost %d", st.BootID, boot, st.Lost)
	}
	checkLifecycle(t, h.ev.all(), tids, 1, 16, 1)
	if rep := s.Report(); rep.Commands != n {
		t.Errorf("plc took %d commands, want %d (one each)", rep.Commands, n)
	}
	h.link.mu.Lock()
	rewrites := h.link.core.Counters().Rewrites
	h.link.mu.Unlock()
	t.Logf("rewrites after the warm restart: %d", rewrites)
}

// TestWarmRestartLosingSlots runs against a PLC whose warm restart loses
// the divert slots it has not consumed (its comms buffer does not
// survive). The link must rewrite every untaken command into its own slot
// with its own SEQ, or the PLC waits for ACK_SEQ+1 forever; and every
// command is taken exactly once.
func TestWarmRestartLosingSlots(t *testing.T) {
	// A 1s scan keeps the commands on the ring until the restart.
	s := startSim(t, simConfig(time.Second, 10*time.Millisecond))
	s.PLC().SetWarmRestartLosesDivert(true)
	cfg := linkConfig(s)
	cfg.PLCWatchdog = 5 * time.Second // PLC_HEARTBEAT moves only at a scan
	h := startLink(t, cfg, true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	hb := s.PLC().Snapshot().Heartbeat
	waitFor(t, "a scan", 5*time.Second, func() bool { return s.PLC().Snapshot().Heartbeat != hb })
	const n = 10
	var tids []uint32
	for i := range n {
		tids = append(tids, uint32(600+i))
		send(t, h.link, uint32(600+i), uint16(20+i), 0)
	}
	waitFor(t, "all written", 5*time.Second, func() bool { return h.ev.count(devices.EventWritten) == n })
	if ack := s.PLC().Snapshot().AckSeq; ack != 0 {
		t.Fatalf("the plc took %d commands before the restart; the test needs them on the ring", ack)
	}
	s.WarmRestart()
	waitFor(t, "every confirmation", 15*time.Second, settled(h.ev, n))
	st := h.link.Status()
	if st.Reconnects == 0 || st.Lost != 0 {
		t.Errorf("reconnects %d lost %d", st.Reconnects, st.Lost)
	}
	checkLifecycle(t, h.ev.all(), tids, 1, 16, 1)
	if rep := s.Report(); rep.Commands != n || rep.Counts.SortedAsCommanded != n {
		t.Errorf("plc took %d commands and sorted %d, want %d each (one take per command)", rep.Commands, rep.Counts.SortedAsCommanded, n)
	}
	h.link.mu.Lock()
	rewrites := h.link.core.Counters().Rewrites
	h.link.mu.Unlock()
	if rewrites < n {
		t.Errorf("%d rewrites after the warm restart, want at least %d", rewrites, n)
	}
}

func TestColdRestartLosesUnconfirmed(t *testing.T) {
	// Commands are taken within a scan; their items never reach a chute
	// before the restart (1h travel), so every one is taken but unconfirmed.
	s := startSim(t, simConfig(5*time.Millisecond, time.Hour))
	h := startLink(t, linkConfig(s), true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	boot := h.link.Status().BootID
	const n = 6
	for i := range n {
		send(t, h.link, uint32(900+i), 3, 0)
	}
	waitFor(t, "all taken", 5*time.Second, func() bool { return h.ev.count(devices.EventTaken) == n })
	s.ColdRestart()
	waitFor(t, "all lost", 10*time.Second, func() bool { return h.ev.count(devices.EventLost) == n })
	waitState(t, h.link, devices.LinkUp, 10*time.Second)
	st := h.link.Status()
	if st.BootID == boot || st.NextSeq != 1 || st.AckSeq != 0 {
		t.Errorf("after cold restart: boot %d (was %d) ack %d next %d, want a new boot, ack 0, next 1", st.BootID, boot, st.AckSeq, st.NextSeq)
	}
	for i, e := range h.ev.of(devices.EventLost) {
		if e.TID != uint32(900+i) || e.Seq != uint16(1+i) {
			t.Errorf("lost event %d: tid %d seq %d", i, e.TID, e.Seq)
		}
	}
	// The ring starts again at SEQ 1 and confirmations at NUM 1.
	s2 := h.ev.count(devices.EventWritten)
	send(t, h.link, 950, 4, 0)
	waitFor(t, "written after restart", 5*time.Second, func() bool { return h.ev.count(devices.EventWritten) == s2+1 })
	w := h.ev.of(devices.EventWritten)
	if last := w[len(w)-1]; last.TID != 950 || last.Seq != 1 {
		t.Errorf("first command after the cold restart: tid %d seq %d, want 950 seq 1", last.TID, last.Seq)
	}
	if h.ev.count(devices.EventConfirmed) != 0 {
		t.Errorf("confirmations for lost commands: %v", h.ev.of(devices.EventConfirmed))
	}
}

// TestStaleReply holds one reply back past the timeout: the link must
// redial rather than read the late reply as the answer to its next request.
func TestStaleReply(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	cfg := linkConfig(s)
	cfg.Timeout = 200 * time.Millisecond
	var logs logBuffer
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), &logs)).Level(zerolog.InfoLevel)
	h := startLinkLog(t, cfg, true, log)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	s.DelayNextReply(time.Second)
	waitFor(t, "a redial", 5*time.Second, func() bool { return h.link.Status().Reconnects > 0 })
	if st := h.link.Status(); !strings.Contains(st.LastError, "timeout") {
		t.Errorf("last error %q, want the timeout", st.LastError)
	}
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	const n = 50
	var tids []uint32
	for i := range n {
		tids = append(tids, uint32(300+i))
		send(t, h.link, uint32(300+i), uint16(1+i), 0)
	}
	waitFor(t, "every confirmation", 10*time.Second, settled(h.ev, n))
	checkLifecycle(t, h.ev.all(), tids, 1, 16, 1)
	st := h.link.Status()
	t.Logf("after the stale reply: reconnects %d, errors %d, last error %q", st.Reconnects, st.Errors, st.LastError)
	// A conn reused after the timeout would read the late reply as the
	// answer to its next request: goburrow reports that as a transaction
	// id mismatch.
	if strings.Contains(logs.String(), "transaction id") {
		t.Errorf("a stale reply was read as an answer:\n%s", logs.String())
	}
}

func TestBusyIsRetriedWithoutRedial(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	h := startLink(t, linkConfig(s), true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	s.InjectModbusException(6, 2)
	send(t, h.link, 42, 7, 0)
	waitFor(t, "confirmed", 5*time.Second, func() bool { return h.ev.count(devices.EventConfirmed) == 1 })
	st := h.link.Status()
	if st.Busy != 2 || st.Reconnects != 0 || st.Errors != 0 {
		t.Errorf("busy %d reconnects %d errors %d; want 2, 0, 0", st.Busy, st.Reconnects, st.Errors)
	}
	checkLifecycle(t, h.ev.all(), []uint32{42}, 1, 16, 1)
}

// kindsLate lists the late commands.
func kindsLate(evs []devices.Event) string {
	out := ""
	for _, e := range evs {
		if e.Kind == devices.EventLate {
			out += fmt.Sprintf("tid %d at %s; ", e.TID, e.At.Format("15:04:05.000"))
		}
	}
	return out
}

// warmUp waits for the link to be up and both of its connections to have
// carried a request (a command confirmed), and returns how many Modbus
// connections the emulator has seen.
func warmUp(t *testing.T, s *fieldbussim.Sim, h *harness) uint64 {
	t.Helper()
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	send(t, h.link, 1, 1, 0)
	waitFor(t, "the warm-up command confirmed", 5*time.Second, func() bool { return h.ev.count(devices.EventConfirmed) == 1 })
	return s.ModbusClients()
}

// TestExceptionBurstKeepsTheConnection replays issue 10 item 8: a burst
// of about 100 exception replies (codes 1, 2, 3, 4, 6, 11) under a steady
// command load. Exception replies come over a healthy connection: the link
// must keep both connections (no redial), count every reply by code, and
// still give every command exactly one outcome, taken exactly once.
func TestExceptionBurstKeepsTheConnection(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	h := startLink(t, linkConfig(s), true)
	clients := warmUp(t, s, h)

	const perCode = 18
	codes := []byte{1, 2, 3, 4, 6, 11}
	tids := []uint32{1}
	next := uint32(1000)
	var lastSend time.Time
	// A command every 20 ms (50 items/s, several times a large sorter's
	// rate), each with a 1 s decision budget. (No command can be written
	// while every request is refused: the burst itself, about 250 ms, must
	// fit in the budget.)
	load := func() {
		if time.Since(lastSend) < 20*time.Millisecond || len(tids) > 2000 {
			return
		}
		lastSend = time.Now()
		tids = append(tids, next)
		send(t, h.link, next, uint16(1+next%200), time.Second)
		next++
	}
	t0 := time.Now()
	for _, code := range codes {
		s.InjectModbusException(code, perCode)
		waitFor(t, fmt.Sprintf("exception %d answered %d times", code, perCode), 10*time.Second, func() bool {
			load()
			if st := h.link.Status(); st.Reconnects != 0 {
				t.Fatalf("the link redialled during the burst of exception %d: %s", code, st.LastError)
			}
			return s.ModbusExceptionsLeft() == 0
		})
	}
	burst := time.Since(t0)
	n0 := len(tids)
	waitFor(t, "20 more commands", 5*time.Second, func() bool { load(); return len(tids) >= n0+20 })
	done := settled(h.ev, len(tids))
	waitFor(t, "an outcome for every command", 20*time.Second, func() bool {
		return h.link.Status().Late > 0 || done()
	})
	if st := h.link.Status(); st.Late > 0 {
		t.Fatalf("%d commands late (state %s, last error %q): %s", st.Late, st.State, st.LastError, kindsLate(h.ev.all()))
	}
	checkLifecycle(t, h.ev.all(), tids, 1, 16, 1)

	st := h.link.Status()
	t.Logf("%d exceptions over %v with %d commands: reconnects %d, busy %d, by code %v, last %d; state %s, last error %q",
		st.Exceptions, burst.Round(time.Millisecond), len(tids), st.Reconnects, st.Busy, st.ExceptionsByCode, st.LastException, st.State, st.LastError)
	if st.Reconnects != 0 || s.ModbusClients() != clients {
		t.Errorf("reconnects %d, modbus connections %d -> %d: exception replies must keep the connection",
			st.Reconnects, clients, s.ModbusClients())
	}
	if want := uint64(perCode * len(codes)); st.Exceptions != want {
		t.Errorf("exceptions %d, want %d", st.Exceptions, want)
	}
	for _, code := range codes {
		if st.ExceptionsByCode[code] != perCode {
			t.Errorf("exception %d counted %d times, want %d", code, st.ExceptionsByCode[code], perCode)
		}
	}
	if st.LastException != 11 || st.LastExceptionAt.IsZero() {
		t.Errorf("last exception %d at %v, want 11", st.LastException, st.LastExceptionAt)
	}
	if rep := s.Report(); rep.Commands != uint64(len(tids)) {
		t.Errorf("the plc took %d commands, want %d (each exactly once)", rep.Commands, len(tids))
	}
	// The burst cost 359 host-late items and 413 missed
	// confirmations; without a redial it costs none.
	if st.Late != 0 || st.Missed != 0 || st.Lost != 0 {
		t.Errorf("late %d, missed %d, lost %d; want none", st.Late, st.Missed, st.Lost)
	}
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
}

// TestWriteExceptionsRewriteInPlace: divert writes answered with
// exceptions fail and are repeated in place, paced, on the same
// connection; no command is lost or taken twice.
func TestWriteExceptionsRewriteInPlace(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	h := startLink(t, linkConfig(s), true)
	clients := warmUp(t, s, h)
	t0 := time.Now()
	s.InjectModbusExceptionOn(4, 40, fieldbussim.ExceptionDivert)
	tids := []uint32{1}
	for i := range 30 {
		tids = append(tids, uint32(500+i))
		send(t, h.link, uint32(500+i), uint16(1+i), 0)
	}
	waitFor(t, "every injected exception answered", 20*time.Second, func() bool { return s.ModbusExceptionsLeft() == 0 })
	// The repeats are paced (busy_delay doubling up to two polls, 20 ms):
	// 40 refusals in a row take several hundred milliseconds, not 40 round
	// trips.
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("40 refused writes repeated within %v: the repeats are not paced", d)
	}
	waitFor(t, "every confirmation", 20*time.Second, settled(h.ev, len(tids)))
	checkLifecycle(t, h.ev.all(), tids, 1, 16, 1)
	st := h.link.Status()
	if st.Reconnects != 0 || s.ModbusClients() != clients || st.ExceptionsByCode[4] != 40 {
		t.Errorf("reconnects %d, connections %d -> %d, exception 4 counted %d; want 0, kept, 40",
			st.Reconnects, clients, s.ModbusClients(), st.ExceptionsByCode[4])
	}
	if rep := s.Report(); rep.Commands != uint64(len(tids)) {
		t.Errorf("the plc took %d commands, want %d", rep.Commands, len(tids))
	}
}

// TestPersistentPollExceptionsHold: block reads answered with exceptions
// for half the PLC watchdog hold commands (syncing, the exception in the
// last error) without a redial; the first normal reply lets them go.
func TestPersistentPollExceptionsHold(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	cfg := linkConfig(s)
	cfg.PLCWatchdog = 400 * time.Millisecond
	h := startLink(t, cfg, true)
	clients := warmUp(t, s, h)
	s.InjectModbusExceptionOn(2, 1<<30, fieldbussim.ExceptionReads)
	waitState(t, h.link, devices.LinkSyncing, 5*time.Second)
	st := h.link.Status()
	t.Logf("held: %s", st.LastError)
	if !strings.Contains(st.LastError, "exception") || !strings.Contains(st.LastError, "'2'") {
		t.Errorf("last error %q, want it to name exception 2", st.LastError)
	}
	send(t, h.link, 88, 3, 0)
	s.InjectModbusExceptionOn(2, 0, fieldbussim.ExceptionReads)
	waitFor(t, "confirmed", 5*time.Second, func() bool { return h.ev.count(devices.EventConfirmed) == 2 })
	checkLifecycle(t, h.ev.all(), []uint32{1, 88}, 1, 16, 1)
	if st := h.link.Status(); st.Reconnects != 0 || s.ModbusClients() != clients || st.State != devices.LinkUp {
		t.Errorf("reconnects %d, connections %d -> %d, state %s; want 0, kept, up", st.Reconnects, clients, s.ModbusClients(), st.State)
	}
}

func TestPLCHeartbeatLoss(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	cfg := linkConfig(s)
	cfg.PLCWatchdog = 300 * time.Millisecond
	h := startLink(t, cfg, true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	s.StallPLCHeartbeat(1500 * time.Millisecond)
	waitState(t, h.link, devices.LinkSyncing, 5*time.Second)
	h.link.mu.Lock()
	_, hold := h.link.core.State(time.Now())
	h.link.mu.Unlock()
	if st := h.link.Status(); st.Reconnects != 0 || !errors.Is(hold, ErrPLCStalled) || !strings.Contains(st.LastError, "stalled") {
		t.Errorf("stalled heartbeat: reconnects %d, hold %v, last error %q", st.Reconnects, hold, st.LastError)
	}
	// Commands wait while the PLC is stalled, and go late unwritten.
	send(t, h.link, 77, 5, 50*time.Millisecond)
	waitFor(t, "late", 5*time.Second, func() bool { return h.ev.count(devices.EventLate) == 1 })
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	send(t, h.link, 78, 5, 0)
	waitFor(t, "confirmed", 5*time.Second, func() bool { return h.ev.count(devices.EventConfirmed) == 1 })
	if rep := s.Report(); rep.Commands != 1 {
		t.Errorf("plc took %d commands, want 1 (the late one is never written)", rep.Commands)
	}
	if evs := h.ev.all(); kinds(evs, 77) != "late(seq 0) " {
		t.Errorf("tid 77: %s", kinds(evs, 77))
	}
}

func TestDroppedConnectionComesBack(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	h := startLink(t, linkConfig(s), true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	for round := range 3 {
		before := h.link.Status().Reconnects
		t0 := time.Now()
		s.DropPLCConnections()
		waitFor(t, "redial", 10*time.Second, func() bool {
			st := h.link.Status()
			return st.Reconnects > before && st.State == devices.LinkUp
		})
		t.Logf("round %d: link up again %v after the drop", round, time.Since(t0).Round(time.Millisecond))
	}
	send(t, h.link, 11, 1, 0)
	waitFor(t, "confirmed", 5*time.Second, func() bool { return h.ev.count(devices.EventConfirmed) == 1 })
}

func TestLateWhenRingFull(t *testing.T) {
	// A 1s scan: 15 commands fill the ring and stay; the 16th must wait,
	// and goes late without ever being written.
	s := startSim(t, simConfig(time.Second, 10*time.Millisecond))
	cfg := linkConfig(s)
	// PLC_HEARTBEAT moves only at a scan: once a second here.
	cfg.PLCWatchdog = 5 * time.Second
	h := startLink(t, cfg, true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	// Wait until a scan has just passed, so the next is a second away.
	ack0 := s.PLC().Snapshot().Heartbeat
	waitFor(t, "a scan", 5*time.Second, func() bool { return s.PLC().Snapshot().Heartbeat != ack0 })
	for i := range 15 {
		send(t, h.link, uint32(100+i), 2, 0)
	}
	waitFor(t, "15 written", 5*time.Second, func() bool { return h.ev.count(devices.EventWritten) == 15 })
	if st := h.link.Status(); st.Outstanding > 15 {
		t.Fatalf("outstanding %d", st.Outstanding)
	}
	send(t, h.link, 999, 2, 20*time.Millisecond)
	waitFor(t, "late", 5*time.Second, func() bool { return h.ev.count(devices.EventLate) == 1 })
	if late := h.ev.of(devices.EventLate)[0]; late.TID != 999 || late.Seq != 0 {
		t.Errorf("late event %+v", late)
	}
	waitFor(t, "15 taken", 5*time.Second, func() bool { return h.ev.count(devices.EventTaken) == 15 })
	// The late command took no sequence number: the next one is 16.
	send(t, h.link, 1000, 2, 0)
	waitFor(t, "16 written", 5*time.Second, func() bool { return h.ev.count(devices.EventWritten) == 16 })
	w := h.ev.of(devices.EventWritten)
	if last := w[len(w)-1]; last.TID != 1000 || last.Seq != 16 {
		t.Errorf("after the late command: tid %d seq %d, want 1000 seq 16", last.TID, last.Seq)
	}
	for _, d := range s.PLC().Snapshot().Divert {
		if d.TID == 999 {
			t.Errorf("late command reached the ring: %+v", d)
		}
	}
}

func TestMissedConfirmations(t *testing.T) {
	// Items wait (1h travel); an emergency stop then confirms all 20 at
	// once (result 6), more than the 16-slot ring between two polls.
	s := startSim(t, simConfig(2*time.Millisecond, time.Hour))
	cfg := linkConfig(s)
	cfg.Poll = 300 * time.Millisecond
	h := startLink(t, cfg, true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	const n = 20
	for i := range n {
		send(t, h.link, uint32(2000+i), 9, 0)
	}
	waitFor(t, "all taken", 10*time.Second, func() bool { return h.ev.count(devices.EventTaken) == n })
	s.EmergencyStop(true)
	waitFor(t, "missed", 5*time.Second, func() bool { return h.ev.count(devices.EventMissed) > 0 })
	waitFor(t, "confirmed", 5*time.Second, func() bool { return h.ev.count(devices.EventConfirmed) == 16 })
	m := h.ev.of(devices.EventMissed)
	if len(m) != 1 || m[0].Count != 4 {
		t.Errorf("missed events %+v, want one with count 4", m)
	}
	for i, e := range h.ev.of(devices.EventConfirmed) {
		if e.Result != 6 || e.Seq != uint16(5+i) || e.TID != uint32(2004+i) {
			t.Errorf("confirmation %d: %+v", i, e)
		}
	}
	if st := h.link.Status(); st.Missed != 4 || st.Confirmed != 16 {
		t.Errorf("missed %d confirmed %d", st.Missed, st.Confirmed)
	}
}

func TestStatusChutesAndHostBlock(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	h := startLink(t, linkConfig(s), true)
	h.link.SetHostState(devices.HostReady)
	h.link.SetPlanVersion(0xbeef)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	s.SetChuteFull(5, true)
	s.SetChuteDisabled(256, true)
	waitFor(t, "chute bits", 5*time.Second, func() bool {
		st := h.link.Status()
		return st.Full.Has(5) && st.Disabled.Has(256)
	})
	st := h.link.Status()
	if st.Full.Has(4) || st.Full.Has(6) || st.Disabled.Has(5) || st.ChuteCount != 256 || st.SorterState != 1 {
		t.Errorf("status %+v", st)
	}
	waitFor(t, "host block", 5*time.Second, func() bool {
		snap := s.PLC().Snapshot()
		return snap.HostState == 1 && snap.PlanVersion == 0xbeef
	})
	hb := s.PLC().Snapshot().HostHeartbeat
	waitFor(t, "host heartbeat moving", 5*time.Second, func() bool { return s.PLC().Snapshot().HostHeartbeat != hb })
	if snap := s.PLC().Snapshot(); snap.FaultCode != 0 {
		t.Errorf("fault code %d with the link's heartbeat", snap.FaultCode)
	}
}

func TestSendErrors(t *testing.T) {
	h := startLink(t, Config{Addr: "127.0.0.1:1", QueueSize: 2, Chutes: 100}, false)
	l := h.link
	ctx := context.Background()
	cases := []struct {
		name string
		cmd  devices.Command
		want error
	}{
		{"tid 0", devices.Command{TID: 0, Chute: 1}, devices.ErrBadCommand},
		{"chute above the sorter", devices.Command{TID: 1, Chute: 101}, devices.ErrBadCommand},
		{"first", devices.Command{TID: 1, Chute: 100}, nil},
		{"second", devices.Command{TID: 2, Chute: 0}, nil},
		{"queue full", devices.Command{TID: 3, Chute: 1}, devices.ErrQueueFull},
	}
	for _, tc := range cases {
		if err := l.Send(ctx, tc.cmd); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Send(cctx, devices.Command{TID: 4}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

func TestRunShutdownReportsQueued(t *testing.T) {
	// Nothing listens: the link keeps redialling; queued commands without a
	// deadline are reported late when it stops, and Send then fails.
	h := startLink(t, Config{Addr: "127.0.0.1:1", Timeout: 50 * time.Millisecond}, true)
	send(t, h.link, 5, 1, 0)
	send(t, h.link, 6, 1, 0)
	waitFor(t, "a failed dial", 5*time.Second, func() bool { return h.link.Status().Errors > 0 })
	if st := h.link.Status(); st.State == devices.LinkUp || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
	h.stop()
	if got := h.ev.count(devices.EventLate); got != 2 {
		t.Errorf("late events at shutdown: %d, want 2", got)
	}
	if err := h.link.Send(context.Background(), devices.Command{TID: 7, Chute: 1}); !errors.Is(err, devices.ErrClosed) {
		t.Errorf("send after run: %v, want ErrClosed", err)
	}
	if st := h.link.Status(); st.State != devices.LinkClosed {
		t.Errorf("state %s, want closed", st.State)
	}
	if err := h.link.Run(context.Background()); err == nil {
		t.Error("second run returned nil")
	}
}

// TestLargeMap runs a 2048-chute sorter: the PLC block grows to 343
// registers (bit blocks of 128 words each), read in three requests of at
// most 125; BOOT_ID and the confirm ring move up behind the bit blocks.
func TestLargeMap(t *testing.T) {
	cfg := simConfig(2*time.Millisecond, 10*time.Millisecond)
	cfg.Chutes = 2048
	s := startSim(t, cfg)
	lc := linkConfig(s)
	lc.Chutes = 2048
	h := startLink(t, lc, true)
	if got := len(h.link.lay.readSpans()); got != 3 {
		t.Fatalf("%d read requests per poll, want 3", got)
	}
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	if st, snap := h.link.Status(), s.PLC().Snapshot(); st.BootID != snap.BootID || st.ChuteCount != 2048 {
		t.Fatalf("boot id %d (plc %d), chute count %d", st.BootID, snap.BootID, st.ChuteCount)
	}
	s.SetChuteFull(2048, true)
	s.SetChuteDisabled(1999, true)
	waitFor(t, "chute bits", 5*time.Second, func() bool {
		st := h.link.Status()
		return st.Full.Has(2048) && st.Disabled.Has(1999)
	})
	for i := range 20 {
		send(t, h.link, uint32(40+i), uint16(2000+i), 0)
	}
	waitFor(t, "confirmations", 5*time.Second, settled(h.ev, 20))
	var tids []uint32
	for i := range 20 {
		tids = append(tids, uint32(40+i))
	}
	checkLifecycle(t, h.ev.all(), tids, 1, 16, 1)
	for _, e := range h.ev.of(devices.EventConfirmed) {
		if e.Chute != uint16(2000+e.TID-40) {
			t.Errorf("tid %d confirmed into chute %d", e.TID, e.Chute)
		}
	}
}

// TestSecondHostNoticedByBoth replays issue 10 item 9: a second gateway
// connected to the same PLC. The PLC's ring can have one host only: both
// gateways must notice, stop writing, and say why; once the second one is
// gone the first resumes after the hold.
func TestSecondHostNoticedByBoth(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	cfg := linkConfig(s)
	cfg.SecondHostHold = 600 * time.Millisecond
	a := startLink(t, cfg, true)
	warmUp(t, s, a)

	cfgB := cfg
	cfgB.Name = "intruder"
	b := startLink(t, cfgB, true)
	t0 := time.Now()
	held := func(h *harness) bool {
		st := h.link.Status()
		return st.State == devices.LinkSyncing && strings.Contains(st.LastError, hostif.ErrSecondHost.Error())
	}
	tid, n := uint32(100), 0
	defer func() {
		if t.Failed() {
			for _, h := range []*harness{a, b} {
				st := h.link.Status()
				h.link.mu.Lock()
				c := h.link.core.Counters()
				h.link.mu.Unlock()
				t.Logf("%s: %s %q, evidence %d, written %d, late %d", st.Name, st.State, st.LastError, c.ForeignWrites, st.Written, st.Late)
			}
		}
	}()
	waitFor(t, "both links holding for a second host", 10*time.Second, func() bool {
		if n++; n%5 == 0 && tid < 1000 { // a steady load on the first gateway
			send(t, a.link, tid, 2, 200*time.Millisecond)
			tid++
		}
		return held(a) && held(b)
	})
	t.Logf("both held %v after the second gateway started: a %q, b %q", time.Since(t0).Round(time.Millisecond),
		a.link.Status().LastError, b.link.Status().LastError)

	// Neither writes: commands for both go late, and the PLC takes nothing.
	taken := s.PLC().CommandsTaken()
	lateA, lateB := a.ev.count(devices.EventLate), b.ev.count(devices.EventLate)
	send(t, a.link, 5001, 3, 100*time.Millisecond)
	send(t, b.link, 5002, 3, 100*time.Millisecond)
	waitFor(t, "both commands late", 5*time.Second, func() bool {
		return a.ev.count(devices.EventLate) > lateA && b.ev.count(devices.EventLate) > lateB
	})
	if got := s.PLC().CommandsTaken(); got != taken || !held(a) || !held(b) {
		t.Errorf("while both held: the plc took %d commands more; a %s, b %s", got-taken, a.link.Status().State, b.link.Status().State)
	}

	// The second gateway goes away: the first resumes after the hold.
	b.stop()
	t1 := time.Now()
	waitState(t, a.link, devices.LinkUp, 10*time.Second)
	t.Logf("first gateway up %v after the second stopped", time.Since(t1).Round(time.Millisecond))
	before := a.ev.count(devices.EventConfirmed)
	send(t, a.link, 6000, 4, 0)
	waitFor(t, "a command confirmed", 5*time.Second, func() bool { return a.ev.count(devices.EventConfirmed) > before })
}
