package probe

import (
	"context"
	"fmt"
	"time"

	"sortgw/devices/modbus"
)

// PLC block offsets (docs/plc-interface.md, "PLC block").
const (
	oHeartbeat = iota
	oState
	oAck
	oCount
	oFault
	oChutes
)

// Check ids, stable for scripts reading -json.
const (
	CheckConnect      = "connect"
	CheckUnitID       = "unit-id"
	CheckBlockRead    = "block-read"
	CheckBlockBase    = "block-base"
	CheckChuteCount   = "chute-count"
	CheckBootID       = "boot-id"
	CheckSorterState  = "sorter-state"
	CheckFaultCode    = "fault-code"
	CheckPLCHeartbeat = "plc-heartbeat"
	CheckFaultNoHost  = "fault-without-host"
	CheckFaultClears  = "fault-clears"
	CheckChuteBits    = "chute-bits"
	CheckWordOrder    = "word-order"
	CheckAckInOrder   = "ack-in-order"
	CheckConfirmNum   = "confirm-numbering"
	CheckRefusal      = "result-refused"
	CheckChute0       = "result-chute-0"
	CheckDivert       = "divert"
	CheckHostWatchdog = "host-watchdog"
	// OPC UA only.
	CheckNamespace    = "namespace"
	CheckNodes        = "nodes"
	CheckAccess       = "access-levels"
	CheckSubscription = "subscription-10ms"
)

// Modbus probes a PLC over Modbus TCP with a line's link settings (cfg
// with the line's chutes set).
func Modbus(ctx context.Context, cfg modbus.Config, opt Options) *Report {
	opt.defaults()
	r := &Report{Line: opt.Line, Protocol: "modbus", Addr: cfg.Addr, Started: time.Now()}
	defer func() { r.Took = time.Since(r.Started) }()
	m, err := modbus.ProbeMap(cfg)
	if err != nil {
		r.fail(CheckConnect, "the link settings are valid", err.Error(), "fix the site file (sortgw check)")
		return r
	}
	_ = cfg.Validate()
	c, err := modbus.DialProbe(ctx, cfg, 0)
	if err != nil {
		r.fail(CheckConnect, "TCP connection to the PLC", err.Error(),
			"check the address and port (Modbus TCP is usually 502), the PLC's Ethernet settings and any firewall")
		return r
	}
	defer c.Close()
	r.pass(CheckConnect, "TCP connection to the PLC", cfg.Addr)
	p := &mbProbe{r: r, c: c, cfg: cfg, m: m, opt: opt}
	p.run(ctx)
	return r
}

type mbProbe struct {
	r   *Report
	c   *modbus.ProbeClient
	cfg modbus.Config
	m   modbus.Map
	opt Options
}

// maxRead is the most registers one function-3 request carries.
const maxRead = 125

