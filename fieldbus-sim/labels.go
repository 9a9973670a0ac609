package fieldbussim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
)

// gs is the GS1 field separator (FNC1 inside a symbol) as scanners pass it on.
const gs = "\x1d"

// gs1Prefix is the symbology identifier of a GS1-128 symbol.
const gs1Prefix = "]C1"

// defaultDestinations are real US ZIP codes used when LabelConfig.Destinations
// is nil, so that a sim started with no plan still produces routable labels.
var defaultDestinations = []string{
	"90210", "10001", "60601", "94105", "30303", "02108", "73301", "98101",
	"33101", "80202", "19103", "85001", "48201", "55401", "63101", "97201",
	"20001", "75201", "77002", "37201",
}

// LabelMix weighs the label kinds the generator draws for a readable,
// well-formed label. Weights are relative; the zero value selects the default
// mix (DefaultLabelMix).
type LabelMix struct {
	GS1Postal     float64 // ]C1 420 <ZIP>, sometimes after AI 00 and/or 01
	GS1ZIP4       float64 // ]C1 420 <ZIP+4>
	GS1Country    float64 // ]C1 421 <country> <ZIP>
	HumanReadable float64 // "(420)90210", as some scanners emit the HRI text
	UPS           float64 // 1Z tracking number (manifest)
	USPS          float64 // IMpb: ]C1 420 <ZIP> GS 92.. 22-digit tracking
	Amazon        float64 // TBA + 12 digits (manifest)
	SSCC          float64 // ]C1 00 <SSCC> (manifest)
}

// DefaultLabelMix is the mix used when LabelConfig.Kinds is the zero value.
var DefaultLabelMix = LabelMix{
	GS1Postal: 40, GS1ZIP4: 8, GS1Country: 5, HumanReadable: 2,
	UPS: 15, USPS: 15, Amazon: 8, SSCC: 7,
}

func (m LabelMix) total() float64 {
	return m.GS1Postal + m.GS1ZIP4 + m.GS1Country + m.HumanReadable + m.UPS + m.USPS + m.Amazon + m.SSCC
}

// LabelConfig configures the label generator behind the emulated scanners.
//
// Rates are fractions of all labels and are drawn in this order: no-read,
// garbage, multi-read; their sum must not exceed 1. ConflictRate is the
// fraction of multi-reads whose two codes name different destinations.
type LabelConfig struct {
	// Destinations are the destination keys labels are drawn from: 5-digit
	// (or 9-digit) ZIP codes, "<country>:<postal>" for foreign addresses
	// (AI 421), and any other string is a routing code (AI 403). nil selects
	// a built-in set of real ZIP codes.
	Destinations []string
	NoReadRate   float64
	// MultiReadRate is the fraction of labels read as two codes.
	MultiReadRate float64
	// ConflictRate is the fraction of multi-reads that conflict.
	ConflictRate float64
	// GarbageRate is the fraction of labels that are unreadable data: binary
	// junk, broken GS1 or a bad check digit. Their true destination is unknown.
	GarbageRate float64
	// Kinds weighs the well-formed label kinds; zero value = DefaultLabelMix.
	Kinds LabelMix
	// CountryCode is the site's own ISO 3166 numeric country code used in
	// AI 421 ("840", the USA, by default).
	CountryCode string
	// ManifestPool is the number of package ids (1Z, TBA, SSCC) generated up
	// front and listed in the manifest; package-id labels cycle through this
	// pool, so the ids repeat after ManifestPool such labels. Default 4096.
	ManifestPool int
}

var (
	reZIP      = regexp.MustCompile(`^[0-9]{5}([0-9]{4})?$`)
	reForeign  = regexp.MustCompile(`^([0-9]{3}):([0-9A-Z]{1,9})$`)
	reCountry  = regexp.MustCompile(`^[0-9]{3}$`)
	reRouteSet = regexp.MustCompile(`^[!"%&'()*+,\-./0-9:<=>?A-Z_a-z]{1,30}$`) // GS1 CSET 82 without ';'
)

