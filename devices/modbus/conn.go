package modbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	gmb "github.com/goburrow/modbus"

	"sortgw/devices"
	"sortgw/devices/hostif"
)

// Named errors the link branches on or that tests look for.
var (
	// ErrAckOutOfStep: ACK_SEQ moved outside the window of commands this
	// link gave out (another host writes the ring, or the PLC lost its
	// ring without a new BOOT_ID). The link follows the PLC as after a
	// cold start.
	ErrAckOutOfStep = hostif.ErrRingMismatch
	// ErrPLCStalled: PLC_HEARTBEAT has not changed for PLCWatchdog.
	ErrPLCStalled = hostif.ErrPLCStalled
	// ErrPLCFault: FAULT_CODE 1..99 holds commands back.
	ErrPLCFault = hostif.ErrPLCFault
)

// conn is one goburrow TCP connection. goburrow keeps a connection after a
// timeout and would read the late reply as the answer to the next request
// (its transaction id check then fails, goburrow issue #64), so the link
// never reuses a conn after any error that is not a Modbus exception: the
// session ends, Close() is called and the link redials. A Modbus exception
// is a valid reply on a healthy connection: the conn is kept. goburrow would
// also redial by itself inside the next request; the session's failed
// flag makes sure nobody sends on a conn after its error.
type conn struct {
	h   *gmb.TCPClientHandler
	c   gmb.Client
	rtt *devices.Histogram
}

func newConn(c *Config, rtt *devices.Histogram) *conn {
	h := gmb.NewTCPClientHandler(c.Addr)
	h.SlaveId = c.UnitID
	h.Timeout = c.Timeout
	// No idle close: the link polls continuously, and goburrow's idle
	// timer would otherwise close the conn behind the session's back.
	h.IdleTimeout = 0
	return &conn{h: h, c: gmb.NewClient(h), rtt: rtt}
}

func (c *conn) connect() error { return c.h.Connect() }

func (c *conn) close() { _ = c.h.Close() }

// isException reports whether err is a Modbus exception reply: the
// connection is in step and may be used again.
func isException(err error) (*gmb.ModbusError, bool) {
	var me *gmb.ModbusError
	if errors.As(err, &me) {
		return me, true
	}
	return nil, false
}

// write sends one function-16 request. It never splits: callers split.
// With Config.Connections 1 the poll loop and the dispatcher share a conn,
// so write and read keep no buffers in it (goburrow allocates each request
// anyway).
func (c *conn) write(addr uint16, regs []uint16) error {
	var buf [2 * slotRegs]byte
	payload := encodeRegs(buf[:0], regs)
	t0 := time.Now()
	_, err := c.c.WriteMultipleRegisters(addr, uint16(len(regs)), payload)
	c.rtt.Observe(time.Since(t0))
	if err != nil {
		return fmt.Errorf("write %d registers at %d: %w", len(regs), addr, err)
	}
	return nil
}

// read sends one function-3 request and appends the registers to dst.
func (c *conn) read(dst []uint16, s span) ([]uint16, error) {
	t0 := time.Now()
	b, err := c.c.ReadHoldingRegisters(s.addr, uint16(s.count))
	c.rtt.Observe(time.Since(t0))
	if err != nil {
		return dst, fmt.Errorf("read %d registers at %d: %w", s.count, s.addr, err)
	}
	if len(b) != 2*s.count {
		return dst, fmt.Errorf("read %d registers at %d: reply holds %d bytes", s.count, s.addr, len(b))
	}
	for i := 0; i+1 < len(b); i += 2 {
		dst = append(dst, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return dst, nil
}

// retryable reports whether an exception reply is worth repeating at
// once on the same connection: 06 (server busy), and 0A (gateway path
// unavailable) and 0B (gateway target failed to respond), which a Modbus
// gateway in front of the PLC sends where the PLC itself would have timed
// out. Any other exception is an answer: the operation failed this round,
// the connection is in step and is kept.
func retryable(code byte) bool { return code == 6 || code == 0x0a || code == 0x0b }

// retrier repeats a request answered with a retryable exception on the
// same connection, a bounded number of times. Every exception reply is
// reported to onExc (retry: it is being repeated). Other errors, and an
// exception that is not retried, are returned at once: for the caller an
// exception means "failed this round, connection kept", any other error
// "end the session".
type retrier struct {
	retries int
	delay   time.Duration
	onExc   func(me *gmb.ModbusError, retry bool)
	// reads: repeat every exception code, not only the retryable ones. A
	// read changes nothing, and a block read that fails leaves the
	// confirmation ring unread: at 10 ms polls and a busy sorter, two
	// lost polls can cost confirmations.
	reads bool
}

func (r retrier) do(ctx context.Context, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		me, ok := isException(err)
		if !ok {
			return err
		}
		retry := (r.reads || retryable(me.ExceptionCode)) && attempt < r.retries
		if r.onExc != nil {
			r.onExc(me, retry)
		}
		if !retry {
			return err
		}
		t := time.NewTimer(r.delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// readBlock reads the whole PLC block, split into requests of at most 125
// registers, each repeated on any exception (up to the retrier's limit).
func (c *conn) readBlock(ctx context.Context, r retrier, spans []span, dst []uint16) ([]uint16, error) {
	dst = dst[:0]
	r.reads = true
	for _, s := range spans {
		err := r.do(ctx, func() error {
			var err error
			n := len(dst)
			dst, err = c.read(dst, s)
			if err != nil {
				dst = dst[:n]
			}
			return err
		})
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// writeSplit writes regs at addr in requests of at most 123 registers.
func (c *conn) writeSplit(ctx context.Context, r retrier, addr uint16, regs []uint16) error {
	for _, s := range split(addr, len(regs), maxWriteRegs) {
		if err := r.do(ctx, func() error { return c.write(s.addr, regs[s.off:s.off+s.count]) }); err != nil {
			return err
		}
	}
	return nil
}
