package loadtest

// The server-mode scanners of the abuse soak (Config.Abuse): the emulated
// scanners connect out to the gateway, each to a listen port of its own,
// and the line's scanner source can be stopped and started again with the
// last scanner's port held by another listener of the process, as after a
// restart that finds one port taken.

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/scanner"
)

// freeAddrs returns n loopback addresses with OS-chosen ports that were
// free a moment ago: the emulator's scanners must know where to dial
// before the gateway listens.
func freeAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// portScanner runs a line's server-mode scanner.Source and can restart
// it with the last scanner's port taken (takePort).
type portScanner struct {
	cfgs []scanner.Config
	log  zerolog.Logger
	take chan takeReq

	mu   sync.Mutex
	src  *scanner.Source
	base []uint64 // per scanner: connections of the sources before the current one
}

type takeReq struct {
	hold func() error // binds the port while no scanner holds it
	done chan error
}

func newPortScanner(cfgs []scanner.Config, log zerolog.Logger) (*portScanner, error) {
	src, err := scanner.New(cfgs, log)
	if err != nil {
		return nil, err
	}
	return &portScanner{cfgs: cfgs, log: log, take: make(chan takeReq), src: src, base: make([]uint64, len(cfgs))}, nil
}

// held is the scanner whose port takePort takes.
func (p *portScanner) held() scanner.Config { return p.cfgs[len(p.cfgs)-1] }

func (p *portScanner) run(ctx context.Context, sink func(devices.Read)) error {
	for {
		p.mu.Lock()
		src := p.src
		p.mu.Unlock()
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- src.Run(sctx, sink) }()
		select {
		case <-ctx.Done():
			cancel()
			return <-done
		case err := <-done:
			cancel()
			return err
		case req := <-p.take:
			cancel()
			err := <-done // every connection and the listener closed
			last := src.Status()
			herr := req.hold()
			next, nerr := scanner.New(p.cfgs, p.log)
			if nerr == nil {
				p.mu.Lock()
				for i := range last {
					p.base[i] += connections(last[i])
				}
				p.src = next
				p.mu.Unlock()
			}
			req.done <- herr
			if err = errors.Join(err, nerr); err != nil {
				return err
			}
		}
	}
}

// takePort stops the line's scanners, calls hold (which binds the last
// one's port) and starts them all again, as a restarted gateway would.
func (p *portScanner) takePort(ctx context.Context, hold func() error) error {
	req := takeReq{hold: hold, done: make(chan error, 1)}
	select {
	case p.take <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

func (p *portScanner) status() []devices.ScannerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.src.Status()
	// Reconnects over every source: all their connections but the first.
	for i := range st {
		if n := p.base[i] + connections(st[i]); n > 0 {
			st[i].Reconnects = n - 1
		}
	}
	return st
}

// others are the statuses of the scanners whose port is never taken.
func (p *portScanner) others() []devices.ScannerStatus {
	st := p.status()
	return st[:len(st)-1]
}

// connections is how many connections a scanner's status stands for
// (Reconnects does not tell none from one).
func connections(st devices.ScannerStatus) uint64 {
	if st.Reconnects > 0 || st.State == devices.LinkUp || !st.LastHeard.IsZero() {
		return st.Reconnects + 1
	}
	return 0
}

func (p *portScanner) stats() scanner.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.src.Stats()
	return st[len(st)-1]
}
