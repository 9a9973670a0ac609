package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"sortgw/devices"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// collector is a sink that keeps every read.
type collector struct {
	mu    sync.Mutex
	reads []devices.Read
}

func (c *collector) sink(r devices.Read) {
	c.mu.Lock()
	c.reads = append(c.reads, r)
	c.mu.Unlock()
}

func (c *collector) get() []devices.Read {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]devices.Read(nil), c.reads...)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reads)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// run starts src and stops it (and waits for Run to return) at test end.
func run(t *testing.T, src *Source) *collector {
	t.Helper()
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, c.sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		for _, st := range src.Status() {
			if st.State != devices.LinkClosed {
				t.Errorf("%s: state %v after Run returned", st.Name, st.State)
			}
		}
	})
	select {
	case <-src.Ready():
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	return c
}

func newSource(t *testing.T, cfgs ...Config) *Source {
	t.Helper()
	src, err := New(cfgs, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// fakeScanner is a plain TCP peer that plays a scanner's server side:
// the test writes exact bytes into whatever connection the gateway made.
type fakeScanner struct {
	ln    net.Listener
	conns chan net.Conn
	wg    sync.WaitGroup
}

func newFakeScanner(t *testing.T) *fakeScanner {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeScanner{ln: ln, conns: make(chan net.Conn, 16)}
	fs.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fs.conns <- c
		}
	})
	t.Cleanup(func() {
		ln.Close()
		fs.wg.Wait()
		close(fs.conns)
		for c := range fs.conns {
			c.Close()
		}
	})
	return fs
}

func (fs *fakeScanner) addr() string { return fs.ln.Addr().String() }

// accept returns the gateway's next connection.
func (fs *fakeScanner) accept(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-fs.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("the gateway did not connect")
		return nil
	}
}

func write(t *testing.T, c net.Conn, chunks ...string) {
	t.Helper()
	for _, s := range chunks {
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatalf("write %q: %v", s, err)
		}
	}
}

func status(src *Source, name string) Stats {
	for _, st := range src.Stats() {
		if st.Name == name {
			return st
		}
	}
	return Stats{}
}

// wireCase is one exact byte stream and what the gateway must make of it.
type wireCase struct {
	name    string
	framing string
	chunks  []string // written one by one
	reads   []devices.Read
	want    Stats // counters compared: Reads NoReads Heartbeats Malformed Oversized Ignored Truncated
}

func wireCases() []wireCase {
	big := strings.Repeat("9", 4097)
	exact := "1;" + strings.Repeat("A", 4094) // 4096 bytes of payload
	return []wireCase{
		{
			name:    "stx",
			framing: FramingSTX,
			chunks: []string{
				"\x02HB\x03",                      // heartbeat
				"\x0242;1Z999AA10123456784\x03",   // one code
				"\x027;]C1420902101\x1d92012345;", // GS1-128, split mid-frame
				"1Z999AA10123456784\x03",
				"\x029;NoRead\x03",         // no-read
				"noise\r\n",                // outside any frame: 7 bytes ignored
				"\x02" + big + "\x03",      // oversized: dropped, connection kept
				"\x020;A\x03\x0242;\x03",   // tid 0, empty code: malformed
				"\x0212;AB\x0213;C\x03",    // 12 truncated by a new STX
				"\x02" + exact + "\x03",    // exactly MaxFrame: kept
				"\x0214;x\x03\x0215;y\x03", // two in one write
			},
			reads: []devices.Read{
				{TID: 42, Codes: []string{"1Z999AA10123456784"}},
				{TID: 7, Codes: []string{"]C1420902101\x1d92012345", "1Z999AA10123456784"}},
				{TID: 9, NoRead: true},
				{TID: 13, Codes: []string{"C"}},
				{TID: 1, Codes: []string{strings.Repeat("A", 4094)}},
				{TID: 14, Codes: []string{"x"}},
				{TID: 15, Codes: []string{"y"}},
			},
			want: Stats{ScannerStatus: devices.ScannerStatus{Reads: 7, NoReads: 1, Heartbeats: 1, Malformed: 2, Oversized: 1}, Ignored: 7, Truncated: 1},
		},
		{
			name:    "crlf",
			framing: FramingCRLF,
			chunks: []string{
				"HB\r\n",
				"42;1Z999AA10123456784\r",
				"\n7;]d2420100019\x1d00003123450000000017\r\n",
				"9;NoRead\r\n",
				big + "\r\n",               // oversized
				"0;A\r\n42;\r\n1;A\nB\r\n", // tid 0, empty code: malformed; a bare LF is data
				exact + "\r\n",
				"14;x\r\n15;y\r\n",
			},
			reads: []devices.Read{
				{TID: 42, Codes: []string{"1Z999AA10123456784"}},
				{TID: 7, Codes: []string{"]d2420100019\x1d00003123450000000017"}},
				{TID: 9, NoRead: true},
				{TID: 1, Codes: []string{"A\nB"}},
				{TID: 1, Codes: []string{strings.Repeat("A", 4094)}},
				{TID: 14, Codes: []string{"x"}},
				{TID: 15, Codes: []string{"y"}},
			},
			want: Stats{ScannerStatus: devices.ScannerStatus{Reads: 7, NoReads: 1, Heartbeats: 1, Malformed: 2, Oversized: 1}},
		},
	}
}

