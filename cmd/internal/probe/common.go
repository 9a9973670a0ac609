package probe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"sortgw/devices/modbus"
)

// judgeHeartbeat checks PLC_HEARTBEAT samples taken over d.
func judgeHeartbeat(r *Report, beats []uint16, d time.Duration) {
	changes := 0
	for i := 1; i < len(beats); i++ {
		changes += int(beats[i] - beats[i-1])
	}
	secs := d.Seconds()
	ev := fmt.Sprintf("+%d in %v (%.1f/s; contract 10/s)", changes, d, float64(changes)/secs)
	switch rate := float64(changes) / secs; {
	case changes == 0:
		r.fail(CheckPLCHeartbeat, "PLC_HEARTBEAT moves every 100 ms", ev,
			"heartbeat not moving: the PLC program does not increment PLC_HEARTBEAT (or increments an unmapped copy); the gateway declares the PLC lost after 1 s")
	case rate < 5 || rate > 20:
		r.fail(CheckPLCHeartbeat, "PLC_HEARTBEAT moves every 100 ms", ev, "the heartbeat moves at the wrong rate: +1 every 100 ms")
	default:
		r.pass(CheckPLCHeartbeat, "PLC_HEARTBEAT moves every 100 ms", ev)
	}
}

// judgeFaultNoHost checks FAULT_CODE after d without a host heartbeat.
func judgeFaultNoHost(r *Report, f uint16, d time.Duration) {
	const title = "FAULT_CODE 1 while no host heartbeat runs"
	switch {
	case f == 1:
		r.pass(CheckFaultNoHost, title, fmt.Sprintf("FAULT_CODE 1 after %v without a host heartbeat", d))
	case f == 0:
		r.fail(CheckFaultNoHost, title, fmt.Sprintf("FAULT_CODE 0 after %v without a host heartbeat", d),
			"the PLC must power on with FAULT_CODE 1 and set it again after 1 s without a HOST_HEARTBEAT change; with 0 it acts on stale commands while no host runs")
	default:
		r.notRun(CheckFaultNoHost, title, fmt.Sprintf("FAULT_CODE %d (PLC-specific) hides it", f))
	}
}

// judgeBlock checks the values every protocol reads alike.
func judgeBlock(r *Report, state, fault, boot uint16, bootWhere string) {
	if boot == 0 {
		r.fail(CheckBootID, "BOOT_ID is non-zero", "0 at "+bootWhere,
			"the PLC must set a new non-zero BOOT_ID at every cold start; without it the gateway cannot tell a restart from a link drop")
	} else {
		r.pass(CheckBootID, "BOOT_ID is non-zero", fmt.Sprint(boot))
	}
	if state <= 4 {
		r.pass(CheckSorterState, "SORTER_STATE has a defined value", fmt.Sprintf("%d (%s)", state, stateName(state)))
	} else {
		r.fail(CheckSorterState, "SORTER_STATE has a defined value", fmt.Sprint(state), "defined: 0 stopped, 1 running, 2 emergency stop, 3 fault, 4 maintenance")
	}
	if fault <= 1 || fault >= 100 {
		r.pass(CheckFaultCode, "FAULT_CODE has a defined value", fmt.Sprint(fault))
	} else {
		r.fail(CheckFaultCode, "FAULT_CODE has a defined value", fmt.Sprint(fault), "2..99 are reserved: PLC-specific faults start at 100")
	}
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func stateName(s uint16) string {
	return [...]string{"stopped", "running", "emergency stop", "fault", "maintenance"}[s]
}

// hbWriter writes HOST_HEARTBEAT every 100 ms through write until
// paused or stopped.
type hbWriter struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	paused bool
	err    error
}

// startHeartbeat runs write with a new value every 100 ms; closeFn, if
// set, runs when it stops.
func startHeartbeat(ctx context.Context, write func(context.Context, uint16) error, closeFn func()) *hbWriter {
	ctx, cancel := context.WithCancel(ctx)
	w := &hbWriter{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer func() {
			if closeFn != nil {
				closeFn()
			}
			close(w.done)
		}()
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		v := uint16(time.Now().UnixNano()) | 1
		for {
			w.mu.Lock()
			paused := w.paused
			w.mu.Unlock()
			if !paused {
				v++
				if err := write(ctx, v); err != nil && !errors.Is(err, context.Canceled) {
					w.setErr(err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	return w
}

// modbusHeartbeat writes HOST_HEARTBEAT on a connection of its own, so
// that it never waits behind the probe's reads.
func modbusHeartbeat(ctx context.Context, cfg modbus.Config, addr uint16) (*hbWriter, error) {
	c, err := modbus.DialProbe(ctx, cfg, 0)
	if err != nil {
		return nil, err
	}
	return startHeartbeat(ctx, func(ctx context.Context, v uint16) error { return c.Write(ctx, addr, []uint16{v}) },
		func() { _ = c.Close() }), nil
}

func (w *hbWriter) setErr(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

func (w *hbWriter) errText() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return "; heartbeat write: " + w.err.Error()
	}
	return ""
}

func (w *hbWriter) pause(on bool) {
	w.mu.Lock()
	w.paused = on
	w.mu.Unlock()
}

func (w *hbWriter) stop() {
	w.cancel()
	<-w.done
}

// faultReader reads FAULT_CODE.
type faultReader interface {
	fault(ctx context.Context) (uint16, error)
}

// waitFault polls FAULT_CODE until it is want or d passes.
func waitFault(ctx context.Context, f faultReader, want uint16, d time.Duration) error {
	t0 := time.Now()
	var last uint16
	for time.Since(t0) < d {
		v, err := f.fault(ctx)
		if err != nil {
			return err
		}
		if last = v; last == want {
			return nil
		}
		if err := pause(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("FAULT_CODE still %d after %v", last, d)
}