// Validate fills defaults and checks the configuration.
func (c *LabelConfig) Validate() error {
	if c.Destinations == nil {
		c.Destinations = defaultDestinations
	}
	if len(c.Destinations) == 0 {
		return errors.New("labels: destinations: empty list")
	}
	if c.CountryCode == "" {
		c.CountryCode = "840"
	}
	if !reCountry.MatchString(c.CountryCode) {
		return fmt.Errorf("labels: country code %q: want 3 digits", c.CountryCode)
	}
	for i, d := range c.Destinations {
		if !reZIP.MatchString(d) && !reForeign.MatchString(d) && !reRouteSet.MatchString(d) {
			return fmt.Errorf("labels: destination %d %q: not a ZIP, <country>:<postal> or GS1 routing code", i, d)
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"no-read rate", c.NoReadRate}, {"multi-read rate", c.MultiReadRate}, {"conflict rate", c.ConflictRate}, {"garbage rate", c.GarbageRate}} {
		if r.v < 0 || r.v > 1 || r.v != r.v {
			return fmt.Errorf("labels: %s %v: want 0..1", r.name, r.v)
		}
	}
	if s := c.NoReadRate + c.GarbageRate + c.MultiReadRate; s > 1 {
		return fmt.Errorf("labels: no-read + garbage + multi-read rates = %v: want at most 1", s)
	}
	if c.Kinds == (LabelMix{}) {
		c.Kinds = DefaultLabelMix
	}
	for _, w := range []float64{c.Kinds.GS1Postal, c.Kinds.GS1ZIP4, c.Kinds.GS1Country, c.Kinds.HumanReadable, c.Kinds.UPS, c.Kinds.USPS, c.Kinds.Amazon, c.Kinds.SSCC} {
		if w < 0 || w != w {
			return errors.New("labels: kinds: negative weight")
		}
	}
	if c.Kinds.total() <= 0 {
		return errors.New("labels: kinds: all weights zero")
	}
	if c.ManifestPool == 0 {
		c.ManifestPool = 4096
	}
	if c.ManifestPool < 0 {
		return fmt.Errorf("labels: manifest pool %d: negative", c.ManifestPool)
	}
	return nil
}

// Label is what the scanner reads off one item, plus the ground truth.
type Label struct {
	// Codes are the decoded barcodes as the scanner sends them; nil for a
	// no-read.
	Codes []string
	// Destination is the destination key the gateway should derive from
	// Codes under the contract ("" when there is none: no-read, garbage,
	// conflicting multi-read).
	Destination string
	NoRead      bool
	// Garbage: the codes are junk or break GS1/check-digit rules on purpose.
	Garbage bool
	// MultiRead: two codes were read; Conflict: they name different
	// destinations (Destination is then "").
	MultiRead bool
	Conflict  bool
	// Kind names the label kind of the first code (for reports and tests).
	Kind string
}

// Label kinds as reported in Label.Kind.
const (
	KindNoRead        = "noread"
	KindGS1Postal     = "gs1-420"
	KindGS1ZIP4       = "gs1-420-zip4"
	KindGS1Country    = "gs1-421"
	KindGS1Routing    = "gs1-403"
	KindHumanReadable = "hri-420"
	KindUPS           = "ups-1z"
	KindUSPS          = "usps-impb"
	KindAmazon        = "amazon-tba"
	KindSSCC          = "gs1-00-sscc"
	KindGarbage       = "garbage"
)

type pkgID struct {
	id, dest string
}

// labelGen draws labels from a seeded *rand.Rand; equal seeds and configs give
// equal label sequences. Not safe for concurrent use.
type labelGen struct {
	cfg   LabelConfig
	rnd   *rand.Rand
	pool  []pkgID          // manifest: package id -> destination
	byDst map[string][]int // destination -> pool indexes
	next  int              // next pool entry for a package-id label
}

