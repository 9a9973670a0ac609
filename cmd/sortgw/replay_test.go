package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// TestReplayCommand: `sortgw replay` against the plan the passes were
// decided with changes nothing; with a chute taken out its parcels move
// to the alternate; the HTML report is written; usage and journal errors
// give exit 2 and 1.
func TestReplayCommand(t *testing.T) {
	planPath := siteTestdata + "plan-small.csv"
	plan, _, err := sortplan.LoadPlan(planPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := sortplan.Compile(plan, nil, sortplan.ResolverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	j, err := journal.Open(journal.Config{Path: filepath.Join(dir, "journal.db")}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	var key string
	for _, r := range plan.Rules {
		if r.Kind == sortplan.RuleExact && len(r.Chutes) > 1 {
			key = r.Key
			break
		}
	}
	d := tab.DecideKey(key, nil)
	for i := range 20 {
		if _, err := j.Append(journal.Record{Time: at.Add(time.Duration(i) * time.Second), Line: "L1", Kind: journal.KindDecision,
			TID: uint32(i + 1), Pass: 1, Dest: d.Dest, Chute: d.Chute, Reason: uint16(d.Reason), Route: d.Route}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(dir, "r.html")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"same plan", []string{"-journal", dir, "-plan", planPath}, 0, "changed chute: 0 (0.00%)"},
		{"chute out", []string{"-journal", dir, "-plan", planPath, "-unavailable", itoa(d.Chute), "-html", html}, 0, "changed chute: 20 (100.00%)"},
		{"json", []string{"-journal", dir, "-plan", planPath, "-json"}, 0, `"passes": 20`},
		{"no plan", []string{"-journal", dir}, 2, "usage: sortgw replay"},
		{"bad chute", []string{"-journal", dir, "-plan", planPath, "-unavailable", "x"}, 2, `unavailable chute "x"`},
		{"no journal", []string{"-journal", filepath.Join(dir, "none.db"), "-plan", planPath}, 1, "none.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cmdReplay(context.Background(), tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			if got := out.String() + errb.String(); !strings.Contains(got, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, got)
			}
		})
	}
	if b, err := os.ReadFile(html); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("HTML report: %v, %d bytes", err, len(b))
	}
}

func itoa(n uint16) string { return strconv.Itoa(int(n)) }

func FuzzParseChutes(f *testing.F) {
	for _, s := range []string{"", "12,13", " 1 , 2048 ", "0", "2049", "x", ",,", "65536", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := parseChutes(s)
		if err != nil {
			return
		}
		for _, c := range cs {
			if c == 0 || c > 2048 {
				t.Fatalf("%q gave chute %d", s, c)
			}
		}
	})
}
