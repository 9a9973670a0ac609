package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/gateway/journal"
)

// The journal records of the sorter, plan and gateway events: each is
// written when its cause happens (TestLineJournals*, TestGatewayJournals*),
// and a flapping link or chute is coalesced (TestStateJournalBounds).

func (f *fakeLink) setState(s devices.LinkState, lastErr string) {
	f.mu.Lock()
	f.st.State, f.st.LastError = s, lastErr
	f.mu.Unlock()
}

func (f *fakeLink) setDisabled(n uint16, on bool) {
	f.mu.Lock()
	f.st.Disabled.Set(n, on)
	f.mu.Unlock()
}

// of returns the records of kind k.
func (j *memJournal) of(k journal.Kind) []journal.Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []journal.Record
	for _, r := range j.recs {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

// waitRecord waits for a record of kind k that match accepts.
func (h *harness) waitRecord(k journal.Kind, what string, match func(r journal.Record) bool) journal.Record {
	h.t.Helper()
	var got journal.Record
	waitFor(h.t, what, func() bool {
		for _, r := range h.j.of(k) {
			if match(r) {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

func TestLineJournalsLinkState(t *testing.T) {
	h := newHarness(t, true, nil)
	// The fake link is up from the start: the journal learns it.
	h.waitRecord(journal.KindLinkState, "link up", func(r journal.Record) bool {
		return r.Detail == "plc fake: down -> up" && r.Cause == ""
	})
	h.link.setState(devices.LinkDown, "read tcp: connection reset by peer")
	r := h.waitRecord(journal.KindLinkState, "link down", func(r journal.Record) bool {
		return r.Detail == "plc fake: up -> down"
	})
	if r.Line != "L1" || r.Cause != "read tcp: connection reset by peer" || r.Count != 1 {
		t.Fatalf("link down record %+v", r)
	}
	h.link.setState(devices.LinkUp, "read tcp: connection reset by peer")
	r = h.waitRecord(journal.KindLinkState, "link up again", func(r journal.Record) bool {
		return r.Detail == "plc fake: down -> up"
	})
	if r.Cause != "" {
		t.Fatalf("an up record names the old error: %+v", r)
	}
}

func TestLineJournalsChuteState(t *testing.T) {
	h := newHarness(t, true, nil)
	h.link.setFull(5, true)
	r := h.waitRecord(journal.KindChuteState, "chute 5 full", func(r journal.Record) bool { return r.Chute == 5 })
	if r.Detail != "full on" || r.Cause != "plc" || r.Line != "L1" || r.Count != 1 {
		t.Fatalf("full record %+v", r)
	}
	h.link.setDisabled(7, true)
	r = h.waitRecord(journal.KindChuteState, "chute 7 disabled", func(r journal.Record) bool { return r.Chute == 7 })
	if r.Detail != "disabled on" || r.Cause != "plc" {
		t.Fatalf("disabled record %+v", r)
	}
	// Off again (after the per-chute interval) is recorded too, and the
	// emptied container is closed and recorded.
	h.link.setFull(5, false)
	h.waitRecord(journal.KindChuteState, "chute 5 not full", func(r journal.Record) bool {
		return r.Chute == 5 && r.Detail == "full off"
	})
	c := h.waitRecord(journal.KindContainerClose, "container of chute 5 closed", func(r journal.Record) bool { return r.Chute == 5 })
	if c.Container != "L1-C5-1" || c.Detail != "emptied" {
		t.Fatalf("container close record %+v", c)
	}
	// A technician's disable is a chute-state record of its own.
	if err := h.l.SetChuteDisabled(context.Background(), 9, true); err != nil {
		t.Fatal(err)
	}
	r = h.waitRecord(journal.KindChuteState, "technician disable", func(r journal.Record) bool { return r.Chute == 9 })
	if r.Detail != "disabled on" || r.Cause != "technician" {
		t.Fatalf("technician record %+v", r)
	}
	if _, err := h.l.CloseContainer(context.Background(), 9); err != nil {
		t.Fatal(err)
	}
	c = h.waitRecord(journal.KindContainerClose, "container of chute 9 closed", func(r journal.Record) bool { return r.Chute == 9 })
	if c.Detail != "technician" {
		t.Fatalf("technician close record %+v", c)
	}
}

// TestStateJournalBounds drives observeStatus with a made-up clock: a
// link that flaps every tick and a chute that chatters every tick give a
// bounded number of records, the records coalesce (Count) what they stand
// for, and the journal ends on the true state.
func TestStateJournalBounds(t *testing.T) {
	j := &memJournal{}
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 256}, newFakeLink(), nil, j, NewMetrics(), zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	st := devices.PLCStatus{Name: "P", State: devices.LinkUp}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	const ticks = 50 * 60 // one minute of 20ms ticks
	// A minute of a link that flaps every tick.
	linkChanges := 0
	for i := range ticks {
		if i%2 == 0 {
			st.State = devices.LinkUp
		} else {
			st.State = devices.LinkConnecting
		}
		linkChanges++ // tick 0: down -> up
		l.observeStatus(&st, now)
		now = now.Add(20 * time.Millisecond)
	}
	st.State = devices.LinkUp
	linkChanges++
	// A minute of chute 3 chattering every tick; chute 4 goes full once.
	for i := range ticks {
		st.Full.Set(3, i%2 == 0)
		st.Full.Set(4, i >= 10)
		l.observeStatus(&st, now)
		now = now.Add(20 * time.Millisecond)
	}
	// Settle: the link stays up, chute 3 stays empty.
	st.Full.Set(3, false)
	for range 200 {
		l.observeStatus(&st, now)
		now = now.Add(100 * time.Millisecond)
	}
	links := j.of(journal.KindLinkState)
	if max := linkBurst + int(2*time.Minute/linkEvery) + 3; len(links) > max {
		t.Fatalf("%d link-state records in a minute of flapping, want at most %d", len(links), max)
	}
	var total uint32
	for _, r := range links {
		total += r.Count
	}
	// Every change is in a record or counted by one (the first record is
	// down -> up, before the flapping).
	if int(total) != linkChanges {
		t.Fatalf("link-state records stand for %d changes, the link made %d", total, linkChanges)
	}
	if last := links[len(links)-1]; !strings.HasSuffix(last.Detail, "-> up") {
		t.Fatalf("last link-state record %+v, the link ended up", last)
	}
	var c3 []journal.Record
	var c4 int
	for _, r := range j.of(journal.KindChuteState) {
		switch r.Chute {
		case 3:
			c3 = append(c3, r)
		case 4:
			c4++
		}
	}
	if len(c3) > 62+2 {
		t.Fatalf("%d chute-state records for a chute chattering for a minute, want about one a second", len(c3))
	}
	var flips uint32
	for _, r := range c3 {
		flips += r.Count
	}
	if flips != ticks {
		t.Fatalf("chute 3 records stand for %d changes, it made %d", flips, ticks)
	}
	if last := c3[len(c3)-1]; last.Detail != "full off" {
		t.Fatalf("last chute 3 record %+v, it ended empty", last)
	}
	t.Logf("a minute of a flapping link: %d link-state records; a minute of a chattering chute: %d chute-state records", len(links), len(c3))
	if c4 != 1 {
		t.Fatalf("chute 4 went full once: %d records (a chattering chute must not hold it back)", c4)
	}
}

// TestStateJournalChuteBudget: a whole sorter reporting full at once is
// recorded in full, at the line's pace, never dropped.
func TestStateJournalChuteBudget(t *testing.T) {
	j := &memJournal{}
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 256}, newFakeLink(), nil, j, NewMetrics(), zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	st := devices.PLCStatus{Name: "P", State: devices.LinkUp}
	for n := uint16(1); n <= 256; n++ {
		st.Full.Set(n, true)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l.observeStatus(&st, now)
	if got := len(j.of(journal.KindChuteState)); got != chuteBurst {
		t.Fatalf("%d chute-state records at once, want the burst %d", got, chuteBurst)
	}
	for range 100 {
		now = now.Add(100 * time.Millisecond)
		l.observeStatus(&st, now)
	}
	if got := len(j.of(journal.KindChuteState)); got != 256 {
		t.Fatalf("%d chute-state records after 10s, want all 256", got)
	}
}

const badPlan = `plan_name,T
plan_version,2
chute_count,16
pattern,chutes,route,comment
NOREAD,15,EXC,
UNKNOWN,15,EXC,
MULTIREAD,15,EXC,
RECIRC_LIMIT,16,EXC,
10115,99,R1,
`

func TestLineJournalsPlans(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plan.csv")
	if err := os.WriteFile(file, []byte(testPlan), 0o600); err != nil {
		t.Fatal(err)
	}
	j := &memJournal{}
	link := newFakeLink()
	log := zerolog.New(zerolog.NewTestWriter(t))
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 16, PlanFile: file}, link, nil, j, NewMetrics(), log)
	if err != nil {
		t.Fatal(err)
	}
	// At start.
	if _, err := l.ReloadPlan(); err != nil {
		t.Fatal(err)
	}
	ins := j.of(journal.KindPlanInstalled)
	if len(ins) != 1 || ins[0].Cause != "start" || ins[0].PlanVersion != 1 || ins[0].Count != 6 ||
		!strings.Contains(ins[0].Detail, `plan "T" version 1 from `+file) || ins[0].Line != "L1" {
		t.Fatalf("install at start: %+v", ins)
	}
	// A bad plan on SIGHUP: refused, with the error where it is.
	if err := os.WriteFile(file, []byte(badPlan), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, err := New(Config{Listen: "127.0.0.1:0", Token: testToken}, []*Line{l}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Reload(); err == nil {
		t.Fatal("bad plan accepted")
	}
	ref := j.of(journal.KindPlanRefused)
	if len(ref) != 1 || ref[0].Cause != "sighup" || !strings.Contains(ref[0].Detail, file+":9:") {
		t.Fatalf("refusal: %+v", ref)
	}
	// The reload button, with a plan whose version is not newer: refused
	// after it parsed, so the refusal names its version and rules.
	if err := os.WriteFile(file, []byte(strings.Replace(testPlan, "10115,1|2", "10115,2|1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	h := gw.Handler()
	req := httptest.NewRequest(http.MethodPost, "/api/lines/L1/reload", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("reload of a changed plan under the same version: %d %s", rec.Code, rec.Body)
	}
	ref = j.of(journal.KindPlanRefused)
	if len(ref) != 2 || ref[1].Cause != "reload-button" || ref[1].PlanVersion != 1 || ref[1].Count != 6 {
		t.Fatalf("refusal by the button: %+v", ref)
	}
	// A good new version by the button.
	if err := os.WriteFile(file, []byte(strings.Replace(testPlan, "plan_version,1", "plan_version,3", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("reload: %d %s", rec.Code, rec.Body)
	}
	ins = j.of(journal.KindPlanInstalled)
	if len(ins) != 2 || ins[1].Cause != "reload-button" || ins[1].PlanVersion != 3 {
		t.Fatalf("install by the button: %+v", ins)
	}
}

// journalRecords reads back every record of a closed journal file.
func journalRecords(t *testing.T, path string) []journal.Record {
	t.Helper()
	j, err := journal.Open(journal.Config{Path: path}, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	recs, err := j.Recent(0) // newest first
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(recs)
	return recs
}

func TestGatewayJournalsStartAndStop(t *testing.T) {
	link := newFakeLink()
	gw, oj := newLifecycleGateway(t, link)
	gw.cfg.Version = "v9.9"
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	<-gw.Started()
	waitFor(t, "line running", func() bool { return gw.Lines()[0].running.Load() })
	// An item left open is recorded lost at stop, before the stop record.
	gw.Lines()[0].Sink(devices.Read{Scanner: "S1", TID: 7, Codes: []string{zip420("10115")}, At: time.Now()})
	waitFor(t, "command", func() bool { return len(link.cmds) > 0 })
	cancel(errors.New("terminated signal received"))
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	recs := journalRecords(t, oj.path)
	var start, stop, outcome int = -1, -1, -1
	for i, r := range recs {
		switch r.Kind {
		case journal.KindStart:
			start = i
			if r.Detail != `sortgw v9.9; lines: L1 (16 chutes, plan "T" version 1)` || r.Count != 1 {
				t.Errorf("start record %+v", r)
			}
		case journal.KindStop:
			stop = i
			if r.Cause != "terminated signal received" || r.Detail != "" || r.Count != 1 {
				t.Errorf("stop record %+v", r)
			}
		case journal.KindOutcome:
			outcome = i
		}
	}
	if start < 0 || stop != len(recs)-1 || outcome < 0 || !(start < outcome && outcome < stop) {
		t.Fatalf("start at %d, outcome at %d, stop at %d of %d records: want start first, stop last", start, outcome, stop, len(recs))
	}
}

func TestGatewayJournalsFailure(t *testing.T) {
	a := newFakeLink()
	gw, oj := newLifecycleGateway(t, a)
	done := make(chan error, 1)
	go func() { done <- gw.Run(context.Background()) }()
	<-gw.Started()
	waitFor(t, "line running", func() bool { return gw.Lines()[0].running.Load() })
	a.fail <- errors.New("plc gone for good")
	if err := <-done; err == nil {
		t.Fatal("run returned nil after a link failed")
	}
	recs := journalRecords(t, oj.path)
	last := recs[len(recs)-1]
	if last.Kind != journal.KindStop || last.Cause != "a line failed" || !strings.Contains(last.Detail, "plc gone for good") {
		t.Fatalf("last record %+v, want the stop with the failure", last)
	}
}

func TestGatewayJournalsFailedStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	gw, oj := newLifecycleGateway(t, newFakeLink())
	gw.cfg.Listen = busy.Addr().String()
	if err := gw.Run(context.Background()); err == nil {
		t.Fatal("run on a busy address returned nil")
	}
	recs := journalRecords(t, oj.path)
	last := recs[len(recs)-1]
	if last.Kind != journal.KindStop || last.Cause != "start failed" || !strings.Contains(last.Detail, fmt.Sprint("listen ", busy.Addr())) {
		t.Fatalf("last record %+v, want the stop with the listen error", last)
	}
}

func TestClip(t *testing.T) {
	if s := clip("short"); s != "short" {
		t.Fatalf("clip(short) = %q", s)
	}
	long := strings.Repeat("a", maxDetail-1) + "äöü" + strings.Repeat("b", 100)
	s := clip(long)
	if !utf8.ValidString(s) || !strings.HasSuffix(s, "… (106 more bytes)") || len(s) > maxDetail+len("… (106 more bytes)") {
		t.Fatalf("clip: valid %v, ends %q", utf8.ValidString(s), s[len(s)-30:])
	}
}

// TestLineJournalsItemEvents: the item kinds besides decision and outcome
// are written when their cause happens.
func TestLineJournalsItemEvents(t *testing.T) {
	h := newHarness(t, true, nil)
	h.read(11, zip420("10115"))
	h.cmd()
	h.waitRecord(journal.KindDecision, "decision", func(r journal.Record) bool { return r.TID == 11 && r.Chute == 1 })
	h.read(11, zip420("10115")) // again while unconfirmed
	d := h.waitRecord(journal.KindDuplicate, "duplicate", func(r journal.Record) bool { return r.TID == 11 })
	if d.Pass != 1 || d.Outcome != journal.OutcomeDuplicate {
		t.Fatalf("duplicate record %+v", d)
	}
	h.link.events <- devices.Event{Kind: devices.EventMissed, Count: 2, At: time.Now()}
	m := h.waitRecord(journal.KindMissed, "missed", func(journal.Record) bool { return true })
	if m.Count != 2 || m.Line != "L1" {
		t.Fatalf("missed record %+v", m)
	}
}

// TestJournalView: GET /api/journal shows the sorter, plan and gateway
// records of a window, filtered by kind and line, without the item
// records unless asked.
func TestJournalView(t *testing.T) {
	link := newFakeLink()
	gw, oj := newLifecycleGateway(t, link)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-gw.Started()
	l := gw.Lines()[0]
	waitFor(t, "line running", l.running.Load)
	l.Sink(devices.Read{Scanner: "S1", TID: 7, Codes: []string{zip420("10115")}, At: time.Now()})
	link.setFull(3, true)
	waitFor(t, "command", func() bool { return len(link.cmds) > 0 })
	get := func(query string) (int, JournalView) {
		t.Helper()
		var v JournalView
		waitFor(t, "journal committed", func() bool { return oj.Flush(context.Background()) == nil })
		res, err := http.Get("http://" + gw.Addr() + "/api/journal" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusOK {
			if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
				t.Fatal(err)
			}
		}
		return res.StatusCode, v
	}
	kinds := func(v JournalView) map[journal.Kind]int {
		m := map[journal.Kind]int{}
		for _, r := range v.Records {
			m[r.Kind]++
		}
		return m
	}
	var v JournalView
	waitFor(t, "chute 3 full in the view", func() bool {
		_, v = get("")
		return kinds(v)[journal.KindChuteState] == 1
	})
	k := kinds(v)
	if k[journal.KindStart] != 1 || k[journal.KindPlanInstalled] != 1 || k[journal.KindLinkState] != 1 || k[journal.KindDecision] != 0 {
		t.Fatalf("default view: %v", k)
	}
	if _, v = get("?kind=decision&from=10m"); len(v.Records) != 1 || v.Records[0].TID != 7 {
		t.Fatalf("decisions: %+v", v.Records)
	}
	if _, v = get("?line=L9"); kinds(v)[journal.KindStart] != 1 || kinds(v)[journal.KindChuteState] != 0 {
		t.Fatalf("other line: %v", kinds(v))
	}
	if _, v = get("?from=" + time.Now().Add(time.Hour).Format(time.RFC3339)); len(v.Records) != 0 {
		t.Fatalf("future window: %+v", v.Records)
	}
	for _, bad := range []string{"?from=yesterday", "?to=x", "?kind=bogus"} {
		if code, _ := get(bad); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, code)
		}
	}
}
