package fieldbussim

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEndToEndScannerToConfirmation plays a minimal gateway over the real
// wire: telegrams from the scanner socket, commands through Modbus, and the
// sim's ground truth agrees with what came back.
func TestEndToEndScannerToConfirmation(t *testing.T) {
	s := startSim(t, Config{
		Chutes: 16,
		Seed:   7,
		Conveyor: ConveyorConfig{Rate: 20, ScannerToFirstChute: 3, ChutePitch: 0.5, LoopLength: 30,
			InductToScanner: 0.5, BeltSpeed: 5, ContainerCapacity: -1},
		Labels:   LabelConfig{NoReadRate: 0.1},
		Scanners: ScannerConfig{Heartbeat: 50 * time.Millisecond},
	})
	if len(s.ScannerAddrs()) != 1 {
		t.Fatalf("scanner addrs %v", s.ScannerAddrs())
	}
	conn, err := net.Dial("tcp", s.ScannerAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := dial(t, s, 1)
	keepAlive(t, s)

	rd := bufio.NewReader(conn)
	seq := uint16(0)
	got := map[uint32]bool{}
	heartbeats := 0
	for len(got) < 40 {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		frame, err := rd.ReadBytes(0x03)
		if err != nil {
			t.Fatalf("read telegram: %v", err)
		}
		payload := string(bytes.TrimPrefix(bytes.TrimSuffix(frame, []byte{0x03}), []byte{0x02}))
		if payload == "HB" {
			heartbeats++
			continue
		}
		tidStr, _, _ := strings.Cut(payload, ";")
		tid, err := strconv.ParseUint(tidStr, 10, 32)
		if err != nil {
			t.Fatalf("telegram %q: %v", payload, err)
		}
		if got[uint32(tid)] {
			continue // a recirculated item
		}
		got[uint32(tid)] = true
		seq++
		c.divert(t, seq, uint32(tid), uint16(tid%16)+1, 0)
	}
	waitFor(t, "40 confirmations", 10*time.Second, func() bool { return c.plcBlock(t)[3] >= 40 })
	rep := s.Report()
	if rep.Counts.SortedAsCommanded < 35 {
		t.Errorf("report: %+v", rep.Counts)
	}
	if heartbeats == 0 {
		t.Error("no scanner heartbeat")
	}
	var buf bytes.Buffer
	if err := s.WriteManifest(&buf); err != nil || !strings.HasPrefix(buf.String(), "package_id,destination\n") {
		t.Errorf("manifest: %v %q", err, buf.String()[:min(60, buf.Len())])
	}
}
