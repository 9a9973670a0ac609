//go:build linux

package fieldbussim

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// noAcceptListener is a TCP listener that completes no client connection:
// it listens with a backlog of 0 and never accepts. Linux keeps one
// connection in such a queue (backlog + 1); the listener fills that place
// itself, after which the kernel drops every SYN (ListenOverflows), so a
// client's connect retransmits its SYN until its own timeout. This is
// reliable on loopback, unlike a listener that merely never calls accept
// (with the default backlog of 4096 every connect would succeed).
type noAcceptListener struct {
	fd    int
	plugs []net.Conn
}

func listenNoAccept(addr string) (*noAcceptListener, error) {
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("never-accept listener %s: %w", addr, err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("never-accept listener %s: socket: %w", addr, err)
	}
	l := &noAcceptListener{fd: fd}
	fail := func(what string, err error) (*noAcceptListener, error) {
		l.close()
		return nil, fmt.Errorf("never-accept listener %s: %s: %w", addr, what, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fail("reuseaddr", err)
	}
	sa := &syscall.SockaddrInet4{Port: ta.Port}
	if ip4 := ta.IP.To4(); ip4 != nil {
		copy(sa.Addr[:], ip4)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		return fail("listen", err)
	}
	// Fill the queue: connect until a connect no longer completes. The
	// first normally does; the loop does not rely on the kernel's exact
	// "backlog + 1".
	target := addr
	if ta.IP == nil || ta.IP.IsUnspecified() {
		target = net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
	}
	for i := 0; ; i++ {
		if i == 8 {
			return fail("plug", errors.New("connections still complete after 8"))
		}
		c, err := net.DialTimeout("tcp", target, 100*time.Millisecond)
		if err != nil {
			break // the queue is full: SYNs are dropped from now on
		}
		l.plugs = append(l.plugs, c)
	}
	if len(l.plugs) == 0 {
		return fail("plug", errors.New("the first connection did not complete"))
	}
	return l, nil
}

func (l *noAcceptListener) close() {
	for _, c := range l.plugs {
		_ = c.Close()
	}
	l.plugs = nil
	if l.fd >= 0 {
		_ = syscall.Close(l.fd)
		l.fd = -1
	}
}
