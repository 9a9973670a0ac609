package scanner

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// Linux routes all of 127/8 to lo: a dialer bound to 127.0.0.2 plays a
// host that is not the scanner.
var (
	scannerIP  = net.IPv4(127, 0, 0, 1)
	strangerIP = net.IPv4(127, 0, 0, 2)
)

func dialFrom(t *testing.T, ip net.IP, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 15 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByGateway waits until the gateway has closed c.
func closedByGateway(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(15 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection from %s still open: %v", c.LocalAddr(), err)
	}
}

// TestServerStrangerLoop (issue 10, item 3): a host that is not the
// scanner's peer is refused before the scanner connects and while it is
// connected, however often it tries; its telegrams never become reads,
// and the refusals are counted and logged about once a second.
func TestServerStrangerLoop(t *testing.T) {
	var logs lockedBuffer
	src, err := New([]Config{{Name: "S2", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1", HeartbeatTimeout: time.Minute}},
		zerolog.New(io.MultiWriter(&logs, zerolog.NewTestWriter(t))))
	if err != nil {
		t.Fatal(err)
	}
	c := run(t, src)
	addr := src.ListenAddr("S2")

	x := dialFrom(t, strangerIP, addr)
	x.Write([]byte("\x029;EVIL\x03")) // may fail: the gateway may have closed it already
	closedByGateway(t, x)
	if st := status(src, "S2"); st.State != devices.LinkConnecting || st.Refused != 1 || st.Remote != "" {
		t.Fatalf("after a stranger: %+v", st)
	}

	real := dialFrom(t, scannerIP, addr)
	write(t, real, "\x021;A\x03")
	waitFor(t, "the scanner's read", func() bool { return c.len() == 1 })
	const loop = 50
	for i := range loop {
		x := dialFrom(t, strangerIP, addr)
		fmt.Fprintf(x, "\x02%d;EVIL\x03", 100+i)
		closedByGateway(t, x)
	}
	write(t, real, "\x022;B\x03")
	waitFor(t, "the scanner's second read", func() bool { return c.len() == 2 })
	for _, r := range c.get() {
		if r.Scanner != "S2" || r.TID > 2 {
			t.Fatalf("injected read %+v", r)
		}
	}
	st := status(src, "S2")
	if st.State != devices.LinkUp || st.Refused != loop+1 || st.Reconnects != 0 || st.Remote != real.LocalAddr().String() {
		t.Fatalf("after the loop: %+v", st)
	}
	if n := strings.Count(logs.String(), "unknown peer refused"); n < 1 || n > 10 {
		t.Fatalf("%d log lines for %d refusals:\n%s", n, loop+1, logs.String())
	}
}

// TestServerSecondConnection (issue 10, item 3): a second connection from
// the scanner's own IP is refused while the first is live, and replaces it
// once the first has been silent past the heartbeat timeout (the scanner
// rebooted and left a half-open connection).
func TestServerSecondConnection(t *testing.T) {
	const hb = 500 * time.Millisecond
	src := newSource(t, Config{Name: "S2", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1", HeartbeatTimeout: hb})
	c := run(t, src)
	addr := src.ListenAddr("S2")
	first := dialFrom(t, scannerIP, addr)
	write(t, first, "\x021;A\x03")
	waitFor(t, "first read", func() bool { return c.len() == 1 })

	write(t, first, "\x02HB\x03")
	second := dialFrom(t, scannerIP, addr)
	closedByGateway(t, second)
	if st := status(src, "S2"); st.Refused != 1 || st.Reconnects != 0 || st.Remote != first.LocalAddr().String() {
		t.Fatalf("after the second connection: %+v", st)
	}
	write(t, first, "\x022;B\x03")
	waitFor(t, "a read on the first connection", func() bool { return c.len() == 2 })

	waitFor(t, "the first connection silent", func() bool { return !status(src, "S2").Online })
	third := dialFrom(t, scannerIP, addr)
	write(t, third, "\x023;C\x03")
	waitFor(t, "a read on the new connection", func() bool { return c.len() == 3 })
	closedByGateway(t, first)
	st := status(src, "S2")
	if st.State != devices.LinkUp || st.Refused != 1 || st.Reconnects != 1 || st.Remote != third.LocalAddr().String() {
		t.Fatalf("after the replacement: %+v", st)
	}
	third.Close()
	waitFor(t, "down after the scanner left", func() bool { return status(src, "S2").State == devices.LinkDown })
}
