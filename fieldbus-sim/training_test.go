package fieldbussim

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

// The persistent faults a training panel switches: each holds until it is
// switched off, and the sim is as before afterwards.

func TestScannerOffRefusesUntilOn(t *testing.T) {
	s := runScanners(t, ScannerConfig{Count: 2, Heartbeat: -1})
	a := dialScanner(t, s, 0)
	addr := s.Addrs()[0]
	if err := s.SetOff(0, true); err != nil {
		t.Fatal(err)
	}
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("connection of a scanner switched off: read %v, want EOF", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("dial of a scanner switched off succeeded, want refused")
	}
	s.Send(0, 7, []string{"X"})
	if st := s.Stats()[0]; st.NoConnection != 1 || st.Telegrams != 0 || st.Drops != 1 {
		t.Errorf("scanner off stats %+v, want 1 telegram without connection, 1 drop", st)
	}
	// The other scanner is untouched.
	b := dialScanner(t, s, 1)
	s.Send(1, 8, []string{"Y"})
	if got := readExactly(t, b, 5); string(got) != "\x028;Y\x03" {
		t.Fatalf("scanner 2 while scanner 1 off: %q", got)
	}
	if err := s.SetOff(0, true); err != nil { // again: nothing changes
		t.Fatal(err)
	}
	if err := s.SetOff(0, false); err != nil {
		t.Fatal(err)
	}
	if s.Addrs()[0] != addr {
		t.Fatalf("back on at %s, want the same address %s", s.Addrs()[0], addr)
	}
	c := dialScanner(t, s, 0)
	s.Send(0, 9, []string{"Z"})
	if got := readExactly(t, c, 5); string(got) != "\x029;Z\x03" {
		t.Fatalf("scanner back on: %q", got)
	}
	if err := s.SetOff(2, true); err == nil {
		t.Error("SetOff of scanner 3 of 2: no error")
	}
}

func TestScannerOffDialOutStopsDialling(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	s := runScanners(t, ScannerConfig{DialOut: []string{ln.Addr().String()}, Heartbeat: -1,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	first := <-conns
	defer first.Close()
	if err := s.SetOff(0, true); err != nil {
		t.Fatal(err)
	}
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("dial-out connection of a scanner switched off: %v, want EOF", err)
	}
	if err := s.SetOff(0, false); err != nil {
		t.Fatal(err)
	}
	// The next connection is a live one: a dial made while off would have
	// been closed at once and come first.
	second := <-conns
	defer second.Close()
	waitFor(t, "scanner connected again", 5*time.Second, func() bool { return s.Stats()[0].Connections == 1 })
	s.Send(0, 5, []string{"Q"})
	if got := readExactly(t, second, 5); string(got) != "\x025;Q\x03" {
		t.Fatalf("after switching back on: %q", got)
	}
}

func TestSorterFaultCode(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s, 1)
	keepAlive(t, s)
	if err := s.SorterFault(true, 101); err != nil {
		t.Fatal(err)
	}
	if blk := c.plcBlock(t); blk[1] != uint16(StateFault) || blk[4] != 101 {
		t.Fatalf("SORTER_STATE %d FAULT_CODE %d, want 3 and 101", blk[1], blk[4])
	}
	if f := s.PLC().Snapshot().FaultCode; f != 101 {
		t.Errorf("snapshot (OPC UA) fault code %d, want 101", f)
	}
	if err := s.SorterFault(true, 1); !errors.Is(err, ErrBadFaultCode) {
		t.Errorf("fault code 1: %v, want ErrBadFaultCode", err)
	}
	if err := s.SorterFault(false, 0); err != nil {
		t.Fatal(err)
	}
	if blk := c.plcBlock(t); blk[1] != uint16(StateRunning) || blk[4] != 0 {
		t.Fatalf("after clearing: SORTER_STATE %d FAULT_CODE %d, want 1 and 0", blk[1], blk[4])
	}
	// Clearing a fault leaves another state alone.
	s.PLC().SetSorterState(StateMaintenance)
	if err := s.SorterFault(false, 0); err != nil || s.PLC().State() != StateMaintenance {
		t.Errorf("clearing a fault in maintenance: %v, state %v", err, s.PLC().State())
	}
}

