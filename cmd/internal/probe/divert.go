package probe

import (
	"context"
	"fmt"
	"time"
)

// testTID is the first TID of the divert test: high enough not to meet a
// tracking PLC's own counter soon, with both words non-zero.
const testTID uint32 = 0x00017e50

type testCmd struct {
	seq    uint16
	tid    uint32
	chute  uint16
	want   uint16 // expected result
	id     string
	title  string
	got    *confSlot
	gotNum uint16
}

type confSlot struct {
	num, chute, result uint16
	tid                uint32
}

// ringView is one read of what the divert test follows.
type ringView struct {
	state, ack, count, chutes uint16
	slots                     []confSlot // the confirmation ring, by slot
}

// divertIO is a protocol's side of the divert test.
type divertIO interface {
	faultReader
	view(ctx context.Context) (ringView, error)
	// writeDivert writes one command into slot seq mod ring, SEQ last.
	writeDivert(ctx context.Context, seq uint16, tid uint32, chute, reason uint16) error
	pauseHeartbeat(on bool)
	// ringHint says where the divert ring is configured, for a hint.
	ringHint() string
}

// divertTest writes the test commands in one go and follows ACK_SEQ and
// the confirmations, then stops the heartbeat once. Only in maintenance.
func divertTest(ctx context.Context, r *Report, opt Options, io divertIO) {
	ids := []string{CheckAckInOrder, CheckConfirmNum, CheckRefusal, CheckChute0, CheckDivert, CheckHostWatchdog}
	skip := func(why string) {
		for _, id := range ids {
			r.notRun(id, "divert test", why)
		}
	}
	v, err := io.view(ctx)
	if err != nil {
		skip(err.Error())
		return
	}
	if st := v.state; st != 4 {
		skip(fmt.Sprintf("SORTER_STATE %d (%s): the divert test runs only in maintenance (4)", st, stateName(st)))
		return
	}
	chutes := v.chutes
	if opt.DivertChute > chutes {
		skip(fmt.Sprintf("chute %d is above CHUTE_COUNT %d", opt.DivertChute, chutes))
		return
	}
	ack, count0 := v.ack, v.count
	cmds := []*testCmd{
		{tid: 0, chute: opt.DivertChute, want: 7, id: CheckRefusal, title: "TID 0 is refused with result 7"},
		{tid: testTID, chute: chutes + 1, want: 7, id: CheckRefusal, title: "a chute above CHUTE_COUNT is refused with result 7"},
		{tid: testTID + 1, chute: 0, want: 8, id: CheckChute0, title: "chute 0 comes back result 8"},
		{tid: testTID + 2, chute: opt.DivertChute, want: 1, id: CheckDivert, title: fmt.Sprintf("a divert into chute %d is confirmed 1", opt.DivertChute)},
	}
	for i, c := range cmds {
		c.seq = ack + uint16(i) + 1
		if err := io.writeDivert(ctx, c.seq, c.tid, c.chute, 0); err != nil {
			skip(fmt.Sprintf("write divert seq %d: %v", c.seq, err))
			return
		}
	}
	last := cmds[len(cmds)-1].seq
	opt.Progress(fmt.Sprintf("divert test: %d commands written (SEQ %d..%d); waiting for their confirmations (up to %v: the belt must carry the items)", len(cmds), cmds[0].seq, last, opt.ConfirmWait))

	// Follow ACK_SEQ (never past last, never backwards) and the ring.
	deadline := time.Now().Add(opt.ConfirmWait)
	seen := map[uint16]confSlot{} // by CONFIRM_COUNT value
	acks := []uint16{ack}
	var numErr string
	prevCount := count0
	for time.Now().Before(deadline) {
		v, err = io.view(ctx)
		if err != nil {
			skip(err.Error())
			return
		}
		if a := v.ack; a != acks[len(acks)-1] {
			acks = append(acks, a)
		}
		n := uint16(len(v.slots))
		for c := prevCount + 1; c != v.count+1; c++ {
			s := v.slots[c%n]
			if s.num != c {
				prev := v.slots[(c-1)%n]
				if numErr == "" {
					numErr = fmt.Sprintf("CONFIRM_COUNT %d, but slot %d holds NUM %d (slot %d holds NUM %d)", c, c%n, s.num, (c-1)%n, prev.num)
				}
				if prev.num == c-1 {
					s = prev // numbered from 0: confirmation c sits at NUM c-1
				}
			}
			seen[c] = s
		}
		prevCount = v.count
		done := true
		for _, tc := range cmds {
			if tc.got == nil {
				for n, s := range seen {
					if s.tid == tc.tid && s.result != 0 {
						s := s
						tc.got, tc.gotNum = &s, n
						break
					}
				}
			}
			done = done && tc.got != nil
		}
		if done {
			break
		}
		if err := pause(ctx, 10*time.Millisecond); err != nil {
			skip(err.Error())
			return
		}
	}

	// ack-in-order
	inOrder := true
	for i := 1; i < len(acks); i++ {
		if acks[i]-ack > last-ack || acks[i]-ack < acks[i-1]-ack {
			inOrder = false
		}
	}
	ev := fmt.Sprintf("ACK_SEQ went %v for SEQ %d..%d", acks, cmds[0].seq, last)
	switch {
	case !inOrder:
		r.fail(CheckAckInOrder, "commands are acknowledged in order", ev, "ACK_SEQ must take SEQ = ACK_SEQ+1 only, one by one")
	case acks[len(acks)-1] != last:
		r.fail(CheckAckInOrder, "commands are acknowledged in order", ev, "the PLC did not take every command: check "+io.ringHint())
	default:
		r.pass(CheckAckInOrder, "commands are acknowledged in order", ev)
	}
	// confirm-numbering
	switch {
	case numErr != "":
		r.fail(CheckConfirmNum, "confirmations are numbered from 1 (NUM = CONFIRM_COUNT)", numErr,
			"confirmations numbered from 0: the first confirmation after a cold start is NUM 1 in slot 1, and NUM equals the CONFIRM_COUNT it makes")
	case len(seen) == 0:
		r.fail(CheckConfirmNum, "confirmations are numbered from 1 (NUM = CONFIRM_COUNT)", "no confirmation at all", "the PLC wrote no confirmation: check the confirmation ring's address")
	default:
		ev := fmt.Sprintf("%d confirmations from CONFIRM_COUNT %d, NUM matching", len(seen), count0)
		if count0 == 0 {
			ev += " (the first is NUM 1)"
		}
		r.pass(CheckConfirmNum, "confirmations are numbered from 1 (NUM = CONFIRM_COUNT)", ev)
	}
	// results, one check per id (the two refusals share one)
	results := map[string][]string{}
	failed := map[string]string{}
	order := []string{}
	for _, tc := range cmds {
		if _, ok := results[tc.id]; !ok {
			order = append(order, tc.id)
		}
		if tc.got == nil {
			results[tc.id] = append(results[tc.id], fmt.Sprintf("SEQ %d TID %d chute %d: no confirmation within %v", tc.seq, tc.tid, tc.chute, opt.ConfirmWait))
			failed[tc.id] = "no confirmation: is the belt running (jog it in maintenance)?"
			continue
		}
		results[tc.id] = append(results[tc.id], fmt.Sprintf("SEQ %d TID %d chute %d: NUM %d result %d chute %d", tc.seq, tc.tid, tc.chute, tc.gotNum, tc.got.result, tc.got.chute))
		if tc.got.result != tc.want {
			failed[tc.id] = resultHint(tc.want, tc.got.result)
		}
	}
	titles := map[string]string{CheckRefusal: "TID 0 and a chute above CHUTE_COUNT come back 7", CheckChute0: "a chute-0 command comes back 8", CheckDivert: fmt.Sprintf("a divert into chute %d comes back 1", opt.DivertChute)}
	for _, id := range order {
		ev := fmt.Sprint(results[id])
		if h, bad := failed[id]; bad {
			r.fail(id, titles[id], ev, h)
		} else {
			r.pass(id, titles[id], ev)
		}
	}
	watchdog(ctx, r, opt, io)
}

