package fieldbussim

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"testing"
	"time"

	"github.com/goburrow/modbus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// gopcua's server prints through the standard logger (see LibraryLogWriter).
	log.SetOutput(io.Discard)
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

// startSim runs a sim with a Modbus front on 127.0.0.1:0 until the test ends.
func startSim(t testing.TB, cfg Config) *Sim {
	t.Helper()
	if cfg.Modbus.Addr == "" {
		cfg.Modbus.Addr = "127.0.0.1:0"
	}
	if cfg.PLCCycle == 0 {
		cfg.PLCCycle = time.Millisecond
	}
	if cfg.Chutes == 0 {
		cfg.Chutes = 32
	}
	if cfg.Conveyor.Rate == 0 {
		cfg.DisableScanners = true
	}
	var log zerolog.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zerolog.New(zerolog.NewTestWriter(tt)).Level(zerolog.InfoLevel)
	} else {
		log = zerolog.Nop()
	}
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s
}

// mbClient is a goburrow client against the sim.
type mbClient struct {
	h *modbus.TCPClientHandler
	modbus.Client
}

func dial(t testing.TB, s *Sim, unit byte) *mbClient {
	t.Helper()
	h := modbus.NewTCPClientHandler(s.ModbusAddr())
	h.SlaveId = unit
	h.Timeout = 2 * time.Second
	h.IdleTimeout = 0
	if err := h.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &mbClient{h: h, Client: modbus.NewClient(h)}
}

func regs(b []byte) []uint16 {
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return out
}

func u16bytes(v ...uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.BigEndian.PutUint16(b[2*i:], x)
	}
	return b
}

// plcBlock reads the 119-register PLC block.
func (c *mbClient) plcBlock(t testing.TB) []uint16 {
	t.Helper()
	b, err := c.ReadHoldingRegisters(100, 119)
	if err != nil {
		t.Fatalf("read plc block: %v", err)
	}
	return regs(b)
}

func (c *mbClient) heartbeat(t testing.TB, v uint16) {
	t.Helper()
	if _, err := c.WriteMultipleRegisters(0, 1, u16bytes(v)); err != nil {
		t.Fatalf("write heartbeat: %v", err)
	}
}

func (c *mbClient) divert(t testing.TB, seq uint16, tid uint32, chute, reason uint16) {
	t.Helper()
	if err := c.tryDivert(seq, tid, chute, reason); err != nil {
		t.Fatalf("divert seq %d: %v", seq, err)
	}
}

func (c *mbClient) tryDivert(seq uint16, tid uint32, chute, reason uint16) error {
	addr := 10 + 5*(seq%16)
	_, err := c.WriteMultipleRegisters(addr, 5, u16bytes(seq, uint16(tid>>16), uint16(tid), chute, reason))
	return err
}

type confirm struct {
	Num    uint16
	TID    uint32
	Chute  uint16
	Result uint16
}

func confirmAt(blk []uint16, num uint16) confirm {
	o := 38 + 5*int(num%16)
	return confirm{blk[o], uint32(blk[o+1])<<16 | uint32(blk[o+2]), blk[o+3], blk[o+4]}
}

// keepAlive writes a changing heartbeat every 100ms until the test ends, so
// the watchdog stays quiet; it uses its own connection.
func keepAlive(t *testing.T, s *Sim) {
	c := dial(t, s, 1)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		v := uint16(0)
		for {
			v++
			_, _ = c.WriteMultipleRegisters(0, 1, u16bytes(v))
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	waitFor(t, "FAULT_CODE 0", 2*time.Second, func() bool { return s.PLC().Snapshot().FaultCode == 0 })
}

func exceptionCode(err error) byte {
	var me *modbus.ModbusError
	if errors.As(err, &me) {
		return me.ExceptionCode
	}
	return 0
}
