package modbus

// The commissioning client of `sortgw probe`: bare function-3 reads and
// function-16 writes on a link Config's register map, so that a probe
// can look at what the PLC really holds, register by register, where the
// link would only see "out of step". No ring, no retries, no reconnect.

import (
	"context"
	"errors"
	"fmt"

	gmb "github.com/goburrow/modbus"
)

// Map is a link Config's register map as a commissioning tool reads it:
// absolute addresses of the blocks and offsets inside the PLC block.
type Map struct {
	HostBase, DivertBase, PLCBase uint16
	// PLCLen is the PLC block's length in registers (119 in the default map).
	PLCLen int
	// Ring and ConfirmRing are the divert and confirmation ring depths.
	Ring, ConfirmRing int
	// BitWords is the length of each chute bit field (CHUTE_FULL,
	// CHUTE_DISABLED); OffDisabled, OffConfirm and OffBootID are offsets
	// from PLCBase (the fixed registers are 0..5: heartbeat, state,
	// ACK_SEQ, CONFIRM_COUNT, FAULT_CODE, CHUTE_COUNT; CHUTE_FULL at 6).
	BitWords                           int
	OffDisabled, OffConfirm, OffBootID int
	// LowFirst: TID_LO comes before TID_HI.
	LowFirst bool
}

// ProbeMap returns cfg's register map (cfg is validated first).
func ProbeMap(cfg Config) (Map, error) {
	if err := cfg.Validate(); err != nil {
		return Map{}, err
	}
	l := newLayout(&cfg)
	return Map{HostBase: l.hostBase, DivertBase: l.divertBase, PLCBase: l.plcBase, PLCLen: l.blockLen,
		Ring: l.ring, ConfirmRing: l.confirmRing, BitWords: l.bitWords,
		OffDisabled: l.offDisabled, OffConfirm: l.offConfirm, OffBootID: l.offBootID, LowFirst: l.lowFirst}, nil
}

// TID joins a slot's two TID registers in the map's word order.
func (m Map) TID(a, b uint16) uint32 {
	if m.LowFirst {
		a, b = b, a
	}
	return uint32(a)<<16 | uint32(b)
}

// TIDWords splits a TID into the slot's two registers in the map's word order.
func (m Map) TIDWords(tid uint32) (uint16, uint16) {
	hi, lo := uint16(tid>>16), uint16(tid)
	if m.LowFirst {
		return lo, hi
	}
	return hi, lo
}

// ProbeClient is one bare goburrow connection addressed with a unit id.
type ProbeClient struct {
	h *gmb.TCPClientHandler
	c gmb.Client
}

// DialProbe connects to cfg.Addr and addresses unit (0: cfg.UnitID).
// cfg.Timeout bounds the dial and each request.
func DialProbe(ctx context.Context, cfg Config, unit byte) (*ProbeClient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if unit == 0 {
		unit = cfg.UnitID
	}
	h := gmb.NewTCPClientHandler(cfg.Addr)
	h.SlaveId, h.Timeout, h.IdleTimeout = unit, cfg.Timeout, 0
	if err := h.Connect(); err != nil {
		return nil, fmt.Errorf("modbus probe %s: %w", cfg.Addr, err)
	}
	return &ProbeClient{h: h, c: gmb.NewClient(h)}, nil
}

// Read reads n holding registers at addr with one function-3 request.
func (p *ProbeClient) Read(ctx context.Context, addr uint16, n int) ([]uint16, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := p.c.ReadHoldingRegisters(addr, uint16(n))
	if err != nil {
		return nil, fmt.Errorf("read %d registers at %d: %w", n, addr, err)
	}
	if len(b) != 2*n {
		return nil, fmt.Errorf("read %d registers at %d: reply holds %d bytes", n, addr, len(b))
	}
	return decodeRegs(make([]uint16, 0, n), b), nil
}

// Write writes regs at addr with one function-16 request.
func (p *ProbeClient) Write(ctx context.Context, addr uint16, regs []uint16) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := p.c.WriteMultipleRegisters(addr, uint16(len(regs)), encodeRegs(nil, regs)); err != nil {
		return fmt.Errorf("write %d registers at %d: %w", len(regs), addr, err)
	}
	return nil
}

// Close closes the connection.
func (p *ProbeClient) Close() error { return p.h.Close() }

// ExceptionCode returns the Modbus exception code of a Read or Write
// error; ok is false for an error that is not an exception reply
// (timeout, connection).
func ExceptionCode(err error) (code byte, ok bool) {
	var me *gmb.ModbusError
	if errors.As(err, &me) {
		return me.ExceptionCode, true
	}
	return 0, false
}
