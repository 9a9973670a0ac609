package opcua

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

// tap is a TCP proxy between a link (security None: the requests are in
// clear) and the emulated sorter. It decodes the client's requests and
// records the divert WriteRequests in the order they went to the server,
// with how many were out at once; spoil can make the server refuse one
// (its Chute is sent as an Int16: BadTypeMismatch, and the Seq is then
// refused too).
type tap struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	writes []tapWrite
	conns  map[net.Conn]bool
	nconn  int
	maxOut int // divert writes out at once on one connection, at most
	spoil  func(w *tapWrite) bool
	// The spoiled write's reply is held until a later divert write has
	// gone out on its connection (or holdMax passed), so that the failure
	// comes in the middle of a pipeline.
	spoiledConn  int
	spoiledReq   uint32
	spoiledSeq   uint16
	laterWritten chan struct{}

	wg sync.WaitGroup
}

// tapWrite is one divert WriteRequest as the server received it.
type tapWrite struct {
	conn    int      // the tap connection (1, 2, ...): one per link session
	nodes   []string // the string node ids, namespace left out
	slot    int      // of the Seq node (-1: none)
	seq     uint16
	tid     uint32
	chute   uint16
	spoiled bool
}

// conforming: exactly TrackingId, Chute, Reason and Seq of one slot, Seq
// last, the slot being seq mod 16.
func (w tapWrite) conforming(prefix string) bool {
	if len(w.nodes) != 4 || w.slot != int(w.seq)%DefaultRing {
		return false
	}
	base := prefix + ".Divert." + strconv.Itoa(w.slot) + "."
	seen := map[string]bool{}
	for i, n := range w.nodes {
		f, ok := strings.CutPrefix(n, base)
		if !ok || seen[f] || (f != "TrackingId" && f != "Chute" && f != "Reason" && f != "Seq") || (f == "Seq") != (i == 3) {
			return false
		}
		seen[f] = true
	}
	return true
}

// startTap proxies to the sim's endpoint and returns the tap's endpoint.
func startTap(t testing.TB, simEndpoint string) (*tap, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{ln: ln, target: strings.TrimPrefix(simEndpoint, "opc.tcp://"), conns: map[net.Conn]bool{}, laterWritten: make(chan struct{})}
	tp.wg.Go(tp.accept)
	t.Cleanup(tp.close)
	return tp, "opc.tcp://" + ln.Addr().String()
}

func (tp *tap) close() {
	tp.ln.Close()
	tp.mu.Lock()
	for c := range tp.conns {
		c.Close()
	}
	tp.mu.Unlock()
	tp.wg.Wait()
}

func (tp *tap) accept() {
	for {
		c, err := tp.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", tp.target)
		if err != nil {
			c.Close()
			continue
		}
		tp.mu.Lock()
		tp.nconn++
		id := tp.nconn
		tp.conns[c], tp.conns[s] = true, true
		tp.mu.Unlock()
		out := map[uint32]bool{} // divert writes out on this connection, by request id
		end := func() {
			c.Close()
			s.Close()
			tp.mu.Lock()
			delete(tp.conns, c)
			delete(tp.conns, s)
			tp.mu.Unlock()
		}
		tp.wg.Go(func() { defer end(); tp.relay(c, s, id, out, true) })
		tp.wg.Go(func() { defer end(); tp.relay(s, c, id, out, false) })
	}
}

// relay copies OPC UA TCP messages from src to dst, one chunk at a time.
func (tp *tap) relay(src, dst net.Conn, id int, out map[uint32]bool, toServer bool) {
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			return
		}
		size := binary.LittleEndian.Uint32(hdr[4:])
		if size < 8 || size > 1<<24 {
			return
		}
		msg := make([]byte, size)
		copy(msg, hdr)
		if _, err := io.ReadFull(src, msg[8:]); err != nil {
			return
		}
		// MSG, final chunk: channel id, token id, sequence number,
		// request id, then the body (security None).
		if string(msg[:4]) == "MSGF" && len(msg) > 24 {
			reqID := binary.LittleEndian.Uint32(msg[20:])
			if toServer {
				msg = tp.request(msg, id, reqID, out)
			} else {
				tp.mu.Lock()
				delete(out, reqID)
				hold := tp.spoiledConn == id && tp.spoiledReq == reqID
				later := tp.laterWritten
				tp.mu.Unlock()
				if hold {
					select {
					case <-later:
					case <-time.After(holdMax): // a bound, not synchronisation
					}
				}
			}
		}
		if _, err := dst.Write(msg); err != nil {
			return
		}
	}
}

// request records a divert WriteRequest (and spoils it if asked); it
// returns the message to send on.
func (tp *tap) request(msg []byte, conn int, reqID uint32, out map[uint32]bool) []byte {
	typeID, v, err := ua.DecodeService(msg[24:])
	req, ok := v.(*ua.WriteRequest)
	if err != nil || !ok || len(req.NodesToWrite) == 0 {
		return msg
	}
	w := tapWrite{conn: conn, slot: -1}
	divert := false
	for _, wv := range req.NodesToWrite {
		name := wv.NodeID.StringID()
		w.nodes = append(w.nodes, name)
		parts := strings.Split(name, ".")
		if len(parts) != 4 || parts[1] != "Divert" {
			continue
		}
		divert = true
		val := wv.Value.Value.Value()
		switch parts[3] {
		case "Seq":
			w.slot, _ = strconv.Atoi(parts[2])
			w.seq, _ = val.(uint16)
		case "TrackingId":
			w.tid, _ = val.(uint32)
		case "Chute":
			w.chute, _ = val.(uint16)
		}
	}
	if !divert {
		return msg
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	out[reqID] = true
	tp.maxOut = max(tp.maxOut, len(out))
	if tp.spoiledConn == conn && int16(w.seq-tp.spoiledSeq) > 0 {
		select {
		case <-tp.laterWritten:
		default:
			close(tp.laterWritten)
		}
	}
	if tp.spoil != nil && tp.spoiledConn == 0 && tp.spoil(&w) {
		w.spoiled = true
		tp.spoiledConn, tp.spoiledReq, tp.spoiledSeq = conn, reqID, w.seq
		for _, wv := range req.NodesToWrite {
			if strings.HasSuffix(wv.NodeID.StringID(), ".Chute") {
				wv.Value.Value = ua.MustVariant(int16(w.chute))
			}
		}
		if b, err := encodeService(typeID, req); err == nil {
			msg = append(msg[:24:24], b...)
			binary.LittleEndian.PutUint32(msg[4:], uint32(len(msg)))
		}
	}
	tp.writes = append(tp.writes, w)
	return msg
}

// holdMax bounds how long the tap holds the spoiled write's reply.
const holdMax = 5 * time.Second

func encodeService(typeID *ua.ExpandedNodeID, req any) ([]byte, error) {
	a, err := typeID.Encode()
	if err != nil {
		return nil, err
	}
	b, err := ua.Encode(req)
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

func (tp *tap) snapshot() ([]tapWrite, int) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]tapWrite(nil), tp.writes...), tp.maxOut
}