// resultHint names the likely cause of a wrong result code.
func resultHint(want, got uint16) string {
	switch {
	case want == 7 && got == 6, want == 8 && got == 3:
		return fmt.Sprintf("result codes from an older contract version (draft: %d); version 1 confirms %d: update the PLC's result codes (7 refused, 8 recirculated as commanded, 9 host lost)", got, want)
	case want == 1 && got == 3:
		return "the chute is full or disabled at the PLC: pick another chute or clear it"
	case want == 1 && got == 9, want == 8 && got == 9:
		return "the PLC saw the host as lost (FAULT_CODE 1) when the item reached its chute"
	case want == 1 && got == 4:
		return "the command came too late for the item's decision point"
	}
	return fmt.Sprintf("want result %d, got %d (docs/plc-interface.md, Result)", want, got)
}

// watchdog stops the host heartbeat until FAULT_CODE 1, then resumes it.
func watchdog(ctx context.Context, r *Report, opt Options, io divertIO) {
	const title = "FAULT_CODE 1 within its timeout after the host heartbeat stops, 0 again after"
	io.pauseHeartbeat(true)
	t0 := time.Now()
	err := waitFault(ctx, io, 1, opt.Watchdog)
	raised := time.Since(t0)
	io.pauseHeartbeat(false)
	if err != nil {
		r.fail(CheckHostWatchdog, title, err.Error(), "the PLC's host watchdog does not fire: it must set FAULT_CODE 1 after 1 s without a HOST_HEARTBEAT change")
		return
	}
	t1 := time.Now()
	if err := waitFault(ctx, io, 0, opt.Watchdog); err != nil {
		r.fail(CheckHostWatchdog, title, err.Error(), "FAULT_CODE 1 must clear at the next heartbeat change")
		return
	}
	r.pass(CheckHostWatchdog, title, fmt.Sprintf("raised after %v, cleared after %v", raised.Round(10*time.Millisecond), time.Since(t1).Round(10*time.Millisecond)))
}

