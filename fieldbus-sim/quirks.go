package fieldbussim

// Quirks: the mistakes a PLC programmer makes when writing the interface
// for the first time, to commission a host (and `sortgw probe`) against.
// Each is off by default; the emulator is then a PLC that keeps the
// contract. They differ from the options in doc.go ("a PLC harder than the
// contract's minimum"): a PLC with a quirk BREAKS the contract, and a
// commissioning tool must say which way.
//
// Two mistakes need no quirk of their own, being plain configuration:
// a different unit id (ModbusConfig.UnitID) and swapped 32-bit words
// (ModbusConfig.WordOrder = WordOrderLowFirst, as seen by a host
// configured high-first).

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Quirks are contract violations the emulated PLC can commit (Config.Quirks).
type Quirks struct {
	// NumFromZero numbers confirmations 0, 1, 2 … instead of 1, 2, 3 …:
	// the first confirmation has NUM 0 and sits in slot 0, and
	// CONFIRM_COUNT still counts them (1 after the first). A host then
	// finds slot CONFIRM_COUNT mod 16 stale.
	NumFromZero bool
	// OldResults confirms with the result codes of a pre-release draft
	// of the contract, which had only 1..6: a refusal (7) comes back 6,
	// a recirculation as commanded (8) and a host-lost recirculation (9)
	// come back 3.
	OldResults bool
	// FaultZeroAtPowerOn starts with FAULT_CODE 0 instead of 1, and keeps
	// it 0 until a host heartbeat was first seen: the PLC acts on stale
	// commands before any host has spoken.
	FaultZeroAtPowerOn bool
	// FrozenHeartbeat: PLC_HEARTBEAT never moves (a PLC whose program
	// never increments it, or increments a copy that is not mapped).
	FrozenHeartbeat bool
	// ShiftPLCBlock moves the PLC block this many registers from where
	// ModbusConfig.PLCBase says (1: PLC_HEARTBEAT at 101 in the default
	// map), as a PLC programmer who counted addresses from 1 does. The
	// host, configured with the contract's map, reads everything one
	// register off.
	ShiftPLCBlock int
	// ExtraNamespaces registers this many other namespaces on the OPC UA
	// server before the sorter's, so that its index is not 1 (as on most
	// real servers, where the vendor's namespaces come first). Not a
	// violation by itself: it catches a host that assumes ns=1.
	ExtraNamespaces int
}

// On reports whether any quirk is set.
func (q Quirks) On() bool { return q != Quirks{} }

// String lists the quirks set, for the log.
func (q Quirks) String() string {
	if !q.On() {
		return "none"
	}
	return fmt.Sprintf("%+v", struct {
		NumFromZero, OldResults, FaultZeroAtPowerOn, FrozenHeartbeat bool
		ShiftPLCBlock, ExtraNamespaces                               int
	}(q))
}

// applyQuirks folds the quirks that are configuration into cfg; it runs
// at the top of Validate, before the defaults are filled.
func (c *Config) applyQuirks() error {
	q := c.Quirks
	if q.ShiftPLCBlock < 0 || q.ShiftPLCBlock > 10 {
		return fmt.Errorf("%w: quirk shift plc block %d: want 0..10", ErrConfig, q.ShiftPLCBlock)
	}
	if q.ExtraNamespaces < 0 || q.ExtraNamespaces > 16 {
		return fmt.Errorf("%w: quirk extra namespaces %d: want 0..16", ErrConfig, q.ExtraNamespaces)
	}
	// Set, not added: Validate may run more than once on one Config.
	c.Modbus.plcShift = uint16(q.ShiftPLCBlock)
	c.OPCUA.extraNamespaces = q.ExtraNamespaces
	return nil
}

// quirkResult maps a contract result to the one a PLC with OldResults
// writes.
func (q Quirks) quirkResult(r Result) Result {
	if !q.OldResults {
		return r
	}
	switch r {
	case ResultRefused:
		return ResultLost
	case ResultRecirculated, ResultHostLost:
		return ResultFull
	}
	return r
}

// neverAgain is a stall end no run reaches: FrozenHeartbeat.
var neverAgain = time.Unix(1<<40, 0)

// Quirk names for ParseQuirks and the -quirks flag of cmd/fieldbus-sim.
const (
	QuirkNumFromZero        = "num-from-zero"
	QuirkOldResults         = "old-results"
	QuirkFaultZeroAtPowerOn = "fault-zero-at-power-on"
	QuirkFrozenHeartbeat    = "frozen-heartbeat"
	QuirkShiftPLCBlock      = "shift-plc-block"  // =N, default 1
	QuirkExtraNamespaces    = "extra-namespaces" // =N, default 2
)

// ParseQuirks reads a comma-separated list of quirk names, the last two
// with an optional =N ("num-from-zero,shift-plc-block=1"). An unknown
// name or a bad number is an error naming it.
func ParseQuirks(s string) (Quirks, error) {
	var q Quirks
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, val, hasVal := strings.Cut(f, "=")
		num := func(def int) (int, error) {
			if !hasVal {
				return def, nil
			}
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > 16 {
				return 0, fmt.Errorf("quirk %q: want a number 0..16", f)
			}
			return n, nil
		}
		var err error
		switch {
		case name == QuirkShiftPLCBlock:
			q.ShiftPLCBlock, err = num(1)
		case name == QuirkExtraNamespaces:
			q.ExtraNamespaces, err = num(2)
		case hasVal:
			err = fmt.Errorf("quirk %q takes no value", f)
		case name == QuirkNumFromZero:
			q.NumFromZero = true
		case name == QuirkOldResults:
			q.OldResults = true
		case name == QuirkFaultZeroAtPowerOn:
			q.FaultZeroAtPowerOn = true
		case name == QuirkFrozenHeartbeat:
			q.FrozenHeartbeat = true
		default:
			err = fmt.Errorf("unknown quirk %q: want %s, %s, %s, %s, %s[=N] or %s[=N]", name, QuirkNumFromZero, QuirkOldResults,
				QuirkFaultZeroAtPowerOn, QuirkFrozenHeartbeat, QuirkShiftPLCBlock, QuirkExtraNamespaces)
		}
		if err != nil {
			return Quirks{}, err
		}
	}
	return q, nil
}
