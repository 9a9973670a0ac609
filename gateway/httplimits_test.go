package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// startLimitGateway runs a one-line gateway on a fake link with the
// given HTTP limits.
func startLimitGateway(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 16}, newFakeLink(), nil, nil, NewMetrics(), log)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Token = testToken
	gw, err := New(cfg, []*Line{l}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	<-gw.Started()
	return gw
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	gw := startLimitGateway(t, Config{})
	for _, tc := range []struct {
		header string
		code   int
	}{
		{"Bearer " + testToken, 200},
		{"bearer " + testToken, 200},
		{"BEARER  " + testToken, 200},
		{"Basic " + testToken, 401},
		{testToken, 401},
		{"bearer", 401},
	} {
		t.Run(tc.header, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+gw.Addr()+"/api/lines/L1/chutes/3/disable", nil)
			req.Header.Set("Authorization", tc.header)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.code {
				t.Fatalf("%q: status %d, want %d", tc.header, res.StatusCode, tc.code)
			}
		})
	}
}

// TestStaticServesAssetsOnly: the page template is never served as
// source, whatever path asks for it (a directory under /static/ would
// serve its index.html).
func TestStaticServesAssetsOnly(t *testing.T) {
	gw := startLimitGateway(t, Config{})
	for _, path := range []string{"/static/app.js", "/static/style.css", "/static/index.html", "/static/", "/static/web/index.html"} {
		res, err := http.Get("http://" + gw.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.HasSuffix(path, ".js") || strings.HasSuffix(path, ".css") {
			if res.StatusCode != 200 {
				t.Errorf("%s: status %d", path, res.StatusCode)
			}
		}
		if strings.Contains(string(b), "{{") {
			t.Errorf("%s: serves the page template's source", path)
		}
	}
}

// openStream starts an /events stream and reads its first event.
func openStream(t *testing.T, gw *Gateway) (*http.Response, int) {
	t.Helper()
	res, err := http.Get("http://" + gw.Addr() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusOK {
		br := bufio.NewReader(res.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, "data: ") {
				break
			}
		}
	}
	return res, res.StatusCode
}

// TestSSEClientCap: past MaxSSEClients a stream is refused with 503 and
// counted; a closed stream frees its place.
func TestSSEClientCap(t *testing.T) {
	gw := startLimitGateway(t, Config{MaxSSEClients: 2, SSEInterval: 10 * time.Millisecond})
	a, ca := openStream(t, gw)
	b, cb := openStream(t, gw)
	if ca != 200 || cb != 200 {
		t.Fatalf("first two streams: %d %d", ca, cb)
	}
	c, cc := openStream(t, gw)
	c.Body.Close()
	if cc != http.StatusServiceUnavailable {
		t.Fatalf("third stream: status %d, want 503", cc)
	}
	if n := testutil.ToFloat64(gw.met.httpRefused.WithLabelValues("sse-clients")); n != 1 {
		t.Fatalf("sse-clients refusals %v, want 1", n)
	}
	a.Body.Close()
	waitFor(t, "a stream's place freed", func() bool { return gw.sse.Load() == 1 })
	d, cd := openStream(t, gw)
	if cd != 200 {
		t.Fatalf("stream after one closed: %d", cd)
	}
	b.Body.Close()
	d.Body.Close()
}

// TestSlowReaderIsDropped: a client that opens the status stream and
// never reads lets go of its connection once the write deadline passes.
func TestSlowReaderIsDropped(t *testing.T) {
	gw := startLimitGateway(t, Config{WriteTimeout: 200 * time.Millisecond, SSEInterval: time.Millisecond})
	conn, err := net.Dial("tcp", gw.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stream to start", func() bool { return gw.sse.Load() == 1 })
	// Never read: the server's writes block, the deadline passes, the
	// handler returns.
	waitFor(t, "the slow reader to be dropped", func() bool { return gw.sse.Load() == 0 })
}

// TestPLCNeverReadShowsUnknown: before the first read of the PLC block
// the page must not claim a stopped sorter with no fault.
func TestPLCNeverReadShowsUnknown(t *testing.T) {
	link := newFakeLink()
	link.st.State = 0 // down, never read
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 16}, link, nil, nil, NewMetrics(), zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	l.publish(time.Now())
	p := l.Snapshot().PLC
	if p.SorterState != "unknown" || p.Fault != "unknown" {
		t.Fatalf("never read: sorter %q fault %q, want unknown", p.SorterState, p.Fault)
	}
	link.mu.Lock()
	link.st.BootID, link.st.LastHeartbeat, link.st.State = 7, time.Now(), 3
	link.mu.Unlock()
	l.plcStatus = link.Status()
	l.publish(time.Now())
	if p := l.Snapshot().PLC; p.SorterState != "stopped" || p.Fault != "none" {
		t.Fatalf("after a read: sorter %q fault %q", p.SorterState, p.Fault)
	}
}
