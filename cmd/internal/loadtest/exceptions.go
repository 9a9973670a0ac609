package loadtest

import (
	"context"
	"fmt"
	"time"

	"sortgw/devices"
)

// exceptionBurst answers ExceptionsPerCode Modbus requests with each code
// of exceptionCodes in turn. Figures: the reconnects, host-late outcomes
// and missed confirmations that followed (until the items decided around
// the burst passed their chutes); recovery is the link up after it.
func exceptionBurst(ctx context.Context, c *chaos, bl *benchLine) FaultRun {
	var r FaultRun
	st0 := bl.link.Status()
	late0, missed0 := c.tally.lateMissed()
	per := c.cfg.Soak.ExceptionsPerCode
	for _, code := range exceptionCodes {
		st := bl.link.Status()
		bl.sim.InjectModbusException(code, per)
		// Paced by the link: each answer is an error, a retried busy, or
		// a redial; the next code waits for the last code's answers.
		_ = waitUntilFine(ctx, time.Now().Add(2*time.Second), func() bool {
			s := bl.link.Status()
			return s.Exceptions >= st.Exceptions+uint64(per) || s.Reconnects >= st.Reconnects+uint64(per)
		})
	}
	from := time.Now()
	err := waitUntilFine(ctx, from.Add(15*time.Second), func() bool { return bl.link.Status().State == devices.LinkUp })
	r.Recovery = time.Since(from)
	r.setBack(err)
	_ = sleepCtx(ctx, c.cfg.travel()+2*time.Second)
	st1 := bl.link.Status()
	late1, missed1 := c.tally.lateMissed()
	r.Figures = fmt.Sprintf("%d replies (codes 1,2,3,4,6,11 x%d): %d exception replies counted, %d reconnects, %d errors, %d busy retried; %d host-late, %d missed confirmations after",
		per*len(exceptionCodes), per, st1.Exceptions-st0.Exceptions, st1.Reconnects-st0.Reconnects, st1.Errors-st0.Errors, st1.Busy-st0.Busy, late1-late0, missed1-missed0)
	return r
}
