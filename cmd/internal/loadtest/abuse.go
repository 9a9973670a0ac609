package loadtest

// The fault-and-abuse soak of issue 10 (Config.Abuse), in the chaos
// rotation beside the PLC and scanner faults: a server-mode scanner's port
// taken, a flood of status-stream clients, slow readers, and Modbus
// exception bursts. Each checks its own invariant (FaultRun.Broken) and
// prints its figures; the ground truth at the end covers the sorting.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sortgw/devices"
	"sortgw/gateway"
)

// SoakConfig sizes the abuse faults. Zero fields take the defaults noted.
type SoakConfig struct {
	SSEClients        int           // status-stream clients at once (default 500)
	SlowReaders       int           // clients of /events, and as many of /status.json, that never read (default 32)
	PortHold          time.Duration // how long a scanner's port stays taken (default 10s)
	ExceptionsPerCode int           // Modbus exception replies per code in a burst (default 18: 108 in all, as in issue 10)
	JournalFull       time.Duration // how long the journal's commits fail as on a full disk (default 30s)
	// The gateway's settings under the soak: the per-response write
	// deadline (default 2s) and the status-stream period (default 50ms, so that an unread stream fills its buffers soon).
	WriteTimeout, SSEInterval time.Duration
}

// sseCap is the bench gateway's cap on live status streams (the
// gateway's default).
const sseCap = 64

// exceptionCodes are the codes of a burst (issue 10, item 8).
var exceptionCodes = []byte{1, 2, 3, 4, 6, 11}

func (s *SoakConfig) defaults(c *Config) error {
	if !c.Chaos {
		c.Abuse = false
	}
	if !c.Abuse {
		return nil
	}
	setDefault(&s.SSEClients, 500)
	setDefault(&s.SlowReaders, 32)
	setDefault(&s.PortHold, 10*time.Second)
	setDefault(&s.ExceptionsPerCode, 18)
	setDefault(&s.JournalFull, 30*time.Second)
	setDefault(&s.WriteTimeout, 2*time.Second)
	setDefault(&s.SSEInterval, 50*time.Millisecond)
	setDefault(&c.Scanners, 2)
	if c.Scanners < 2 {
		return errors.New("bench: the abuse soak needs 2 scanners a line or more: one keeps the line up while another's port is taken")
	}
	if s.SlowReaders > sseCap {
		// More than the gateway's SSE cap would be refused, not slow.
		return fmt.Errorf("bench: %d slow readers: at most 64 (the gateway's status-stream cap)", s.SlowReaders)
	}
	return nil
}

// gatewayConfig applies the soak's limits to the bench gateway's config.
func (s *SoakConfig) gatewayConfig(g *gateway.Config) {
	g.WriteTimeout, g.SSEInterval, g.MaxSSEClients = s.WriteTimeout, s.SSEInterval, sseCap
}

// abuseFaults are the soak's faults of the protocol, in rotation order.
func abuseFaults(protocol string) []fault {
	var fs []fault
	if protocol == "modbus" {
		fs = append(fs, fault{name: "ModbusExceptionBurst", plc: true, soak: exceptionBurst})
	}
	return append(fs,
		fault{name: "JournalDiskFull", soak: journalDiskFull},
		fault{name: "ScannerPortTaken", soak: portTaken},
		fault{name: "SSEFlood", soak: sseFlood},
		fault{name: "SlowReaders", soak: slowReaders},
	)
}

