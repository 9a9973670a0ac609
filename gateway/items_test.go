package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// TestItemsHTTP: GET /api/items through the gateway's handler over a
// real journal: every search key, one row per pass, the exceptions
// filter, paging with next, the limit cap and refused parameters.
func TestItemsHTTP(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	j, err := journal.Open(journal.Config{Path: filepath.Join(t.TempDir(), "j.db")}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	jdone := make(chan error, 1)
	go func() { jdone <- j.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-jdone
		j.Close()
	})
	var lines []*Line
	for _, name := range []string{"L1", "L2"} {
		l, err := NewLine(LineConfig{Name: name, Chutes: 16}, newFakeLink(), nil, nil, NewMetrics(), log)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	gw, err := New(Config{Listen: "127.0.0.1:0"}, lines, j, NewMetrics(), log)
	if err != nil {
		t.Fatal(err)
	}
	h := gw.Handler()

	body := "999AA1012345678"
	ups := "1Z" + body + string(sortplan.UPSCheckDigit(body))
	imBody := "920559012345678901234"
	impb := imBody + string(sortplan.GS1CheckDigit(imBody))
	at := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	add := func(r journal.Record) {
		if _, err := j.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	// 250 sorted passes on L1 to 10001, then the passes the cases look for.
	for i := range 250 {
		tid := uint32(1000 + i)
		add(journal.Record{Time: at, Line: "L1", Kind: journal.KindDecision, TID: tid, Pass: 1, Codes: []string{fmt.Sprintf("]C142010001%04d", i)}, Dest: "10001", Chute: 2})
		add(journal.Record{Time: at.Add(time.Second), Line: "L1", Kind: journal.KindOutcome, TID: tid, Pass: 1, Chute: 2, Result: 1, Outcome: journal.OutcomeDiverted})
	}
	add(journal.Record{Time: at, Line: "L1", Kind: journal.KindDecision, TID: 7, Pass: 1, Scanner: "S1",
		Codes: []string{"]C0" + ups}, Dest: "902101234", Chute: 5, Route: "R1"})
	add(journal.Record{Time: at.Add(2 * time.Second), Line: "L1", Kind: journal.KindOutcome, TID: 7, Pass: 1,
		Chute: 0, Result: 3, Outcome: journal.OutcomeRecirculatedFull})
	add(journal.Record{Time: at.Add(6 * time.Second), Line: "L1", Kind: journal.KindDecision, TID: 7, Pass: 2, Scanner: "S1",
		Codes: []string{"]C0" + ups}, Dest: "902101234", Chute: 5, Route: "R1"})
	add(journal.Record{Time: at.Add(8 * time.Second), Line: "L1", Kind: journal.KindOutcome, TID: 7, Pass: 2,
		Chute: 5, Result: 1, Outcome: journal.OutcomeDiverted, Container: "L1-C5-1"})
	add(journal.Record{Time: at, Line: "L2", Kind: journal.KindDecision, TID: 8, Pass: 1,
		Codes: []string{"]C1420" + "30301" + "\x1d" + impb}, Dest: "30301", Chute: 9})
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	get := func(query string) (int, ItemsPage, map[string]any) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/items?"+query, nil))
		var p ItemsPage
		var raw map[string]any
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			json.Unmarshal(rec.Body.Bytes(), &raw)
		}
		return rec.Code, p, raw
	}
	rows := func(p ItemsPage) []string {
		var out []string
		for _, r := range p.Items {
			out = append(out, fmt.Sprintf("%s/%d/%d %s", r.Line, r.TID, r.Pass, r.Outcome))
		}
		return out
	}
	q := url.QueryEscape
	cases := []struct {
		name  string
		query string
		want  []string
	}{
		{"tid: one row per pass, newest first", "q=7", []string{"L1/7/2 diverted", "L1/7/1 recirculated-full"}},
		{"code as read", "q=" + q("]C0"+ups), []string{"L1/7/2 diverted", "L1/7/1 recirculated-full"}},
		{"ups 1z", "q=" + ups, []string{"L1/7/2 diverted", "L1/7/1 recirculated-full"}},
		{"zip+4 of the destination", "q=90210-1234", []string{"L1/7/2 diverted", "L1/7/1 recirculated-full"}},
		{"exceptions only", "q=" + ups + "&exceptions=1", []string{"L1/7/1 recirculated-full"}},
		{"impb tracking number, open pass", "q=" + impb, []string{"L2/8/1 open"}},
		{"code without symbology id and GS", "q=" + q("42030301"+impb), []string{"L2/8/1 open"}},
		{"zip5", "q=30301", []string{"L2/8/1 open"}},
		{"line filter", "q=30301&line=L1", nil},
		{"recent list of a line", "line=L2", []string{"L2/8/1 open"}},
		{"nothing", "q=NOPE", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, p, raw := get(tc.query)
			if code != http.StatusOK || !slices.Equal(rows(p), tc.want) || p.Next != nil {
				t.Fatalf("%s: %d %v next %v, want %v", tc.query, code, rows(p), p.Next, tc.want)
			}
			if raw["next"] != nil || raw["items"] == nil {
				t.Fatalf("items %v next %v: want a list and null", raw["items"], raw["next"])
			}
		})
	}
	// The row's fields, by the names the page reads.
	_, p, raw := get("q=" + ups + "&exceptions=1")
	r := p.Items[0]
	if r.PackageID != ups || r.Postal != "902101234" || r.Destination != "902101234" || r.Dest != r.Destination ||
		r.Route != "R1" || r.Chute != 5 || r.Reason != sortplan.Reason(0).String() || r.OutcomeAt == nil || !r.ReadAt.Equal(at) || r.Scanner != "S1" {
		t.Fatalf("row %+v", r)
	}
	item := raw["items"].([]any)[0].(map[string]any)
	for _, k := range strings.Fields("seq tid line pass read_at codes package_id postal destination route chute reason outcome outcome_at") {
		if _, ok := item[k]; !ok {
			t.Errorf("row lacks %q: %v", k, item)
		}
	}
	if _, p, raw := get("q=" + impb); p.Items[0].OutcomeAt != nil || p.Items[0].Postal != "30301" ||
		raw["items"].([]any)[0].(map[string]any)["outcome_at"] != nil {
		t.Fatalf("open row %+v", p.Items[0])
	}
	// Paging: three pages of 2 over TID 7's and 8's... and the cap.
	_, p1, _ := get("line=L1&limit=2")
	if len(p1.Items) != 2 || p1.Next == nil || p1.Items[0].TID != 7 {
		t.Fatalf("page 1: %v next %v", rows(p1), p1.Next)
	}
	_, p2, _ := get("line=L1&limit=2&before=" + *p1.Next)
	if len(p2.Items) != 2 || p2.Items[0].Seq >= p1.Items[1].Seq || p2.Items[0].TID != 1249 {
		t.Fatalf("page 2: %v", rows(p2))
	}
	if _, p, _ := get("limit=1000"); len(p.Items) != itemsMaxLimit || p.Next == nil {
		t.Fatalf("limit 1000 gave %d rows", len(p.Items))
	}
	if _, p, _ := get(""); len(p.Items) != itemsDefaultLimit {
		t.Fatalf("default limit gave %d rows", len(p.Items))
	}
	for _, bad := range []struct {
		query string
		code  int
	}{{"before=x", 400}, {"before=0", 400}, {"limit=0", 400}, {"limit=x", 400}, {"exceptions=maybe", 400}, {"line=X", 404}} {
		if code, _, _ := get(bad.query); code != bad.code {
			t.Errorf("%s: status %d, want %d", bad.query, code, bad.code)
		}
	}
}
