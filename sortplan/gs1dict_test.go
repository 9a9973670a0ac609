package sortplan

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An independent reader of GS1 element strings, driven by the GS1 Barcode
// Syntax Dictionary itself: dictLines is a literal transcription of the
// dictionary's entries (AI, "*" flag, format specification; attributes
// and titles left out) from github.com/gs1/gs1-syntax-dictionary,
// gs1-syntax-dictionary.txt at commit f7e477f17d48. The reader below
// applies each entry component by component, the way the dictionary
// describes it, and shares no code or table with the production reader
// (label_gs1.go, gs1_ais.go, gs1_lint.go). The two must agree on every AI
// (TestAITableMatchesDictionary) and on every element string (FuzzGS1).
const dictLines = `
00         *  N18,csum,keyoff1
01         *  N14,csum,keyoff1
02         *  N14,csum,keyoff1
03         *  N14,csum,keyoff1
10            X..20
11         *  N6,yymmd0
12         *  N6,yymmd0
13         *  N6,yymmd0
15         *  N6,yymmd0
16         *  N6,yymmd0
17         *  N6,yymmd0
20         *  N2
21            X..20
22            X..20
235           X..28
240           X..30
241           X..30
242           N..6
243           X..20
250           X..30
251           X..30
253           N13,csum,key [X..17]
254           X..20
255           N13,csum,key [N..12]
30            N..8
3100-3105  *  N6
3110-3115  *  N6
3120-3125  *  N6
3130-3135  *  N6
3140-3145  *  N6
3150-3155  *  N6
3160-3165  *  N6
3200-3205  *  N6
3210-3215  *  N6
3220-3225  *  N6
3230-3235  *  N6
3240-3245  *  N6
3250-3255  *  N6
3260-3265  *  N6
3270-3275  *  N6
3280-3285  *  N6
3290-3295  *  N6
3300-3305  *  N6
3310-3315  *  N6
3320-3325  *  N6
3330-3335  *  N6
3340-3345  *  N6
3350-3355  *  N6
3360-3365  *  N6
3370-3375  *  N6
3400-3405  *  N6
3410-3415  *  N6
3420-3425  *  N6
3430-3435  *  N6
3440-3445  *  N6
3450-3455  *  N6
3460-3465  *  N6
3470-3475  *  N6
3480-3485  *  N6
3490-3495  *  N6
3500-3505  *  N6
3510-3515  *  N6
3520-3525  *  N6
3530-3535  *  N6
3540-3545  *  N6
3550-3555  *  N6
3560-3565  *  N6
3570-3575  *  N6
3600-3605  *  N6
3610-3615  *  N6
3620-3625  *  N6
3630-3635  *  N6
3640-3645  *  N6
3650-3655  *  N6
3660-3665  *  N6
3670-3675  *  N6
3680-3685  *  N6
3690-3695  *  N6
37            N..8
3900-3909     N..15
3910-3919     N3,iso4217 N..15
3920-3929     N..15
3930-3939     N3,iso4217 N..15
3940-3943     N4
3950-3955     N6
400           X..30
401           X..30,key
402           N17,csum,key
403           X..30
410        *  N13,csum,key
411        *  N13,csum,key
412        *  N13,csum,key
413        *  N13,csum,key
414        *  N13,csum,key
415        *  N13,csum,key
416        *  N13,csum,key
417        *  N13,csum,key
420           X..20
421           N3,iso3166 X..9
422           N3,iso3166
423           N3,iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166
424           N3,iso3166
425           N3,iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166
426           N3,iso3166
427           X..3
4300          X..35,pcenc
4301          X..35,pcenc
4302          X..70,pcenc
4303          X..70,pcenc
4304          X..70,pcenc
4305          X..70,pcenc
4306          X..70,pcenc
4307          X2,iso3166alpha2
4308          X..30
4309          N10,latitude N10,longitude
4310          X..35,pcenc
4311          X..35,pcenc
4312          X..70,pcenc
4313          X..70,pcenc
4314          X..70,pcenc
4315          X..70,pcenc
4316          X..70,pcenc
4317          X2,iso3166alpha2
4318          X..20
4319          X..30
4320          X..35,pcenc
4321          N1,yesno
4322          N1,yesno
4323          N1,yesno
4324          N6,yymmd0 N4,hhmi
4325          N6,yymmd0 N4,hhmi
4326          N6,yymmdd
4330          N6 [X1],hyphen
4331          N6 [X1],hyphen
4332          N6 [X1],hyphen
4333          N6 [X1],hyphen
7001          N13
7002          X..30
7003          N6,yymmdd N4,hhmi
7004          N..4
7005          X..12
7006          N6,yymmdd
7007          N6,yymmdd [N6],yymmdd
7008          X..3
7009          X..10
7010          X..2
7011          N6,yymmdd [N4],hhmi
7020          X..20
7021          X..20
7022          X..20
7023          X..30,key
7030          N3,iso3166999 X..27
7031          N3,iso3166999 X..27
7032          N3,iso3166999 X..27
7033          N3,iso3166999 X..27
7034          N3,iso3166999 X..27
7035          N3,iso3166999 X..27
7036          N3,iso3166999 X..27
7037          N3,iso3166999 X..27
7038          N3,iso3166999 X..27
7039          N3,iso3166999 X..27
7040          N1 X1 X1 X1,importeridx
7041          X..4,packagetype
710           X..20
711           X..20
712           X..20
713           X..20
714           X..20
715           X..20
716           X..20
7230          X2 X..28
7231          X2 X..28
7232          X2 X..28
7233          X2 X..28
7234          X2 X..28
7235          X2 X..28
7236          X2 X..28
7237          X2 X..28
7238          X2 X..28
7239          X2 X..28
7240          X..20
7241          N2,mediatype
7242          X..25
7250          N8,yyyymmdd
7251          N8,yyyymmdd N4,hhmi
7252          N1,iso5218
7253          X..40,pcenc
7254          X..40,pcenc
7255          X..10
7256          X..90,pcenc
7257          X..70,pcenc
7258          X3,posinseqslash
7259          X..40,pcenc
8001          N4,nonzero N5,nonzero N3,nonzero N1,winding N1
8002          X..20
8003          N1,zero N13,csum,key [X..16]
8004          X..30,key
8005          N6
8006          N14,csum,keyoff1 N4,pieceoftotal
8007          X..34,iban
8008          N6,yymmdd N2,hh [N2],mi [N2],ss
8009          X..50
8010          Y..30,key
8011          N..12,nozeroprefix
8012          X..20
8013          X..25,csumalpha,key
8014          X..25,csumalpha,key,hasnondigit
8017          N18,csum,key
8018          N18,csum,key
8019          N..10
8020          X..25
8026          N14,csum,keyoff1 N4,pieceoftotal
8030          Z..90
8110          X..70,couponcode
8111          N4
8112          X..70,couponposoffer
8200          X..70
90            X..30
91-99         X..90
`