// newLabelGen builds a generator. cfg is validated (defaults filled) here
// again; the caller validates its Config up front (Config.Validate calls
// LabelConfig.Validate), so an invalid cfg at this point is a programming
// error and panics.
func newLabelGen(cfg LabelConfig, rnd *rand.Rand) *labelGen {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	g := &labelGen{cfg: cfg, rnd: rnd, byDst: map[string][]int{}}
	seen := map[string]bool{}
	for len(g.pool) < cfg.ManifestPool {
		dest := cfg.Destinations[len(g.pool)%len(cfg.Destinations)]
		var id string
		switch g.rnd.IntN(3) {
		case 0:
			id = g.ups()
		case 1:
			id = g.amazon()
		default:
			id = g.sscc()
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		g.byDst[dest] = append(g.byDst[dest], len(g.pool))
		g.pool = append(g.pool, pkgID{id: id, dest: g.key(dest)})
	}
	return g
}

// key is the destination key the gateway derives for a configured
// destination: "<own country>:<postal>" is the plain postal code.
func (g *labelGen) key(dest string) string {
	if m := reForeign.FindStringSubmatch(dest); m != nil && m[1] == g.cfg.CountryCode {
		return m[2]
	}
	return dest
}

// Manifest lists every package id the generator can issue with its
// destination, as rows (package_id, destination). SSCCs are listed as their
// 18 digits without the AI, 1Z and TBA ids as printed.
func (g *labelGen) Manifest() [][2]string {
	out := make([][2]string, len(g.pool))
	for i, p := range g.pool {
		out[i] = [2]string{p.id, p.dest}
	}
	return out
}

// Next draws the next label.
func (g *labelGen) Next() Label {
	u := g.rnd.Float64()
	c := g.cfg
	switch {
	case u < c.NoReadRate:
		return Label{NoRead: true, Kind: KindNoRead}
	case u < c.NoReadRate+c.GarbageRate:
		return Label{Codes: []string{g.garbage()}, Garbage: true, Kind: KindGarbage}
	case u < c.NoReadRate+c.GarbageRate+c.MultiReadRate:
		return g.multi()
	}
	dest := c.Destinations[g.rnd.IntN(len(c.Destinations))]
	code, key, kind := g.code(dest, true)
	return Label{Codes: []string{code}, Destination: key, Kind: kind}
}

// multi draws a two-code read: the second code names the same destination
// (another label kind), or another one when it conflicts.
func (g *labelGen) multi() Label {
	d := g.cfg.Destinations
	dest := d[g.rnd.IntN(len(d))]
	first, key, kind := g.code(dest, false)
	conflict := len(d) > 1 && g.rnd.Float64() < g.cfg.ConflictRate
	other := dest
	if conflict {
		for other == dest {
			other = d[g.rnd.IntN(len(d))]
		}
	}
	second, key2, _ := g.code(other, false)
	l := Label{Codes: []string{first, second}, MultiRead: true, Kind: kind}
	if conflict || key2 != key {
		l.Conflict = true
		return l
	}
	l.Destination = key
	return l
}

// code renders one well-formed code for dest and returns it with the key the
// gateway derives from it. zip4 allows ZIP+4 expansion (which changes the
// key, so multi-reads avoid it).
func (g *labelGen) code(dest string, zip4 bool) (code, key, kind string) {
	switch {
	case reForeign.MatchString(dest):
		m := reForeign.FindStringSubmatch(dest)
		if m[1] == g.cfg.CountryCode {
			key = m[2]
		} else {
			key = dest
		}
		if g.rnd.IntN(3) == 0 {
			if id, ok := g.poolID(dest); ok {
				return id.code(), key, id.kind()
			}
		}
		return gs1Prefix + g.prefixAIs() + "421" + m[1] + m[2], key, KindGS1Country
	case !reZIP.MatchString(dest):
		// A routing code: AI 403, or a package id from the manifest.
		if g.rnd.IntN(3) == 0 {
			if id, ok := g.poolID(dest); ok {
				return id.code(), dest, id.kind()
			}
		}
		return gs1Prefix + g.prefixAIs() + "403" + dest, dest, KindGS1Routing
	}
	k := g.cfg.Kinds
	if !zip4 || len(dest) == 9 {
		k.GS1ZIP4 = 0
	}
	if len(dest) == 9 {
		k.HumanReadable = 0 // HRI patterns are for ZIP5 only
	}
	if k.total() <= 0 {
		k = LabelMix{GS1Postal: 1}
	}
	x := g.rnd.Float64() * k.total()
	pick := func(w float64) bool {
		if x < w {
			return true
		}
		x -= w
		return false
	}
	switch {
	case pick(k.GS1Postal):
		return gs1Prefix + g.prefixAIs() + "420" + dest, dest, KindGS1Postal
	case pick(k.GS1ZIP4):
		z := dest + g.digits(4)
		return gs1Prefix + g.prefixAIs() + "420" + z, z, KindGS1ZIP4
	case pick(k.GS1Country):
		return gs1Prefix + g.prefixAIs() + "421" + g.cfg.CountryCode + dest, dest, KindGS1Country
	case pick(k.HumanReadable):
		return "(420)" + dest, dest, KindHumanReadable
	case pick(k.USPS):
		z := dest
		if zip4 && len(dest) == 5 && g.rnd.IntN(3) == 0 {
			z += g.digits(4)
		}
		return gs1Prefix + "420" + z + gs + g.impb(), z, KindUSPS
	case pick(k.UPS), pick(k.Amazon), pick(k.SSCC):
		if id, ok := g.poolID(dest); ok {
			return id.code(), dest, id.kind()
		}
	}
	return gs1Prefix + "420" + dest, dest, KindGS1Postal
}

// prefixAIs returns nothing, AI 00 (SSCC), AI 01 (GTIN-14) or both; they are
// fixed-length, so no separator follows them.
func (g *labelGen) prefixAIs() string {
	switch g.rnd.IntN(6) {
	case 0:
		return "00" + g.sscc()
	case 1:
		return "01" + g.gtin()
	case 2:
		return "00" + g.sscc() + "01" + g.gtin()
	}
	return ""
}

// poolID picks a manifest package id for dest, cycling through its entries.
func (g *labelGen) poolID(dest string) (pkgID, bool) {
	idx := g.byDst[dest]
	if len(idx) == 0 {
		return pkgID{}, false
	}
	g.next++
	return g.pool[idx[g.next%len(idx)]], true
}

func (p pkgID) code() string {
	if p.kind() == KindSSCC {
		return gs1Prefix + "00" + p.id
	}
	return p.id
}

func (p pkgID) kind() string {
	switch {
	case strings.HasPrefix(p.id, "1Z"):
		return KindUPS
	case strings.HasPrefix(p.id, "TBA"):
		return KindAmazon
	}
	return KindSSCC
}

// garbage draws an unreadable code: binary junk, GS1 that breaks the syntax
// or a check digit, or a carrier id with a bad check digit.
func (g *labelGen) garbage() string {
	dest := g.cfg.Destinations[g.rnd.IntN(len(g.cfg.Destinations))]
	zip := dest
	if !reZIP.MatchString(zip) {
		zip = defaultDestinations[g.rnd.IntN(len(defaultDestinations))]
	}
	switch g.rnd.IntN(8) {
	case 0:
		return g.junk(8 + g.rnd.IntN(40))
	case 1: // bad SSCC check digit before a good 420
		return gs1Prefix + "00" + breakCheck(g.sscc()) + "420" + zip
	case 2: // bad GTIN check digit before a good 420
		return gs1Prefix + "01" + breakCheck(g.gtin()) + "420" + zip
	case 3: // missing separator after the variable 420: value too long
		return gs1Prefix + "420" + zip + "0000" + "01" + g.gtin()
	case 4: // UPS 1Z with a bad check digit
		return breakCheck(g.ups())
	case 5: // SSCC alone with a bad check digit
		return gs1Prefix + "00" + breakCheck(g.sscc())
	case 6: // truncated: AI without its data
		return gs1Prefix + "42"
	default: // 420 value longer than 20 characters
		return gs1Prefix + "420" + zip + g.digits(16)
	}
}

// junk returns n random bytes that are not printable ASCII, so no pattern
// matches them, and that avoid the telegram's framing and separator bytes.
func (g *labelGen) junk(n int) string {
	b := make([]byte, n)
	for i := range b {
		for {
			c := byte(g.rnd.IntN(256))
			if c == 0x02 || c == 0x03 || c == '\r' || c == '\n' || c == ';' || (c >= 0x20 && c < 0x7f) {
				continue
			}
			b[i] = c
			break
		}
	}
	return string(b)
}

func (g *labelGen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.rnd.IntN(10))
	}
	return string(b)
}

