package gateway

import (
	"slices"
	"strings"
	"testing"
)

func TestCondition(t *testing.T) {
	ok := ConditionInput{PLCHeard: true, LinkUp: true, LinkState: "up", SorterState: 1, Scanners: 2, ScannersOnline: 2,
		PlanLoaded: true, JournalState: "ok", Outcomes: 100, SortedPct: 95, MinSortedPct: 50, MinOutcomes: 20}
	with := func(f func(*ConditionInput)) ConditionInput { in := ok; f(&in); return in }
	cases := []struct {
		name   string
		in     ConditionInput
		want   string
		reason string // a substring of one reason ("" = no reasons)
	}{
		{"sorting", ok, CondSorting, ""},
		{"never read", with(func(in *ConditionInput) { in.PLCHeard, in.LinkUp, in.LinkError = false, false, "connection refused" }), CondNoData, "connection refused"},
		{"never read, no error", with(func(in *ConditionInput) { in.PLCHeard = false }), CondNoData, "not read yet"},
		{"link down", with(func(in *ConditionInput) { in.LinkUp, in.LinkState, in.LinkError = false, "down", "EOF" }), CondDown, "PLC link down: EOF"},
		{"down beats e-stop", with(func(in *ConditionInput) { in.LinkUp, in.SorterState = false, 2 }), CondDown, "PLC link"},
		{"e-stop", with(func(in *ConditionInput) { in.SorterState = 2 }), CondStopped, "emergency stop"},
		{"stopped", with(func(in *ConditionInput) { in.SorterState = 0 }), CondStopped, "sorter stopped"},
		{"maintenance", with(func(in *ConditionInput) { in.SorterState = 4 }), CondStopped, "maintenance"},
		{"fault state", with(func(in *ConditionInput) { in.SorterState, in.FaultCode = 3, 117 }), CondFault, "sorter fault 117 (plc specific)"},
		{"fault code while running", with(func(in *ConditionInput) { in.FaultCode = 1 }), CondFault, "host lost"},
		{"unknown sorter state", with(func(in *ConditionInput) { in.SorterState = 9 }), CondDegraded, "sorter state 9"},
		{"one scanner offline", with(func(in *ConditionInput) { in.ScannersOnline = 1 }), CondDegraded, "1 of 2 scanners offline"},
		{"no scanner online", with(func(in *ConditionInput) { in.ScannersOnline = 0 }), CondDegraded, "no scanner online"},
		{"no scanners configured", with(func(in *ConditionInput) { in.Scanners, in.ScannersOnline = 0, 0 }), CondSorting, ""},
		{"no plan", with(func(in *ConditionInput) { in.PlanLoaded = false }), CondDegraded, "no sort plan"},
		{"journal failing", with(func(in *ConditionInput) { in.JournalState = "failing" }), CondDegraded, "journal failing"},
		{"no journal", with(func(in *ConditionInput) { in.JournalState = "" }), CondSorting, ""},
		{"journal disk low", with(func(in *ConditionInput) { in.JournalDiskLow = true }), CondDegraded, "disk low"},
		{"sorted under threshold", with(func(in *ConditionInput) { in.SortedPct = 0.6 }), CondDegraded, "0.6% sorted"},
		{"sorted at threshold", with(func(in *ConditionInput) { in.SortedPct = 50 }), CondSorting, ""},
		{"too few outcomes to judge", with(func(in *ConditionInput) { in.SortedPct, in.Outcomes = 0, 19 }), CondSorting, ""},
		{"no outcomes", with(func(in *ConditionInput) { in.SortedPct, in.Outcomes, in.MinOutcomes = 0, 0, 0 }), CondSorting, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reasons := Condition(c.in)
			if got != c.want {
				t.Errorf("condition %q, want %q (reasons %q)", got, c.want, reasons)
			}
			if reasons == nil {
				t.Error("reasons nil, want a list")
			}
			if c.reason == "" && len(reasons) != 0 {
				t.Errorf("reasons %q, want none", reasons)
			}
			if c.reason != "" && !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, c.reason) }) {
				t.Errorf("reasons %q, want one containing %q", reasons, c.reason)
			}
		})
	}
}
