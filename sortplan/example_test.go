package sortplan_test

import (
	"fmt"
	"strings"

	"sortgw/sortplan"
)

func Example() {
	plan := `plan_name,Example
plan_version,3
chute_count,16
pattern,chutes,route
NOREAD,16
UNKNOWN,16
MULTIREAD,15
RECIRC_LIMIT,14
90210,1|2,R001
902*,3,LH-902
END
`
	p, diags, err := sortplan.ParsePlan("example.csv", strings.NewReader(plan), 16)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(diags), "diagnostics")
	t, err := sortplan.Compile(p, nil, sortplan.ResolverConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	var h sortplan.Holder
	if err := h.Store(t); err != nil {
		fmt.Println(err)
		return
	}
	var avail sortplan.Availability
	for _, codes := range [][]string{
		{"]C1420902101234"},             // GS1-128, ZIP+4: covered by the 90210 row
		{"(420)90299"},                  // printed form, prefix row
		{"]C142090210\x1d" + "4209021"}, // a syntax error voids the whole string
		{"NoRead"},
	} {
		d := h.Load().Decide(codes, &avail)
		fmt.Printf("chute %d reason %s route %s dest %q v%d\n", d.Chute, d.Reason, d.Route, d.DestKey(), d.Version)
	}
	avail.Set(1, true) // chute 1 full
	d := h.Load().Decide([]string{"]C142090210"}, &avail)
	fmt.Printf("chute %d reason %s\n", d.Chute, d.Reason)
	// Output:
	// 0 diagnostics
	// chute 1 reason sorted route R001 dest "902101234" v3
	// chute 3 reason sorted route LH-902 dest "90299" v3
	// chute 16 reason unknown route  dest "" v3
	// chute 16 reason no-read route  dest "" v3
	// chute 2 reason alternate
}