func checkWire(t *testing.T, src *Source, c *collector, name string, tc wireCase) {
	t.Helper()
	waitFor(t, "all reads", func() bool { return c.len() >= len(tc.reads) })
	var total uint64
	for _, s := range tc.chunks {
		total += uint64(len(s))
	}
	waitFor(t, "all bytes counted", func() bool { return status(src, name).Bytes == total })
	got := c.get()
	for i := range got {
		if got[i].Scanner != name {
			t.Errorf("read %d from scanner %q", i, got[i].Scanner)
		}
		if got[i].At.IsZero() || got[i].At == got[i].At.Round(0) {
			t.Errorf("read %d: At %v has no monotonic reading", i, got[i].At)
		}
		if i > 0 && got[i].At.Before(got[i-1].At) {
			t.Errorf("read %d earlier than the one before", i)
		}
		got[i].Scanner, got[i].At = "", time.Time{}
	}
	if !reflect.DeepEqual(got, tc.reads) {
		t.Fatalf("reads\n%+v\nwant\n%+v", got, tc.reads)
	}
	st := status(src, name)
	type counters struct{ reads, noreads, hbs, malformed, oversized, ignored, truncated uint64 }
	gc := counters{st.Reads, st.NoReads, st.Heartbeats, st.Malformed, st.Oversized, st.Ignored, st.Truncated}
	wc := counters{tc.want.Reads, tc.want.NoReads, tc.want.Heartbeats, tc.want.Malformed, tc.want.Oversized, tc.want.Ignored, tc.want.Truncated}
	if gc != wc {
		t.Fatalf("counters %+v, want %+v", gc, wc)
	}
	if st.State != devices.LinkUp || !st.Online || st.LastHeartbeat.IsZero() || st.LastHeard.Before(st.LastHeartbeat) {
		t.Fatalf("status %+v: want up and online", st.ScannerStatus)
	}
}

// TestClientWire: the gateway dials a scanner that writes exact bytes.
func TestClientWire(t *testing.T) {
	for _, tc := range wireCases() {
		// A 512-byte read buffer cuts the 4 KiB frames over several reads.
		for _, rb := range []int{0, 512} {
			t.Run(fmt.Sprintf("%s/readbuf-%d", tc.name, rb), func(t *testing.T) {
				fs := newFakeScanner(t)
				src := newSource(t, Config{Name: "s1", Addr: fs.addr(), Framing: tc.framing, HeartbeatTimeout: time.Minute, ReadBuffer: rb})
				c := run(t, src)
				conn := fs.accept(t)
				write(t, conn, tc.chunks...)
				checkWire(t, src, c, "s1", tc)
			})
		}
	}
}

// TestServerWire: the scanner dials the gateway's listener.
func TestServerWire(t *testing.T) {
	for _, tc := range wireCases() {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, Config{Name: "in1", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1", Framing: tc.framing, HeartbeatTimeout: time.Minute})
			c := run(t, src)
			addr := src.ListenAddr("in1")
			if addr == "" || strings.HasSuffix(addr, ":0") {
				t.Fatalf("listen addr %q", addr)
			}
			if st := src.Status()[0]; st.State != devices.LinkConnecting || st.Online {
				t.Fatalf("before the scanner dials: %+v", st)
			}
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			write(t, conn, tc.chunks...)
			checkWire(t, src, c, "in1", tc)
		})
	}
}