// portTaken stops the line's scanners, holds the last one's port with a
// listener of its own for PortHold, and starts them all again (as a
// gateway restarted while another process holds one port): that scanner
// must show its listen error at once and retry, while the line reads
// through its other scanners; the recovery is timed from the port's
// release to every scanner up. Reads
// the emulator sent into the held port never reached the gateway: the
// PLC recirculates those items and the truth check counts them never read.
func portTaken(ctx context.Context, c *chaos, bl *benchLine) FaultRun {
	var r FaultRun
	ps := bl.src.port
	var holder net.Listener
	err := ps.takePort(ctx, func() error {
		var err error
		holder, err = net.Listen("tcp", ps.held().Addr)
		return err
	})
	if err != nil {
		r.Note = "could not take the port: " + err.Error()
		return r
	}
	defer holder.Close()
	if err := waitUntilFine(ctx, time.Now().Add(10*time.Second), func() bool { return ps.stats().ListenErrors > 0 }); err != nil {
		r.Broken = "the taken port's listen error never showed"
	}
	// The other scanners' reads at the gateway, and the telegrams the
	// emulator's same scanners sent (none while the sorter is stopped).
	others := func() (read, sent uint64) {
		for _, st := range ps.others() {
			read += st.Reads
		}
		sim := bl.sim.ScannerStats()
		for i := range len(sim) - 1 {
			sent += sim[i].Telegrams + sim[i].NoConnection // scanned, connected or not
		}
		return read, sent
	}
	read0, sent0 := others()
	_ = sleepCtx(ctx, c.cfg.Soak.PortHold)
	st := ps.stats()
	read1, sent1 := others()
	held, sent := read1-read0, sent1-sent0
	if held == 0 && sent >= 5 && r.Broken == "" {
		r.Broken = fmt.Sprintf("the other scanners sent %d telegrams and the gateway read none while the port was taken", sent)
	}
	holder.Close()
	from := time.Now()
	err = waitUntilFine(ctx, from.Add(15*time.Second), func() bool {
		for _, st := range bl.src.Status() {
			if st.State != devices.LinkUp {
				return false
			}
		}
		return true
	})
	r.Recovery = time.Since(from)
	r.setBack(err)
	r.Figures = fmt.Sprintf("held %v: %d listen attempts failed (%q); the other scanners: %d sent, %d read", c.cfg.Soak.PortHold, st.ListenErrors, st.LastError, sent, held)
	return r
}

// sseFlood opens SSEClients status streams at once: past the gateway's
// cap each is refused with 503 and counted in sortgw_http_refused_total;
// the rest stream until the flood ends, then every client goroutine ends
// and the live-stream gauge returns to 0 (the recovery).
func sseFlood(ctx context.Context, c *chaos, bl *benchLine) FaultRun {
	c.httpMu.Lock()
	defer c.httpMu.Unlock()
	var r FaultRun
	n := c.cfg.Soak.SSEClients
	g0, h0 := memFigures()
	ref0 := metricValue(c.metrics, "sortgw_http_refused_total", "reason", "sse-clients")
	tr := &http.Transport{DisableKeepAlives: true, MaxIdleConnsPerHost: -1}
	cl := &http.Client{Transport: tr}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ok, refused, failed, other atomic.Int64
	var firstErr atomic.Value // string
	answered := make(chan struct{}, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := httpGet(fctx, cl, "http://"+c.gwAddr+"/events")
			if err != nil {
				// A client that could not connect or send (an overloaded
				// machine) is a figure: the gateway answered nothing wrong.
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				answered <- struct{}{}
				return
			}
			defer res.Body.Close()
			switch res.StatusCode {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusServiceUnavailable:
				refused.Add(1)
			default:
				other.Add(1)
			}
			answered <- struct{}{}
			_, _ = io.Copy(io.Discard, res.Body) // until the flood ends
		})
	}
	for range n {
		select {
		case <-answered:
		case <-ctx.Done():
		}
	}
	// The streams run for a few pushes before they go.
	_ = sleepCtx(ctx, 8*c.cfg.Soak.SSEInterval)
	gp, hp := memFigures()
	from := time.Now()
	cancel()
	wg.Wait()
	tr.CloseIdleConnections()
	err := waitUntilFine(ctx, from.Add(30*time.Second), func() bool { return metricValue(c.metrics, "sortgw_http_sse_clients") == 0 })
	r.Recovery = time.Since(from)
	r.setBack(err)
	g1, h1 := memFigures()
	counted := int64(metricValue(c.metrics, "sortgw_http_refused_total", "reason", "sse-clients") - ref0)
	switch {
	case counted != refused.Load():
		r.Broken = fmt.Sprintf("%d streams refused, %d counted", refused.Load(), counted)
	case refused.Load() == 0:
		r.Broken = "no stream refused"
	case other.Load() > 0:
		r.Broken = fmt.Sprintf("%d clients got a status other than 200 or 503", other.Load())
	case ok.Load() > sseCap:
		r.Broken = fmt.Sprintf("%d streams served at once, over the cap of %d", ok.Load(), sseCap)
	}
	r.Figures = fmt.Sprintf("%d clients: %d streamed, %d refused (%d counted), %d failed to connect; goroutines %d/%d/%d, heap %.1f/%.1f/%.1f MB (before/flood/after)",
		n, ok.Load(), refused.Load(), counted, failed.Load(), g0, gp, g1, h0, hp, h1)
	if e, _ := firstErr.Load().(string); e != "" {
		r.Figures += "; first failure: " + e
	}
	return r
}

