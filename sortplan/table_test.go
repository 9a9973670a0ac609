package sortplan

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestAvailability(t *testing.T) {
	tb := labelTable(t, ResolverConfig{})
	gs1 := []string{"]C142090210"} // chutes 1|2
	tests := []struct {
		name   string
		codes  []string
		down   []uint16
		chute  uint16
		reason Reason
	}{
		{"primary", gs1, nil, 1, ReasonSorted},
		{"primary full: alternate", gs1, []uint16{1}, 2, ReasonAlternate},
		{"alternate down only", gs1, []uint16{2}, 1, ReasonSorted},
		{"all down: recirculate", gs1, []uint16{1, 2}, 0, ReasonRecirculate},
		{"noread primary", nil, nil, 60, ReasonNoRead},
		{"noread alternate keeps its reason", nil, []uint16{60}, 61, ReasonNoRead},
		{"noread all down", nil, []uint16{60, 61}, 0, ReasonRecirculate},
		{"multiread single chute down", []string{"]C142090210", "]C142090211"}, []uint16{62}, 0, ReasonRecirculate},
		{"unrelated chute down", gs1, []uint16{3, 64, 65535}, 1, ReasonSorted},
		{"long list: fourth alternate", []string{"]C1403DSF5"}, []uint16{20, 21, 22}, 23, ReasonAlternate},
		{"long list: last alternate", []string{"]C1403DSF5"}, []uint16{20, 21, 22, 23}, 24, ReasonAlternate},
		{"long list: none", []string{"]C1403DSF5"}, []uint16{20, 21, 22, 23, 24}, 0, ReasonRecirculate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Availability
			for _, c := range tt.down {
				a.Set(c, true)
			}
			d := tb.Decide(tt.codes, &a)
			if d.Chute != tt.chute || d.Reason != tt.reason {
				t.Errorf("got chute %d reason %v, want %d %v", d.Chute, d.Reason, tt.chute, tt.reason)
			}
			for _, c := range tt.down {
				a.Set(c, false)
				if a.Unavailable(c) {
					t.Errorf("chute %d still unavailable", c)
				}
			}
			if d := tb.Decide(tt.codes, &a); d.Reason == ReasonRecirculate || d.Reason == ReasonAlternate {
				t.Errorf("after clearing: %+v", d)
			}
		})
	}
	var nilAvail *Availability
	if nilAvail.Unavailable(1) {
		t.Error("nil availability")
	}
}

func TestDecideException(t *testing.T) {
	tb := labelTable(t, ResolverConfig{})
	var a Availability
	tests := []struct {
		reason Reason
		down   uint16
		chute  uint16
		want   Reason
	}{
		{ReasonRecircLimit, 0, 63, ReasonRecircLimit},
		{ReasonRecircLimit, 63, 64, ReasonRecircLimit},
		{ReasonNoRead, 0, 60, ReasonNoRead},
		{ReasonUnknown, 0, 61, ReasonUnknown},
		{ReasonMultiRead, 0, 62, ReasonMultiRead},
		{ReasonDegraded, 0, 0, ReasonDegraded},
		{ReasonSorted, 0, 0, ReasonSorted},
	}
	for _, tt := range tests {
		if tt.down != 0 {
			a.Set(tt.down, true)
		}
		d := tb.DecideException(tt.reason, &a)
		if d.Chute != tt.chute || d.Reason != tt.want || d.Version != 5 {
			t.Errorf("DecideException(%v) = %+v, want chute %d", tt.reason, d, tt.chute)
		}
		if tt.down != 0 {
			a.Set(tt.down, false)
		}
	}
}