// mbDivert is the divert test's Modbus side.
type mbDivert struct {
	p  *mbProbe
	hb *hbWriter
}

func (d *mbDivert) fault(ctx context.Context) (uint16, error) { return d.p.fault(ctx) }
func (d *mbDivert) pauseHeartbeat(on bool)                    { d.hb.pause(on) }
func (d *mbDivert) ringHint() string {
	return fmt.Sprintf("divert_base (%d), the ring depth (%d) and word_order", d.p.m.DivertBase, d.p.m.Ring)
}

func (d *mbDivert) view(ctx context.Context) (ringView, error) {
	blk, err := d.p.readBlock(ctx)
	if err != nil {
		return ringView{}, err
	}
	m := d.p.m
	v := ringView{state: blk[oState], ack: blk[oAck], count: blk[oCount], chutes: blk[oChutes], slots: make([]confSlot, m.ConfirmRing)}
	for j := range v.slots {
		o := m.OffConfirm + 5*j
		v.slots[j] = confSlot{num: blk[o], tid: m.TID(blk[o+1], blk[o+2]), chute: blk[o+3], result: blk[o+4]}
	}
	return v, nil
}

func (d *mbDivert) writeDivert(ctx context.Context, seq uint16, tid uint32, chute, reason uint16) error {
	m := d.p.m
	hi, lo := m.TIDWords(tid)
	return d.p.c.Write(ctx, m.DivertBase+uint16(5*(int(seq)%m.Ring)), []uint16{seq, hi, lo, chute, reason})
}
