package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// The monitoring pack (alert rules, their promtool tests, the Grafana
// dashboard) lives in docs/monitoring. These tests keep it from drifting
// from the code: every sortgw_* name it uses must be one the gateway
// registers.
const monitoringDir = "../docs/monitoring"

var metricNameRE = regexp.MustCompile(`sortgw_[a-z_]+`)

// registeredNames returns the series names a real gateway exposes once a
// line runs: every family, with _bucket, _sum and _count for histograms.
// Label-less children of every vector are created first, so a family with
// no sample yet still shows.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	link := newFakeLink()
	link.st.BootID, link.st.LastHeartbeat = 1, time.Now()
	sc := &fixedScanners{st: []devices.ScannerStatus{{Name: "S1", State: devices.LinkUp, Online: true}}}
	m := NewMetrics()
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 16}, link, sc, nil, m, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	// A real journal, so the journal-health collector has series too.
	j, err := journal.Open(journal.Config{Path: filepath.Join(t.TempDir(), "j.db")}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	if _, err := New(Config{Listen: "127.0.0.1:0", Journal: j}, []*Line{l}, nil, m, zerolog.New(zerolog.NewTestWriter(t))); err != nil {
		t.Fatal(err)
	}
	p, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(testPlan), 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.InstallPlan(p, nil); err != nil {
		t.Fatal(err)
	}
	l.plcStatus, l.scanStatus = link.Status(), sc.Status()
	l.publish(time.Now())
	// Vectors whose children appear only on an event.
	l.met.read("S1", false)
	l.met.divert(1)
	m.unmatched.WithLabelValues("L1", "confirm")
	m.containers.WithLabelValues("L1", "technician")
	m.httpRefused.WithLabelValues("unauthorized")
	m.alarmActive.WithLabelValues("L1", "L1/estop", SevCritical) // only while an alarm is active

	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		// By the type's name: client_model stays an indirect dependency.
		switch mf.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			names[n+"_bucket"] = true
			fallthrough
		case "SUMMARY":
			names[n+"_sum"], names[n+"_count"] = true, true
		}
	}
	return names
}

// unknownNames returns the sortgw_* names in texts that are not in known.
func unknownNames(known map[string]bool, texts []string) []string {
	var bad []string
	for _, s := range texts {
		for _, n := range metricNameRE.FindAllString(s, -1) {
			if !known[n] && !slices.Contains(bad, n) {
				bad = append(bad, n)
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// yamlStrings returns every scalar string in a YAML document.
func yamlStrings(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	walk(doc, func(key, s string) { out = append(out, s) })
	return out
}

// walk calls f with every string value in v (from YAML or JSON) and the
// map key it is under ("" in a list).
func walk(v any, f func(key, s string)) {
	var rec func(key string, v any)
	rec = func(key string, v any) {
		switch v := v.(type) {
		case string:
			f(key, v)
		case map[string]any:
			for k, e := range v {
				rec(k, e)
			}
		case []any:
			for _, e := range v {
				rec(key, e)
			}
		}
	}
	rec("", v)
}

// TestAlertRulesUseRegisteredMetrics: every metric an alert rule, or the
// rules' promtool test, names is registered by the gateway.
func TestAlertRulesUseRegisteredMetrics(t *testing.T) {
	known := registeredNames(t)
	files, err := filepath.Glob(filepath.Join(monitoringDir, "*.yml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("want the rules and their test in %s, found %v (%v)", monitoringDir, files, err)
	}
	for _, f := range files {
		texts := yamlStrings(t, f)
		if len(unknownNames(map[string]bool{}, texts)) == 0 {
			t.Errorf("%s names no sortgw metric", f)
		}
		if bad := unknownNames(known, texts); len(bad) > 0 {
			t.Errorf("%s uses metrics the gateway does not register: %v", f, bad)
		}
	}
}

// TestDashboardUsesRegisteredMetrics: the Grafana dashboard is valid JSON,
// has a datasource and a line variable, and every query names only
// registered metrics.
func TestDashboardUsesRegisteredMetrics(t *testing.T) {
	known := registeredNames(t)
	path := filepath.Join(monitoringDir, "sortgw-dashboard.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var exprs []string
	walk(doc, func(key, s string) {
		if key == "expr" || key == "query" || key == "definition" {
			exprs = append(exprs, s)
		}
	})
	if len(exprs) < 10 {
		t.Fatalf("%s: only %d queries", path, len(exprs))
	}
	if bad := unknownNames(known, exprs); len(bad) > 0 {
		t.Errorf("%s uses metrics the gateway does not register: %v", path, bad)
	}
	vars := map[string]string{}
	tmpl, _ := doc["templating"].(map[string]any)
	list, _ := tmpl["list"].([]any)
	for _, v := range list {
		if v, ok := v.(map[string]any); ok {
			name, _ := v["name"].(string)
			typ, _ := v["type"].(string)
			vars[name] = typ
		}
	}
	if vars["datasource"] != "datasource" || vars["line"] != "query" {
		t.Errorf("%s: want a datasource variable and a line query variable, have %v", path, vars)
	}
}

// TestUnknownNames: the drift check itself finds a name the gateway does
// not have, histogram series included.
func TestUnknownNames(t *testing.T) {
	known := registeredNames(t)
	for _, n := range []string{"sortgw_link_up", "sortgw_read_to_confirmation_seconds_bucket", "sortgw_outcomes_total",
		"sortgw_link_reconnects_total", "sortgw_build_info", "sortgw_chutes_disabled", "sortgw_http_refused_total"} {
		if !known[n] {
			t.Errorf("%s not registered", n)
		}
	}
	got := unknownNames(known, []string{`rate(sortgw_outcome_total[5m]) + sortgw_link_up`, `sortgw_link_reconnects > 1`})
	if want := []string{"sortgw_link_reconnects", "sortgw_outcome_total"}; !slices.Equal(got, want) {
		t.Errorf("unknownNames = %v, want %v", got, want)
	}
}
