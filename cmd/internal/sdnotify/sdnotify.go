// Package sdnotify tells systemd about the service's state (sd_notify(3))
// with the standard library only: one datagram per notification on the
// unix socket named by $NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET)
// every call is a no-op, so the gateway runs the same under a shell.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// The states a service sends (see sd_notify(3)).
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Watchdog  = "WATCHDOG=1"
	Reloading = "RELOADING=1"
)

// sendTimeout bounds one notification's send.
const sendTimeout = time.Second

// Notifier sends notifications to the service manager. The zero value and
// a nil *Notifier send nothing.
type Notifier struct {
	addr *net.UnixAddr
	conn *net.UnixConn
}

// New returns a Notifier for $NOTIFY_SOCKET: a path, or an abstract
// socket name starting with '@'. Without NOTIFY_SOCKET it returns a
// Notifier that sends nothing. The environment variables stay set: the
// gateway starts no child process that could inherit them wrongly.
func New() (*Notifier, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return &Notifier{}, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: want a path or an abstract name starting with '@'", name)
	}
	// Go maps a leading '@' to Linux's abstract namespace (a NUL byte).
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	// Unconnected, each notification addressed like sd_notify(3) does, so
	// a notify socket systemd re-creates (daemon-reexec) still gets them.
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("sdnotify: %w", err)
	}
	return &Notifier{addr: addr, conn: conn}, nil
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.conn != nil }

// Notify sends one notification: newline-separated VAR=value assignments.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	// A service manager that does not read must not stall the caller (the
	// site's loop): a full socket queue drops the notification.
	if err := n.conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := n.conn.WriteToUnix([]byte(state), n.addr); err != nil {
		return fmt.Errorf("sdnotify: send %q to %s: %w", state, n.addr.Name, err)
	}
	return nil
}

// Close releases the socket.
func (n *Notifier) Close() error {
	if !n.Enabled() {
		return nil
	}
	return n.conn.Close()
}

// ReloadingState is RELOADING=1 with MONOTONIC_USEC, the reload's start on
// CLOCK_MONOTONIC that systemd's Type=notify-reload requires (and newer
// Type=notify accepts). Without a monotonic clock it is RELOADING=1 alone.
func ReloadingState() string {
	if us, ok := monotonicUsec(); ok {
		return Reloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(us, 10)
	}
	return Reloading
}

// WatchdogEvery is how often to send WATCHDOG=1: half of $WATCHDOG_USEC,
// as sd_watchdog_enabled(3) advises. It returns 0 when the watchdog is
// off: no WATCHDOG_USEC, or WATCHDOG_PID naming another process.
func WatchdogEvery() (time.Duration, error) {
	s := os.Getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, nil
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil || us <= 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q: want a positive number of microseconds", s)
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil {
			return 0, errors.New("sdnotify: WATCHDOG_PID " + strconv.Quote(p) + ": not a number")
		}
		if pid != os.Getpid() {
			return 0, nil
		}
	}
	return time.Duration(us) * time.Microsecond / 2, nil
}