// dictComp is one component of a format specification: "N13,csum",
// "[X..17]".
type dictComp struct {
	typ      byte // N, X, Y, Z
	min, max int
	optional bool
	linters  []string
}

type dictAI struct {
	ai    string
	fixed bool // "*": predefined length, no FNC1 after it
	comps []dictComp
}

// dictLintersApplied are the linters both readers enforce; dictLintersIgnored
// are the ones neither does (outside lists, GS1 company prefixes, details
// that never move a field boundary). Any other name in dictLines is a
// transcription error and fails the test.
var (
	dictLintersApplied = map[string]bool{"csum": true, "yymmd0": true, "yymmdd": true, "yyyymmdd": true,
		"hhmi": true, "hh": true, "mi": true, "ss": true, "yesno": true, "hyphen": true, "zero": true,
		"csumalpha": true, "hasnondigit": true}
	dictLintersIgnored = map[string]bool{"key": true, "keyoff1": true, "iso3166": true, "iso3166999": true,
		"iso3166alpha2": true, "iso4217": true, "iso5218": true, "pcenc": true, "iban": true, "couponcode": true,
		"couponposoffer": true, "mediatype": true, "packagetype": true, "importeridx": true, "nozeroprefix": true,
		"posinseqslash": true, "nonzero": true, "winding": true, "pieceoftotal": true, "latitude": true,
		"longitude": true}
)

