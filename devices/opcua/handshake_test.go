package opcua

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"sortgw/devices"
)

// holdProxy relays one OPC UA TCP connection chunk by chunk and holds the
// server's OpenSecureChannel response until release is closed. opn is
// closed once the client's OpenSecureChannel request has gone through,
// gone once the client has closed its connection.
type holdProxy struct {
	ln      net.Listener
	target  string
	opn     chan struct{}
	gone    chan struct{}
	release chan struct{}
	opnOnce sync.Once
	gonOnce sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func startHoldProxy(t *testing.T, simEndpoint string) (*holdProxy, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln, target: strings.TrimPrefix(simEndpoint, "opc.tcp://"), opn: make(chan struct{}), gone: make(chan struct{}), release: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		p.ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p, "opc.tcp://" + ln.Addr().String()
}

func (p *holdProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Go(func() { p.relay(c, s, true) })
		p.wg.Go(func() { p.relay(s, c, false) })
	}
}

func (p *holdProxy) relay(src, dst net.Conn, toServer bool) {
	defer dst.Close()
	defer src.Close()
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			if toServer {
				p.gonOnce.Do(func() { close(p.gone) })
			}
			return
		}
		n := binary.LittleEndian.Uint32(hdr[4:])
		if n < 8 || n > 1<<24 {
			return
		}
		msg := make([]byte, n)
		copy(msg, hdr)
		if _, err := io.ReadFull(src, msg[8:]); err != nil {
			return
		}
		switch typ := string(hdr[:3]); {
		case typ == "OPN" && toServer:
			p.opnOnce.Do(func() { close(p.opn) })
		case typ == "OPN":
			<-p.release
		}
		if _, err := dst.Write(msg); err != nil {
			return
		}
	}
}

// TestStopDuringHandshake: a link stopped while its OpenSecureChannel is
// out waits for the answer instead of abandoning the handshake. gopcua
// v0.8.0 clears its opening channel without a lock when an open is
// abandoned, while its dispatcher may still read the late answer before
// the socket closes: under -race a reported data race (it failed CI
// once). An abandoned open shows on the wire as the client closing its
// socket before the answer came; the test gives that half a second to
// show, then lets the answer through and expects Run to return.
func TestStopDuringHandshake(t *testing.T) {
	sim := sharedSim(t)
	p, endpoint := startHoldProxy(t, sim.endpoint)
	tl := startLink(t, Config{Endpoint: endpoint})
	select {
	case <-p.opn:
	case <-time.After(10 * time.Second):
		t.Fatal("no OpenSecureChannel request reached the server")
	}
	tl.cancel()
	select {
	case <-p.gone:
		close(p.release)
		t.Fatal("the stop abandoned the OpenSecureChannel: the client closed its socket before the answer")
	case <-time.After(500 * time.Millisecond):
	}
	close(p.release)
	tl.stop(t)
	if st := tl.Status(); st.State == devices.LinkUp {
		t.Fatalf("link up after a stop during the handshake: %+v", st)
	}
}
