package modbus

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"sortgw/devices"
	fieldbussim "sortgw/fieldbus-sim"
)

// TestAdaptivePollCatchesBursts: the emulated belt confirms each item
// at its decision point, whose time depends on the chute; the test picks
// each item's chute so that its confirmations come in bursts of 10, 40 ms
// apart, three bursts to a group: 30 confirmations within one Poll of
// 100ms, more than the 16-slot confirmation ring holds. Reading at
// FastPoll while confirmations are due, the link reads between any two
// bursts and misses none. (With the adaptation off, every read at Poll,
// this test misses confirmations: the mutation check in the report.) The
// times are scaled up from the 5ms cycle / 10ms poll of the benchmark so
// that a loaded machine's scheduling delays stay well inside the 40ms
// between two bursts.
func TestAdaptivePollCatchesBursts(t *testing.T) {
	const (
		poll    = 100 * time.Millisecond
		fast    = 5 * time.Millisecond
		burst   = 10                    // confirmations per burst
		bursts  = 3                     // bursts per group
		spacing = 40 * time.Millisecond // between two bursts of a group
		groups  = 8
		n       = burst * bursts * groups
		speed   = 2.5                    // m/s
		first   = 0.5                    // m, scanner to chute 1: 200ms
		pitch   = 0.005                  // m between decision points: 2ms
		lead    = 400 * time.Millisecond // a group's first burst after chute 1's decision point for its first item
	)
	cfg := fieldbussim.Config{
		Chutes:   256,
		PLCCycle: 5 * time.Millisecond,
		Seed:     7,
		Scanners: fieldbussim.ScannerConfig{Heartbeat: -1},
		Conveyor: fieldbussim.ConveyorConfig{Rate: 150, BeltSpeed: speed, ScannerToFirstChute: first,
			ChutePitch: pitch, ContainerCapacity: -1},
	}
	s := startSim(t, cfg)
	lcfg := linkConfig(s)
	lcfg.Poll, lcfg.FastPoll = poll, fast
	h := startLink(t, lcfg, true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)

	tels := readTelegrams(t, s.ScannerAddrs()[0])
	perChute := time.Duration(pitch / speed * float64(time.Second))
	toChute1 := time.Duration(first / speed * float64(time.Second))
	var tids []uint32
	var base time.Time
	for len(tids) < n {
		tel := <-tels
		i := len(tids)
		if i%(burst*bursts) == 0 {
			base = tel.at.Add(toChute1 + lead)
		}
		target := base.Add(time.Duration(i%(burst*bursts)/burst) * spacing)
		c := 1 + int((target.Sub(tel.at)-toChute1+perChute/2)/perChute)
		c = max(1, min(c, 256))
		tids = append(tids, tel.tid)
		send(t, h.link, tel.tid, uint16(c), 0)
	}
	s.SetRate(0)
	waitFor(t, "every confirmation", 30*time.Second, settled(h.ev, n))
	st, ps := h.link.Status(), h.link.PollStats()
	// A read that starts later than its interval (a loaded machine, the
	// race detector) may find a confirmation overwritten; none may be
	// missed by a read on schedule.
	if st.Missed != ps.MissedLate || st.Confirmed+st.Missed != n {
		t.Errorf("confirmed %d, missed %d (%d by late reads): want all %d confirmed, none missed by a read on time",
			st.Confirmed, st.Missed, ps.MissedLate, n)
	}
	for _, e := range h.ev.of(devices.EventConfirmed) {
		if e.Result != 1 {
			t.Errorf("tid %d: result %d, want 1 (diverted as commanded)", e.TID, e.Result)
		}
	}
	if ps.Fast == 0 {
		t.Errorf("poll stats %+v: no read at FastPoll with confirmations due", ps)
	}
	t.Logf("poll stats %+v, poll interval %+v", ps, h.link.PollInterval())
}

type telegram struct {
	tid uint32
	at  time.Time
}

// readTelegrams reads the emulated scanner's telegrams ("TID;CODE..."
// between STX and ETX) until the test ends.
func readTelegrams(t *testing.T, addr string) <-chan telegram {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan telegram, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadBytes(0x02); err != nil {
				return
			}
			f, err := r.ReadBytes(0x03)
			if err != nil {
				return
			}
			tid, _, _ := strings.Cut(string(f[:len(f)-1]), ";")
			v, err := strconv.ParseUint(tid, 10, 32)
			if err != nil {
				continue
			}
			select {
			case out <- telegram{tid: uint32(v), at: time.Now()}:
			default: // the test has what it needs
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return out
}

// TestIdleLinkPollsAtPoll: a link with nothing to do reads at Poll; a
// command makes it read at FastPoll until its confirmation, and then it
// goes back to Poll.
func TestIdleLinkPollsAtPoll(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, 10*time.Millisecond))
	cfg := linkConfig(s)
	cfg.Poll, cfg.FastPoll = 20*time.Millisecond, 2*time.Millisecond
	h := startLink(t, cfg, true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	waitFor(t, "10 idle reads", 10*time.Second, func() bool { return h.link.PollStats().Slow >= 10 })
	if ps := h.link.PollStats(); ps.Fast != 0 || ps.Reread != 0 {
		t.Fatalf("idle link: poll stats %+v, want every read at Poll", ps)
	}

	send(t, h.link, 77, 3, 0)
	waitFor(t, "confirmed", 5*time.Second, func() bool { return h.ev.count(devices.EventConfirmed) == 1 })
	// The read that brought the confirmation was the last at FastPoll: the
	// next is scheduled after it, with the core idle again.
	after := h.link.PollStats()
	if after.Fast == 0 {
		t.Fatalf("poll stats %+v: no read at FastPoll while the command was out", after)
	}
	waitFor(t, "10 more idle reads", 10*time.Second, func() bool { return h.link.PollStats().Slow >= after.Slow+10 })
	if ps := h.link.PollStats(); ps.Fast != after.Fast {
		t.Errorf("idle again: %d reads at FastPoll after the confirmation (stats %+v, then %+v)", ps.Fast-after.Fast, after, ps)
	}
}

// TestRereadAfterConfirmJump: an emergency stop confirms 10 waiting items
// in one scan (result 6); the read that sees CONFIRM_COUNT move by 10,
// over half the ring, is followed at once by another, and nothing is
// missed.
func TestRereadAfterConfirmJump(t *testing.T) {
	s := startSim(t, simConfig(2*time.Millisecond, time.Hour))
	h := startLink(t, linkConfig(s), true)
	waitState(t, h.link, devices.LinkUp, 5*time.Second)
	const n = 10
	for i := range n {
		send(t, h.link, uint32(3000+i), 9, 0)
	}
	waitFor(t, "all taken", 10*time.Second, func() bool { return h.ev.count(devices.EventTaken) == n })
	if ps := h.link.PollStats(); ps.Reread != 0 {
		t.Fatalf("poll stats %+v: a re-read before any confirmation", ps)
	}
	s.EmergencyStop(true)
	waitFor(t, "confirmed", 5*time.Second, func() bool { return h.ev.count(devices.EventConfirmed) == n })
	waitFor(t, "a re-read", 5*time.Second, func() bool { return h.link.PollStats().Reread >= 1 })
	if st := h.link.Status(); st.Missed != 0 {
		t.Errorf("missed %d", st.Missed)
	}
}