// readBlock reads the whole PLC block: in one request up to 125
// registers (every map of up to 256 chutes), split at 125 above, as the
// link does for larger sorters.
func (p *mbProbe) readBlock(ctx context.Context) ([]uint16, error) {
	out := make([]uint16, 0, p.m.PLCLen)
	for off := 0; off < p.m.PLCLen; off += maxRead {
		v, err := p.c.Read(ctx, p.m.PLCBase+uint16(off), min(maxRead, p.m.PLCLen-off))
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	return out, nil
}

func (p *mbProbe) run(ctx context.Context) {
	r, m := p.r, p.m
	blk, err := p.readBlock(ctx)
	if err != nil {
		code, exc := modbus.ExceptionCode(err)
		if !exc || code == 0x0a || code == 0x0b {
			p.unitID(ctx, err)
			return
		}
		r.pass(CheckUnitID, "the PLC answers unit id "+fmt.Sprint(p.cfg.UnitID), fmt.Sprintf("exception %02X is an answer", code))
		hint := fmt.Sprintf("the PLC refused %d registers at %d in one request: its block is shorter or elsewhere; check plc_base (%d) and the line's chutes (%d), and that the PLC serves the block as one area", m.PLCLen, m.PLCBase, m.PLCBase, p.cfg.Chutes)
		r.fail(CheckBlockRead, "the PLC block reads in one request", err.Error(), hint)
		return
	}
	r.pass(CheckUnitID, "the PLC answers unit id "+fmt.Sprint(p.cfg.UnitID), "")
	ev := fmt.Sprintf("%d registers at %d", m.PLCLen, m.PLCBase)
	if n := (m.PLCLen + maxRead - 1) / maxRead; n > 1 {
		ev += fmt.Sprintf(" in %d requests of at most %d (more than 256 chutes)", n, maxRead)
	}
	r.pass(CheckBlockRead, "the PLC block reads in one request", ev)

	chutes := int(blk[oChutes])
	boot := blk[m.OffBootID]
	if chutes != p.cfg.Chutes {
		if d, ok := p.findShift(ctx); ok {
			r.fail(CheckBlockBase, "the PLC block starts at plc_base",
				fmt.Sprintf("CHUTE_COUNT %d found at %d, BOOT_ID at %d; at %d reads %d", p.cfg.Chutes, int(m.PLCBase)+d+oChutes, int(m.PLCBase)+d+m.OffBootID, int(m.PLCBase)+oChutes, chutes),
				fmt.Sprintf("block base off by %+d: the PLC's block starts at %d, not %d (addresses counted from 1, or 4xxxx numbers taken for addresses?); move the PLC's block to %d or set plc_base: %d", d, int(m.PLCBase)+d, m.PLCBase, m.PLCBase, int(m.PLCBase)+d))
			r.notRun(CheckChuteCount, "CHUTE_COUNT matches the line", "the block is misplaced")
			return
		}
		r.pass(CheckBlockBase, "the PLC block starts at plc_base", "no shifted copy of the block found nearby")
		r.fail(CheckChuteCount, "CHUTE_COUNT matches the line", fmt.Sprintf("CHUTE_COUNT %d, the site says %d", chutes, p.cfg.Chutes),
			"set the line's chutes to the sorter's real count, or correct the PLC's configuration")
	} else {
		r.pass(CheckBlockBase, "the PLC block starts at plc_base", fmt.Sprintf("CHUTE_COUNT %d at %d", chutes, int(m.PLCBase)+oChutes))
		r.pass(CheckChuteCount, "CHUTE_COUNT matches the line", fmt.Sprint(chutes))
	}
	judgeBlock(r, blk[oState], blk[oFault], boot, fmt.Sprint(int(m.PLCBase)+m.OffBootID))
	p.chuteBits(blk, chutes)
	p.wordOrder(blk)

	// Watch both heartbeats: the PLC's must move, the host's must not
	// (another host running would spoil every writing check).
	hb, hostHB, err := p.sample(ctx)
	if err != nil {
		r.fail(CheckPLCHeartbeat, "PLC_HEARTBEAT moves every 100 ms", err.Error(), "the link dropped while sampling")
		return
	}
	p.heartbeat(hb)
	if hostHB {
		r.notRun(CheckFaultNoHost, "FAULT_CODE 1 while no host heartbeat runs", "another host writes HOST_HEARTBEAT (a gateway running?): stop it and probe again")
		r.notRun(CheckFaultClears, "FAULT_CODE 1 clears once the host heartbeat runs", "another host is running")
		return
	}
	blk, err = p.readBlock(ctx)
	if err != nil {
		r.fail(CheckFaultNoHost, "FAULT_CODE 1 while no host heartbeat runs", err.Error(), "the link dropped")
		return
	}
	judgeFaultNoHost(r, blk[oFault], p.opt.Sample)

	hbw, err := modbusHeartbeat(ctx, p.cfg, p.m.HostBase)
	if err != nil {
		r.fail(CheckFaultClears, "FAULT_CODE 1 clears once the host heartbeat runs", err.Error(), "a second connection for the heartbeat was refused: allow two Modbus clients")
		return
	}
	defer hbw.stop()
	if err := waitFault(ctx, p, 0, p.opt.Watchdog); err != nil {
		r.fail(CheckFaultClears, "FAULT_CODE 1 clears once the host heartbeat runs", err.Error()+hbw.errText(),
			fmt.Sprintf("the PLC does not see the heartbeat written at %d (host_base): check the PLC's host block address and unit id", p.m.HostBase))
		return
	}
	r.pass(CheckFaultClears, "FAULT_CODE 1 clears once the host heartbeat runs", "FAULT_CODE 0")
	if p.opt.DivertChute != 0 {
		divertTest(ctx, r, p.opt, &mbDivert{p: p, hb: hbw})
	}
}

// unitID: the configured unit id got no answer. Try the usual others on
// fresh connections, with a short timeout each.
func (p *mbProbe) unitID(ctx context.Context, first error) {
	cfg := p.cfg
	cfg.Timeout = min(cfg.Timeout, 300*time.Millisecond)
	for _, u := range []byte{1, 0, 255, 2, 3, 4, 5, 6, 7, 8, 9, 10} {
		if u == p.cfg.UnitID {
			continue
		}
		c, err := modbus.DialProbe(ctx, cfg, u)
		if err != nil {
			continue
		}
		_, err = c.Read(ctx, p.m.PLCBase, 1)
		_ = c.Close()
		if err == nil {
			p.r.fail(CheckUnitID, fmt.Sprintf("the PLC answers unit id %d", p.cfg.UnitID), first.Error(),
				fmt.Sprintf("wrong unit id: the PLC answers unit id %d; set unit_id: %d (or change the PLC's)", u, u))
			return
		}
	}
	p.r.fail(CheckUnitID, fmt.Sprintf("the PLC answers unit id %d", p.cfg.UnitID), first.Error(),
		"no answer on unit ids 0..10 or 255 either: is this a Modbus TCP server, and is the Modbus server enabled in the PLC?")
}

// findShift looks for the block a few registers off plc_base: CHUTE_COUNT
// equal to the line's and a non-zero BOOT_ID at the same shift.
func (p *mbProbe) findShift(ctx context.Context) (int, bool) {
	for _, d := range []int{1, -1, 2, -2, 3, -3} {
		base := int(p.m.PLCBase) + d
		if base < 0 || base+p.m.PLCLen > 1<<16 {
			continue
		}
		cc, err := p.c.Read(ctx, uint16(base+oChutes), 1)
		if err != nil || int(cc[0]) != p.cfg.Chutes {
			continue
		}
		b, err := p.c.Read(ctx, uint16(base+p.m.OffBootID), 1)
		if err == nil && b[0] != 0 {
			return d, true
		}
	}
	return 0, false
}

func (p *mbProbe) chuteBits(blk []uint16, chutes int) {
	var stray []string
	for field, off := range map[string]int{"CHUTE_FULL": oChutes + 1, "CHUTE_DISABLED": p.m.OffDisabled} {
		for w := 0; w < p.m.BitWords; w++ {
			for bit := 0; bit < 16; bit++ {
				if n := w*16 + bit + 1; n > chutes && blk[off+w]&(1<<bit) != 0 {
					stray = append(stray, fmt.Sprintf("%s chute %d", field, n))
				}
			}
		}
	}
	if len(stray) > 0 {
		p.r.fail(CheckChuteBits, "chute bits sit within CHUTE_COUNT", fmt.Sprint(stray),
			"bits set above CHUTE_COUNT: the bit fields are misplaced or numbered from 0 (chute n is bit (n-1) mod 16)")
		return
	}
	p.r.pass(CheckChuteBits, "chute bits sit within CHUTE_COUNT", "")
}

// wordOrder judges the TIDs left in the confirmation ring by earlier
// traffic: tracking ids are counters, so a ring of TIDs whose low word is
// 0 and high word is not reads like swapped words.
func (p *mbProbe) wordOrder(blk []uint16) {
	var n, swapped int
	var example uint32
	for j := 0; j < p.m.ConfirmRing; j++ {
		o := p.m.OffConfirm + 5*j
		if blk[o] == 0 && blk[o+4] == 0 {
			continue
		}
		tid := p.m.TID(blk[o+1], blk[o+2])
		if tid == 0 {
			continue
		}
		n++
		if tid&0xffff == 0 {
			swapped++
			example = tid
		}
	}
	switch {
	case n == 0:
		p.r.notRun(CheckWordOrder, "32-bit words in the configured order", "no confirmation in the ring yet to judge by")
	case swapped == n:
		p.r.fail(CheckWordOrder, "32-bit words in the configured order", fmt.Sprintf("%d of %d confirmed TIDs have a low word of 0, e.g. %#08x", swapped, n, example),
			fmt.Sprintf("word order swapped: the PLC puts TID_LO first; set word_order: %s (or make the PLC put TID_HI first)", otherOrder(p.cfg.WordOrder)))
	default:
		p.r.pass(CheckWordOrder, "32-bit words in the configured order", fmt.Sprintf("%d confirmed TIDs look like counters", n))
	}
}

func otherOrder(o string) string {
	if o == modbus.WordOrderLowFirst {
		return modbus.WordOrderHighFirst
	}
	return modbus.WordOrderLowFirst
}

// sample watches PLC_HEARTBEAT and HOST_HEARTBEAT for opt.Sample.
func (p *mbProbe) sample(ctx context.Context) (beats []uint16, hostMoved bool, err error) {
	host0, err := p.c.Read(ctx, p.m.HostBase, 1)
	hostReadable := err == nil
	end := time.Now().Add(p.opt.Sample)
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for {
		v, err := p.c.Read(ctx, p.m.PLCBase, 1)
		if err != nil {
			return beats, false, err
		}
		beats = append(beats, v[0])
		if time.Now().After(end) {
			break
		}
		select {
		case <-ctx.Done():
			return beats, false, ctx.Err()
		case <-tk.C:
		}
	}
	if hostReadable {
		h1, err := p.c.Read(ctx, p.m.HostBase, 1)
		hostMoved = err == nil && h1[0] != host0[0]
	}
	return beats, hostMoved, nil
}

func (p *mbProbe) heartbeat(beats []uint16) { judgeHeartbeat(p.r, beats, p.opt.Sample) }

// fault reads FAULT_CODE.
func (p *mbProbe) fault(ctx context.Context) (uint16, error) {
	v, err := p.c.Read(ctx, p.m.PLCBase+oFault, 1)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}
