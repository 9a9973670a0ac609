// Package zcta embeds the US Census 2021 ZIP Code Tabulation Areas (33,791
// five-digit ZIP codes with their internal point), so that plan generation,
// the demo and the tests have realistic destinations without reading
// anything outside the binary.
package zcta

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

//go:embed us-zcta-2021.csv
var raw string

// ZIP is one ZIP code area and its internal point.
type ZIP struct {
	Code     string // five digits
	Lat, Lon float64
}

// All parses the embedded list. It returns a new slice on every call.
func All() ([]ZIP, error) {
	lines := strings.Split(strings.TrimSpace(raw), "\n")
	out := make([]ZIP, 0, len(lines))
	for i, ln := range lines {
		if i == 0 {
			continue // header: zip,lat,lon
		}
		f := strings.Split(strings.TrimRight(ln, "\r"), ",")
		if len(f) != 3 || len(f[0]) != 5 {
			return nil, fmt.Errorf("us-zcta-2021.csv:%d: want zip,lat,lon", i+1)
		}
		lat, err1 := strconv.ParseFloat(f[1], 64)
		lon, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("us-zcta-2021.csv:%d: bad coordinates", i+1)
		}
		out = append(out, ZIP{Code: f[0], Lat: lat, Lon: lon})
	}
	return out, nil
}

// Codes returns just the five-digit codes, in file order.
func Codes() []string {
	z, err := All()
	if err != nil {
		// The file is embedded and tested; a parse error is a build defect.
		panic(err)
	}
	out := make([]string, len(z))
	for i := range z {
		out[i] = z[i].Code
	}
	return out
}
