package fieldbussim

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gopcua/opcua"
)

// The harder emulator's options, each shown on the wire.

// mbapRead is a raw Modbus TCP request: function 3, one register at addr.
func mbapRead(txn uint16, unit byte, addr uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], txn)
	binary.BigEndian.PutUint16(b[4:], 6) // length: unit + PDU
	b[6] = unit
	b[7] = 3
	binary.BigEndian.PutUint16(b[8:], addr)
	binary.BigEndian.PutUint16(b[10:], 1)
	return b
}

// rawDial opens a plain TCP connection to the sim's Modbus port.
func rawDial(t *testing.T, s *Sim) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.ModbusAddr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readWithin reads whatever arrives within d: n bytes and the read's error.
func readWithin(c net.Conn, d time.Duration) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 260)
	return c.Read(buf)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestOptionRegisterByRegister(t *testing.T) {
	for _, tc := range []struct {
		name       string
		byRegister bool
		wantTID    uint32 // of the confirmation for the one-request write
		wantResult uint16
	}{
		// Atomic: the scan sees the whole slot.
		{"atomic", false, 4242, 1},
		// Register by register: SEQ is the slot's first register, so the
		// scan after it takes the slot with the old (here empty) TID and
		// refuses it (TID 0: result 7).
		{"by register", true, 0, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, Config{Modbus: ModbusConfig{RegisterByRegister: tc.byRegister},
				Conveyor: ConveyorConfig{CommissioningTravel: time.Millisecond}})
			c := dial(t, s, 1)
			keepAlive(t, s)
			waitFor(t, "FAULT_CODE 0", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 0 })
			c.divert(t, 1, 4242, 5, 0) // one function 16, SEQ first
			waitFor(t, "confirmation 1", 2*time.Second, func() bool { return c.plcBlock(t)[3] >= 1 })
			got := confirmAt(c.plcBlock(t), 1)
			if got.TID != tc.wantTID || got.Result != tc.wantResult {
				t.Fatalf("confirmation 1 = %+v, want TID %d result %d", got, tc.wantTID, tc.wantResult)
			}
			// Writing SEQ last, in a request of its own, is safe either way.
			if _, err := c.WriteMultipleRegisters(10+5*2+1, 4, u16bytes(0, 4343, 6, 0)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.WriteMultipleRegisters(10+5*2, 1, u16bytes(2)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "confirmation 2", 2*time.Second, func() bool { return c.plcBlock(t)[3] >= 2 })
			if got, want := confirmAt(c.plcBlock(t), 2), (confirm{Num: 2, TID: 4343, Chute: 6, Result: 1}); got != want {
				t.Fatalf("confirmation 2 = %+v, want %+v", got, want)
			}
		})
	}
}

func TestOptionLowFirstWordOrder(t *testing.T) {
	s := startSim(t, Config{Modbus: ModbusConfig{WordOrder: WordOrderLowFirst},
		Conveyor: ConveyorConfig{CommissioningTravel: time.Millisecond}})
	c := dial(t, s, 1)
	keepAlive(t, s)
	waitFor(t, "FAULT_CODE 0", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 0 })
	const tid = 0x0001_2345
	// SEQ, TID_LO, TID_HI, CHUTE, REASON.
	if _, err := c.WriteMultipleRegisters(10+5, 5, u16bytes(1, 0x2345, 0x0001, 3, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "confirmation 1", 2*time.Second, func() bool { return c.plcBlock(t)[3] >= 1 })
	if got := s.PLC().Snapshot().Divert[1].TID; got != tid {
		t.Errorf("divert slot TID = %#x, want %#x", got, tid)
	}
	b, err := c.ReadHoldingRegisters(10+5, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got := regs(b); got[1] != 0x2345 || got[2] != 0x0001 {
		t.Errorf("divert slot reads %v, want TID low word first", got)
	}
	blk := c.plcBlock(t)
	o := 38 + 5*1
	if blk[o] != 1 || blk[o+1] != 0x2345 || blk[o+2] != 0x0001 || blk[o+4] != 1 {
		t.Errorf("confirmation 1 reads %v, want NUM 1, TID 0x2345 0x0001 (low first), result 1", blk[o:o+5])
	}
	if _, err := New(Config{Modbus: ModbusConfig{Addr: "127.0.0.1:0", WordOrder: "middle"}, DisableScanners: true}, s.log); err == nil {
		t.Error("word order \"middle\" accepted")
	}
}

func TestOptionSilentWrongUnit(t *testing.T) {
	s := startSim(t, Config{Modbus: ModbusConfig{SilentWrongUnit: true}})
	c := rawDial(t, s)
	if _, err := c.Write(mbapRead(1, 2, 100)); err != nil {
		t.Fatal(err)
	}
	if n, err := readWithin(c, 300*time.Millisecond); n != 0 || !isTimeout(err) {
		t.Fatalf("unit 2: read %d bytes, %v; want silence (a read timeout)", n, err)
	}
	if s.ModbusHeld() != 1 {
		t.Errorf("held %d requests, want 1", s.ModbusHeld())
	}
	// The right unit id is still answered on another connection.
	if _, err := dial(t, s, 1).ReadHoldingRegisters(100, 1); err != nil {
		t.Fatalf("unit 1: %v", err)
	}
	// Switched off: the held connection is closed without a reply, and
	// another unit id gets exception 0B again.
	if err := s.SetModbusFault(FaultSilentWrongUnit, false); err != nil {
		t.Fatal(err)
	}
	if n, err := readWithin(c, 2*time.Second); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after switching off: read %d bytes, %v; want the connection closed without a reply", n, err)
	}
	if _, err := dial(t, s, 2).ReadHoldingRegisters(100, 1); exceptionCode(err) != 0x0b {
		t.Fatalf("unit 2 with the option off: %v, want exception 0B", err)
	}
}

