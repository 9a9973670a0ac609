// Package sortplan turns the codes a scanner read off a parcel into a chute.
//
// It reads labels (GS1 element strings, carrier tracking numbers, site
// patterns) into destination keys, reads and validates the sort plan that
// ops engineers edit in a spreadsheet, compiles a plan into an immutable
// Table whose Decide method allocates nothing, and swaps tables atomically
// (Holder) so that a new plan never disturbs an item in flight.
//
// The package uses the standard library only; devices and sortplan never
// import each other.
package sortplan

import (
	"errors"
	"fmt"
)

// Reason is the contract's reason code sent to the PLC with every divert
// command and shown on the PLC's HMI.
type Reason uint16

// Reason codes, as in the host interface (plc-interface.md, "Concepts").
const (
	ReasonSorted      Reason = 0 // sorted by plan, primary chute
	ReasonNoRead      Reason = 1 // no code read
	ReasonUnknown     Reason = 2 // codes read, no destination or no rule for it
	ReasonMultiRead   Reason = 3 // codes disagree on the destination
	ReasonAlternate   Reason = 4 // primary full or disabled, alternate chosen
	ReasonRecirculate Reason = 5 // every planned chute full or disabled
	ReasonRecircLimit Reason = 6 // recirculation limit reached: exception chute
	ReasonDegraded    Reason = 7 // host degraded, no plan loaded
	// ReasonMissedCutoff: read after its route's last cut-off of the day,
	// sent to the route's late exception chute (route rows, late policy
	// "exception CHUTE"). The contract lets the host send any reason.
	ReasonMissedCutoff Reason = 8
)

// String returns the reason's short name as shown in logs and on the status page.
func (r Reason) String() string {
	switch r {
	case ReasonSorted:
		return "sorted"
	case ReasonNoRead:
		return "no-read"
	case ReasonUnknown:
		return "unknown"
	case ReasonMultiRead:
		return "multi-read"
	case ReasonAlternate:
		return "alternate"
	case ReasonRecirculate:
		return "recirculate"
	case ReasonRecircLimit:
		return "recirc-limit"
	case ReasonDegraded:
		return "degraded"
	case ReasonMissedCutoff:
		return "missed-cutoff"
	}
	return fmt.Sprintf("reason(%d)", uint16(r))
}

// Named errors callers branch on.
var (
	// ErrVersionNotNewer is returned by Holder.Store for a table whose
	// version is not greater than the one already held.
	ErrVersionNotNewer = errors.New("plan version not newer than the active plan")
	// ErrPlanChanged is returned by Holder.ReplaceManifest for a table
	// whose plan differs from the active one: a changed plan must raise its
	// version.
	ErrPlanChanged = errors.New("plan changed without a new plan_version")
	// ErrInvalidPlan wraps the error returned by ParsePlan/LoadPlan when the
	// plan has at least one error diagnostic.
	ErrInvalidPlan = errors.New("invalid sort plan")
)

// Diagnostic is one finding of plan validation, with its position in the
// file so that an engineer can jump to the cell.
type Diagnostic struct {
	File      string
	Line, Col int // 1-based; 0 when the finding concerns the whole file
	Warning   bool
	Msg       string
}

// String formats the diagnostic as "file:line:col: msg", with "warning: "
// before the message of a warning.
func (d Diagnostic) String() string {
	w := ""
	if d.Warning {
		w = "warning: "
	}
	return fmt.Sprintf("%s:%d:%d: %s%s", d.File, d.Line, d.Col, w, d.Msg)
}
