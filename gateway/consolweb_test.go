package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// consolServer serves a consolidation line's gateway handler on loopback.
func consolServer(t *testing.T, c *consolLine, printer string) *httptest.Server {
	t.Helper()
	gw, err := New(Config{Listen: "127.0.0.1:0", Token: testToken, LabelPrinter: printer}, []*Line{c.l}, nil, NewMetrics(),
		zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func httpDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestConsolidationAPI(t *testing.T) {
	j, _ := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	clock := &dockClock{}
	clock.set(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
	c := newConsolLine(t, j, clock, nil)
	c.sort(1, "10115", 1)
	c.sort(2, "10115", 1)
	c.sort(3, "90210", 3)
	srv := consolServer(t, c, "")
	u := srv.URL
	get := func(path string) (int, string) { return httpDo(t, http.MethodGet, u+path, "", "") }
	post := func(path, token, body string) (int, string) { return httpDo(t, http.MethodPost, u+path, token, body) }

	code, body := get("/api/lines/L1/containers?state=open")
	var open []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &open) != nil || len(open) != 2 {
		t.Fatalf("open containers %d %s", code, body)
	}
	for _, k := range []string{"container", "chute", "route", "state", "opened", "closed", "van", "tids"} {
		if _, ok := open[0][k]; !ok && k != "closed" {
			t.Errorf("container JSON lacks %q: %s", k, body)
		}
	}
	if open[0]["container"] != "L1-C1-1" || len(open[0]["tids"].([]any)) != 2 {
		t.Fatalf("first open %v", open[0])
	}
	waitFor(t, "board", func() bool {
		_, b := get("/api/routes")
		return strings.Contains(b, `"container": "L1-C1-1"`)
	})
	tests := []struct {
		name, method, path, token, body string
		code                            int
		want                            string
	}{
		{"bad state", "GET", "/api/lines/L1/containers?state=lost", "", "", 400, "state:"},
		{"no line", "GET", "/api/lines/X/containers", "", "", 404, "no such line"},
		{"close without token", "POST", "/api/containers/L1-C1-1/close", "", "", 401, "bearer"},
		{"close", "POST", "/api/containers/L1-C1-1/close", testToken, "", 200, `"state": "closed"`},
		{"close again", "POST", "/api/containers/L1-C1-1/close", testToken, "", 409, "closed already"},
		{"close unknown", "POST", "/api/containers/L9-C1-1/close", testToken, "", 404, "no such container"},
		{"load without van", "POST", "/api/containers/L1-C1-1/load", testToken, `{}`, 400, "van id is required"},
		{"load bad body", "POST", "/api/containers/L1-C1-1/load", testToken, `{"van":`, 400, "body must be JSON"},
		{"load bad source", "POST", "/api/containers/L1-C1-1/load", testToken, `{"van":"V7","source":"fax"}`, 400, "source"},
		{"load open", "POST", "/api/containers/L1-C3-1/load", testToken, `{"van":"V7"}`, 409, "close it first"},
		{"load", "POST", "/api/containers/L1-C1-1/load", testToken, `{"van":"V7","by":"ann","source":"dock-scan"}`, 200, `"van": "V7"`},
		{"unknown action", "POST", "/api/containers/L1-C1-1/burn", testToken, "", 404, "unknown action"},
		{"depart without token", "POST", "/api/routes/R1/depart", "", `{"van":"V7"}`, 401, "bearer"},
		{"depart empty van", "POST", "/api/routes/R1/depart", testToken, `{"van":"V8"}`, 409, "no container is loaded"},
		{"depart", "POST", "/api/routes/R1/depart", testToken, `{"van":"V7","by":"bob"}`, 200, `"container_count": 1`},
		{"vans", "GET", "/api/vans?route=R1", "", "", 200, `"parcel_count": 2`},
		{"vans other route", "GET", "/api/vans?route=R2", "", "", 200, `[]`},
		{"vans since future", "GET", "/api/vans?since=2999-01-01T00:00:00Z", "", "", 200, `[]`},
		{"vans bad since", "GET", "/api/vans?since=yesterday", "", "", 400, "RFC 3339"},
		{"vans csv", "GET", "/api/vans?format=csv", "", "", 200, "route,departure,van,departed,container,line,chute,tid,codes,dest\nR1,2026-12-04T12:00:00Z,V7,"},
		{"departed list", "GET", "/api/lines/L1/containers?state=departed", "", "", 200, `"van": "V7"`},
		{"label zpl", "GET", "/api/containers/L1-C3-1/label.zpl", "", "", 200, "^FO40,320^BY3^BCN,160,Y,N,N^FH^FDL1-C3-1^FS"},
		{"label html", "GET", "/containers/L1-C3-1/label", "", "", 200, `<svg xmlns="http://www.w3.org/2000/svg" class="code128"`},
		{"label unknown", "GET", "/containers/L1-C9-9/label", "", "", 404, "no such container"},
		{"print without printer", "POST", "/api/containers/L1-C3-1/print", testToken, "", 409, "no label printer"},
		{"board page", "GET", "/board", "", "", 200, `<script src="/static/board.js" defer>`},
		{"board js", "GET", "/static/board.js", "", "", 200, "/api/routes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := httpDo(t, tc.method, u+tc.path, tc.token, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%s %s: %d %s; want %d with %q", tc.method, tc.path, code, body, tc.code, tc.want)
			}
		})
	}
	_ = post
}

func TestVansCSVNeutralisesFormulas(t *testing.T) {
	var b bytes.Buffer
	vs := []VanManifest{{Route: "=R1", Van: "+V1", Containers: []Manifest{{Container: "L1-C1-1", Line: "L1", Chute: 1,
		Items: []ManifestItem{{TID: 9, Codes: []string{"@SUM(A1)"}, Dest: "-1"}}}}}}
	if err := WriteVansCSV(&b, vs); err != nil {
		t.Fatal(err)
	}
	want := "route,departure,van,departed,container,line,chute,tid,codes,dest\n'=R1,,'+V1,,L1-C1-1,L1,1,9,'@SUM(A1),'-1\n"
	if b.String() != want {
		t.Fatalf("csv\n%q\nwant\n%q", b.String(), want)
	}
}

func TestPrintLabelToNetworkPrinter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer conn.Close()
		b, _ := io.ReadAll(bufio.NewReader(conn))
		got <- string(b)
	}()
	j, _ := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	clock := &dockClock{}
	clock.set(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
	c := newConsolLine(t, j, clock, nil)
	c.sort(1, "10115", 1)
	srv := consolServer(t, c, ln.Addr().String())
	if code, body := httpDo(t, http.MethodPost, srv.URL+"/api/containers/L1-C1-1/print", testToken, ""); code != 200 {
		t.Fatalf("print %d %s", code, body)
	}
	select {
	case zpl := <-got:
		if !strings.HasPrefix(zpl, "^XA\n") || !strings.Contains(zpl, "^FH^FDR1^FS") || !strings.Contains(zpl, "^FDParcels 1^FS") ||
			!strings.Contains(zpl, "^FH^FDDeparts Fri 2026-12-04 12:00^FS") || !strings.HasSuffix(zpl, "^XZ\n") {
			t.Fatalf("printer got %q", zpl)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("printer got nothing")
	}
	ln.Close()
	// A printer that is gone is a 502, not a hang.
	if code, body := httpDo(t, http.MethodPost, srv.URL+"/api/containers/L1-C1-1/print", testToken, ""); code != http.StatusBadGateway {
		t.Fatalf("print to a closed port %d %s", code, body)
	}
}
