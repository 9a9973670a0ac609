package sortplan

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"sortgw/sortplan/zcta"
)

type benchEnv struct {
	tb     *Table
	labels map[string][][]string
}

var (
	benchOnce sync.Once
	bench     benchEnv
)

// benchSetup compiles the generated 256-chute plan (every one of the
// 33,791 ZIPs reaches a row) with the manifest of a realistic label set.
func benchSetup(b *testing.B) *benchEnv {
	benchOnce.Do(func() {
		src, err := Generate(GenerateOptions{Chutes: 256, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		p, _, err := ParsePlan("plan-256.csv", bytes.NewReader(src), 256)
		if err != nil {
			b.Fatal(err)
		}
		s := SampleLabels(SampleOptions{N: 20000, Seed: 42})
		m, err := ParseManifest("manifest.csv", bytes.NewReader(s.Manifest))
		if err != nil {
			b.Fatal(err)
		}
		tb, err := Compile(p, m, ResolverConfig{})
		if err != nil {
			b.Fatal(err)
		}
		bench.tb = tb
		bench.labels = map[string][][]string{}
		for _, l := range s.Labels {
			bench.labels[l.Kind] = append(bench.labels[l.Kind], l.Codes)
			bench.labels["mix"] = append(bench.labels["mix"], l.Codes)
			switch l.Kind {
			case "ups", "tba", "sscc":
				bench.labels["manifest"] = append(bench.labels["manifest"], l.Codes)
			}
		}
	})
	return &bench
}

// BenchmarkDecide decides realistic labels against the generated plan.
// GS1 is "]C1420<ZIP5>", the common GS1-128 postal barcode.
func BenchmarkDecide(b *testing.B) {
	env := benchSetup(b)
	var avail Availability
	avail.Set(7, true) // one full chute, as on a real shift
	for _, k := range []struct{ name, kind string }{
		{"GS1", "gs1"}, {"GS1-ZIP9+SSCC", "gs1-zip9"}, {"GS1-DataMatrix", "gs1-dm"},
		{"IMpb", "impb"}, {"Manifest", "manifest"}, {"NoRead", "noread"}, {"Mix", "mix"},
	} {
		labels := env.labels[k.kind]
		b.Run(k.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				env.tb.Decide(labels[i], &avail)
				i++
				if i == len(labels) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkMapLookup is the baseline: a bare map[string]uint16 lookup of
// a ZIP string, over the same ZIPs as BenchmarkDecide/GS1.
func BenchmarkMapLookup(b *testing.B) {
	env := benchSetup(b)
	m := map[string]uint16{}
	for i, z := range zcta.Codes() {
		m[z] = uint16(i)
	}
	var zips []string
	for _, c := range env.labels["gs1"] {
		zips = append(zips, c[0][len("]C1420"):])
	}
	b.ReportAllocs()
	i := 0
	var sink uint16
	for b.Loop() {
		sink += m[zips[i]]
		i++
		if i == len(zips) {
			i = 0
		}
	}
	_ = sink
}

// plan1M builds a plan of 1,000,000 rules: every ZIP5, 900,000 ZIP+4s and
// 1,000 ZIP3 prefixes, each with a primary and an alternate chute.
func plan1M() *Plan {
	p := &Plan{Name: "1M", Version: 1, ChuteCount: 2048, File: "1M"}
	p.Rules = make([]Rule, 0, 1000004)
	for i, n := range []string{"NOREAD", "UNKNOWN", "MULTIREAD", "RECIRC_LIMIT"} {
		p.Rules = append(p.Rules, Rule{Kind: RuleNoRead + RuleKind(i), Pattern: n, Key: n, Chutes: []uint16{2048}, Route: "EXC"})
	}
	routes := make([]string, 1000)
	for i := range routes {
		routes[i] = fmt.Sprintf("R%04d", i)
	}
	add := func(kind RuleKind, pat, key string, i int) {
		c := uint16(1 + i%2000)
		p.Rules = append(p.Rules, Rule{Kind: kind, Pattern: pat, Key: key, Chutes: []uint16{c, c + 1}, Route: routes[i%1000], Line: len(p.Rules) + 5})
	}
	for z := 0; z < 100000; z++ {
		k := fmt.Sprintf("%05d", z)
		add(RuleExact, k, k, z)
	}
	for z := 0; z < 1000; z++ {
		k := fmt.Sprintf("%03d", z)
		add(RulePrefix, k+"*", k, z)
	}
	for i := 0; len(p.Rules) < 1000004; i++ {
		k := fmt.Sprintf("%05d%04d", i%100000, i/100000)
		add(RuleExact, k, k, i)
	}
	return p
}

// BenchmarkCompile1M compiles a 1,000,000-rule plan.
func BenchmarkCompile1M(b *testing.B) {
	p := plan1M()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(p, nil, ResolverConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePlan reads and validates the generated 256-chute plan.
func BenchmarkParsePlan(b *testing.B) {
	src, err := Generate(GenerateOptions{Chutes: 256, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParsePlan("p", bytes.NewReader(src), 256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadManifest1M parses a 1,000,000-row manifest.
func BenchmarkLoadManifest1M(b *testing.B) {
	src := manifest1M(1000000)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	var m *Manifest
	for b.Loop() {
		var err error
		if m, err = ParseManifest("m", strings.NewReader(src)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(m.arena)+8*cap(m.rows)+8*len(m.slots))/float64(m.Len()), "bytes/row")
}

// BenchmarkManifestLookup looks ids up in a 1,000,000-row manifest.
func BenchmarkManifestLookup(b *testing.B) {
	m, err := ParseManifest("m", strings.NewReader(manifest1M(1000000)))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprintf("TBA%012d", (i*244)*7919)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := m.Lookup(ids[i&4095]); !ok {
			b.Fatal("missing")
		}
		i++
	}
}
