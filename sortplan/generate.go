package sortplan

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"sortgw/sortplan/zcta"
)

// GenerateOptions shapes a generated plan.
type GenerateOptions struct {
	Chutes       int       // sorter chute count (default 256; at least 8)
	Seed         int64     // picks the sort center (when Center is empty) and the linehaul lanes
	Center       string    // ZIP5 of the sort center; "" = picked by Seed
	ZIPsPerRoute int       // local ZIPs per delivery route (default 8)
	Name         string    // plan_name (default "SC-<center>-<chutes>")
	Version      uint64    // plan_version (default 1)
	Effective    time.Time // effective row; zero = none
}

// Generate writes a realistic plan CSV from the embedded ZIP list: the sort
// center's own region (the ZIPs nearest to it) goes to delivery routes of
// neighbouring ZIPs (swept by bearing around the center), each route on a
// primary and an alternate chute; every ZIP3 gets a prefix rule to a
// linehaul lane (ZIP3 areas clustered by position), each lane on two
// chutes; the four exception rows use the top four chutes.
func Generate(opts GenerateOptions) ([]byte, error) {
	if opts.Chutes == 0 {
		opts.Chutes = 256
	}
	if opts.Chutes < 8 || opts.Chutes > MaxChutes {
		return nil, fmt.Errorf("generate: %d chutes: want 8..%d", opts.Chutes, MaxChutes)
	}
	if opts.ZIPsPerRoute <= 0 {
		opts.ZIPsPerRoute = 8
	}
	if opts.Version == 0 {
		opts.Version = 1
	}
	zips, err := zcta.All()
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	rnd := rand.New(rand.NewPCG(uint64(opts.Seed), 0x736f727467770a))
	ci := -1
	if opts.Center == "" {
		ci = rnd.IntN(len(zips))
	} else {
		for i := range zips {
			if zips[i].Code == opts.Center {
				ci = i
			}
		}
		if ci < 0 {
			return nil, fmt.Errorf("generate: center %q is not in the ZIP list", opts.Center)
		}
	}
	center := zips[ci]
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("SC-%s-%d", center.Code, opts.Chutes)
	}
	n := opts.Chutes
	avail := n - 4
	lanes := avail / 4
	routes := (avail - 2*lanes) / 2
	if routes < 1 || lanes < 1 {
		return nil, fmt.Errorf("generate: %d chutes leave no room for routes and lanes", n)
	}
	cosLat := math.Cos(center.Lat * math.Pi / 180)
	dist := func(z zcta.ZIP) float64 {
		dx := (z.Lon - center.Lon) * cosLat
		dy := z.Lat - center.Lat
		return dx*dx + dy*dy
	}
	// The local region: the routes*perRoute ZIPs nearest the center.
	idx := make([]int, len(zips))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		da, db := dist(zips[idx[a]]), dist(zips[idx[b]])
		if da != db {
			return da < db
		}
		return zips[idx[a]].Code < zips[idx[b]].Code
	})
	k := routes * opts.ZIPsPerRoute
	if k > len(idx) {
		k = len(idx)
	}
	local := append([]int(nil), idx[:k]...)
	bearing := func(z zcta.ZIP) float64 {
		return math.Atan2(z.Lat-center.Lat, (z.Lon-center.Lon)*cosLat)
	}
	sort.Slice(local, func(a, b int) bool {
		ba, bb := bearing(zips[local[a]]), bearing(zips[local[b]])
		if ba != bb {
			return ba < bb
		}
		return zips[local[a]].Code < zips[local[b]].Code
	})
	type row struct{ pat, chutes, route string }
	var rows []row
	for i, zi := range local {
		r := i * routes / len(local)
		rows = append(rows, row{zips[zi].Code, fmt.Sprintf("%d|%d", 2*r+1, 2*r+2), fmt.Sprintf("R%03d", r+1)})
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].pat < rows[b].pat })

	// Linehaul: ZIP3 centroids clustered into lanes (k-means, seeded).
	type z3 struct {
		code     string
		lat, lon float64
		n        int
	}
	byZ3 := map[string]*z3{}
	var z3s []*z3
	for _, z := range zips {
		c := z.Code[:3]
		a := byZ3[c]
		if a == nil {
			a = &z3{code: c}
			byZ3[c] = a
			z3s = append(z3s, a)
		}
		a.lat += z.Lat
		a.lon += z.Lon
		a.n++
	}
	for _, a := range z3s {
		a.lat /= float64(a.n)
		a.lon /= float64(a.n)
	}
	sort.Slice(z3s, func(a, b int) bool { return z3s[a].code < z3s[b].code })
	if lanes > len(z3s) {
		lanes = len(z3s)
	}
	type cen struct{ lat, lon float64 }
	cens := make([]cen, lanes)
	perm := rnd.Perm(len(z3s))
	for i := range cens {
		cens[i] = cen{z3s[perm[i]].lat, z3s[perm[i]].lon}
	}
	assign := make([]int, len(z3s))
	for iter := 0; iter < 25; iter++ {
		for i, a := range z3s {
			best, bd := 0, math.Inf(1)
			for j, c := range cens {
				dx := (a.lon - c.lon) * math.Cos(a.lat*math.Pi/180)
				dy := a.lat - c.lat
				if d := dx*dx + dy*dy; d < bd {
					best, bd = j, d
				}
			}
			assign[i] = best
		}
		sum := make([]cen, lanes)
		cnt := make([]int, lanes)
		for i, a := range z3s {
			sum[assign[i]].lat += a.lat * float64(a.n)
			sum[assign[i]].lon += a.lon * float64(a.n)
			cnt[assign[i]] += a.n
		}
		for j := range cens {
			if cnt[j] > 0 {
				cens[j] = cen{sum[j].lat / float64(cnt[j]), sum[j].lon / float64(cnt[j])}
			}
		}
	}
	// Name each lane after its biggest ZIP3 and number lanes by that code.
	laneName := make([]string, lanes)
	laneSize := make([]int, lanes)
	for i, a := range z3s {
		j := assign[i]
		if a.n > laneSize[j] {
			laneSize[j], laneName[j] = a.n, a.code
		}
	}
	order := make([]int, 0, lanes)
	for j := range laneName {
		if laneName[j] != "" {
			order = append(order, j)
		}
	}
	sort.Slice(order, func(a, b int) bool { return laneName[order[a]] < laneName[order[b]] })
	laneChute := make([]int, lanes)
	base := 2 * routes
	for pos, j := range order {
		laneChute[j] = base + 2*pos + 1
	}
	var prows []row
	for i, a := range z3s {
		j := assign[i]
		c := laneChute[j]
		prows = append(prows, row{a.code + "*", fmt.Sprintf("%d|%d", c, c+1), "LH-" + laneName[j]})
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# Sort plan generated by sortgw plan gen (seed %d) from the 2021 ZCTA list.\n", opts.Seed)
	fmt.Fprintf(&b, "# Sort center at ZIP %s (%.4f,%.4f): %d local ZIPs on %d delivery routes (chutes 1-%d),\n",
		center.Code, center.Lat, center.Lon, len(local), routes, 2*routes)
	fmt.Fprintf(&b, "# %d ZIP3 prefixes on %d linehaul lanes (chutes %d-%d), exceptions on chutes %d-%d.\n",
		len(z3s), len(order), base+1, base+2*len(order), n-3, n)
	fmt.Fprintf(&b, "plan_name,%s\nplan_version,%d\n", opts.Name, opts.Version)
	if !opts.Effective.IsZero() {
		fmt.Fprintf(&b, "effective,%s\n", opts.Effective.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "chute_count,%d\n", n)
	b.WriteString("pattern,chutes,route,comment\n")
	e := strconv.Itoa
	fmt.Fprintf(&b, "NOREAD,%s|%s,EXCEPTION,no-read: video coding / manual scan\n", e(n-3), e(n-2))
	fmt.Fprintf(&b, "UNKNOWN,%s|%s,EXCEPTION,no destination or no plan row\n", e(n-3), e(n-2))
	fmt.Fprintf(&b, "MULTIREAD,%s|%s,EXCEPTION,codes disagree\n", e(n-2), e(n-3))
	fmt.Fprintf(&b, "RECIRC_LIMIT,%s|%s,EXCEPTION,recirculated too often\n", e(n-1), e(n))
	for _, r := range rows {
		fmt.Fprintf(&b, "%s,%s,%s,\n", r.pat, r.chutes, r.route)
	}
	for _, r := range prows {
		fmt.Fprintf(&b, "%s,%s,%s,\n", r.pat, r.chutes, r.route)
	}
	fmt.Fprintf(&b, "END,%d\n", 4+len(rows)+len(prows))
	return b.Bytes(), nil
}

// SampleLabel is one parcel's codes with the destination they carry.
type SampleLabel struct {
	Kind  string   // gs1, gs1-zip9, gs1-dm, impb, ups, tba, sscc, foreign, noread
	Codes []string // as a scanner would send them
	Dest  string   // the destination key the codes carry ("" for noread)
}

// SampleOptions shapes a label set.
type SampleOptions struct {
	N            int      // number of labels (default 1000)
	Seed         int64    // the same seed gives the same labels
	Kinds        []string // nil: a realistic mix of every kind
	Destinations []string // ZIP5s to address to; nil: the embedded ZIP list
}

// Samples is a label set plus the manifest that resolves its package ids.
type Samples struct {
	Labels   []SampleLabel
	Manifest []byte // CSV package_id,destination
}

// SampleKinds lists the label kinds SampleLabels makes, in the default mix
// order with their weights (percent).
var SampleKinds = []struct {
	Kind   string
	Weight int
}{
	{"gs1", 30}, {"gs1-zip9", 8}, {"gs1-dm", 10}, {"impb", 20}, {"ups", 12},
	{"tba", 10}, {"sscc", 5}, {"foreign", 2}, {"noread", 3},
}

// SampleLabels makes realistic labels for tests, benchmarks and the demo:
// GS1-128 and GS1 DataMatrix element strings with AI 420 (and SSCCs),
// raw USPS IMpb barcodes with their routing ZIP, UPS 1Z and TBA ids and
// SSCCs resolved through the returned manifest, foreign AI 421 codes and
// no-reads. All check digits are valid.
func SampleLabels(opts SampleOptions) Samples {
	if opts.N <= 0 {
		opts.N = 1000
	}
	dests := opts.Destinations
	if dests == nil {
		dests = zcta.Codes()
	}
	rnd := rand.New(rand.NewPCG(uint64(opts.Seed), 0x6c6162656c73))
	kinds := opts.Kinds
	var weights []int
	if kinds == nil {
		for _, k := range SampleKinds {
			kinds = append(kinds, k.Kind)
			weights = append(weights, k.Weight)
		}
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rnd.IntN(10))
		}
		return string(b)
	}
	sscc := func() string {
		body := "0" + "0614141" + digits(9) // extension, GS1 company prefix, serial
		return body + string(GS1CheckDigit(body))
	}
	var man bytes.Buffer
	man.WriteString("package_id,destination\n")
	out := Samples{Labels: make([]SampleLabel, 0, opts.N)}
	for i := 0; i < opts.N; i++ {
		kind := kinds[i%len(kinds)]
		if weights != nil {
			x := rnd.IntN(total)
			for j, w := range weights {
				if x < w {
					kind = kinds[j]
					break
				}
				x -= w
			}
		}
		zip := dests[rnd.IntN(len(dests))]
		l := SampleLabel{Kind: kind, Dest: zip}
		switch kind {
		case "gs1":
			l.Codes = []string{"]C1420" + zip}
		case "gs1-zip9":
			l.Dest = zip + digits(4)
			l.Codes = []string{"]C1420" + l.Dest, "]C100" + sscc()}
		case "gs1-dm":
			s := sscc()
			l.Codes = []string{"]d200" + s + "420" + zip + "\x1d" + "10" + "LOT" + digits(4)}
		case "impb":
			body := "9205" + "590" + digits(14) // STC 9205..., mailer id, serial
			trk := body + string(GS1CheckDigit(body))
			l.Codes = []string{"420" + zip + trk}
		case "ups":
			body := strings.ToUpper("8X5" + digits(3) + "03" + digits(7))
			id := "1Z" + body + string(UPSCheckDigit(body))
			l.Codes = []string{id}
			fmt.Fprintf(&man, "%s,%s\n", id, zip)
		case "tba":
			id := "TBA" + digits(12)
			l.Codes = []string{id}
			fmt.Fprintf(&man, "%s,%s\n", id, zip)
		case "sscc":
			s := sscc()
			l.Codes = []string{"]C100" + s}
			fmt.Fprintf(&man, "%s,%s\n", s, zip)
		case "foreign":
			pc := digits(5)
			l.Dest = "276:" + pc
			l.Codes = []string{"]C1421276" + pc}
		case "noread":
			l.Dest = ""
			l.Codes = []string{"NoRead"}
		default:
			l.Codes = []string{zip}
		}
		out.Labels = append(out.Labels, l)
	}
	man.WriteString("END," + strconv.Itoa(bytes.Count(man.Bytes(), []byte("\n"))-1) + "\n")
	out.Manifest = man.Bytes()
	return out
}