func TestClientReconnect(t *testing.T) {
	fs := newFakeScanner(t)
	src := newSource(t, Config{Name: "s1", Addr: fs.addr(), HeartbeatTimeout: time.Minute})
	c := run(t, src)
	conn := fs.accept(t)
	write(t, conn, "\x021;A\x03")
	waitFor(t, "first read", func() bool { return c.len() == 1 })
	conn.Close()
	// The scanner rebooted: the gateway redials on its own.
	conn = fs.accept(t)
	write(t, conn, "\x022;B\x03")
	waitFor(t, "read after the reconnect", func() bool { return c.len() == 2 })
	st := status(src, "s1")
	if st.Reconnects != 1 || st.State != devices.LinkUp || !strings.Contains(st.LastError, "closed by the scanner") {
		t.Fatalf("after reconnect: %+v", st)
	}
}

func TestClientDialRetries(t *testing.T) {
	// Nobody listens: the gateway keeps trying, shows the scanner down
	// and keeps the error for the status page.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	src := newSource(t, Config{Name: "s1", Addr: addr, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	run(t, src)
	waitFor(t, "a refused dial", func() bool {
		st := status(src, "s1")
		return strings.Contains(st.LastError, "refused") && st.State != devices.LinkUp && !st.Online
	})
}

// TestClientBackoffAfterDrops: a scanner that accepts and hangs up at once
// is redialled again and again; the first connection that carries a
// telegram is kept.
func TestClientBackoffAfterDrops(t *testing.T) {
	fs := newFakeScanner(t)
	src := newSource(t, Config{Name: "s1", Addr: fs.addr(), BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond, HeartbeatTimeout: time.Minute})
	c := run(t, src)
	for range 3 {
		fs.accept(t).Close()
	}
	conn := fs.accept(t)
	write(t, conn, "\x0277;Z\x03")
	waitFor(t, "read", func() bool { return c.len() == 1 })
	if st := status(src, "s1"); st.Reconnects != 3 || st.State != devices.LinkUp {
		t.Fatalf("status %+v", st)
	}
}

