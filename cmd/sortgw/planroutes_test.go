package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const routesPlan = "../../sortplan/testdata/routes.good.csv"

func TestPlanRoutes(t *testing.T) {
	code, o, e := runCmd(t, "plan", "check", routesPlan)
	if code != 0 {
		t.Fatalf("check exit %d: %s", code, e)
	}
	for _, w := range []string{"departures:       2 route(s)",
		"R001       mon 06:30 14:00 / tue 06:30 14:00 / wed 06:30 14:00 / thu 06:30 14:00 / fri 06:30 14:00 / sat 08:00; van 4 containers; container 250 parcels; late: hold; chutes 1|2",
		"LH-902     sun 05:45 / mon 05:45", "late: exception chute 29; chutes 5|6"} {
		if !strings.Contains(o, w) {
			t.Errorf("check output lacks %q:\n%s", w, o)
		}
	}
	b, err := os.ReadFile(routesPlan)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "daily 05:45", "daily 05:30", 1)
	s = strings.Replace(s, "plan_version,3", "plan_version,4", 1)
	nw := filepath.Join(t.TempDir(), "new.csv")
	if err := os.WriteFile(nw, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	code, o, e = runCmd(t, "plan", "diff", routesPlan, nw)
	if code != 0 {
		t.Fatalf("diff exit %d: %s", code, e)
	}
	for _, w := range []string{"route LH-902     sun 05:45 / ", "-> sun 05:30 / ", "1 route(s) change departures or terms"} {
		if !strings.Contains(o, w) {
			t.Errorf("diff output lacks %q:\n%s", w, o)
		}
	}
	code, o, e = runCmd(t, "plan", "check", "../../sortplan/testdata/routes.bad.csv")
	if code != 1 || !strings.Contains(e, "routes.bad.csv:4:12: route R001: departure time \"6:3\"") {
		t.Errorf("bad check exit %d:\n%s%s", code, o, e)
	}
}
