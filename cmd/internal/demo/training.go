package demo

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway"
)

// trainingFaultCode is the FAULT_CODE of the training panel's sorter
// fault: PLC-specific (100 and above), so the gateway keeps sending while
// the sorter stands, as with a real drive or jam fault.
const trainingFaultCode = 120

// trainer is the training panel over the emulated sorter: each fault is a
// persistent fault of fieldbus-sim that holds until switched off.
type trainer struct {
	sim    *fieldbussim.Sim
	chutes int

	mu         sync.Mutex
	plcDown    bool
	scannerOff bool
	full       []int // chutes the panel set full, ascending
}

func newTrainer(sim *fieldbussim.Sim, chutes int) *trainer {
	return &trainer{sim: sim, chutes: chutes}
}

var _ gateway.Trainer = (*trainer)(nil)

// Faults lists the panel's faults with their state: e-stop and sorter
// fault as the PLC shows them, the others as the panel set them.
func (t *trainer) Faults() []gateway.TrainingFault {
	st := t.sim.PLC().State()
	t.mu.Lock()
	defer t.mu.Unlock()
	full := "Chute full"
	if len(t.full) > 0 {
		s := make([]string, len(t.full))
		for i, c := range t.full {
			s[i] = strconv.Itoa(c)
		}
		full += " (chute " + strings.Join(s, ", ") + ")"
	}
	return []gateway.TrainingFault{
		{ID: gateway.TrainEStop, Label: "Emergency stop", Active: st == fieldbussim.StateEmergencyStop,
			Help: "The sorter's e-stop is pressed: the belt stops, tracked parcels are lost; the line shows stopped and a critical alarm."},
		{ID: gateway.TrainSorterFault, Label: "Sorter fault (FAULT_CODE " + strconv.Itoa(trainingFaultCode) + ")", Active: st == fieldbussim.StateFault,
			Help: "The PLC reports a fault of its own and stands: the line shows fault with the code's meaning."},
		{ID: gateway.TrainPLCDrop, Label: "PLC off the network", Active: t.plcDown,
			Help: "The PLC stops answering (a pulled cable): the link goes down, PLC values grey out, the banner says why and since when."},
		{ID: gateway.TrainScannerOff, Label: "Scanner S1 off", Active: t.scannerOff,
			Help: "Scanner S1 loses power: its connection drops and is refused; parcels it would read are lost to the line; a warning alarm."},
		{ID: gateway.TrainChuteFull, Label: full, Active: len(t.full) > 0,
			Help: "A chute's full sensor is on: parcels for it recirculate; after a while an alarm, and a route with no chute left is flagged. Switching off with no chute clears them all."},
	}
}

// Set switches a fault. chute-full needs a chute (1..chutes) to switch on;
// off, chute 0 clears every chute the panel set.
func (t *trainer) Set(id string, on bool, chute int) error {
	switch id {
	case gateway.TrainEStop:
		t.sim.EmergencyStop(on)
	case gateway.TrainSorterFault:
		return t.sim.SorterFault(on, trainingFaultCode)
	case gateway.TrainPLCDrop:
		if err := t.sim.SetPLCDown(on); err != nil {
			return err
		}
		t.mu.Lock()
		t.plcDown = on
		t.mu.Unlock()
	case gateway.TrainScannerOff:
		if err := t.sim.SetScannerOff(0, on); err != nil {
			return err
		}
		t.mu.Lock()
		t.scannerOff = on
		t.mu.Unlock()
	case gateway.TrainChuteFull:
		return t.setChuteFull(on, chute)
	default:
		return fmt.Errorf("training fault %q: %w", id, gateway.ErrNoTrainingFault)
	}
	return nil
}

func (t *trainer) setChuteFull(on bool, chute int) error {
	if (on || chute != 0) && (chute < 1 || chute > t.chutes) {
		return fmt.Errorf("chute-full: chute %d: want 1..%d", chute, t.chutes)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !on && chute == 0 {
		for _, c := range t.full {
			t.sim.SetChuteFull(uint16(c), false)
		}
		t.full = nil
		return nil
	}
	t.sim.SetChuteFull(uint16(chute), on)
	i, found := slices.BinarySearch(t.full, chute)
	switch {
	case on && !found:
		t.full = slices.Insert(t.full, i, chute)
	case !on && found:
		t.full = slices.Delete(t.full, i, i+1)
	}
	return nil
}
