package fieldbussim

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestControlEndpoint(t *testing.T) {
	s := startSim(t, Config{Chutes: 32})
	ts := httptest.NewServer(s.ControlHandler())
	defer ts.Close()
	c := dial(t, s, 1)
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
	cases := []struct {
		path string
		code int
		errs string
	}{
		{"/fault/chute-full?chute=3&on=true", 200, ""},
		{"/fault/chute-disabled?chute=32", 200, ""},
		{"/fault/chute-full?chute=33", 400, "want 1..32"},
		{"/fault/stall-heartbeat?for=5x", 400, "want a duration"},
		{"/fault/modbus-exception?code=7", 400, "code 7"},
		{"/fault/modbus-exception?code=4&on=sometimes", 400, "want any, reads, writes or divert"},
		{"/fault/estop?on=maybe", 400, "want true or false"},
		{"/rate?items=-1", 400, "want 0..100000"},
		{"/fault/drop-scanner?i=0", 400, "want 0..-1"}, // scanners off in this test
		{"/fault/mute?on=perhaps", 400, "want true or false"},
		{"/fault/silent-unit?on=true", 200, ""},
		{"/fault/silent-unit?on=false", 200, ""},
	}
	for _, tc := range cases {
		code, body := post(tc.path)
		if code != tc.code || !strings.Contains(body, tc.errs) {
			t.Errorf("POST %s: %d %s, want %d containing %q", tc.path, code, body, tc.code, tc.errs)
		}
	}
	if blk := c.plcBlock(t); blk[6] != 1<<2 || blk[23] != 1<<15 {
		t.Errorf("chute bits after control: full %#x disabled %#x", blk[6], blk[23])
	}
	if code, _ := post("/fault/modbus-exception?code=6&n=1"); code != 200 {
		t.Fatal(code)
	}
	if _, err := c.ReadHoldingRegisters(100, 1); exceptionCode(err) != 6 {
		t.Errorf("after control exception: %v", err)
	}
	// Limited to writes: the read is answered, the write is not.
	if code, _ := post("/fault/modbus-exception?code=4&n=1&on=writes"); code != 200 {
		t.Fatal(code)
	}
	if _, err := c.ReadHoldingRegisters(100, 1); err != nil {
		t.Errorf("read with a write exception pending: %v", err)
	}
	if _, err := c.WriteMultipleRegisters(1, 1, []byte{0, 1}); exceptionCode(err) != 4 {
		t.Errorf("write after control exception on writes: %v", err)
	}
	// Mute over the control endpoint: a request goes unanswered until the
	// fault is switched off, then its connection is closed.
	if code, _ := post("/fault/mute?on=true"); code != 200 {
		t.Fatal(code)
	}
	raw := rawDial(t, s)
	if _, err := raw.Write(mbapRead(1, 1, 100)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a held request", 2*time.Second, func() bool { return s.ModbusHeld() == 1 })
	if code, _ := post("/fault/mute?on=false"); code != 200 {
		t.Fatal(code)
	}
	if n, err := readWithin(raw, 2*time.Second); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("held connection after mute off: %d bytes, %v", n, err)
	}
	if code, _ := post("/fault/never-accept?on=true"); code != 200 {
		t.Fatal(code)
	}
	if c, err := net.DialTimeout("tcp", s.ModbusAddr(), 200*time.Millisecond); err == nil || !isTimeout(err) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial with never-accept on: %v", err)
	}
	if code, _ := post("/fault/never-accept?on=false"); code != 200 {
		t.Fatal(code)
	}
	c = dial(t, s, 1)
	if code, _ := post("/fault/estop?on=true"); code != 200 || s.PLC().State() != StateEmergencyStop {
		t.Errorf("estop: %d %v", code, s.PLC().State())
	}
	if code, _ := post("/fault/sorter-state?state=4"); code != 200 || s.PLC().State() != StateMaintenance {
		t.Errorf("sorter state: %d %v", code, s.PLC().State())
	}
	boot := s.PLC().Snapshot().BootID
	if code, _ := post("/fault/cold-restart"); code != 200 || s.PLC().Snapshot().BootID == boot {
		t.Error("cold restart via control")
	}
	resp, err := http.Get(ts.URL + "/report")
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Errorf("report json: %v", err)
	}
	resp.Body.Close()
	resp, err = http.Get(ts.URL + "/manifest")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "package_id,destination\n") || strings.Count(string(b), "\n") < 100 {
		t.Errorf("manifest: %.80q", b)
	}
	resp, err = http.Get(ts.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Modbus != s.ModbusAddr() {
		t.Errorf("status: %v %+v", err, st.Modbus)
	}
	resp.Body.Close()
}