// TestClientSilentRedial: a connection that carries nothing for the
// heartbeat timeout is closed and redialled (a half-open connection to a
// rebooted scanner looks exactly like this).
func TestClientSilentRedial(t *testing.T) {
	fs := newFakeScanner(t)
	src := newSource(t, Config{Name: "s1", Addr: fs.addr(), HeartbeatTimeout: 50 * time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	run(t, src)
	first := fs.accept(t)
	write(t, first, "\x02HB\x03")
	waitFor(t, "online", func() bool { return status(src, "s1").Online })
	// Silence: the gateway gives up on this connection and dials again.
	fs.accept(t)
	if _, err := first.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent connection not closed by the gateway")
	}
	st := status(src, "s1")
	if !strings.Contains(st.LastError, errSilent.Error()) {
		t.Fatalf("last error %q", st.LastError)
	}
}

// TestOfflineDetection: server mode keeps a silent connection but shows
// the scanner offline, and online again at its next heartbeat.
func TestOfflineDetection(t *testing.T) {
	src := newSource(t, Config{Name: "in1", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1", HeartbeatTimeout: 30 * time.Millisecond})
	run(t, src)
	conn, err := net.Dial("tcp", src.ListenAddr("in1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	write(t, conn, "\x02HB\x03")
	waitFor(t, "online", func() bool { return status(src, "in1").Online })
	waitFor(t, "offline", func() bool {
		st := status(src, "in1")
		return !st.Online && st.State == devices.LinkUp
	})
	write(t, conn, "\x02HB\x03")
	waitFor(t, "online again", func() bool { return status(src, "in1").Heartbeats == 2 && status(src, "in1").Online })
	// Bytes that are no telegram do not count as being heard.
	before := status(src, "in1").LastHeard
	write(t, conn, "garbage\x02\x03")
	waitFor(t, "garbage counted", func() bool { return status(src, "in1").Malformed == 1 })
	if got := status(src, "in1").LastHeard; !got.Equal(before) {
		t.Fatalf("garbage moved LastHeard from %v to %v", before, got)
	}
}

// TestServerPeers: scanners sharing a listen address are told apart by
// their IP; an unknown peer is refused.
func TestServerPeers(t *testing.T) {
	// A shared address needs a fixed port: borrow a free one from the OS.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	shared := ln.Addr().String()
	ln.Close()
	src := newSource(t,
		Config{Name: "a", Mode: ModeServer, Addr: shared, Peer: "127.0.0.1", HeartbeatTimeout: time.Minute},
		Config{Name: "b", Mode: ModeServer, Addr: shared, Peer: "192.0.2.7", HeartbeatTimeout: time.Minute},
		Config{Name: "c", Mode: ModeServer, Addr: shared, Peer: "192.0.2.8", HeartbeatTimeout: time.Minute, Framing: FramingCRLF},
	)
	c := run(t, src)
	if src.ListenAddr("a") != src.ListenAddr("b") {
		t.Fatalf("a on %s, b on %s: want one listener", src.ListenAddr("a"), src.ListenAddr("b"))
	}
	conn, err := net.Dial("tcp", src.ListenAddr("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	write(t, conn, "\x021;A\x03")
	waitFor(t, "read", func() bool { return c.len() == 1 })
	if r := c.get()[0]; r.Scanner != "a" {
		t.Fatalf("read from %q, want a", r.Scanner)
	}

	// A lone scanner with a peer refuses everybody else.
	src2 := newSource(t, Config{Name: "d", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "192.0.2.9"})
	run(t, src2)
	conn2, err := net.Dial("tcp", src2.ListenAddr("d"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if _, err := conn2.Read(make([]byte, 1)); err == nil {
		t.Fatal("refused connection still open")
	}
	waitFor(t, "refusal counted", func() bool { return status(src2, "d").Refused == 1 })
}

// TestRunErrors: Run fails only when misused.
func TestRunErrors(t *testing.T) {
	src := newSource(t, Config{Name: "in1", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1"})
	run(t, src)
	if err := src.Run(context.Background(), func(devices.Read) {}); !errors.Is(err, ErrRunning) {
		t.Fatalf("second run: %v", err)
	}
	if err := newSource(t, Config{Name: "x", Addr: "h:1"}).Run(context.Background(), nil); !errors.Is(err, ErrNoSink) {
		t.Fatalf("nil sink: %v", err)
	}
}

func TestConfig(t *testing.T) {
	c := Config{Name: "s", Addr: "10.0.0.5"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{Name: "s", Addr: "10.0.0.5:2001", Mode: "client", Framing: "stx", MaxFrame: 4096, HeartbeatTimeout: 3 * time.Second,
		NoReadToken: "NoRead", HeartbeatToken: "HB", Separator: ";", BackoffMin: 200 * time.Millisecond, BackoffMax: 2 * time.Second, ReadBuffer: 32 << 10}
	if c != want {
		t.Fatalf("defaults\n%+v\nwant\n%+v", c, want)
	}
	s := Config{Name: "s", Mode: "server", Framing: "CRLF", Peer: "10.0.0.5, ::ffff:10.0.0.6,fe80::1%eth0"}
	if err := s.Validate(); err != nil || s.Addr != ":2001" || s.Framing != "crlf" {
		t.Fatalf("server defaults %+v %v", s, err)
	}

	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no name", Config{Addr: "h:1"}, "without a name"},
		{"no addr", Config{Name: "s"}, "needs the scanner's address"},
		{"bad mode", Config{Name: "s", Addr: "h:1", Mode: "both"}, `mode "both"`},
		{"bad framing", Config{Name: "s", Addr: "h:1", Framing: "etx"}, `framing "etx"`},
		{"bad addr", Config{Name: "s", Addr: "h:1:2"}, "address"},
		{"port above 65535", Config{Name: "s", Mode: "server", Addr: ":70000", Peer: "10.0.0.1"}, `port "70000": want a number in 1..65535`},
		{"port by name", Config{Name: "s", Addr: "h:http"}, `port "http"`},
		{"dial port 0", Config{Name: "s", Addr: "h:0"}, `port "0"`},
		{"peer in client mode", Config{Name: "s", Addr: "h:1", Peer: "10.0.0.1"}, "server mode only"},
		{"peer not an ip", Config{Name: "s", Mode: "server", Peer: "scanner7"}, `peer "scanner7" is not an IP`},
		{"empty peer in a list", Config{Name: "s", Mode: "server", Peer: "10.0.0.1,"}, `peer "" is not an IP`},
		{"server without peer", Config{Name: "S2", Mode: "server", Addr: "127.0.0.1:2001"}, `scanner "S2": server mode needs peer: the scanner's IP address`},
		{"server with blank peer", Config{Name: "s", Mode: "server", Peer: " "}, "server mode needs peer"},
		{"tiny frame", Config{Name: "s", Addr: "h:1", MaxFrame: 8}, "max frame"},
		{"negative timeout", Config{Name: "s", Addr: "h:1", HeartbeatTimeout: -1}, "negative heartbeat"},
		{"backoff", Config{Name: "s", Addr: "h:1", BackoffMin: time.Second, BackoffMax: time.Millisecond}, "back-off"},
		{"digit separator", Config{Name: "s", Addr: "h:1", Separator: "1"}, "separator"},
		{"framing byte in token", Config{Name: "s", Addr: "h:1", HeartbeatToken: "H\r\n"}, "framing byte"},
		{"separator in noread", Config{Name: "s", Addr: "h:1", NoReadToken: "No;Read"}, "holds the separator"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}

	sets := []struct {
		name string
		cfgs []Config
		want string
	}{
		{"none", nil, "no scanners"},
		{"same name", []Config{{Name: "s", Addr: "h:1"}, {Name: "s", Addr: "h:2"}}, "used twice"},
		{"same scanner dialled twice", []Config{{Name: "s", Addr: "h:1"}, {Name: "t", Addr: "h:1"}}, "both dial"},
		{"server without peer", []Config{{Name: "s", Mode: "server", Addr: ":9"}}, "needs peer"},
		{"shared listener same peer", []Config{{Name: "s", Mode: "server", Addr: ":9", Peer: "10.0.0.1"}, {Name: "t", Mode: "server", Addr: ":9", Peer: "10.0.0.1"}}, "same peer"},
		{"shared listener overlapping lists", []Config{{Name: "s", Mode: "server", Addr: ":9", Peer: "10.0.0.1,10.0.0.2"}, {Name: "t", Mode: "server", Addr: ":9", Peer: "10.0.0.3, ::ffff:10.0.0.2"}}, `scanners "s" and "t" on :9 have the same peer 10.0.0.2`},
	}
	for _, tc := range sets {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfgs, zerolog.Nop())
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMalformedLogLimited: a scanner spewing bad telegrams is counted in
// full but logged about once per second, not once per frame.
func TestMalformedLogLimited(t *testing.T) {
	var logs lockedBuffer
	src, err := New([]Config{{Name: "in1", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1", HeartbeatTimeout: time.Minute}}, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	run(t, src)
	conn, err := net.Dial("tcp", src.ListenAddr("in1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	write(t, conn, strings.Repeat("\x020;A\x03", 200))
	waitFor(t, "200 malformed", func() bool { return status(src, "in1").Malformed == 200 })
	n := strings.Count(logs.String(), "malformed telegram")
	if n < 1 || n > 10 {
		t.Fatalf("%d log lines for 200 malformed frames:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"scanner":"in1"`) {
		t.Fatalf("log lines without the scanner field:\n%s", logs.String())
	}
}

// TestSinkSerialised: reads from several scanners never enter the sink
// at the same time.
func TestSinkSerialised(t *testing.T) {
	const scanners, each = 4, 200
	var cfgs []Config
	for i := range scanners {
		cfgs = append(cfgs, Config{Name: fmt.Sprint("s", i), Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1", HeartbeatTimeout: time.Minute})
	}
	src, err := New(cfgs, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	var inside, overlaps, total int
	var mu sync.Mutex // only to read the totals from the test goroutine
	sink := func(devices.Read) {
		inside++
		if inside != 1 {
			overlaps++
		}
		mu.Lock()
		total++
		mu.Unlock()
		inside--
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	defer func() { cancel(); <-done }()
	<-src.Ready()
	var wg sync.WaitGroup
	for i := range scanners {
		conn, err := net.Dial("tcp", src.ListenAddr(fmt.Sprint("s", i)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Go(func() {
			for j := range each {
				fmt.Fprintf(conn, "\x02%d;C%d\x03", j+1, j)
			}
		})
	}
	wg.Wait()
	waitFor(t, "every read", func() bool { mu.Lock(); defer mu.Unlock(); return total == scanners*each })
	mu.Lock()
	defer mu.Unlock()
	if overlaps != 0 {
		t.Fatalf("%d overlapping sink calls", overlaps)
	}
}
