package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen opens a unixgram socket like systemd's notify socket.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	n, _, err := c.ReadFromUnix(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

// TestNotify: notifications reach the socket NOTIFY_SOCKET names, a path
// or an abstract name, one datagram each, in order.
func TestNotify(t *testing.T) {
	for _, tc := range []struct{ name, socket string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@sortgw-sdnotify-test-" + strconv.Itoa(os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := listen(t, tc.socket)
			t.Setenv("NOTIFY_SOCKET", tc.socket)
			n, err := New()
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if !n.Enabled() {
				t.Fatal("not enabled with NOTIFY_SOCKET set")
			}
			for _, st := range []string{Ready, Watchdog, Watchdog, Stopping} {
				if err := n.Notify(st); err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range []string{Ready, Watchdog, Watchdog, Stopping} {
				if got := recv(t, srv); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
		})
	}
}

// TestNotifyOff: without NOTIFY_SOCKET nothing is sent and nothing fails;
// a NOTIFY_SOCKET that is neither a path nor abstract is an error.
func TestNotifyOff(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := New()
	if err != nil || n.Enabled() || n.Notify(Ready) != nil || n.Close() != nil {
		t.Fatalf("New() = %v, %v; want a silent notifier", n, err)
	}
	var nilN *Notifier
	if nilN.Notify(Ready) != nil || nilN.Close() != nil {
		t.Fatal("nil notifier")
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if _, err := New(); err == nil {
		t.Fatal("relative NOTIFY_SOCKET accepted")
	}
}

// TestReloadingState: RELOADING=1 carries the monotonic clock in
// microseconds, as Type=notify-reload requires.
func TestReloadingState(t *testing.T) {
	s := ReloadingState()
	rest, ok := strings.CutPrefix(s, Reloading+"\nMONOTONIC_USEC=")
	if !ok {
		t.Fatalf("%q", s)
	}
	a, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || a <= 0 {
		t.Fatalf("MONOTONIC_USEC %q", rest)
	}
	b, _ := monotonicUsec()
	if b < a {
		t.Fatalf("monotonic clock went back: %d then %d", a, b)
	}
}

func TestWatchdogEvery(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name, usec, pid string
		want            time.Duration
		err             bool
	}{
		{"off", "", "", 0, false},
		{"half", "10000000", "", 5 * time.Second, false},
		{"our pid", "2000000", pid, time.Second, false},
		{"other pid", "2000000", "1", 0, false},
		{"bad", "ten", "", 0, true},
		{"zero", "0", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			got, err := WatchdogEvery()
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("WatchdogEvery() = %v, %v; want %v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}