// slowReaders opens SlowReaders status streams and as many connections
// with pipelined /status.json requests, and reads none of them: the
// gateway's write deadline must drop every stream (the gauge back to 0;
// the recovery is timed from the clients' start).
func slowReaders(ctx context.Context, c *chaos, bl *benchLine) FaultRun {
	c.httpMu.Lock()
	defer c.httpMu.Unlock()
	var r FaultRun
	n := c.cfg.Soak.SlowReaders
	g0, _ := memFigures()
	var conns []net.Conn
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	// A small receive buffer set before the connect (so the window is
	// small from the start): the gateway's writes block after a few
	// messages, not after megabytes.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		return errors.Join(err, serr)
	}}
	open := func(req string) error {
		cn, err := d.DialContext(ctx, "tcp", c.gwAddr)
		if err != nil {
			return err
		}
		conns = append(conns, cn)
		_, err = io.WriteString(cn, req)
		return err
	}
	from := time.Now()
	for range n {
		if err := open("GET /events HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
			r.Note = "slow reader: " + err.Error()
			return r
		}
		if err := open(strings.Repeat("GET /status.json HTTP/1.1\r\nHost: bench\r\n\r\n", pipelined)); err != nil {
			r.Note = "slow reader: " + err.Error()
			return r
		}
	}
	if err := waitUntilFine(ctx, time.Now().Add(10*time.Second), func() bool {
		return metricValue(c.metrics, "sortgw_http_sse_clients") >= float64(n)
	}); err != nil {
		r.Note = "the slow streams did not start"
	}
	gp, _ := memFigures()
	err := waitUntilFine(ctx, from.Add(c.cfg.Soak.WriteTimeout+60*time.Second), func() bool {
		return metricValue(c.metrics, "sortgw_http_sse_clients") == 0
	})
	r.Recovery = time.Since(from)
	r.setBack(err)
	if err != nil {
		r.Broken = "slow status streams not dropped"
	} else {
		// The drop takes the write timeout plus the time to fill the
		// socket buffers: not a reconnect, the 2 s goal does not apply.
		r.OK, r.Note = true, ""
	}
	// A /status.json connection the gateway dropped ends (EOF or reset)
	// before all 64 answers; one it kept would wait for a 65th request.
	cut := 0
	for i := 1; i < len(conns); i += 2 {
		if droppedEarly(conns[i], pipelined) {
			cut++
		}
	}
	for _, cn := range conns {
		cn.Close()
	}
	conns = nil
	g1, _ := memFigures()
	r.Figures = fmt.Sprintf("%d streams and %d /status.json pipelines unread, write timeout %v: streams dropped after %v, %d of %d pipelines cut off; goroutines %d/%d/%d",
		n, n, c.cfg.Soak.WriteTimeout, r.Recovery.Round(time.Millisecond), cut, n, g0, gp, g1)
	return r
}

// pipelined is how many /status.json requests a slow reader sends.
const pipelined = 256

// droppedEarly reads what the gateway sent on a pipelined /status.json
// connection: true if the connection ended before want answers.
func droppedEarly(cn net.Conn, want int) bool {
	_ = cn.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(cn)
	for range want {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
	return false
}

func httpGet(ctx context.Context, cl *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return cl.Do(req)
}

// memFigures: the process's goroutines and in-use heap (MB, after a GC).
func memFigures() (int, float64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), float64(ms.HeapInuse) / (1 << 20)
}

// metricValue sums a counter or gauge of the gateway's registry over the
// series matching the label pair (all series without one).
func metricValue(m *gateway.Metrics, name string, label ...string) float64 {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return 0
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, met := range mf.GetMetric() {
			if len(label) == 2 {
				for _, lp := range met.GetLabel() {
					if lp.GetName() == label[0] && lp.GetValue() != label[1] {
						continue next
					}
				}
			}
			if g := met.GetGauge(); g != nil {
				v += g.GetValue()
			}
			if ct := met.GetCounter(); ct != nil {
				v += ct.GetValue()
			}
		}
	}
	return v
}
