package gateway

import (
	"fmt"
	"strconv"
)

// Line conditions: what the line is doing, in one word, for the header,
// the line badge and /status.json. Only sorting is normal (grey on the
// page); every other condition is coloured.
const (
	CondSorting  = "sorting"
	CondDegraded = "degraded"
	CondStopped  = "stopped"
	CondFault    = "fault"
	CondDown     = "down"
	CondNoData   = "no-data"
)

// ConditionInput is what the line condition is computed from: the same
// inputs the alarms use, taken from the line snapshot.
type ConditionInput struct {
	// PLCHeard: the PLC's block was read at least once since start.
	PLCHeard    bool
	LinkUp      bool
	LinkState   string
	LinkError   string
	SorterState uint16
	FaultCode   uint16
	// Scanners configured, and how many are online.
	Scanners, ScannersOnline int
	PlanLoaded               bool
	// JournalState is ok, failing or full ("" without a journal);
	// JournalDiskLow: its disk is below the warning threshold.
	JournalState   string
	JournalDiskLow bool
	// Outcomes in the last minute, and the share of them sorted (percent).
	Outcomes  uint64
	SortedPct float64
	// MinSortedPct and MinOutcomes: below MinSortedPct, with at least
	// MinOutcomes outcomes to judge from, the line is degraded.
	MinSortedPct float64
	MinOutcomes  uint64
}

// Condition is the line condition and its reasons (short texts; empty
// for sorting). It is a pure function of its input.
func Condition(in ConditionInput) (string, []string) {
	reasons := []string{}
	if !in.PLCHeard {
		if in.LinkError != "" {
			reasons = append(reasons, "PLC never read: "+in.LinkError)
		} else {
			reasons = append(reasons, "PLC not read yet")
		}
		return CondNoData, reasons
	}
	if !in.LinkUp {
		r := linkDownText(in.LinkState)
		if in.LinkError != "" {
			r += ": " + in.LinkError
		}
		return CondDown, append(reasons, r)
	}
	switch {
	case in.SorterState == 3:
		return CondFault, append(reasons, faultText(in.FaultCode))
	case in.FaultCode != 0:
		return CondFault, append(reasons, faultText(in.FaultCode))
	case in.SorterState == 2:
		return CondStopped, append(reasons, "emergency stop")
	case in.SorterState == 0:
		return CondStopped, append(reasons, "sorter stopped")
	case in.SorterState == 4:
		return CondStopped, append(reasons, "sorter in maintenance")
	case in.SorterState != 1:
		reasons = append(reasons, "sorter state "+strconv.Itoa(int(in.SorterState))+" unknown")
	}
	if in.Scanners > 0 && in.ScannersOnline == 0 {
		reasons = append(reasons, "no scanner online")
	} else if in.ScannersOnline < in.Scanners {
		reasons = append(reasons, fmt.Sprintf("%d of %d scanners offline", in.Scanners-in.ScannersOnline, in.Scanners))
	}
	if !in.PlanLoaded {
		reasons = append(reasons, "no sort plan loaded")
	}
	switch in.JournalState {
	case "", "ok":
	default:
		reasons = append(reasons, "journal "+in.JournalState)
	}
	if in.JournalDiskLow {
		reasons = append(reasons, "journal disk low")
	}
	if in.Outcomes >= in.MinOutcomes && in.Outcomes > 0 && in.SortedPct < in.MinSortedPct {
		reasons = append(reasons, fmt.Sprintf("%.1f%% sorted in the last minute (below %g%%)", in.SortedPct, in.MinSortedPct))
	}
	if len(reasons) > 0 {
		return CondDegraded, reasons
	}
	return CondSorting, reasons
}

// faultText is a sorter fault with its code's meaning.
func faultText(code uint16) string {
	if code == 0 {
		return "sorter fault (no fault code)"
	}
	return "sorter fault " + strconv.Itoa(int(code)) + " (" + FaultName(code) + ")"
}

// linkDownText says the link is down, and in which state when it is
// trying again (connecting, syncing).
func linkDownText(state string) string {
	if state == "" || state == "down" {
		return "PLC link down"
	}
	return "PLC link down (" + state + ")"
}

// condClass is the badge colour of a condition: none (grey) for sorting,
// warn for degraded, bad otherwise (ISA-101: colour only when abnormal).
func condClass(c string) string {
	switch c {
	case CondSorting:
		return ""
	case CondDegraded:
		return "warn"
	}
	return "bad"
}

// worstCondition is the gateway's condition for the page header: the
// worst of its lines'.
func worstCondition(ls []LineSnapshot) string {
	rank := map[string]int{CondSorting: 0, CondDegraded: 1, CondStopped: 2, CondNoData: 3, CondFault: 4, CondDown: 5}
	w := CondSorting
	for i := range ls {
		c := ls[i].Condition
		if c == "" {
			c = CondNoData
		}
		if rank[c] > rank[w] {
			w = c
		}
	}
	return w
}

// alarmCount counts the active alarms of every line (the page header and
// tab title).
func alarmCount(ls []LineSnapshot) int {
	n := 0
	for i := range ls {
		n += len(ls[i].Alarms)
	}
	return n
}
