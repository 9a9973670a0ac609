package modbus

import (
	"encoding/binary"
	"fmt"
)

// Register counts per request: the Modbus limits for function 3 and 16.
const (
	maxReadRegs  = 125
	maxWriteRegs = 123
)

// Offsets inside the PLC block (relative to PLCBase).
const (
	offHeartbeat    = 0
	offSorterState  = 1
	offAckSeq       = 2
	offConfirmCount = 3
	offFaultCode    = 4
	offChuteCount   = 5
	offFull         = 6
)

const (
	hostRegs   = 3 // HOST_HEARTBEAT, HOST_STATE, PLAN_VERSION
	slotRegs   = 5 // SEQ, TID_HI, TID_LO, CHUTE, REASON (or NUM, TID, CHUTE, RESULT)
	defaultMap = 256
)

// layout is the register map derived from a Config. The PLC block is
//
//	heartbeat, state, ack, count, fault, chutecount,
//	FULL[W], DISABLED[W], CONFIRM[ConfirmRing x 5], BOOT_ID
//
// with W = ceil(max(N,256)/16): for N <= 256 and a ring of 16 it is exactly
// the default map (100..218, 119 registers); a larger sorter moves the
// confirm ring and BOOT_ID up behind its longer bit blocks.
type layout struct {
	hostBase, divertBase, plcBase uint16
	ring, confirmRing             int
	chutes                        int
	bitWords                      int
	offDisabled, offConfirm       int
	offBootID                     int
	blockLen                      int
	lowFirst                      bool
}

func newLayout(c *Config) layout {
	n := max(c.Chutes, defaultMap)
	w := (n + 15) / 16
	l := layout{
		hostBase:    c.HostBase,
		divertBase:  c.DivertBase,
		plcBase:     c.PLCBase,
		ring:        c.Ring,
		confirmRing: c.ConfirmRing,
		chutes:      c.Chutes,
		bitWords:    w,
		offDisabled: offFull + w,
		offConfirm:  offFull + 2*w,
		lowFirst:    c.WordOrder == WordOrderLowFirst,
	}
	l.offBootID = l.offConfirm + slotRegs*c.ConfirmRing
	l.blockLen = l.offBootID + 1
	return l
}

// check rejects maps that overlap or run past the last register.
func (l layout) check() error {
	type area struct {
		name       string
		start, len int
	}
	areas := []area{
		{"host block", int(l.hostBase), hostRegs},
		{"divert ring", int(l.divertBase), slotRegs * l.ring},
		{"plc block", int(l.plcBase), l.blockLen},
	}
	for i, a := range areas {
		if a.start+a.len > 1<<16 {
			return fmt.Errorf("%w: %s at %d (%d registers) runs past register 65535", ErrInvalidConfig, a.name, a.start, a.len)
		}
		for _, b := range areas[i+1:] {
			if a.start < b.start+b.len && b.start < a.start+a.len {
				return fmt.Errorf("%w: %s %d..%d overlaps %s %d..%d", ErrInvalidConfig,
					a.name, a.start, a.start+a.len-1, b.name, b.start, b.start+b.len-1)
			}
		}
	}
	return nil
}

// slotAddr is the first register of the divert slot for seq.
func (l layout) slotAddr(seq uint16) uint16 {
	return l.divertBase + uint16(slotRegs*(int(seq)&(l.ring-1)))
}

// span is one request's share of a larger read or write.
type span struct {
	addr  uint16
	count int
	off   int // offset of the span's first register in the whole
}

// split cuts n registers starting at addr into requests of at most limit.
func split(addr uint16, n, limit int) []span {
	var out []span
	for off := 0; off < n; off += limit {
		out = append(out, span{addr: addr + uint16(off), count: min(limit, n-off), off: off})
	}
	return out
}

// readSpans are the function-3 requests of one poll.
func (l layout) readSpans() []span { return split(l.plcBase, l.blockLen, maxReadRegs) }

// putTID stores a 32-bit value in two registers in the configured order.
func (l layout) putTID(regs []uint16, tid uint32) {
	hi, lo := uint16(tid>>16), uint16(tid)
	if l.lowFirst {
		hi, lo = lo, hi
	}
	regs[0], regs[1] = hi, lo
}

// tid reads a 32-bit value from two registers in the configured order.
func (l layout) tid(regs []uint16) uint32 {
	hi, lo := regs[0], regs[1]
	if l.lowFirst {
		hi, lo = lo, hi
	}
	return uint32(hi)<<16 | uint32(lo)
}

// divertRegs encodes one command's five registers: SEQ, TID (two), CHUTE,
// REASON. The PLC reads SEQ as the mark that the slot is complete, which
// is safe because one function-16 request writes all five at once.
func (l layout) divertRegs(dst *[slotRegs]uint16, seq uint16, tid uint32, chute, reason uint16) {
	dst[0] = seq
	l.putTID(dst[1:3], tid)
	dst[3] = chute
	dst[4] = reason
}

// encodeRegs turns registers into function-16 payload bytes (big endian,
// as Modbus carries every register).
func encodeRegs(dst []byte, regs []uint16) []byte {
	dst = dst[:0]
	for _, r := range regs {
		dst = binary.BigEndian.AppendUint16(dst, r)
	}
	return dst
}

// decodeRegs turns function-3 reply bytes into registers.
func decodeRegs(dst []uint16, b []byte) []uint16 {
	dst = dst[:0]
	for i := 0; i+1 < len(b); i += 2 {
		dst = append(dst, binary.BigEndian.Uint16(b[i:]))
	}
	return dst
}

// confirmSlot is one confirmation as read from the PLC block.
type confirmSlot struct {
	num    uint16
	tid    uint32
	chute  uint16
	result uint16
}

// block is one decoded read of the PLC block.
type block struct {
	heartbeat, sorterState, ackSeq, confirmCount uint16
	faultCode, chuteCount, bootID                uint16
	full, disabled                               []uint16 // bit words
	confirm                                      []confirmSlot
}

// decode fills b from the registers of a whole PLC block. It reuses b's
// slices, so a poll loop decodes without allocating.
func (l layout) decode(b *block, regs []uint16) error {
	if len(regs) != l.blockLen {
		return fmt.Errorf("plc block: got %d registers, want %d", len(regs), l.blockLen)
	}
	b.heartbeat = regs[offHeartbeat]
	b.sorterState = regs[offSorterState]
	b.ackSeq = regs[offAckSeq]
	b.confirmCount = regs[offConfirmCount]
	b.faultCode = regs[offFaultCode]
	b.chuteCount = regs[offChuteCount]
	b.bootID = regs[l.offBootID]
	b.full = append(b.full[:0], regs[offFull:offFull+l.bitWords]...)
	b.disabled = append(b.disabled[:0], regs[l.offDisabled:l.offDisabled+l.bitWords]...)
	b.confirm = b.confirm[:0]
	for j := 0; j < l.confirmRing; j++ {
		r := regs[l.offConfirm+slotRegs*j:]
		b.confirm = append(b.confirm, confirmSlot{num: r[0], tid: l.tid(r[1:3]), chute: r[3], result: r[4]})
	}
	return nil
}

// confirmAt is the slot that holds confirmation number c.
func (l layout) confirmAt(b *block, c uint16) confirmSlot {
	return b.confirm[int(c)&(l.confirmRing-1)]
}
