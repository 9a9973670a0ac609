package sortplan

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"sync/atomic"
	"time"
	"unsafe"
)

// ResolverConfig says how codes are read at this site.
type ResolverConfig struct {
	// CountryCode is the site's ISO 3166 numeric country ("840"): AI 421
	// with it is a plain postal code, any other gives "<country>:<postal>".
	CountryCode string `yaml:"country_code"`
	// Patterns are regular expressions with a named group (?P<dest>…),
	// tried last, in order, on codes that gave nothing else.
	Patterns []string `yaml:"patterns"`
	// NoReadToken is the scanner's no-read code ("NoRead").
	NoReadToken string `yaml:"noread_token"`
	// RequireSymbologyID: read GS1 element strings only when they carry a
	// GS1 symbology identifier (]C1, ]d2, ]Q3, ]e0, ]J1), a GS or the
	// parenthesised form, so that a bare EAN-8 like 42090210 is never
	// taken for an AI 420 postal code.
	RequireSymbologyID bool `yaml:"require_symbology_id"`
}

// Defaults fills empty fields with the contract's defaults.
func (rc *ResolverConfig) Defaults() {
	if rc.CountryCode == "" {
		rc.CountryCode = "840"
	}
	if rc.NoReadToken == "" {
		rc.NoReadToken = "NoRead"
	}
}

// Validate fills defaults and checks the configuration (country code,
// patterns compile and have a dest group).
func (rc *ResolverConfig) Validate() error {
	rc.Defaults()
	if len(rc.CountryCode) != 3 || !allDigits(rc.CountryCode) {
		return fmt.Errorf("resolver: country code %q: want 3 digits (ISO 3166 numeric, 840 for the US)", rc.CountryCode)
	}
	for i, p := range rc.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("resolver: pattern %d %q: %w", i+1, p, err)
		}
		if re.SubexpIndex("dest") < 0 {
			return fmt.Errorf("resolver: pattern %d %q: no named group (?P<dest>...)", i+1, p)
		}
	}
	return nil
}

// Table is a compiled plan plus the label resolver: immutable, safe for
// concurrent use, built once per plan.
type Table struct {
	plan    *Plan
	name    string
	version uint64
	rules   []crule
	arena   []uint16 // every rule's chute list, back to back
	z5      []int32  // rule for each 5-digit key (exact, else longest prefix <= 5); -1 none
	keys    []string // every rule's key (the plan's strings)
	exact   keyIndex // exact keys other than 5-digit ones
	prefix  keyIndex // prefix stems
	plens   []int    // prefix stem lengths, longest first
	exc     [4]int32 // NOREAD, UNKNOWN, MULTIREAD, RECIRC_LIMIT

	man          *Manifest
	country      string
	noRead       string
	requireSymID bool
	pats         []*regexp.Regexp
	patDest      []int
}

// crule is a compiled row: only what a decision reads, in 32 bytes, so
// that two rows share a cache line and none straddles two. Up to three
// chutes sit inline; a longer list is arena[c0:c0+len] with its length in
// ch[0] (low 16 bits) and ch[1] (high 16). The row's kind and pattern are
// read from the plan (Summary, Explain).
type crule struct {
	route string
	line  int32
	c0    uint32    // arena offset when n == 0
	ch    [3]uint16 // the chutes when n > 0
	n     uint8     // inline chute count; 0: in the arena
}

// chutes returns the rule's chute list.
func (t *Table) chutes(r *crule) []uint16 {
	if r.n > 0 {
		return r.ch[:r.n]
	}
	return t.arena[r.c0 : r.c0+uint32(r.ch[0])|uint32(r.ch[1])<<16]
}

