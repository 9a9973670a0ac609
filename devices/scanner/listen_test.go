package scanner

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// TestListenPortTaken (issue 10, item 1): a server-mode scanner whose port
// another process holds fails alone. The client-mode scanner and the other
// listener of the same Source read regardless; the failing scanner is
// shown down with the reason from Ready on, the failure is counted and
// logged once (not once per retry); once the port is free the listener
// binds and serves.
func TestListenPortTaken(t *testing.T) {
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	taken := holder.Addr().String()
	fs := newFakeScanner(t)
	var logs lockedBuffer
	src, err := New([]Config{
		{Name: "S1", Addr: fs.addr(), HeartbeatTimeout: time.Minute},
		{Name: "S2", Mode: ModeServer, Addr: taken, Peer: "127.0.0.1", HeartbeatTimeout: time.Minute,
			BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond},
		{Name: "S3", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1", HeartbeatTimeout: time.Minute},
	}, zerolog.New(io.MultiWriter(&logs, zerolog.NewTestWriter(t))))
	if err != nil {
		t.Fatal(err)
	}
	c := run(t, src)

	// Visible at once: Ready comes after the first attempt's bookkeeping.
	want := "listen " + taken + ": address already in use"
	if st := status(src, "S2"); st.State != devices.LinkDown || st.Online || st.LastError != want || st.ListenErrors < 1 {
		t.Fatalf("S2 at Ready: %+v, want down with %q", st, want)
	}
	if a := src.ListenAddr("S2"); a != "" {
		t.Fatalf("S2 listen addr %q while the port is taken", a)
	}

	conn := fs.accept(t)
	write(t, conn, "\x021;A\x03")
	waitFor(t, "a read from the client-mode scanner", func() bool { return c.len() == 1 })
	s3, err := net.Dial("tcp", src.ListenAddr("S3"))
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	write(t, s3, "\x022;B\x03")
	waitFor(t, "a read from the other listener", func() bool { return c.len() == 2 })

	// Past the one-second limit of the other device logs, a port that
	// stays taken is still one line (then one a minute).
	failingSince := time.Now()
	waitFor(t, "retries for over a second", func() bool {
		return time.Since(failingSince) > 1500*time.Millisecond && status(src, "S2").ListenErrors >= 5
	})
	if n := strings.Count(logs.String(), "cannot listen for scanners"); n != 1 {
		t.Fatalf("%d log lines for %d failed binds, want 1:\n%s", n, status(src, "S2").ListenErrors, logs.String())
	}

	holder.Close()
	waitFor(t, "S2 bound once the port is free", func() bool { return src.ListenAddr("S2") == taken })
	s2, err := net.Dial("tcp", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	write(t, s2, "\x023;C\x03")
	waitFor(t, "a read from S2", func() bool { return c.len() == 3 })
	if r := c.get()[2]; r.Scanner != "S2" || r.TID != 3 {
		t.Fatalf("read %+v", r)
	}
	if st := status(src, "S2"); st.State != devices.LinkUp {
		t.Fatalf("S2 after bind: %+v", st)
	}
	if !strings.Contains(logs.String(), `"failed_attempts"`) || !strings.Contains(logs.String(), "listening for scanners") {
		t.Fatalf("no recovery line:\n%s", logs.String())
	}
}

// TestListenNeverFree: Run keeps retrying and returns nil when stopped,
// with the port still taken (run checks both at cleanup).
func TestListenNeverFree(t *testing.T) {
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	src := newSource(t, Config{Name: "S2", Mode: ModeServer, Addr: holder.Addr().String(), Peer: "127.0.0.1",
		BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	run(t, src)
	waitFor(t, "retries", func() bool { return status(src, "S2").ListenErrors >= 3 })
}

func TestCheckListen(t *testing.T) {
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	taken := holder.Addr().String()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()

	err = CheckListen([]Config{
		{Name: "S1", Addr: taken}, // client mode: dialled, not bound
		{Name: "S2", Mode: ModeServer, Addr: taken, Peer: "127.0.0.1"},
		{Name: "S3", Mode: ModeServer, Addr: free, Peer: "127.0.0.1"},
		{Name: "S4", Mode: ModeServer, Addr: taken, Peer: "127.0.0.2"}, // shares S2's listener
		{Name: "S5", Mode: ModeServer, Addr: free},
	})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{`scanner "S2": listen ` + taken + `: address already in use`, `scanner "S5": server mode needs peer`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	for _, not := range []string{`"S1"`, `"S3"`, `"S4"`} {
		if strings.Contains(msg, not) {
			t.Errorf("error %q names %s", msg, not)
		}
	}
	if err := CheckListen([]Config{{Name: "S3", Mode: ModeServer, Addr: free, Peer: "127.0.0.1"}}); err != nil {
		t.Fatalf("free port: %v", err)
	}
	// The check released the port.
	ln, err = net.Listen("tcp", free)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	ln.Close()
}
