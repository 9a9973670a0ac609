package sortplan

import (
	"os"
	"reflect"
	"testing"
	"time"
)

func loadRoutesPlan(t *testing.T) *Plan {
	t.Helper()
	p, _, err := LoadPlan("testdata/routes.good.csv", 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRouteRows(t *testing.T) {
	p := loadRoutesPlan(t)
	if len(p.Routes) != 2 {
		t.Fatalf("routes %+v", p.Routes)
	}
	r := p.Route("R001")
	if r == nil || r.VanCap != 4 || r.ContCap != 250 || r.Late != LateHold || r.Line != 5 {
		t.Fatalf("R001 %+v", r)
	}
	if got, want := r.DeparturesString(), "mon 06:30 14:00 / tue 06:30 14:00 / wed 06:30 14:00 / thu 06:30 14:00 / fri 06:30 14:00 / sat 08:00"; got != want {
		t.Errorf("departures %q, want %q", got, want)
	}
	lh := p.Route("LH-902")
	if lh == nil || lh.Late != LateException || lh.LateChute != 29 {
		t.Fatalf("LH-902 %+v", lh)
	}
	ch := p.RouteChutes()
	if got := ch["LH-902"]; len(got) != 2 || got[0] != 5 || got[1] != 6 {
		t.Errorf("LH-902 chutes %v", got)
	}
	if _, ok := ch["EXCEPTION"]; ok {
		t.Errorf("exception rows counted as a route")
	}
}

func TestNextDeparture(t *testing.T) {
	p := loadRoutesPlan(t)
	r := p.Route("R001")
	loc := time.FixedZone("site", -5*3600)
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	// 2026-12-04 is a Friday.
	cases := []struct {
		name, now, want string
		past            bool
	}{
		{"before the first", "2026-12-04 05:00", "2026-12-04 06:30", false},
		{"at a cut-off", "2026-12-04 06:30", "2026-12-04 06:30", false},
		{"between", "2026-12-04 06:31", "2026-12-04 14:00", false},
		{"after the last: saturday", "2026-12-04 14:01", "2026-12-05 08:00", true},
		{"saturday after: monday", "2026-12-05 09:00", "2026-12-07 06:30", true},
		{"sunday has none", "2026-12-06 01:00", "2026-12-07 06:30", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := r.NextDeparture(at(c.now))
			if !ok || !got.Equal(at(c.want)) {
				t.Errorf("next after %s = %v %v, want %s", c.now, got, ok, c.want)
			}
			if past := r.PastLastCutoff(at(c.now)); past != c.past {
				t.Errorf("past last cut-off at %s = %v, want %v", c.now, past, c.past)
			}
		})
	}
}

func TestDiffRoutes(t *testing.T) {
	old := loadRoutesPlan(t)
	b, err := os.ReadFile("testdata/routes.good.csv")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = replaceOnce(t, s, "daily 05:45", "daily 05:30")
	s = replaceOnce(t, s, "plan_version,3", "plan_version,4")
	newp, _, err := parsePlan("new.csv", []byte(s), 0)
	if err != nil {
		t.Fatal(err)
	}
	ch := DiffRoutes(old, newp)
	if len(ch) != 1 || ch[0].Route != "LH-902" || ch[0].Old == ch[0].New {
		t.Fatalf("changes %+v", ch)
	}
	if len(DiffRoutes(old, old)) != 0 {
		t.Errorf("a plan differs from itself")
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	t.Fatalf("%q not found", old)
	return s
}

func FuzzParseDepartures(f *testing.F) {
	for _, s := range []string{"mon-fri 06:30 14:00 / sat 08:00", "daily 05:45", "sun 23:59", "fri-mon 00:00", "mon 7:00", "/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		deps, err := parseDepartures(s)
		if err != nil {
			return
		}
		r := RouteSpec{Departures: deps}
		back, err := parseDepartures(r.DeparturesString())
		if err != nil || !reflect.DeepEqual(back, deps) {
			t.Fatalf("%q -> %q does not read back: %v", s, r.DeparturesString(), err)
		}
	})
}
