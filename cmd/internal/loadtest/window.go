package loadtest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"sortgw/devices/modbus"
	"sortgw/gateway/journal"
)

// counters is what the window's figures are differences of.
type counters struct {
	reads, taken, inducted uint64
	missed                 uint64
	outcomes               [32]uint64
	cpu                    cpuUsage
	at                     time.Time
}

func (s *scenario) counters() counters {
	var c counters
	for _, bl := range s.lines {
		c.reads += bl.line.Snapshot().Totals.Reads
		c.taken += bl.link.Status().Taken
		c.inducted += bl.inducted()
	}
	s.tally.mu.Lock()
	c.outcomes = s.tally.byOutcome
	c.missed = s.tally.missed
	s.tally.mu.Unlock()
	c.cpu = rusage()
	c.at = time.Now()
	return c
}

func (s *scenario) record(on bool) {
	for _, bl := range s.lines {
		bl.probe.recording.Store(on)
	}
}

// window is the measured window: the probes record, the rate-matched
// floor runs on a connection of its own, and with Chaos the faults come.
// After it, with the load still running, the hot floor's burst.
func (s *scenario) window(ctx context.Context, rep *Report) (*chaos, error) {
	rep.BaseRateHz = min(s.cfg.Rate, s.cfg.Ceiling())
	floor, err := startRateFloor(ctx, s.cfg.Protocol, s.lines[0].sim, rep.BaseRateHz)
	if err != nil {
		return nil, err
	}
	rep.BaseName = floor.name
	c0 := s.counters()
	s.record(true)
	var ch *chaos
	if s.cfg.Chaos {
		ch = newChaos(s)
		err = ch.run(ctx, s.cfg.Duration)
	} else {
		err = sleepCtx(ctx, s.cfg.Duration)
	}
	c1 := s.counters()
	s.record(false)
	rr := floor.stopRate()
	rep.BaseRate, rep.BaseRateErrors, rep.rateSamples = rr.lat, rr.errors, rr.samples
	if rr.err != nil {
		rep.BaseRateErr = rr.err.Error()
	}
	if err != nil {
		floor.close()
		return nil, err
	}
	if rep.BaseHot, rep.hotSamples, err = floor.hot(ctx, s.cfg.Baselines); err != nil {
		return nil, err
	}
	rep.addWindow(c0, c1)
	if s.cfg.MemProfile != "" {
		runtime.GC()
		if err := writeProfile("heap", s.cfg.MemProfile); err != nil {
			return nil, err
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.HeapInuse = ms.HeapInuse
	return ch, nil
}

func (r *Report) addWindow(c0, c1 counters) {
	r.Window = c1.at.Sub(c0.at)
	r.Reads, r.Taken, r.Inducted = c1.reads-c0.reads, c1.taken-c0.taken, c1.inducted-c0.inducted
	r.CPUUser, r.CPUSys = c1.cpu.user-c0.cpu.user, c1.cpu.sys-c0.cpu.sys
	r.CPU = r.CPUUser + r.CPUSys
	r.HostLate = c1.outcomes[journal.OutcomeHostLate] - c0.outcomes[journal.OutcomeHostLate]
	r.Missed = c1.missed - c0.missed
	for o := range c1.outcomes {
		if n := c1.outcomes[o] - c0.outcomes[o]; n > 0 {
			r.Outcomes[journal.Outcome(o).String()] = n
		}
	}
}

// finish stops inducting, lets the gateway drain (it waits for its open
// items), then holds the journal's tally against the sims' ground truth.
func (s *scenario) finish(rep *Report, ch *chaos) error {
	for _, bl := range s.lines {
		bl.setRate(0)
	}
	// The direct feed's last telegrams are read before the gateway stops,
	// so that the ground truth can ask for every one of them.
	_ = waitUntil(context.Background(), 5*time.Second, func() bool {
		for _, bl := range s.lines {
			if bl.feed != nil {
				tot := bl.line.Snapshot().Totals
				if tot.Reads+tot.Overflow < bl.feed.Sent() {
					return false
				}
			}
		}
		return true
	})
	gwErr := s.stopGateway()
	rep.PeakRSS = peakRSS()
	if gwErr != nil && !errors.Is(gwErr, context.Canceled) {
		return fmt.Errorf("bench: gateway: %w", gwErr)
	}
	var all [4]latencies
	for _, bl := range s.lines {
		all[0] = append(all[0], bl.probe.decided...)
		all[1] = append(all[1], bl.probe.written...)
		all[2] = append(all[2], bl.probe.taken...)
		all[3] = append(all[3], bl.probe.confirmed...)
		rep.Dropped += bl.link.dropped.Load()
	}
	rep.Decided, rep.Written, rep.TakenLat, rep.Confirmed = summarise(all[0]), summarise(all[1]), summarise(all[2]), summarise(all[3])
	rep.written, rep.taken = all[1], all[2]
	rep.GWDecision = histogramStats(s.metrics, "sortgw_decision_seconds")
	if ml, ok := s.lines[0].link.inner.(*modbus.Link); ok {
		pg := ml.PollInterval()
		rep.PollGap = &pg
	}
	rep.Check = checkTruth(s.lines, s.tally, s.journal.Stats())
	// The PLC follows Modbus reads of CONFIRM_COUNT, not OPC UA's; faults
	// (restarts, dropped connections) are left out of the exact count.
	rep.Check.MissedExact = s.cfg.Protocol == "modbus" && ch == nil
	_, rep.MissedRun = s.tally.lateMissed()
	if ch != nil {
		rep.Chaos = ch.report()
	}
	return nil
}