func TestDecideKey(t *testing.T) {
	tb := labelTable(t, ResolverConfig{})
	tests := []struct {
		key   string
		chute uint16
	}{
		{"90210", 1}, {"902101234", 3}, {"902109999", 1}, {"90255", 5}, {"276:10115", 8}, {"276:1", 7},
		{"840:90210", 1}, {"DSF4", 9}, {"DSF", 61}, {"", 61}, {"9", 61}, {"250:1", 61},
	}
	for _, tt := range tests {
		if d := tb.DecideKey(tt.key, nil); d.Chute != tt.chute {
			t.Errorf("DecideKey(%q) = %+v, want chute %d", tt.key, d, tt.chute)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	p, _, err := ParsePlan("p", strings.NewReader(labelPlan), 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    *Plan
		rc   ResolverConfig
		want string
	}{
		{"nil plan", nil, ResolverConfig{}, "no plan"},
		{"bad country", p, ResolverConfig{CountryCode: "US"}, "want 3 digits"},
		{"bad regexp", p, ResolverConfig{Patterns: []string{"("}}, "pattern 1"},
		{"no dest group", p, ResolverConfig{Patterns: []string{`^\d+$`}}, "no named group"},
		{"hand-built plan without exceptions", &Plan{Name: "x", Version: 1, Rules: []Rule{{Kind: RuleExact, Pattern: "1", Key: "1", Chutes: []uint16{1}}}}, ResolverConfig{}, "missing NOREAD"},
	}
	for _, tt := range tests {
		if _, err := Compile(tt.p, nil, tt.rc); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestReasonString(t *testing.T) {
	want := []string{"sorted", "no-read", "unknown", "multi-read", "alternate", "recirculate", "recirc-limit", "degraded", "missed-cutoff", "reason(9)"}
	for i, w := range want {
		if got := Reason(i).String(); got != w {
			t.Errorf("Reason(%d) = %q, want %q", i, got, w)
		}
	}
}

// versionTable builds a table whose every rule sends to chute = version,
// so a decision shows which table made it.
func versionTable(t testing.TB, v uint64) *Table {
	t.Helper()
	c := 1 + v%200
	src := fmt.Sprintf("plan_name,v%d\nplan_version,%d\nchute_count,256\npattern,chutes,route\nNOREAD,%d\nUNKNOWN,%d\nMULTIREAD,%d\nRECIRC_LIMIT,%d\n9*,%d,R%d\nEND\n", v, v, c, c, c, c, c, v)
	p, _, err := ParsePlan("v", strings.NewReader(src), 0)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Compile(p, nil, ResolverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestHolderVersions(t *testing.T) {
	var h Holder
	if h.Load() != nil {
		t.Fatal("empty holder returned a table")
	}
	if err := h.Store(versionTable(t, 3)); err != nil {
		t.Fatal(err)
	}
	for _, v := range []uint64{3, 2} {
		if err := h.Store(versionTable(t, v)); !errors.Is(err, ErrVersionNotNewer) {
			t.Errorf("store version %d over 3: %v", v, err)
		}
	}
	if h.Load().Version() != 3 {
		t.Errorf("version %d", h.Load().Version())
	}
	if err := h.Store(versionTable(t, 4)); err != nil || h.Load().Version() != 4 {
		t.Errorf("store 4: %v", err)
	}
	if err := h.Store(nil); err == nil {
		t.Error("nil table stored")
	}
}

// TestHolderConcurrentSwap swaps tables while readers decide: readers never
// block, every decision is consistent with the table it names, and a
// reader never sees the version go backwards. Run with -race.
func TestHolderConcurrentSwap(t *testing.T) {
	const versions = 60
	tables := make([]*Table, versions+1)
	for v := 1; v <= versions; v++ {
		tables[v] = versionTable(t, uint64(v))
	}
	var h Holder
	if err := h.Store(tables[1]); err != nil {
		t.Fatal(err)
	}
	var a Availability
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes := []string{"]C142090210"}
			var last uint64
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				tb := h.Load()
				d := tb.Decide(codes, &a)
				if d.Version != tb.Version() || uint64(d.Chute) != 1+d.Version%200 || d.Route != fmt.Sprintf("R%d", d.Version) {
					errs <- fmt.Errorf("decision %+v inconsistent with table version %d", d, tb.Version())
					return
				}
				if d.Version < last {
					errs <- fmt.Errorf("version went back from %d to %d", last, d.Version)
					return
				}
				last = d.Version
			}
		}()
	}
	// Writers: two goroutines race to store every version; only newer ones win.
	var ww sync.WaitGroup
	for w := 0; w < 2; w++ {
		ww.Add(1)
		go func() {
			defer ww.Done()
			for v := 2; v <= versions; v++ {
				if err := h.Store(tables[v]); err != nil && !errors.Is(err, ErrVersionNotNewer) {
					errs <- err
				}
				a.Set(uint16(230+v%20), v%2 == 0) // chutes no table uses: availability churns under the readers
			}
		}()
	}
	ww.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v := h.Load().Version(); v != versions {
		t.Errorf("final version %d, want %d", v, versions)
	}
}

// TestHolderNoLostUpdate: writers install versions at the same time while
// watchers read. Versions only grow: once Store acknowledges version v the
// active version is v or newer for good, a refused Store means a version at
// least as new is active, and the newest version ends up installed. A plain
// store after the version check (no compare-and-swap) lets a writer that
// checked against an old table overwrite a newer one already acknowledged;
// under -race a round catches that about 19 times in 20, so the test runs
// three. Run with -race.
func TestHolderNoLostUpdate(t *testing.T) {
	const writers, newest, rounds = 8, 50000, 3
	// More Ps than cores: the OS then stops writers at any instruction,
	// also between the version check and the swap, on a machine of any size.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.NumCPU())))
	// Copies of one compiled table that differ only in version: the holder
	// looks at nothing else, and a compiled table holds a 400 kB ZIP index.
	base := versionTable(t, 1)
	tables := make([]*Table, newest+1)
	for v := 1; v <= newest; v++ {
		tb := *base
		tb.version = uint64(v)
		tables[v] = &tb
	}
	for round := 1; round <= rounds; round++ {
		for _, err := range raceHolder(tables, writers) {
			t.Errorf("round %d: %v", round, err)
		}
		if t.Failed() {
			return
		}
	}
}

// raceHolder installs tables[1] into a new Holder, then has writers store
// tables[2:] concurrently, each taking the next version from one counter,
// while two watchers read. It returns the broken rules it saw.
func raceHolder(tables []*Table, writers int) []error {
	newest := uint64(len(tables) - 1)
	var h Holder
	if err := h.Store(tables[1]); err != nil {
		return []error{err}
	}
	var next atomic.Uint64 // the last version a writer took
	next.Store(1)
	var acked atomic.Uint64 // the newest version Store has acknowledged
	ack := func(v uint64) {
		for {
			cur := acked.Load()
			if v <= cur || acked.CompareAndSwap(cur, v) {
				return
			}
		}
	}
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default: // enough to show the bug
		}
	}
	start, stop := make(chan struct{}), make(chan struct{})
	var watchers sync.WaitGroup
	for r := 0; r < 2; r++ {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			<-start
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := acked.Load() // acknowledged before the Load below
				if v := h.Load().Version(); v < m {
					report(fmt.Errorf("active version %d after version %d was acknowledged", v, m))
					return
				}
			}
		}()
	}
	// Two writers in Store at once hold neighbouring versions, and the
	// older one often lands second: that store must be refused.
	var ww sync.WaitGroup
	for w := 0; w < writers; w++ {
		ww.Add(1)
		go func() {
			defer ww.Done()
			<-start
			for {
				v := next.Add(1)
				if v > newest {
					return
				}
				err := h.Store(tables[v])
				switch {
				case err == nil:
					ack(v)
					if a := h.Load().Version(); a < v {
						report(fmt.Errorf("version %d acknowledged, then active is %d: an older table overwrote it", v, a))
					}
				case !errors.Is(err, ErrVersionNotNewer):
					report(fmt.Errorf("store version %d: %w", v, err))
				case h.Load().Version() < v:
					report(fmt.Errorf("version %d refused as not newer, but active is %d", v, h.Load().Version()))
				}
			}
		}()
	}
	close(start)
	ww.Wait()
	close(stop)
	watchers.Wait()
	close(errs)
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	if v := h.Load().Version(); v != newest || acked.Load() != newest {
		out = append(out, fmt.Errorf("active version %d, newest acknowledged %d, want both %d", v, acked.Load(), newest))
	}
	return out
}