// Compile builds the lookup table for p. m may be nil (no manifest: package
// ids then resolve to nothing).
func Compile(p *Plan, m *Manifest, rc ResolverConfig) (*Table, error) {
	if p == nil {
		return nil, errors.New("compile: no plan")
	}
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("compile %s: %w", p.File, err)
	}
	t := &Table{
		plan: p, name: p.Name, version: p.Version, man: m,
		country: rc.CountryCode, noRead: rc.NoReadToken, requireSymID: rc.RequireSymbologyID,
		exc: [4]int32{-1, -1, -1, -1},
	}
	for _, s := range rc.Patterns {
		re := regexp.MustCompile(s) // validated above
		t.pats = append(t.pats, re)
		t.patDest = append(t.patDest, re.SubexpIndex("dest"))
	}
	n := 0
	for i := range p.Rules {
		if c := len(p.Rules[i].Chutes); c > len(crule{}.ch) {
			n += c // longer than the inline chutes
		}
	}
	t.arena = make([]uint16, 0, n)
	t.rules = make([]crule, len(p.Rules))
	nExact, nPrefix := 0, 0
	for i := range p.Rules {
		switch p.Rules[i].Kind {
		case RuleExact:
			nExact++
		case RulePrefix:
			nPrefix++
		}
	}
	t.exact = newKeyIndex(nExact)
	t.prefix = newKeyIndex(nPrefix)
	t.keys = make([]string, len(p.Rules))
	t.z5 = make([]int32, 100000)
	for i := range t.z5 {
		t.z5[i] = -1
	}
	seenLen := [64]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if len(r.Chutes) == 0 {
			return nil, fmt.Errorf("compile %s:%d: rule %s has no chutes", p.File, r.Line, r.Pattern)
		}
		t.keys[i] = r.Key
		cr := crule{line: int32(r.Line), route: r.Route}
		if len(r.Chutes) <= len(cr.ch) {
			cr.n = uint8(copy(cr.ch[:], r.Chutes))
		} else {
			n := uint32(len(r.Chutes))
			cr.c0, cr.ch[0], cr.ch[1] = uint32(len(t.arena)), uint16(n), uint16(n>>16)
			t.arena = append(t.arena, r.Chutes...)
		}
		t.rules[i] = cr
		switch r.Kind {
		case RuleExact:
			if len(r.Key) == 5 && allDigits(r.Key) {
				t.z5[atoi5(r.Key)] = int32(i)
			} else {
				t.exact.insert(r.Key, int32(i), t.keys)
			}
		case RulePrefix:
			if len(r.Key) == 0 || len(r.Key) >= len(seenLen) {
				return nil, fmt.Errorf("compile %s:%d: bad prefix %s", p.File, r.Line, r.Pattern)
			}
			t.prefix.insert(r.Key, int32(i), t.keys)
			if !seenLen[len(r.Key)] {
				seenLen[len(r.Key)] = true
				t.plens = append(t.plens, len(r.Key))
			}
		default:
			t.exc[r.Kind-RuleNoRead] = int32(i)
		}
	}
	for k, ex := range exceptionRows {
		if t.exc[k] < 0 {
			return nil, fmt.Errorf("compile %s: missing %s row", p.File, ex.name)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(t.plens)))
	// Resolve every 5-digit key once, so that a ZIP5 costs one array read.
	var buf [5]byte
	for z := range t.z5 {
		if t.z5[z] >= 0 {
			continue
		}
		zipDigits(&buf, z)
		for _, l := range t.plens {
			if l > 5 {
				continue
			}
			if i, ok := t.prefix.get(unsafe.String(&buf[0], l), t.keys); ok {
				t.z5[z] = i
				break
			}
		}
	}
	return t, nil
}

func atoi5(s string) int {
	return int(s[0]-'0')*10000 + int(s[1]-'0')*1000 + int(s[2]-'0')*100 + int(s[3]-'0')*10 + int(s[4]-'0')
}

// Version returns the plan version the table was compiled from.
func (t *Table) Version() uint64 { return t.version }

// Name returns the plan's name.
func (t *Table) Name() string { return t.name }

// Plan returns the plan the table was compiled from (read it, never change it).
func (t *Table) Plan() *Plan { return t.plan }