// loadDict parses dictLines into one entry per AI (ranges expanded).
func loadDict(t testing.TB) map[string]*dictAI {
	t.Helper()
	out := map[string]*dictAI{}
	for n, line := range strings.Split(strings.TrimSpace(dictLines), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Fatalf("dict line %d: %q", n+1, line)
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		if hi == "" {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || len(lo) != len(hi) || a > b {
			t.Fatalf("dict line %d: AI range %q", n+1, f[0])
		}
		fixed := f[1] == "*"
		specs := f[1:]
		if fixed {
			specs = f[2:]
		}
		var comps []dictComp
		for _, s := range specs {
			var c dictComp
			typ, lints, _ := strings.Cut(s, ",")
			if strings.HasPrefix(typ, "[") {
				inner, rest, ok := strings.Cut(typ[1:], "]")
				if !ok || rest != "" {
					t.Fatalf("dict line %d: component %q", n+1, s)
				}
				typ, c.optional = inner, true
			}
			if lints != "" {
				c.linters = strings.Split(lints, ",")
			}
			for _, l := range c.linters {
				if !dictLintersApplied[l] && !dictLintersIgnored[l] {
					t.Fatalf("dict line %d: unknown linter %q", n+1, l)
				}
			}
			c.typ = typ[0]
			if !strings.Contains("NXYZ", string(c.typ)) {
				t.Fatalf("dict line %d: type %q", n+1, typ)
			}
			if v, ok := strings.CutPrefix(typ[1:], ".."); ok {
				c.min = 1
				c.max, err1 = strconv.Atoi(v)
			} else {
				c.max, err1 = strconv.Atoi(typ[1:])
				c.min = c.max
			}
			if err1 != nil {
				t.Fatalf("dict line %d: length in %q", n+1, typ)
			}
			comps = append(comps, c)
		}
		for ai := a; ai <= b; ai++ {
			k := fmt.Sprintf("%0*d", len(lo), ai)
			if out[k] != nil {
				t.Fatalf("dict: AI %s twice", k)
			}
			out[k] = &dictAI{ai: k, fixed: fixed, comps: comps}
		}
	}
	return out
}

// dictLookup finds the AI that starts s: the dictionary's AIs are
// prefix-free, so at most one of the 2-, 3- and 4-digit prefixes is one.
func dictLookup(d map[string]*dictAI, s string) *dictAI {
	var found *dictAI
	for l := 2; l <= 4 && l <= len(s); l++ {
		if e := d[s[:l]]; e != nil {
			if found != nil {
				panic("dictionary AIs not prefix-free: " + found.ai + " " + e.ai)
			}
			found = e
		}
	}
	return found
}

// Character sets, written out as the General Specifications list them.
const (
	dictCset82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
	dictCset39 = "#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	dictCset64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

func dictInSet(typ byte, c byte) bool {
	switch typ {
	case 'N':
		return c >= '0' && c <= '9'
	case 'X':
		return strings.IndexByte(dictCset82, c) >= 0
	case 'Y':
		return strings.IndexByte(dictCset39, c) >= 0
	}
	return strings.IndexByte(dictCset64, c) >= 0
}

// dictMod10 is the GS1 mod-10 check: weights 1 and 3 alternating from the
// check digit leftwards, the weighted sum of all digits including the
// check digit a multiple of 10.
func dictMod10(v string) bool {
	sum := 0
	for i := 0; i < len(v); i++ {
		w := 1
		if (len(v)-1-i)%2 == 1 {
			w = 3
		}
		sum += int(v[i]-'0') * w
	}
	return sum%10 == 0
}

// dictPrimes are the weights of the alphanumeric check pair.
var dictPrimes = []int{2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97}

// dictCheckPair computes the GS1 alphanumeric check character pair of
// body (at most 25 characters, the longest GMN).
func dictCheckPair(body string) string {
	sum := 0
	for i := 0; i < len(body); i++ {
		sum += strings.IndexByte(dictCset82, body[i]) * dictPrimes[len(body)-1-i]
	}
	sum %= 1021
	const c32 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
	return string([]byte{c32[sum/32], c32[sum%32]})
}

// dictDate checks a date whose year has yl digits, via time.Date's
// normalisation: a date that does not exist comes back changed.
func dictDate(v string, yl int, day0 bool) bool {
	y, _ := strconv.Atoi(v[:yl])
	if yl == 2 {
		y += 2000
	}
	m, _ := strconv.Atoi(v[yl : yl+2])
	d, _ := strconv.Atoi(v[yl+2 : yl+4])
	if day0 && d == 0 {
		return m >= 1 && m <= 12
	}
	tm := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	return tm.Year() == y && int(tm.Month()) == m && tm.Day() == d
}

func dictLint(name, v string) bool {
	num := func(lim int) bool { n, _ := strconv.Atoi(v); return n < lim }
	switch name {
	case "csum":
		return dictMod10(v)
	case "yymmd0":
		return dictDate(v, 2, true)
	case "yymmdd":
		return dictDate(v, 2, false)
	case "yyyymmdd":
		return dictDate(v, 4, false)
	case "hhmi":
		h, _ := strconv.Atoi(v[:2])
		m, _ := strconv.Atoi(v[2:])
		return h < 24 && m < 60
	case "hh":
		return num(24)
	case "mi", "ss":
		return num(60)
	case "yesno":
		return v == "0" || v == "1"
	case "hyphen":
		return v == "-"
	case "zero":
		return v == "0"
	case "csumalpha":
		return len(v) >= 2 && len(v)-2 <= len(dictPrimes) && strings.Trim(v[:len(v)-2], dictCset82) == "" &&
			dictCheckPair(v[:len(v)-2]) == v[len(v)-2:]
	case "hasnondigit":
		return strings.Trim(v, "0123456789") != ""
	}
	return true // an ignored linter
}

// dictValue checks one AI value component by component.
func dictValue(e *dictAI, v string) bool {
	for _, c := range e.comps {
		if v == "" && c.optional {
			break
		}
		n := c.max
		if c.min != c.max { // variable: the last component takes the rest
			n = len(v)
		}
		if len(v) < n || n < c.min || n > c.max {
			return false
		}
		part := v[:n]
		v = v[n:]
		if c.typ == 'Z' {
			pads := len(part) - len(strings.TrimRight(part, "="))
			if pads > 2 || pads > 0 && len(part)%3 != 0 {
				return false
			}
			part = part[:len(part)-pads]
		}
		for i := 0; i < len(part); i++ {
			if !dictInSet(c.typ, part[i]) {
				return false
			}
		}
		for _, l := range c.linters {
			if !dictLint(l, part) {
				return false
			}
		}
	}
	return v == ""
}

// dictResult is what the reader keeps: the values the sort decision uses.
type dictResult struct {
	ok                  bool
	ai420, ai421, ai403 string
	ai00, impb          string
}

// dictParse reads an element string (symbology identifier removed): AIs
// in a row, a field of a non-predefined length AI ended by GS or the end
// of the data. Policies of the production reader it mirrors: one leading
// GS (FNC1 in first position) and one GS after a predefined-length field
// are tolerated; a kept AI repeated with another value is an error
// (the IMpb AIs 92..95 share one slot).
func dictParse(d map[string]*dictAI, s string) (r dictResult) {
	s = strings.TrimPrefix(s, GS)
	if s == "" {
		return r
	}
	keep := func(slot *string, v string) bool {
		if *slot != "" && *slot != v {
			return false
		}
		*slot = v
		return true
	}
	for s != "" {
		e := dictLookup(d, s)
		if e == nil {
			return dictResult{}
		}
		s = s[len(e.ai):]
		var v string
		if e.fixed {
			n := 0
			for _, c := range e.comps {
				n += c.max
			}
			if len(s) < n {
				return dictResult{}
			}
			v, s = s[:n], s[n:]
			s = strings.TrimPrefix(s, GS)
		} else {
			var sep bool
			v, s, sep = strings.Cut(s, GS)
			_ = sep
		}
		if !dictValue(e, v) {
			return dictResult{}
		}
		ok := true
		switch e.ai {
		case "420":
			ok = keep(&r.ai420, v)
		case "421":
			ok = keep(&r.ai421, v)
		case "403":
			ok = keep(&r.ai403, v)
		case "00":
			ok = keep(&r.ai00, v)
		case "92", "93", "94", "95":
			ok = keep(&r.impb, e.ai+v)
		}
		if !ok {
			return dictResult{}
		}
	}
	r.ok = true
	return r
}

// prodParse runs the production reader and reports in the same form.
func prodParse(s string) dictResult {
	var g gs1Result
	parseGS1(s, &g)
	if g.fail != gs1OK {
		return dictResult{}
	}
	return dictResult{ok: true, ai420: g.kept[role420].in(s), ai421: g.kept[role421].in(s),
		ai403: g.kept[role403].in(s), ai00: g.kept[role00].in(s), impb: g.kept[roleIMpb].in(s)}
}

// TestAITableMatchesDictionary walks every AI 00..9999: the production
// table knows exactly the dictionary's AIs, each with the dictionary's
// FNC1 rule, length range, character set, numeric prefix and check-digit
// position.
func TestAITableMatchesDictionary(t *testing.T) {
	d := loadDict(t)
	seen := map[string]bool{}
	for n := 0; n < 10000; n++ {
		s := fmt.Sprintf("%04d", n) + "00000000"
		sp, l := lookupAI(s)
		e := dictLookup(d, s)
		if e == nil {
			if sp.valid {
				t.Errorf("AI %s: in the table, not in the dictionary", s[:l])
			}
			continue
		}
		if !sp.valid || l != len(e.ai) {
			t.Errorf("AI %s: in the dictionary, table gives %+v (AI length %d)", e.ai, sp, l)
			continue
		}
		if seen[e.ai] {
			continue
		}
		seen[e.ai] = true
		var want aiSpec
		want.valid, want.fixed = true, e.fixed
		prefixDone := false
		for i, c := range e.comps {
			if !c.optional {
				want.min += uint8(c.min)
			}
			want.max += uint8(c.max)
			if c.typ == 'N' && !prefixDone {
				if i == len(e.comps)-1 || allN(e.comps[i:]) {
					prefixDone = true // all numeric: no prefix, the charset is N
				} else {
					want.numPrefix += uint8(c.max)
				}
			} else {
				prefixDone = true
			}
			for _, lt := range c.linters {
				if lt == "csum" {
					want.check = want.max
				}
			}
		}
		last := e.comps[len(e.comps)-1].typ
		want.cs = map[byte]uint8{'N': csN, 'X': cs82, 'Y': cs39, 'Z': cs64}[last]
		for _, c := range e.comps[prefixN(e.comps):] {
			if c.typ != last {
				t.Errorf("AI %s: mixed character sets after the numeric prefix; the table cannot say so", e.ai)
			}
		}
		got := sp
		got.lint, got.role = 0, 0
		if got != want {
			t.Errorf("AI %s: table %+v, dictionary %+v", e.ai, got, want)
		}
	}
	if len(seen) != len(d) {
		t.Errorf("%d of the dictionary's %d AIs reached", len(seen), len(d))
	}
	t.Logf("%d AIs agree", len(seen))
}

func allN(cs []dictComp) bool {
	for _, c := range cs {
		if c.typ != 'N' {
			return false
		}
	}
	return true
}

// prefixN is the number of leading numeric components before a
// non-numeric one (0 when every component is numeric).
func prefixN(cs []dictComp) int {
	if allN(cs) {
		return 0
	}
	i := 0
	for cs[i].typ == 'N' {
		i++
	}
	return i
}

// gen draws choices from fuzz bytes (zero when they run out).
type gen struct {
	b    []byte
	i    int
	seen map[string]int // AIs generated, when counting
}

func (g *gen) byte() int {
	if g.i >= len(g.b) {
		return 0
	}
	g.i++
	return int(g.b[g.i-1])
}

func (g *gen) intn(n int) int { return (g.byte()<<8 | g.byte()) % n }

func (g *gen) pick(set string, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = set[g.intn(len(set))]
	}
	return out
}

// genValue builds a value that the dictionary accepts for e.
func genValue(g *gen, e *dictAI) string {
	var v []byte
	for _, c := range e.comps {
		if c.optional && g.intn(2) == 0 {
			break
		}
		n := c.max
		if c.min != c.max {
			n = 1 + g.intn(c.max)
		}
		set := map[byte]string{'N': "0123456789", 'X': dictCset82, 'Y': dictCset39, 'Z': dictCset64}[c.typ]
		part := g.pick(set, n)
		two := func(lo, hi int) string { return fmt.Sprintf("%02d", lo+g.intn(hi-lo+1)) }
		for _, l := range c.linters {
			switch l {
			case "yymmd0", "yymmdd":
				d := two(1, 28)
				if l == "yymmd0" && g.intn(4) == 0 {
					d = "00"
				}
				part = []byte(two(0, 99) + two(1, 12) + d)
			case "yyyymmdd":
				part = []byte(two(19, 20) + two(0, 99) + two(1, 12) + two(1, 28))
			case "hhmi":
				part = []byte(two(0, 23) + two(0, 59))
			case "hh":
				part = []byte(two(0, 23))
			case "mi", "ss":
				part = []byte(two(0, 59))
			case "yesno":
				part = []byte{"01"[g.intn(2)]}
			case "hyphen":
				part = []byte("-")
			case "zero":
				part = []byte("0")
			case "csum":
				for d := byte('0'); d <= '9'; d++ {
					if part[len(part)-1] = d; dictMod10(string(part)) {
						break
					}
				}
			case "hasnondigit":
				// met by csumalpha's body (8014 is the only AI with it)
			case "csumalpha":
				if len(part) < 3 {
					part = append(part, g.pick(dictCset82, 3-len(part))...)
				}
				body := part[:len(part)-2]
				if strings.Trim(string(body), "0123456789") == "" {
					body[0] = 'x' // hasnondigit, when asked, is then met by the body
				}
				part = append(body, dictCheckPair(string(body))...)
			}
		}
		v = append(v, part...)
	}
	return string(v)
}

// genElementString draws a valid element string of one to six AIs, each
// AI at most once (and one of the IMpb AIs 92..95 at most).
func genElementString(g *gen, ais []*dictAI) string {
	var sb strings.Builder
	used := map[string]bool{}
	prevFixed := false
	n := 1 + g.intn(6)
	for k := 0; k < n; k++ {
		e := ais[g.intn(len(ais))]
		key := e.ai
		if key >= "92" && key <= "95" {
			key = "impb"
		}
		if used[key] {
			continue
		}
		used[key] = true
		if g.seen != nil {
			g.seen[e.ai]++
		}
		if prevFixed && g.intn(8) == 0 {
			sb.WriteString(GS) // FNC1 after a predefined-length field: tolerated
		}
		prevFixed = e.fixed
		sb.WriteString(e.ai)
		sb.WriteString(genValue(g, e))
		if !e.fixed {
			sb.WriteString(GS)
		}
	}
	s := sb.String()
	if g.intn(2) == 0 {
		s = strings.TrimSuffix(s, GS) // the last field may end at the end of the data
	}
	return s
}

// mutate spoils s the way a scanner or a printer does: a byte changed,
// one dropped (often a GS), the string cut short.
func mutate(g *gen, s string) string {
	if s == "" {
		return s
	}
	p := g.intn(len(s))
	switch g.intn(4) {
	case 0:
		return s[:p] + string(rune(g.byte()&0x7F)) + s[p+1:]
	case 1:
		if k := strings.Index(s[p:], GS); k >= 0 {
			p += k
		}
		return s[:p] + s[p+1:]
	case 2:
		return s[:p]
	}
	return s[:p] + GS + s[p:]
}

// dictOnce holds the parsed dictionary for the fuzz target's many calls.
var dictOnce struct {
	d   map[string]*dictAI
	ais []*dictAI
}

func dictForFuzz(t testing.TB) (map[string]*dictAI, []*dictAI) {
	if dictOnce.d == nil {
		dictOnce.d = loadDict(t)
		for _, e := range dictOnce.d {
			dictOnce.ais = append(dictOnce.ais, e)
		}
		sortAIs(dictOnce.ais)
	}
	return dictOnce.d, dictOnce.ais
}

func sortAIs(a []*dictAI) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].ai < a[j-1].ai; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// checkGS1Against compares the production reader with the dictionary
// reader on the raw input, on an element string generated from it, and on
// that string spoilt.
func checkGS1Against(t *testing.T, data []byte) {
	checkGS1Counting(t, data, nil)
}