func TestDiff(t *testing.T) {
	old, _, err := ParsePlan("old", strings.NewReader(labelPlan), 0)
	if err != nil {
		t.Fatal(err)
	}
	src := strings.NewReplacer(
		"plan_version,5", "plan_version,6",
		"90211,4,R3\n", "",
		"DSF4,9,DSF", "DSF4,9,DSF-NEW",
		"NOREAD,60|61", "NOREAD,61|60",
		"902*,5|6,LH-902\n", "902*,5|6,LH-902\n9022*,12,R12\n",
	).Replace(labelPlan)
	nw, _, err := ParsePlan("new", strings.NewReader(src), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Change{}
	for _, c := range Diff(old, nw) {
		got[c.Dest] = c
	}
	want := map[string]string{
		"NOREAD": "60|61 EXC -> 61|60 EXC",
		"90211":  "4 R3 -> 5|6 LH-902", // removed: falls back to 902*
		"DSF4":   "9 DSF -> 9 DSF-NEW",
		"9022*":  "5|6 LH-902 -> 12 R12", // added: the old plan sent these by 902*
	}
	for k, w := range want {
		c, ok := got[k]
		if !ok {
			t.Errorf("no change for %s", k)
			continue
		}
		s := fmt.Sprintf("%s %s -> %s %s", joinU16(c.OldChutes), c.OldRoute, joinU16(c.NewChutes), c.NewRoute)
		if s != w {
			t.Errorf("%s: %s, want %s", k, s, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("changes %v", got)
	}
	if d := Diff(old, old); len(d) != 0 {
		t.Errorf("self diff %v", d)
	}
}

func joinU16(c []uint16) string {
	s := make([]string, len(c))
	for i, v := range c {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, "|")
}

func TestHolderReplaceManifest(t *testing.T) {
	src := "plan_name,site\nplan_version,7\nchute_count,256\npattern,chutes,route\nNOREAD,250\nUNKNOWN,250\nMULTIREAD,250\nRECIRC_LIMIT,251\n902*,12|13,R1\nEND\n"
	compile := func(src, manifest string) *Table {
		t.Helper()
		p, _, err := ParsePlan("plan.csv", strings.NewReader(src), 0)
		if err != nil {
			t.Fatal(err)
		}
		var m *Manifest
		if manifest != "" {
			if m, err = ParseManifest("m.csv", strings.NewReader(manifest+"END\n")); err != nil {
				t.Fatal(err)
			}
		}
		tb, err := Compile(p, m, ResolverConfig{})
		if err != nil {
			t.Fatal(err)
		}
		return tb
	}
	var h Holder
	if err := h.ReplaceManifest(compile(src, "TBA000000000001,90210\n")); err != nil {
		t.Fatalf("first table: %v", err)
	}
	if d := h.Load().Decide([]string{"TBA000000000002"}, nil); d.Reason != ReasonUnknown {
		t.Fatalf("id not yet in the manifest: %+v", d)
	}
	// The day's new manifest under the same plan: accepted, same version.
	next := compile("# reloaded\n"+src, "TBA000000000001,90210\nTBA000000000002,90299\n")
	if err := h.ReplaceManifest(next); err != nil {
		t.Fatalf("same plan, new manifest: %v", err)
	}
	if d := h.Load().Decide([]string{"TBA000000000002"}, nil); d.Chute != 12 || d.Version != 7 {
		t.Fatalf("after the manifest reload: %+v", d)
	}
	// A changed plan under the old version is refused; the active one stays.
	changed := compile(strings.Replace(src, "12|13", "14|13", 1), "")
	if err := h.ReplaceManifest(changed); !errors.Is(err, ErrPlanChanged) {
		t.Fatalf("changed plan: %v, want ErrPlanChanged", err)
	}
	if h.Load() != next {
		t.Fatal("a refused table replaced the active one")
	}
	// Store still refuses the same version.
	if err := h.Store(next); !errors.Is(err, ErrVersionNotNewer) {
		t.Fatalf("Store same version: %v", err)
	}
}
