package loadtest

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"sortgw/gateway/journal"
)

// errDiskFull is what the soak's failing commits return: the journal
// rolls the batch back and keeps the records queued, as on ENOSPC.
var errDiskFull = fmt.Errorf("soak: journal disk full: %w", syscall.ENOSPC)

// diskFull makes the bench journal's commits fail while it is on. The
// fault goes in at the journal's commit (journal.Config.CommitFault, after
// the batch is written into the transaction, which is rolled back), not by
// filling a real filesystem: that would need root and a mount of its own,
// or would fill the machine's disk.
type diskFull struct{ on atomic.Bool }

func (d *diskFull) fault() error {
	if d.on.Load() {
		return errDiskFull
	}
	return nil
}

// journalDiskFull fails every journal commit for JournalFull: the journal
// must say so (health failing, the gateway not ready after its grace),
// keep sorting on its queue, lose no record it can hold or count each one
// it cannot, and catch up once commits succeed. Recovery is timed from the
// disk's return to the journal's health back to ok with its queue drained.
func journalDiskFull(ctx context.Context, c *chaos, _ *benchLine) FaultRun {
	var r FaultRun
	if c.journal == nil || c.disk == nil {
		r.Note = "no journal to fail"
		return r
	}
	h0 := c.journal.Health()
	c.disk.on.Store(true)
	failing := waitUntilFine(ctx, time.Now().Add(10*time.Second), func() bool { return c.journal.Health().State != journal.StateOK })
	peak := 0
	deadline := time.Now().Add(c.cfg.Soak.JournalFull)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		peak = max(peak, c.journal.Health().QueueLen)
		_ = sleepCtx(ctx, 50*time.Millisecond)
	}
	during := c.journal.Health()
	c.disk.on.Store(false)
	// Recovery is the first good commit after the disk's return (the
	// journal's health leaves "failing" with it), like a reconnect; the
	// backlog's drain after it grows with the outage and is a figure.
	from := time.Now()
	err := waitUntilFine(ctx, from.Add(15*time.Second), func() bool { return c.journal.Health().State == journal.StateOK })
	r.Recovery = time.Since(from)
	r.setBack(err)
	drainErr := waitUntilFine(ctx, time.Now().Add(30*time.Second), func() bool { return c.journal.Health().QueueLen == 0 })
	drained := time.Since(from)
	if failing != nil {
		r.Broken = "the journal's commits failed and its health never said so"
	}
	if drainErr != nil {
		r.Broken = "the journal's backlog did not drain after the disk came back"
	}
	h1 := c.journal.Health()
	if during.State == journal.StateOK {
		r.Broken = "the journal showed ok while every commit failed"
	}
	r.Figures = fmt.Sprintf("commits failing %v: health %s, queue peak %d of %d records, records not kept %d (before %d); first commit %v and backlog drained %v after the disk came back",
		c.cfg.Soak.JournalFull, during.State, peak, h1.QueueCap, h1.NotKeptTotal(), h0.NotKeptTotal(), r.Recovery.Round(time.Millisecond), drained.Round(time.Millisecond))

	return r
}