// Manifest returns the manifest the table resolves package ids with (may be nil).
func (t *Table) Manifest() *Manifest { return t.man }

// lookupKey returns the rule for a destination key, -1 if none.
func (t *Table) lookupKey(key string) int32 {
	n := len(key)
	if n == 5 && allDigits(key) {
		return t.z5[atoi5(key)]
	}
	if i, ok := t.exact.get(key, t.keys); ok {
		return i
	}
	zip9 := n == 9 && allDigits(key)
	for _, l := range t.plens {
		if l > n {
			continue
		}
		if zip9 && l <= 5 {
			break
		}
		if i, ok := t.prefix.get(key[:l], t.keys); ok {
			return i
		}
	}
	if zip9 {
		return t.z5[atoi5(key)]
	}
	return -1
}

// zip5 returns the z5 index of a 5-digit key.
func zip5(key string) (int, bool) {
	if len(key) != 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < 5; i++ {
		c := key[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int(c)
	}
	return n, true
}

// lookup returns the rule for d. A ZIP5, the common key, is one array
// read here, without a call.
func (t *Table) lookup(d dest) int32 {
	if d.cc == "" {
		if z, ok := zip5(d.key); ok {
			return t.z5[z]
		}
		return t.lookupKey(d.key)
	}
	return t.lookupForeign(d)
}

// lookupForeign returns the rule for a key of another country, building
// "<cc>:<postal>" on the stack.
func (t *Table) lookupForeign(d dest) int32 {
	var buf [64]byte
	if len(d.cc)+1+len(d.key) > len(buf) {
		return -1
	}
	n := copy(buf[:], d.cc)
	buf[n] = ':'
	n++
	n += copy(buf[n:], d.key)
	// unsafe.String: the key lives on this stack frame only for the lookups.
	key := unsafe.String(&buf[0], n)
	if i, ok := t.exact.get(key, t.keys); ok {
		return i
	}
	for _, l := range t.plens {
		if l > n {
			continue
		}
		if i, ok := t.prefix.get(key[:l], t.keys); ok {
			return i
		}
	}
	return -1
}

// Decision is the outcome for one item.
type Decision struct {
	Chute   uint16 // 0: recirculate
	Reason  Reason
	Route   string // route or van of the matched row ("" if none)
	Version uint64 // plan version the decision was made under
	// Dest is the destination key found in the codes ("" for no-read,
	// multi-read and codes without a destination). For a postal code of
	// another country (AI 421) Dest holds the postal code and Country the
	// ISO country code; DestKey joins them.
	Dest    string
	Country string
	Line    int // plan line of the row that decided; 0 if none
}

// DestKey returns the destination key as a plan writes it, e.g. "90210"
// or "276:10115". It allocates for a foreign key: call it off the hot path.
func (d Decision) DestKey() string {
	if d.Country == "" {
		return d.Dest
	}
	return d.Country + ":" + d.Dest
}

// Decide picks the chute for one scan. It allocates nothing unless the
// codes reach the configured patterns (regexps, tried last).
func (t *Table) Decide(codes []string, avail *Availability) Decision {
	// A wrapper small enough to inline: the caller's Decision is filled in
	// place instead of being copied back through two returns (a 72-byte
	// copy per hop, whose overlapping 16-byte moves also defeat store
	// forwarding).
	var dec Decision
	t.decide(codes, avail, &dec)
	return dec
}

// decide is Decide into dec, which must be zero on entry.
func (t *Table) decide(codes []string, avail *Availability, dec *Decision) {
	var d dest
	have, conflict, anyCode := false, false, false
	for _, c := range codes {
		if c == "" || c == t.noRead {
			continue
		}
		anyCode = true
		var r resolution
		t.resolveInto(c, &r)
		if !r.ok {
			continue
		}
		if !have {
			d, have = r.dest, true
			continue
		}
		if m, ok := agree(d, r.dest); ok {
			d = m
		} else {
			conflict = true
		}
	}
	switch {
	case !anyCode:
		t.pick(dec, t.exc[0], ReasonNoRead, avail, dest{})
	case conflict:
		t.pick(dec, t.exc[2], ReasonMultiRead, avail, dest{})
	case !have:
		t.pick(dec, t.exc[1], ReasonUnknown, avail, dest{})
	default:
		var ri int32
		if z, ok := zip5(d.key); ok && d.cc == "" {
			ri = t.z5[z] // lookup's first case, written out: no call for a ZIP5
		} else {
			ri = t.lookup(d)
		}
		if ri >= 0 {
			t.pick(dec, ri, ReasonSorted, avail, d)
		} else {
			t.pick(dec, t.exc[1], ReasonUnknown, avail, d)
		}
	}
}

// DecideKey decides for a destination key given directly (a hand-scan
// station, a test), e.g. "90210" or "276:10115".
func (t *Table) DecideKey(key string, avail *Availability) (dec Decision) {
	d := t.splitDest(key)
	if key == "" {
		t.pick(&dec, t.exc[1], ReasonUnknown, avail, d)
		return dec
	}
	if ri := t.lookup(d); ri >= 0 {
		t.pick(&dec, ri, ReasonSorted, avail, d)
	} else {
		t.pick(&dec, t.exc[1], ReasonUnknown, avail, d)
	}
	return dec
}

// DecideException sends an item to an exception chute: reason is
// ReasonNoRead, ReasonUnknown, ReasonMultiRead or ReasonRecircLimit. Any
// other reason gives chute 0 with that reason.
func (t *Table) DecideException(reason Reason, avail *Availability) (dec Decision) {
	var k int
	switch reason {
	case ReasonNoRead:
		k = 0
	case ReasonUnknown:
		k = 1
	case ReasonMultiRead:
		k = 2
	case ReasonRecircLimit:
		k = 3
	default:
		return Decision{Reason: reason, Version: t.version}
	}
	t.pick(&dec, t.exc[k], reason, avail, dest{})
	return dec
}

// pick takes the first available chute of rule ri into dec (zero on
// entry). For a plan rule the reason is 0 (primary) or 4 (alternate); an
// exception row keeps its own reason on any of its chutes. None
// available: chute 0, reason 5.
func (t *Table) pick(dec *Decision, ri int32, reason Reason, avail *Availability, d dest) {
	r := &t.rules[ri]
	dec.Route, dec.Version, dec.Dest, dec.Country, dec.Line = r.route, t.version, d.key, d.cc, int(r.line)
	for i, c := range t.chutes(r) {
		if avail.Unavailable(c) {
			continue
		}
		dec.Chute = c
		dec.Reason = reason
		if i > 0 && reason == ReasonSorted {
			dec.Reason = ReasonAlternate
		}
		return
	}
	dec.Reason = ReasonRecirculate
}

// Availability is a bitset of unavailable chutes (full, disabled at the
// PLC, or taken out by a technician). The zero value has every chute
// available. Set and Unavailable are safe for concurrent use without locks.
type Availability struct {
	words [MaxChutes/64 + 1]atomic.Uint64
}

// Set marks a chute unavailable (true) or available (false).
func (a *Availability) Set(chute uint16, unavailable bool) {
	w := &a.words[chute/64]
	bit := uint64(1) << (chute % 64)
	for {
		old := w.Load()
		nw := old &^ bit
		if unavailable {
			nw = old | bit
		}
		if old == nw || w.CompareAndSwap(old, nw) {
			return
		}
	}
}

// Unavailable reports whether the chute is full or disabled; a nil
// Availability has every chute available.
func (a *Availability) Unavailable(chute uint16) bool {
	if a == nil {
		return false
	}
	return a.words[chute/64].Load()&(uint64(1)<<(chute%64)) != 0
}

// Holder holds the active table. Load never blocks; Store replaces the
// table in one atomic swap and only with a newer version, so an item
// decided under version N keeps N (its Decision says so).
type Holder struct {
	p atomic.Pointer[Table]
}

// Load returns the active table, nil before the first Store.
func (h *Holder) Load() *Table { return h.p.Load() }

// Store makes t the active table if its version is newer than the active
// one's; otherwise it returns ErrVersionNotNewer and keeps the old table.
func (h *Holder) Store(t *Table) error {
	if t == nil {
		return errors.New("store plan: nil table")
	}
	for {
		cur := h.p.Load()
		if cur != nil && t.version <= cur.version {
			return fmt.Errorf("store plan %s version %d (active %d): %w", t.name, t.version, cur.version, ErrVersionNotNewer)
		}
		if h.p.CompareAndSwap(cur, t) {
			return nil
		}
	}
}

// ReplaceManifest swaps in t when it compiles the same plan as the active
// table (same name, same version, and every row with the same pattern,
// chutes and route) with another manifest: the daily manifest reload keeps
// the plan version, so decisions keep reporting the version they were made
// under. A table of a changed plan is refused with ErrPlanChanged (it must
// raise its version and go through Store). With no active table it acts as
// Store.
func (h *Holder) ReplaceManifest(t *Table) error {
	if t == nil {
		return errors.New("replace manifest: nil table")
	}
	for {
		cur := h.p.Load()
		if cur == nil {
			return h.Store(t)
		}
		if t.name != cur.name || t.version != cur.version || !sameRules(t.plan, cur.plan) {
			return fmt.Errorf("replace manifest under plan %s version %d (active %s version %d): %w",
				t.name, t.version, cur.name, cur.version, ErrPlanChanged)
		}
		if h.p.CompareAndSwap(cur, t) {
			return nil
		}
	}
}

// sameRules reports whether two plans route every destination alike: the
// same rows in the same order (line numbers and comments may differ).
func sameRules(a, b *Plan) bool {
	if a == nil || b == nil || len(a.Rules) != len(b.Rules) || a.ChuteCount != b.ChuteCount {
		return false
	}
	for i := range a.Rules {
		x, y := &a.Rules[i], &b.Rules[i]
		if x.Kind != y.Kind || x.Pattern != y.Pattern || x.Route != y.Route || !slices.Equal(x.Chutes, y.Chutes) {
			return false
		}
	}
	return true
}

// Summary describes a compiled plan for `plan check` and the status page.
type Summary struct {
	Name       string
	Version    uint64
	Effective  time.Time
	File       string
	ChuteCount int
	Rules      int // rows, exception rows included
	Exact      int
	Prefixes   int
	ChutesUsed int
	Routes     int
	Exceptions map[string][]uint16 // NOREAD… -> chutes
	ZIP5       int                 // 5-digit keys that reach a rule (exact or prefix)
}

// Summary counts what the table holds.
func (t *Table) Summary() Summary {
	s := Summary{Name: t.name, Version: t.version, Effective: t.plan.Effective, File: t.plan.File,
		ChuteCount: t.plan.ChuteCount, Rules: len(t.rules), Exceptions: map[string][]uint16{}}
	chutes := map[uint16]bool{}
	routes := map[string]bool{}
	for i, r := range t.rules {
		pr := &t.plan.Rules[i]
		switch pr.Kind {
		case RuleExact:
			s.Exact++
		case RulePrefix:
			s.Prefixes++
		default:
			s.Exceptions[pr.Pattern] = append([]uint16(nil), pr.Chutes...)
		}
		for _, c := range t.chutes(&t.rules[i]) {
			chutes[c] = true
		}
		if r.route != "" && pr.Kind <= RulePrefix {
			routes[r.route] = true
		}
	}
	for _, z := range t.z5 {
		if z >= 0 {
			s.ZIP5++
		}
	}
	s.ChutesUsed, s.Routes = len(chutes), len(routes)
	return s
}
