package modbus

// The raw transport baseline of `sortgw bench`: bare goburrow function-16
// requests on the same register map as the link, without the link's ring,
// retries or polling, so that the link's latencies read as a ratio of the
// transport's own round trip on whatever machine the bench runs.

import (
	"context"
	"errors"
	"fmt"
	"time"

	gmb "github.com/goburrow/modbus"
)

// Baseline values of the idle slot write: any TID and a chute that exists
// on every sorter; what matters is SEQ 0.
const (
	baselineTID   = 40000
	baselineChute = 1
)

// RawClient is one bare goburrow connection to a PLC, addressed with a
// link Config's unit id and register map. It is for measurements only:
// it has no reconnect, no queue and no view of the interface's state.
type RawClient struct {
	h    *gmb.TCPClientHandler
	c    gmb.Client
	cfg  Config
	slot []byte // the idle slot's five registers, encoded once
	host []byte
}

// DialRaw connects to cfg.Addr. cfg takes the link's defaults (Validate);
// cfg.Timeout bounds the dial and each request.
func DialRaw(ctx context.Context, cfg Config) (*RawClient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h := gmb.NewTCPClientHandler(cfg.Addr)
	h.SlaveId, h.Timeout, h.IdleTimeout = cfg.UnitID, cfg.Timeout, 0
	if err := h.Connect(); err != nil {
		return nil, fmt.Errorf("modbus raw client %s: %w", cfg.Addr, err)
	}
	hi, lo := uint16(baselineTID>>16), uint16(baselineTID&0xffff)
	if cfg.WordOrder == WordOrderLowFirst {
		hi, lo = lo, hi
	}
	// SEQ, TID_HI, TID_LO, CHUTE, REASON; big endian as Modbus carries
	// every register.
	slot := []byte{0, 0, byte(hi >> 8), byte(hi), byte(lo >> 8), byte(lo), 0, baselineChute, 0, 0}
	return &RawClient{h: h, c: gmb.NewClient(h), cfg: cfg, slot: slot, host: make([]byte, 2)}, nil
}

// WriteIdleSlot writes divert slot 0 in one function-16 request of its
// five registers (SEQ 0, TID 40000, CHUTE 1, REASON 0), the request the
// link makes for every command, and returns its round trip. A PLC takes
// SEQ 0 only when ACK_SEQ is 65535: write it before any load (after a
// start the PLC waits for SEQ 1 in slot 1), not while a link runs.
func (r *RawClient) WriteIdleSlot(ctx context.Context) (time.Duration, error) {
	return r.write(ctx, r.cfg.DivertBase, 5, r.slot)
}

// SpareAddr is the first register of the spare write (WriteSpare): the
// last five registers before DIVERT[0], reserved by the interface (3..9
// hold nothing in the default map, 5..9 are written), or false if the map
// leaves no five-register gap between the host block and the ring.
func (r *RawClient) SpareAddr() (uint16, bool) {
	const hostWords = 3
	if int(r.cfg.DivertBase)-int(r.cfg.HostBase) < hostWords+5 {
		return 0, false
	}
	return r.cfg.DivertBase - 5, true
}

// WriteSpare writes the idle slot's five registers (the same function-16
// request as a divert command, the same size) into the reserved registers
// just below DIVERT[0] (SpareAddr), and returns the round trip. It is the
// rate-matched floor of `sortgw bench`: it runs while a link drives the
// same PLC, and cannot disturb the ring, since no PLC acts on reserved
// registers. The interface lets a PLC refuse them with exception 02
// (the emulator does, without touching its image) or ignore them; both
// are a completed round trip here. Any other error is returned.
func (r *RawClient) WriteSpare(ctx context.Context) (time.Duration, error) {
	addr, ok := r.SpareAddr()
	if !ok {
		return 0, fmt.Errorf("modbus raw client %s: no 5 reserved registers between host block %d and divert ring %d",
			r.cfg.Addr, r.cfg.HostBase, r.cfg.DivertBase)
	}
	d, err := r.write(ctx, addr, 5, r.slot)
	var me *gmb.ModbusError
	if errors.As(err, &me) && me.ExceptionCode == gmb.ExceptionCodeIllegalDataAddress {
		return d, nil
	}
	return d, err
}

// WriteHostState writes HOST_STATE (one register, function 16) and returns
// the round trip. Write the value the link itself writes (1, ready) while
// a link runs against the same PLC.
func (r *RawClient) WriteHostState(ctx context.Context, v uint16) (time.Duration, error) {
	r.host[0], r.host[1] = byte(v>>8), byte(v)
	return r.write(ctx, r.cfg.HostBase+1, 1, r.host)
}

func (r *RawClient) write(ctx context.Context, addr, n uint16, payload []byte) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	_, err := r.c.WriteMultipleRegisters(addr, n, payload)
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("modbus raw write %d registers at %d: %w", n, addr, err)
	}
	return d, nil
}

// Close closes the connection.
func (r *RawClient) Close() error { return r.h.Close() }
