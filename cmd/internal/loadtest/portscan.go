package loadtest

// The server-mode scanner of the abuse soak (Config.Abuse): the emulated
// scanners connect out to the gateway, and one of them, on its own listen
// port, can be stopped and started again with that port held by another
// listener of the process, as after a restart that finds the port taken.

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

// portScanner runs one server-mode scanner.Source and can restart it with
// its port taken (takePort).
type portScanner struct {
	cfg  scanner.Config
	log  zerolog.Logger
	take chan takeReq

	mu   sync.Mutex
	src  *scanner.Source
	base uint64 // connections of the sources before the current one
}

type takeReq struct {
	hold func() error // binds the port while no scanner holds it
	done chan error
}

func newPortScanner(cfg scanner.Config, log zerolog.Logger) (*portScanner, error) {
	src, err := scanner.New([]scanner.Config{cfg}, log)
	if err != nil {
		return nil, err
	}
	return &portScanner{cfg: cfg, log: log, take: make(chan takeReq), src: src}, nil
}

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
			next, nerr := scanner.New([]scanner.Config{p.cfg}, p.log)
			if nerr == nil {
				p.mu.Lock()
				p.base += connections(last[0])
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

// takePort stops the scanner, calls hold (which binds its port) and
// starts a fresh scanner on the same address.
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
	if n := p.base + connections(st[0]); n > 0 {
		st[0].Reconnects = n - 1
	}
	return st
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
	return p.src.Stats()[0]
}