func TestOptionMute(t *testing.T) {
	s := startSim(t, Config{Modbus: ModbusConfig{Mute: true}})
	c := rawDial(t, s) // the connection is accepted
	if _, err := c.Write(mbapRead(1, 1, 100)); err != nil {
		t.Fatal(err)
	}
	if n, err := readWithin(c, 300*time.Millisecond); n != 0 || !isTimeout(err) {
		t.Fatalf("read %d bytes, %v; want no answer (a read timeout)", n, err)
	}
	if err := s.SetModbusFault(FaultMute, false); err != nil {
		t.Fatal(err)
	}
	if n, err := readWithin(c, 2*time.Second); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after switching off: read %d bytes, %v; want the connection closed without a reply", n, err)
	}
	if _, err := dial(t, s, 1).ReadHoldingRegisters(100, 1); err != nil {
		t.Fatalf("a new connection once unmuted: %v", err)
	}
}

func TestOptionNeverAccept(t *testing.T) {
	s := startSim(t, Config{Modbus: ModbusConfig{NeverAccept: true}})
	addr := s.ModbusAddr()
	for i := 0; i < 3; i++ {
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err == nil {
			c.Close()
			t.Fatalf("dial %d completed; want it to hang", i)
		}
		if !isTimeout(err) {
			t.Fatalf("dial %d: %v; want a timeout, not a refusal", i, err)
		}
		t.Logf("dial %d: %v after %v", i, err, time.Since(start).Round(time.Millisecond))
	}
	if err := s.SetModbusFault(FaultNeverAccept, false); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s, 1)
	if _, err := c.ReadHoldingRegisters(100, 1); err != nil {
		t.Fatalf("after switching off: %v", err)
	}
	// Switched on at run time: the live connection drops, dials hang.
	if err := s.SetModbusFault(FaultNeverAccept, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadHoldingRegisters(100, 1); err == nil {
		t.Fatal("read on a connection made before never-accept succeeded")
	}
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil || !isTimeout(err) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial with never-accept switched on: %v; want a timeout", err)
	}
}

func TestOptionStrictTIDs(t *testing.T) {
	for _, tc := range []struct {
		name       string
		strict     bool
		wantResult uint16
	}{
		{"commissioning takes any TID", false, 1},
		{"strict refuses a TID it did not induct", true, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, Config{StrictTIDs: tc.strict, Conveyor: ConveyorConfig{CommissioningTravel: time.Millisecond}})
			c := dial(t, s, 1)
			keepAlive(t, s)
			waitFor(t, "FAULT_CODE 0", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 0 })
			c.divert(t, 1, 777, 4, 0)
			waitFor(t, "confirmation 1", 2*time.Second, func() bool { return c.plcBlock(t)[3] >= 1 })
			if got := confirmAt(c.plcBlock(t), 1); got.TID != 777 || got.Result != tc.wantResult {
				t.Fatalf("confirmation = %+v, want TID 777 result %d", got, tc.wantResult)
			}
		})
	}
}

// TestOPCUAEndpointsForAnyURL: GetEndpoints and a session work for the URL
// as a client may spell it, not only for the server's own spelling.
func TestOPCUAEndpointsForAnyURL(t *testing.T) {
	p := newTestPLC(t, 8)
	o := runOPCUA(t, OPCUAConfig{}, p)
	port := strconv.Itoa(o.port)
	urls := []string{
		o.Endpoint(),
		"opc.tcp://127.0.0.1:" + port + "/",
		"opc.tcp://localhost:" + port,
		"opc.tcp://localhost:" + port + "/",
	}
	if hn, err := os.Hostname(); err == nil {
		if _, err := net.LookupHost(hn); err == nil {
			urls = append(urls, "opc.tcp://"+hn+":"+port)
		}
	}
	for _, u := range urls {
		t.Run(u, func(t *testing.T) {
			eps, err := opcua.GetEndpoints(testCtx(t), u)
			if err != nil {
				t.Fatalf("GetEndpoints: %v", err)
			}
			if len(eps) == 0 {
				t.Fatal("no endpoints")
			}
			for _, ep := range eps {
				if ep.EndpointURL != o.Endpoint() {
					t.Errorf("endpoint %s, want the public %s", ep.EndpointURL, o.Endpoint())
				}
			}
			c := connect(t, u, opcua.SessionTimeout(45*time.Second))
			if got := c.Session().RevisedTimeout(); got != 45*time.Second {
				t.Errorf("revised session timeout %v, want the 45s asked", got)
			}
		})
	}
}

func TestReviseSessionTimeout(t *testing.T) {
	for _, tc := range []struct{ asked, want float64 }{
		{0, 60000}, {-5, 60000}, {10, 1000}, {45000, 45000}, {1e9, 3600000},
	} {
		if got := reviseSessionTimeout(tc.asked); got != tc.want {
			t.Errorf("reviseSessionTimeout(%v) = %v, want %v", tc.asked, got, tc.want)
		}
	}
}