// checkGS1Counting is checkGS1Against recording the AIs generated into
// seen (if not nil); it reports whether the spoilt string was accepted.
func checkGS1Counting(t *testing.T, data []byte, seen map[string]int) bool {
	d, ais := dictForFuzz(t)
	raw := string(data)
	if got, want := prodParse(raw), dictParse(d, raw); got != want {
		t.Fatalf("raw %q: reader %+v, dictionary %+v", raw, got, want)
	}
	g := &gen{b: data, seen: seen}
	s := genElementString(g, ais)
	want := dictParse(d, s)
	if !want.ok {
		t.Fatalf("generated %q: the dictionary reader refuses its own valid string", s)
	}
	if got := prodParse(s); got != want {
		t.Fatalf("generated %q: reader %+v, dictionary %+v", s, got, want)
	}
	m := mutate(g, s)
	got, want := prodParse(m), dictParse(d, m)
	if got != want {
		t.Fatalf("spoilt %q (from %q): reader %+v, dictionary %+v", m, s, got, want)
	}
	return got.ok
}

// FuzzGS1 is the differential fuzz target: the production reader against
// the dictionary-driven reader on any input and on generated element
// strings. Seeds: testdata/fuzz/FuzzGS1 and the label test corpus.
func FuzzGS1(f *testing.F) {
	for _, c := range gs1Corpus()[:2000] {
		f.Add([]byte(strings.TrimPrefix(c, "]C1")))
	}
	f.Fuzz(checkGS1Against)
}

// TestGS1GeneratedAgainstDictionary runs the fuzz check on 30,000 inputs
// from a fixed pseudo-random source, so that a plain go test covers every
// AI several times without -fuzz.
func TestGS1GeneratedAgainstDictionary(t *testing.T) {
	x := uint64(0x9E3779B97F4A7C15)
	buf := make([]byte, 64)
	n := 30000
	if testing.Short() {
		n = 3000
	}
	seen := map[string]int{}
	spoiltOK := 0
	for i := 0; i < n; i++ {
		for k := range buf {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			buf[k] = byte(x)
		}
		if checkGS1Counting(t, buf, seen) {
			spoiltOK++
		}
	}
	d, _ := dictForFuzz(t)
	if !testing.Short() && len(seen) != len(d) {
		t.Errorf("only %d of %d AIs generated", len(seen), len(d))
	}
	// Both verdicts must occur among the spoilt strings, or the
	// comparison proves little.
	if spoiltOK == 0 || spoiltOK == n {
		t.Errorf("%d of %d spoilt strings accepted", spoiltOK, n)
	}
	t.Logf("%d inputs, %d AIs generated, %d spoilt strings still valid", n, len(seen), spoiltOK)
}
