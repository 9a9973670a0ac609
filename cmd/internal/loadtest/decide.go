package loadtest

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"time"

	"sortgw/sortplan"
	"sortgw/sortplan/zcta"
)

// DecideResult is the decision micro-benchmark beside a bare map lookup.
type DecideResult struct {
	DecideNs, MixNs, MapNs  float64
	DecideAllocs, MixAllocs float64
}

// benchDecide times Table.Decide on GS1 420 labels and on the realistic
// label mix against the 33,791-ZIP plan, and a bare map[string]uint16
// lookup of the same ZIPs, the way sortplan's benchmarks do.
func benchDecide(chutes int, seed int64) (*DecideResult, error) {
	src, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: chutes, Seed: seed})
	if err != nil {
		return nil, err
	}
	p, _, err := sortplan.ParsePlan("plan.csv", bytes.NewReader(src), chutes)
	if err != nil {
		return nil, err
	}
	s := sortplan.SampleLabels(sortplan.SampleOptions{N: 20000, Seed: 42})
	mf, err := sortplan.ParseManifest("manifest.csv", bytes.NewReader(s.Manifest))
	if err != nil {
		return nil, err
	}
	tb, err := sortplan.Compile(p, mf, sortplan.ResolverConfig{})
	if err != nil {
		return nil, err
	}
	var gs1, mix [][]string
	var zips []string
	for _, l := range s.Labels {
		mix = append(mix, l.Codes)
		if l.Kind == "gs1" {
			gs1 = append(gs1, l.Codes)
			zips = append(zips, strings.TrimPrefix(l.Codes[0], "]C1420"))
		}
	}
	if len(gs1) == 0 {
		return nil, errors.New("bench: no gs1 sample labels")
	}
	// The baseline map holds every ZIP of the plan's list (33,791 keys),
	// as sortplan's BenchmarkMapLookup does.
	mp := map[string]uint16{}
	for i, z := range zcta.Codes() {
		mp[z] = uint16(i)
	}
	var avail sortplan.Availability
	avail.Set(7, true)
	res := &DecideResult{}
	res.DecideNs, res.DecideAllocs = timeLoop(func(i int) { tb.Decide(gs1[i%len(gs1)], &avail) })
	res.MixNs, res.MixAllocs = timeLoop(func(i int) { tb.Decide(mix[i%len(mix)], &avail) })
	var sink uint16
	res.MapNs, _ = timeLoop(func(i int) { sink += mp[zips[i%len(zips)]] })
	_ = sink
	return res, nil
}

// timeLoop runs f about 300ms and returns ns and allocations per call.
func timeLoop(f func(i int)) (ns, allocs float64) {
	n := 1000
	for {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		t0 := time.Now()
		for i := range n {
			f(i)
		}
		el := time.Since(t0)
		runtime.ReadMemStats(&m1)
		if el > 300*time.Millisecond || n >= 1<<26 {
			return float64(el.Nanoseconds()) / float64(n), float64(m1.Mallocs-m0.Mallocs) / float64(n)
		}
		n *= 4
	}
}