// sscc returns an 18-digit SSCC with a valid check digit.
func (g *labelGen) sscc() string {
	s := g.digits(17)
	return s + string(gs1Check(s))
}

// gtin returns a GTIN-14 with a valid check digit.
func (g *labelGen) gtin() string {
	s := g.digits(13)
	return s + string(gs1Check(s))
}

const upsAlnum = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"

// ups returns an 18-character UPS 1Z tracking number with a valid check digit:
// 1Z, 6-character shipper number, 2-digit service, 7-digit reference, check.
func (g *labelGen) ups() string {
	b := []byte("1Z")
	for range 6 {
		b = append(b, upsAlnum[g.rnd.IntN(len(upsAlnum))])
	}
	b = append(b, []string{"01", "02", "03", "12", "13", "42"}[g.rnd.IntN(6)]...)
	b = append(b, g.digits(7)...)
	return string(b) + string(upsCheck(string(b[2:])))
}

// amazon returns an Amazon Logistics id: TBA and 12 digits.
func (g *labelGen) amazon() string { return "TBA" + g.digits(12) }

// impb returns a USPS IMpb tracking part: a 92..95 channel prefix, service
// type code, 6- or 9-digit mailer id, serial, mod-10 check digit: 22 digits.
func (g *labelGen) impb() string {
	s := []string{"92", "93", "94", "95"}[g.rnd.IntN(4)] + g.digits(19)
	return s + string(gs1Check(s))
}

// gs1Check computes the GS1 (and USPS IMpb) mod-10 check digit of data: from
// the rightmost digit, weights 3, 1, 3, ...
func gs1Check(data string) byte {
	sum := 0
	for i := 0; i < len(data); i++ {
		d := int(data[len(data)-1-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// upsCheck computes the check digit of the 15 characters after "1Z": letters
// count as (ASCII-63) mod 10, odd positions (1-based) once, even ones twice.
func upsCheck(s string) byte {
	sum := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v int
		if c >= '0' && c <= '9' {
			v = int(c - '0')
		} else {
			v = (int(c) - 63) % 10
		}
		if i%2 == 1 {
			v *= 2
		}
		sum += v
	}
	r := sum % 10
	if r != 0 {
		r = 10 - r
	}
	return byte('0' + r)
}

// breakCheck replaces the last (check) digit of s with a wrong one.
func breakCheck(s string) string {
	d, _ := strconv.Atoi(s[len(s)-1:])
	return s[:len(s)-1] + strconv.Itoa((d+1+len(s)%8)%10)
}