// TestSorterFaultUnderHostLost: host lost (1) shows over a PLC fault while
// it lasts, and the PLC fault is back once the host is.
func TestSorterFaultUnderHostLost(t *testing.T) {
	s := startSim(t, Config{HostWatchdog: 100 * time.Millisecond})
	c := dial(t, s, 1)
	c.heartbeat(t, 1)
	waitFor(t, "FAULT_CODE 0", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 0 })
	if err := s.SorterFault(true, 150); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "FAULT_CODE 1 over 150", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 1 })
	c.heartbeat(t, 2)
	waitFor(t, "FAULT_CODE 150 again", 2*time.Second, func() bool { return c.plcBlock(t)[4] == 150 })
}

func TestPLCDownModbusAndOPCUA(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an OPC UA server")
	}
	s := startSim(t, Config{OPCUA: OPCUAConfig{Addr: "127.0.0.1:0"}})
	c := dial(t, s, 1)
	ua1 := connect(t, s.OPCUAEndpoint())
	readState := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ns, err := ua1.FindNamespace(ctx, "urn:sortgw:sorter")
		if err != nil {
			return err
		}
		_, err = ua1.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: sorterNode(ns, "Plc.State"), AttributeID: ua.AttributeIDValue}}})
		return err
	}
	if err := readState(); err != nil {
		t.Fatalf("opc ua read before the fault: %v", err)
	}
	if err := s.SetPLCDown(true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadHoldingRegisters(100, 1); err == nil {
		t.Error("modbus read on a connection of a PLC off the network succeeded")
	}
	if mc, err := net.DialTimeout("tcp", s.ModbusAddr(), 200*time.Millisecond); err == nil || !isTimeout(err) {
		if mc != nil {
			mc.Close()
		}
		t.Errorf("modbus dial of a PLC off the network: %v, want a time-out", err)
	}
	if err := readState(); err == nil {
		t.Error("opc ua read on a session of a PLC off the network succeeded")
	}
	if uc, err := tryConnect(s.OPCUAEndpoint()); err == nil {
		uc.Close(context.Background())
		t.Error("opc ua connect to a PLC off the network succeeded")
	}
	if err := s.SetPLCDown(false); err != nil {
		t.Fatal(err)
	}
	c = dial(t, s, 1)
	if blk := c.plcBlock(t); blk[5] != 32 {
		t.Errorf("CHUTE_COUNT after the PLC is back: %d", blk[5])
	}
	ua2 := connect(t, s.OPCUAEndpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ua2.FindNamespace(ctx, "urn:sortgw:sorter"); err != nil {
		t.Errorf("opc ua after the PLC is back: %v", err)
	}
}

func TestControlTrainingFaults(t *testing.T) {
	s := startSim(t, Config{Chutes: 8, Conveyor: ConveyorConfig{Rate: 0.001}, Scanners: ScannerConfig{Count: 2, Heartbeat: -1}})
	ts := httptest.NewServer(s.ControlHandler())
	defer ts.Close()
	keepAlive(t, s) // FAULT_CODE shows host lost (1) otherwise
	post := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Post(ts.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path string
		code int
		errs string
		then func() bool
	}{
		{"/fault/scanner-off?i=2", 400, "want 0..1", nil},
		{"/fault/scanner-off?i=1&on=true", 200, "", func() bool { return dialFails(s.ScannerAddrs()[1]) }},
		{"/fault/scanner-off?i=1&on=false", 200, "", func() bool { return !dialFails(s.ScannerAddrs()[1]) }},
		{"/fault/sorter-fault?code=1", 400, "host-lost", nil},
		{"/fault/sorter-fault?code=70000", 400, "want 0..65535", nil},
		{"/fault/sorter-fault?code=120&on=true", 200, "", func() bool {
			return s.PLC().State() == StateFault && s.PLC().Snapshot().FaultCode == 120
		}},
		{"/fault/sorter-fault?on=false", 200, "", func() bool {
			return s.PLC().State() == StateRunning && s.PLC().Snapshot().FaultCode == 0
		}},
		{"/fault/plc-down?on=yes", 400, "want true or false", nil},
		{"/fault/plc-down?on=true", 200, "", nil},
		{"/fault/plc-down?on=false", 200, "", func() bool { return !dialFails(s.ModbusAddr()) }},
	} {
		code, body := post(tc.path)
		if code != tc.code || !strings.Contains(body, tc.errs) {
			t.Errorf("POST %s: %d %s, want %d containing %q", tc.path, code, body, tc.code, tc.errs)
		}
		if tc.then != nil && !tc.then() {
			t.Errorf("POST %s: no effect", tc.path)
		}
	}
}

func dialFails(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}
