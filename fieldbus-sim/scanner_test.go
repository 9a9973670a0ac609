package fieldbussim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// runScanners starts a scanner set until the test ends.
func runScanners(t *testing.T, cfg ScannerConfig) *scanners {
	t.Helper()
	s, err := newScanners(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "scanners", s.Run)
	return s
}

// runUntilCleanup runs part until the test ends, then stops it and checks
// that it stopped cleanly.
func runUntilCleanup(t *testing.T, name string, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s run: %v", name, err)
		}
	})
}

// dialScanner connects a plain TCP client (the gateway's side) to scanner i
// and waits until the scanner has registered it.
func dialScanner(t *testing.T, s *scanners, i int) net.Conn {
	t.Helper()
	before := s.Stats()[i].Connections
	c, err := net.Dial("tcp", s.Addrs()[i])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Accepted is counted before the connection is registered for sends;
	// wait for the registration itself.
	waitFor(t, "scanner to register the connection", 10*time.Second, func() bool {
		return s.Stats()[i].Connections > before
	})
	return c
}

func readExactly(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, b)
	}
	return b
}

func TestScannerFramingBytes(t *testing.T) {
	tests := []struct {
		name    string
		framing string
		tid     uint32
		codes   []string
		want    []byte
	}{
		{"stx one code", FramingSTX, 42, []string{"]C142090210"},
			// STX "42;]C142090210" ETX
			[]byte{0x02, '4', '2', ';', ']', 'C', '1', '4', '2', '0', '9', '0', '2', '1', '0', 0x03}},
		{"stx two codes with GS", FramingSTX, 7, []string{"]C1420902101234\x1d9212", "1Z2203480342495730"},
			append(append([]byte{0x02}, "7;]C1420902101234\x1d9212;1Z2203480342495730"...), 0x03)},
		{"stx no-read", FramingSTX, 4294967295, nil,
			append(append([]byte{0x02}, "4294967295;NoRead"...), 0x03)},
		{"crlf one code", FramingCRLF, 1, []string{"TBA123456789012"},
			// "1;TBA123456789012" CR LF
			append([]byte("1;TBA123456789012"), 0x0d, 0x0a)},
		{"crlf no-read", FramingCRLF, 65536, nil, []byte("65536;NoRead\r\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := runScanners(t, ScannerConfig{Framing: tc.framing, Heartbeat: -1})
			c := dialScanner(t, s, 0)
			s.Send(0, tc.tid, tc.codes)
			got := readExactly(t, c, len(tc.want))
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("wire bytes\n got % x\nwant % x", got, tc.want)
			}
			if st := s.Stats()[0]; st.Telegrams != 1 || (tc.codes == nil) != (st.NoReads == 1) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestScannerCustomTokens(t *testing.T) {
	s := runScanners(t, ScannerConfig{Heartbeat: -1, NoReadToken: "??", Separator: "|"})
	c := dialScanner(t, s, 0)
	s.SendNoRead(0, 9)
	s.Send(0, 10, []string{"A", "B"})
	want := []byte("\x029|??\x03\x0210|A|B\x03")
	if got := readExactly(t, c, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestScannerHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		framing string
		want    string
	}{{FramingSTX, "\x02HB\x03"}, {FramingCRLF, "HB\r\n"}} {
		t.Run(tc.framing, func(t *testing.T) {
			s := runScanners(t, ScannerConfig{Framing: tc.framing, Heartbeat: 5 * time.Millisecond})
			c := dialScanner(t, s, 0)
			got := readExactly(t, c, 2*len(tc.want))
			if string(got) != tc.want+tc.want {
				t.Fatalf("got %q, want two heartbeats %q", got, tc.want)
			}
			waitFor(t, "heartbeat counter", 5*time.Second, func() bool { return s.Stats()[0].Heartbeats >= 2 })
		})
	}
}

func TestScannerGarbageAndOversize(t *testing.T) {
	s := runScanners(t, ScannerConfig{Heartbeat: -1})
	c := dialScanner(t, s, 0)
	s.Garbage(0, 3)
	s.Oversize(0, 1)
	s.Send(0, 5, []string{"X"})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var all []byte
	want := "\x025;X\x03"
	buf := make([]byte, 8192)
	for !bytes.HasSuffix(all, []byte(want)) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v after %d bytes", err, len(all))
		}
		all = append(all, buf[:n]...)
	}
	// Split into frames: STX ... ETX, nothing in between.
	var frames [][]byte
	rest := all
	for len(rest) > 0 {
		if rest[0] != 0x02 {
			t.Fatalf("byte % x outside a frame", rest[0])
		}
		end := bytes.IndexByte(rest, 0x03)
		if end < 0 {
			t.Fatalf("unterminated frame")
		}
		p := rest[1:end]
		if bytes.IndexByte(p, 0x02) >= 0 {
			t.Fatalf("STX inside a frame payload")
		}
		frames = append(frames, p)
		rest = rest[end+1:]
	}
	if len(frames) != 5 {
		t.Fatalf("got %d frames, want 3 garbage + 1 oversize + 1 telegram", len(frames))
	}
	if o := frames[3]; len(o) != oversizeLen || len(o) <= 4096 || strings.Trim(string(o), "9") != "" {
		t.Fatalf("oversize frame payload: %d bytes", len(o))
	}
	st := s.Stats()[0]
	if st.Garbage != 3 || st.Oversize != 1 || st.Telegrams != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestScannerMultipleGatewaysAndDrop(t *testing.T) {
	s := runScanners(t, ScannerConfig{Count: 2, Heartbeat: -1})
	a := dialScanner(t, s, 1)
	b := dialScanner(t, s, 1)
	s.Send(1, 3, []string{"C"})
	want := []byte("\x023;C\x03")
	for _, c := range []net.Conn{a, b} {
		if got := readExactly(t, c, len(want)); !bytes.Equal(got, want) {
			t.Fatalf("got %q", got)
		}
	}
	s.Send(0, 4, []string{"D"}) // scanner 1 has no gateway: lost and counted
	if st := s.Stats()[0]; st.NoConnection != 1 || st.Telegrams != 0 {
		t.Fatalf("scanner 1 stats %+v", st)
	}
	s.Drop(1)
	for _, c := range []net.Conn{a, b} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("after Drop: read error %v, want EOF", err)
		}
	}
	waitFor(t, "connections gone", 5*time.Second, func() bool { return s.Stats()[1].Connections == 0 })
	c := dialScanner(t, s, 1) // the gateway reconnects: the scanner still listens
	s.Send(1, 6, []string{"E"})
	if got := readExactly(t, c, 5); string(got) != "\x026;E\x03" {
		t.Fatalf("after reconnect got %q", got)
	}
	if st := s.Stats()[1]; st.Drops != 2 || st.Accepted != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestScannerDialOutRedials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := runScanners(t, ScannerConfig{DialOut: []string{ln.Addr().String()}, Heartbeat: -1,
		Framing: FramingCRLF, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	accept := func() net.Conn {
		t.Helper()
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		waitFor(t, "scanner connected", 5*time.Second, func() bool { return s.Stats()[0].Connections == 1 })
		return c
	}
	c := accept()
	s.Send(0, 11, []string{"]C140390210"})
	if got := readExactly(t, c, 16); string(got) != "11;]C140390210\r\n" {
		t.Fatalf("got %q", got)
	}
	s.Drop(0)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("after Drop: %v, want EOF", err)
	}
	c2 := accept() // the scanner redials
	s.SendNoRead(0, 12)
	if got := readExactly(t, c2, 11); string(got) != "12;NoRead\r\n" {
		t.Fatalf("got %q", got)
	}
	// The gateway hanging up is noticed too: the scanner redials again.
	c2.Close()
	c3 := accept()
	s.Send(0, 13, []string{"Z"})
	if got := readExactly(t, c3, 6); string(got) != "13;Z\r\n" {
		t.Fatalf("got %q", got)
	}
}

// TestScannerSlowGatewayNeverBlocks: a gateway that stops reading fills its
// queue; Send drops and counts instead of blocking the conveyor.
func TestScannerSlowGatewayNeverBlocks(t *testing.T) {
	s := runScanners(t, ScannerConfig{Heartbeat: -1, QueueSize: 4})
	dialScanner(t, s, 0) // never read
	code := strings.Repeat("A", 1000)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20000 {
			s.Send(0, uint32(i+1), []string{code})
		}
	}()
	wg.Wait()
	if st := s.Stats()[0]; st.QueueDrops == 0 {
		t.Fatalf("no queue drops with a stalled gateway: %+v", st)
	}
}

func TestScannerConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ScannerConfig
		wantErr string
	}{
		{"defaults", ScannerConfig{}, ""},
		{"count from addrs", ScannerConfig{Addrs: []string{"127.0.0.1:0", "127.0.0.1:0"}}, ""},
		{"too many addrs", ScannerConfig{Count: 1, Addrs: []string{"a:1", "b:2"}}, "2 addrs for 1"},
		{"dial-out count", ScannerConfig{Count: 3, DialOut: []string{"a:1", "b:2"}}, "dial-out"},
		{"both modes", ScannerConfig{Addrs: []string{"a:1"}, DialOut: []string{"b:2"}}, "both"},
		{"framing", ScannerConfig{Framing: "lf"}, "framing"},
		{"token with framing byte", ScannerConfig{Separator: "\x03"}, "framing byte"},
		{"queue", ScannerConfig{QueueSize: -1}, "queue size"},
		{"backoff", ScannerConfig{BackoffMin: time.Second, BackoffMax: time.Millisecond}, "back-off"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrScannerConfig) {
				t.Fatalf("error %v, want ErrScannerConfig containing %q", err, tc.wantErr)
			}
		})
	}
}

func BenchmarkScannerSend(b *testing.B) {
	s, err := newScanners(ScannerConfig{Heartbeat: -1, QueueSize: 1 << 16}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if err := s.Listen(); err != nil {
		b.Fatal(err)
	}
	go func() { done <- s.Run(ctx) }()
	c, err := net.Dial("tcp", s.Addrs()[0])
	if err != nil {
		b.Fatal(err)
	}
	go io.Copy(io.Discard, c)
	for s.Stats()[0].Connections == 0 {
		time.Sleep(time.Millisecond)
	}
	codes := []string{"]C1420902101234"}
	b.ReportAllocs()
	for b.Loop() {
		s.Send(0, 123456, codes)
	}
	b.StopTimer()
	c.Close()
	cancel()
	<-done
}

func TestScannerListenFailureReleasesPorts(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s, err := newScanners(ScannerConfig{Addrs: []string{"127.0.0.1:0", busy.Addr().String()}}, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Listen()
	if err == nil || !strings.Contains(err.Error(), "scanner-2") {
		t.Fatalf("Listen error %v, want one naming scanner-2", err)
	}
	if a := s.Addrs(); a[0] != "" || a[1] != "" {
		t.Fatalf("addresses after a failed Listen: %q", a)
	}
}
