package opcua

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"sortgw/devices"
	"sortgw/devices/hostif"
)

type client = *opcua.Client

// plcValues is one read of every monitored node.
type plcValues struct {
	heartbeat, state, ack, fault, chuteCount, boot, count uint16
	full, disabled                                        []bool
}

// session makes one connection and keeps it until it fails or ctx is
// done. It reports whether the link was up at some point, and why the
// connection ended (nil when ctx ended it).
func (l *Link) session(ctx context.Context) (wasUp bool, err error) {
	l.mu.Lock()
	l.core.Dialing(time.Now())
	l.mu.Unlock()

	cctx, ccancel := context.WithTimeout(ctx, 4*l.cfg.Timeout)
	defer ccancel()
	// The handshakes (GetEndpoints, Connect) are never cut short by a
	// stop, only by their timeout: gopcua v0.8.0 clears the opening
	// secure channel when an abandoned OpenSecureChannel returns, without
	// a lock against its dispatcher, which then reads the late response
	// (a data race -race reported in CI). A stop while connecting waits
	// for the handshake, at most 4 x timeout.
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), 4*l.cfg.Timeout)
	defer hcancel()
	opts, err := l.clientOptions(hctx)
	if err != nil {
		return false, err
	}
	cl, err := opcua.NewClient(l.cfg.Endpoint, opts...)
	if err != nil {
		return false, fmt.Errorf("new client: %w", err)
	}
	defer l.closeClient(cl)
	if err := connect(hctx, cl); err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	ns, err := cl.FindNamespace(cctx, l.cfg.Namespace)
	if err != nil {
		return false, fmt.Errorf("namespace %q: %w", l.cfg.Namespace, err)
	}

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := &conn{cl: cl, nodes: newNodeSet(ns, l.cfg.NodePrefix, l.cfg.Ring), ctx: sctx, cancel: cancel, kick: make(chan struct{}, 1)}

	l.mu.Lock()
	l.core.Connected(time.Now())
	// Not up before the subscription delivers (readyLocked takes over once
	// the connection is live).
	l.core.SetReady(false, "subscribing")
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.cur = nil
		l.core.Disconnected(time.Now())
		l.mu.Unlock()
	}()
	// The contract's order: read the PLC block, let the core follow or keep
	// the ring by BOOT_ID, write the heartbeat; commands go only once the
	// core is up (FaultCode 0 or a PLC-specific code, published on the
	// subscription).
	v, err := l.readPLC(cctx, c)
	if err != nil {
		return false, err
	}
	l.reconcile(v)
	if err := l.writeHeartbeat(cctx, c); err != nil {
		return false, err
	}
	notifs := make(chan *opcua.PublishNotificationData, 64)
	if err := l.subscribe(cctx, c, notifs); err != nil {
		return false, err
	}
	l.mu.Lock()
	l.sess = sessionState{ackSeq: v.ack, ackNewest: v.ack, count: v.count, connectedAt: time.Now()}
	l.cur = c
	l.mu.Unlock()
	l.log.Info().Uint16("namespace", ns).Uint16("boot_id", v.boot).Uint16("ack_seq", v.ack).
		Uint16("confirm_count", v.count).Msg("plc connected, waiting for the subscription and fault code 0")
	// Confirmations written while the link was away (warm reconnect).
	if _, err := l.confirmations(c, v.count, 0); err != nil {
		c.fail(err)
	}
	l.signal()

	var wg sync.WaitGroup
	wg.Go(func() { l.heartbeatLoop(c) })
	wg.Go(func() { l.notifications(c, notifs) })
	wg.Go(func() { l.reader(c) })
	var up bool
	wg.Go(func() { up = l.watchdog(c) })
	<-sctx.Done()
	l.mu.Lock()
	l.cur = nil
	l.core.Disconnected(time.Now())
	l.mu.Unlock()
	wg.Wait()
	// The writes out on this connection end promptly: their context is
	// the connection's.
	c.writes.Wait()
	if ctx.Err() != nil {
		return up, nil
	}
	return up, context.Cause(sctx)
}

// connect is gopcua's Connect made safe: v0.8.0 logs a failed session
// signature check and goes on with a nil session, which panics in
// ActivateSession. A panic there must not take the gateway down.
func connect(ctx context.Context, cl client) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gopcua connect panicked: %v", r)
		}
	}()
	return cl.Connect(ctx)
}

// closeClient closes the session (deleting its subscription) and the
// secure channel, bounded by Timeout so that Run returns promptly even
// when the server no longer answers.
func (l *Link) closeClient(cl client) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Timeout)
	defer cancel()
	_ = cl.Close(ctx) // nothing to do about a failed close of a dead connection
}

func (l *Link) readPLC(ctx context.Context, c *conn) (plcValues, error) {
	req := c.nodes.plcReadRequest()
	rctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	res, err := c.cl.Read(rctx, req)
	cancel()
	if err == nil {
		err = readResults(req, res)
	}
	if err != nil {
		return plcValues{}, fmt.Errorf("read plc block: %w", err)
	}
	var v plcValues
	errs := []error{}
	get := func(h uint32, dst *uint16) {
		x, err := u16(c.nodes.plc[h], res.Results[h-1])
		errs = append(errs, err)
		*dst = x
	}
	get(hPlcHeartbeat, &v.heartbeat)
	get(hPlcState, &v.state)
	get(hPlcAckSeq, &v.ack)
	get(hPlcFaultCode, &v.fault)
	get(hPlcChuteCount, &v.chuteCount)
	get(hPlcBootID, &v.boot)
	get(hConfirmCount, &v.count)
	v.full, err = bools(c.nodes.plc[hChutesFull], res.Results[hChutesFull-1])
	errs = append(errs, err)
	v.disabled, err = bools(c.nodes.plc[hChutesDisabled], res.Results[hChutesDisabled-1])
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return plcValues{}, fmt.Errorf("read plc block: %w", err)
	}
	return v, nil
}

// reconcile hands a fresh read of the PLC block after a connect to the
// core, which applies the reconnect rule (first connect and a new BOOT_ID
// follow the PLC, the same BOOT_ID rewrites what the PLC has not taken).
func (l *Link) reconcile(v plcValues) {
	var rep hostif.BlockReport
	var err error
	l.do(func(now time.Time, evs *[]devices.Event) {
		l.blk = hostif.Block{Heartbeat: v.heartbeat, SorterState: v.state, AckSeq: v.ack, ConfirmCount: v.count,
			FaultCode: v.fault, ChuteCount: v.chuteCount, BootID: v.boot}
		setBits(&l.blk.Full, v.full)
		setBits(&l.blk.Disabled, v.disabled)
		rep, err = l.core.Block(&l.blk, now, evs)
	})
	l.logBlock(rep, err)
}

// logBlock logs what the core decided on a block: the reconnect rule, a
// cold restart on a live connection, a ring out of step.
func (l *Link) logBlock(rep hostif.BlockReport, err error) {
	b := &l.blk
	switch rep.Sync {
	case hostif.SyncFirst:
		l.log.Info().Uint16("boot_id", b.BootID).Uint16("ack_seq", b.AckSeq).Uint16("confirm_count", b.ConfirmCount).
			Msg("first connect: following the plc")
	case hostif.SyncWarm:
		l.log.Info().Uint16("boot_id", b.BootID).Int("rewrite", rep.Rewrite).Msg("warm reconnect: rewriting commands in place")
	case hostif.SyncCold:
		l.log.Warn().Uint16("boot_id", b.BootID).Uint16("old_boot_id", rep.PrevBoot).Int("lost", rep.Lost).
			Msg("plc restarted cold: every unconfirmed command is lost")
	}
	if err != nil {
		l.log.Error().Err(err).Msg("following the plc")
	}
}

func setBits(b *devices.ChuteBits, v []bool) {
	*b = devices.ChuteBits{}
	for i, on := range v {
		if on {
			b.Set(uint16(i+1), true)
		}
	}
}

func (l *Link) writeHeartbeat(ctx context.Context, c *conn) error {
	hb := uint16(l.hostHB.Add(1))
	req := c.nodes.heartbeatRequest(hb, uint16(l.hostState.Load()), uint16(l.planVersion.Load()))
	wctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	res, err := c.cl.Write(wctx, req)
	cancel()
	if err == nil {
		err = writeStatus(req, res)
	}
	if err != nil {
		return fmt.Errorf("host heartbeat %d: %w", hb, err)
	}
	return nil
}

// readback reads the host nodes back and lets the core look for another
// host's writes in them. The last heartbeat write succeeded (the loop ends
// otherwise). A failed read only skips this check: the connection's own
// loops judge the connection.
func (l *Link) readback(c *conn) {
	req := c.nodes.readbackRequest()
	ctx, cancel := context.WithTimeout(c.ctx, l.cfg.Timeout)
	res, err := c.cl.Read(ctx, req)
	cancel()
	if err == nil {
		err = readResults(req, res)
	}
	var rb hostif.Readback
	if err == nil {
		var errs []error
		rb.Heartbeat, err = u16(req.NodesToRead[0].NodeID, res.Results[0])
		errs = append(errs, err)
		rb.Divert = make([]hostif.DivertSlot, len(c.nodes.divert))
		for k := range rb.Divert {
			var e1, e2 error
			rb.Divert[k].Seq, e1 = u16(req.NodesToRead[1+2*k].NodeID, res.Results[1+2*k])
			rb.Divert[k].TID, e2 = u32(req.NodesToRead[2+2*k].NodeID, res.Results[2+2*k])
			errs = append(errs, e1, e2)
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		l.log.Debug().Err(err).Msg("host nodes not read back")
		return
	}
	rb.Wrote, rb.CheckHeartbeat = uint16(l.hostHB.Load()), true
	var why error
	l.do(func(now time.Time, _ *[]devices.Event) {
		l.core.Readback(&rb, now)
		_, why = l.core.State(now)
	})
	if errors.Is(why, hostif.ErrSecondHost) {
		if ok, n := l.rate.Allow("second-host", time.Now()); ok {
			l.log.Error().Err(why).Int("suppressed", n).Msg("plc link holding commands")
		}
	}
}

func (l *Link) heartbeatLoop(c *conn) {
	t := time.NewTicker(l.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		// Read back before writing: another host's heartbeat since ours
		// shows as a value we did not write.
		l.readback(c)
		if err := l.writeHeartbeat(c.ctx, c); err != nil {
			l.mu.Lock()
			l.errors++
			l.mu.Unlock()
			c.fail(err)
			return
		}
	}
}

func (l *Link) subscribe(ctx context.Context, c *conn, notifs chan *opcua.PublishNotificationData) error {
	ka := uint32(max(1, l.cfg.KeepAlive/l.cfg.PublishInterval))
	sub, err := c.cl.Subscribe(ctx, &opcua.SubscriptionParameters{
		Interval:          l.cfg.PublishInterval,
		MaxKeepAliveCount: ka,
		// Generous: a gateway slow to drain Events stalls the publish loop,
		// which must not cost the subscription at once.
		LifetimeCount: max(3*ka, uint32(10*time.Second/l.cfg.PublishInterval)),
	}, notifs)
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	ms := float64(l.cfg.PublishInterval) / float64(time.Millisecond)
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnNeither, c.nodes.monitorRequests(ms)...)
	if err != nil {
		return fmt.Errorf("create monitored items: %w", err)
	}
	if res.ResponseHeader != nil && res.ResponseHeader.ServiceResult != ua.StatusOK {
		return fmt.Errorf("create monitored items: %w", res.ResponseHeader.ServiceResult)
	}
	var errs []error
	for i, r := range res.Results {
		if r.StatusCode != ua.StatusOK {
			errs = append(errs, fmt.Errorf("monitor %s: %w: %w", c.nodes.plc[i+1], ErrBadStatus, r.StatusCode))
		}
	}
	if len(res.Results) != int(hCount-1) {
		errs = append(errs, fmt.Errorf("monitor: %d results for %d items: %w", len(res.Results), hCount-1, ErrBadStatus))
	}
	return errors.Join(errs...)
}

// notifications handles the subscription's data: it follows ACK_SEQ,
// reads new confirmations when CONFIRM_COUNT moves, and fails the
// connection on anything that says the subscription is not healthy.
func (l *Link) notifications(c *conn, notifs <-chan *opcua.PublishNotificationData) {
	for {
		var n *opcua.PublishNotificationData
		var ok bool
		select {
		case <-c.ctx.Done():
			return
		case n, ok = <-notifs:
		}
		switch {
		case !ok:
			c.fail(fmt.Errorf("notification channel closed: %w", ErrSubscriptionDead))
			return
		case n == nil:
			continue
		case n.Error != nil:
			c.fail(fmt.Errorf("publish: %w: %w", ErrSubscriptionDead, n.Error))
			return
		}
		switch v := n.Value.(type) {
		case *ua.DataChangeNotification:
			count, moved, err := l.dataChange(c, v)
			l.log.Debug().Int("items", len(v.MonitoredItems)).Bool("count_moved", moved).Uint16("count", count).Msg("data change")
			if err == nil && moved {
				// The reader reads the slots: this loop goes on with the
				// next notification (ACK_SEQ) meanwhile.
				select {
				case c.kick <- struct{}{}:
				default:
				}
			}
			if err != nil {
				c.fail(err)
				return
			}
		case *ua.StatusChangeNotification:
			c.fail(fmt.Errorf("subscription status %s: %w", v.Status, ErrSubscriptionDead))
			return
		default:
			// Events are not subscribed; ignore what we did not ask for.
		}
	}
}

// dataChange applies one DataChangeNotification to the published values
// and hands them to the core as one block (so that values notified
// together are applied together), and reports the new CONFIRM_COUNT if it
// moved.
func (l *Link) dataChange(c *conn, v *ua.DataChangeNotification) (count uint16, moved bool, err error) {
	var rep hostif.BlockReport
	var blockErr error
	l.do(func(now time.Time, evs *[]devices.Event) {
		s := &l.sess
		p := &l.blk
		prevAck := s.ackSeq // last published
		s.subscribed = true
		s.lastNotif = now
		s.mismatchSince = time.Time{}
		for _, it := range v.MonitoredItems {
			if it == nil || it.ClientHandle == 0 || it.ClientHandle >= hCount {
				continue
			}
			id := c.nodes.plc[it.ClientHandle]
			var x uint16
			switch it.ClientHandle {
			case hChutesFull, hChutesDisabled:
				var b []bool
				if b, err = bools(id, it.Value); err != nil {
					return
				}
				if it.ClientHandle == hChutesFull {
					setBits(&p.Full, b)
				} else {
					setBits(&p.Disabled, b)
				}
				continue
			}
			if x, err = u16(id, it.Value); err != nil {
				return
			}
			switch it.ClientHandle {
			case hPlcHeartbeat:
				p.Heartbeat = x
			case hPlcState:
				p.SorterState = x
			case hPlcAckSeq:
				s.ackSeq = x
				p.AckSeq = x
			case hPlcFaultCode:
				p.FaultCode = x
				s.faultKnown = true
			case hPlcChuteCount:
				p.ChuteCount = x
			case hPlcBootID:
				p.BootID = x
			case hConfirmCount:
				s.count = x
				p.ConfirmCount = x
				count, moved = x, true
			}
		}
		// The published ACK_SEQ moves forward from the last published
		// one; a value between that and one a read already applied is an
		// older sample, not a move back (the core would take it for a ring
		// out of step and follow the PLC). Anything else, a move back
		// included, goes to the core as published.
		if p.BootID == l.core.BootID() && uint16(p.AckSeq-prevAck) <= uint16(s.ackNewest-prevAck) {
			p.AckSeq = s.ackNewest
		}
		s.ackNewest = p.AckSeq
		rep, blockErr = l.core.Block(p, now, evs)
	})
	if err == nil {
		l.logBlock(rep, blockErr)
	}
	l.signal()
	return count, moved, err
}

// reader reads new confirmations, and ACK_SEQ with them, for one
// connection: at once when a notification says Count moved past what was
// read, and every ConfirmPoll (or sooner, see pace) while commands wait to
// be taken or confirmed or confirmations came within keepReading. A notification is up to a publishing interval old when it
// arrives and its read may wait behind divert writes; at 1,000
// confirmations/s the ring of 16 turns over in 16 ms, so reading only on
// notifications let slots be overwritten unread. The ACK_SEQ read with the
// slots frees ring slots up to a publishing interval sooner.
func (l *Link) reader(c *conn) {
	t := time.NewTimer(l.cfg.ConfirmPoll)
	defer t.Stop()
	var p pace
	guess := 0 // confirmations the last round found: the next read's size
	// Confirmations for no command of this host's (items it was late for)
	// keep the reads going too, for keepReading after the last one.
	var movedAt time.Time
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
		l.mu.Lock()
		trigger, last := l.sess.count, l.core.ConfirmCount()
		due := l.core.Unconfirmed() > 0
		l.mu.Unlock()
		if due || int16(trigger-last) > 0 || time.Since(movedAt) < keepReading {
			moved, err := l.confirmations(c, trigger, guess)
			if err != nil {
				c.fail(err)
				return
			}
			guess = moved
			if moved > 0 {
				movedAt = time.Now()
			}
		}
		l.mu.Lock()
		ack, count := l.core.AckSeq(), l.core.ConfirmCount()
		l.mu.Unlock()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(p.next(time.Now(), ack, count, len(c.nodes.confirm), l.cfg.ConfirmPoll))
	}
}

// pace times the reader's next read: ConfirmPoll, or sooner while
// commands are taken or confirmed faster than half the ring per
// ConfirmPoll. The take rate (ACK_SEQ) is the confirmation rate a travel
// time later, so a burst of commands makes the reads come faster before
// its confirmations do.
type pace struct {
	at         time.Time
	ack, count uint16
}

// minReadGap bounds how close together the reader's reads come;
// keepReading is how long the reader goes on reading every ConfirmPoll
// after Count last moved, with no command of its own waiting.
const (
	minReadGap  = 500 * time.Microsecond
	keepReading = time.Second
)

func (p *pace) next(now time.Time, ack, count uint16, ring int, poll time.Duration) time.Duration {
	d := poll
	if el := now.Sub(p.at); !p.at.IsZero() && el > 0 {
		moved := max(int(int16(ack-p.ack)), int(int16(count-p.count)))
		if moved > 0 {
			d = min(d, max(el*time.Duration(ring/2)/time.Duration(moved), minReadGap))
		}
	}
	p.at, p.ack, p.count = now, ack, count
	return d
}

// confirmations reads Count and the confirmation slots from the last one
// processed on: at least up to trigger (a Count notified or read) and
// guess slots past the last one (what the previous round found), plus
// chaseMargin. One read takes Count and the slots together, and the range
// up to the Count read is processed, so a notification's age never turns
// into overwritten slots. More than a ring's worth moved: the oldest were
// overwritten unread and are reported missed; so is a slot whose Num shows
// it was overwritten before the read.
//
// It reads again at once, up to chaseReads times, while Count moved past
// what the read covered or by a quarter of the ring or more: confirmations come
// fast and the next ones are right behind. It returns how many
// confirmations Count moved by in all.
func (l *Link) confirmations(c *conn, trigger uint16, guess int) (int, error) {
	ring := len(c.nodes.confirm)
	total := 0
	for range chaseReads {
		l.mu.Lock()
		last := l.core.ConfirmCount()
		l.mu.Unlock()
		ahead := max(0, int(int16(trigger-last)))
		n := min(ring, max(ahead, guess)+chaseMargin)
		count, err := l.readConfirmations(c, last+1, n)
		if err != nil {
			return total, err
		}
		moved := int(uint16(count - last))
		if moved >= 0x8000 {
			moved = 0 // went back: the core followed it
		}
		total += moved
		if moved <= n && moved < ring/4 {
			return total, nil
		}
		trigger, guess = count, moved
	}
	return total, nil
}

// chaseReads bounds the reads of one round; chaseMargin is how many slots
// past the expected Count a read takes.
const (
	chaseReads  = 8
	chaseMargin = 4
)

// readConfirmations does one read of Count, the n slots of NUM first on,
// ACK_SEQ and BOOT_ID; it applies ACK_SEQ if it is newer than the one
// applied, processes the confirmations it covers up to that Count, and
// returns the Count read. A read that shows another BOOT_ID than the
// subscription's is left alone (it returns first-1): the cold restart is
// the subscription's to bring.
func (l *Link) readConfirmations(c *conn, first uint16, n int) (uint16, error) {
	last := first - 1
	req := c.nodes.confirmReadRequest(first, n)
	ctx, cancel := context.WithTimeout(c.ctx, l.cfg.Timeout)
	res, err := c.cl.Read(ctx, req)
	cancel()
	if err == nil {
		err = readResults(req, res)
	}
	if err != nil {
		return 0, fmt.Errorf("read confirmations after %d: %w", last, err)
	}
	count, err := u16(req.NodesToRead[0].NodeID, res.Results[0])
	if err != nil {
		return 0, fmt.Errorf("read confirmations: %w", err)
	}
	// slots[j] holds what was read from slot j (Read marks the ones this
	// read covered); the core takes them in NUM order up to the Count read
	// and leaves the rest for the next read.
	ring := len(c.nodes.confirm)
	slots := make([]hostif.Slot, ring)
	var errs []error
	for i := range n {
		r := res.Results[1+4*i : 5+4*i]
		ids := req.NodesToRead[1+4*i : 5+4*i]
		var s hostif.Slot
		var e1, e2, e3, e4, e5 error
		var again uint16
		s.Num, e1 = u16(ids[0].NodeID, r[0])
		s.TID, e2 = u32(ids[1].NodeID, r[1])
		s.Chute, e3 = u16(ids[2].NodeID, r[2])
		s.Result, e4 = u16(ids[3].NodeID, r[3])
		again, e5 = u16(req.NodesToRead[1+4*n+i].NodeID, res.Results[1+4*n+i])
		errs = append(errs, e1, e2, e3, e4, e5)
		// Overwritten while read: its fields may mix two confirmations.
		s.Torn = again != s.Num
		s.Read = true
		slots[int(first+uint16(i))%ring] = s
	}
	ack, e1 := u16(req.NodesToRead[1+5*n].NodeID, res.Results[1+5*n])
	boot, e2 := u16(req.NodesToRead[2+5*n].NodeID, res.Results[2+5*n])
	errs = append(errs, e1, e2)
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("read confirmations: %w", err)
	}
	l.log.Debug().Uint16("first", first).Int("slots", n).Uint16("count", count).Uint16("ack_seq", ack).Msg("confirmations read")
	var missed int
	var rep hostif.BlockReport
	var rangeErr, blockErr error
	skipped := false
	l.do(func(now time.Time, evs *[]devices.Event) {
		if boot != l.blk.BootID || boot != l.core.BootID() {
			skipped = true
			return
		}
		if s := &l.sess; int16(ack-s.ackNewest) > 0 {
			s.ackNewest = ack
			l.blk.AckSeq = ack
			rep, blockErr = l.core.Block(&l.blk, now, evs)
		}
		missed, rangeErr = l.core.Confirms(count, slots, now, evs)
	})
	if skipped {
		return last, nil
	}
	l.logBlock(rep, blockErr)
	if blockErr == nil {
		l.signal() // ring slots freed
	}
	if rangeErr != nil {
		l.log.Error().Err(rangeErr).Msg("following the plc")
	}
	if missed > 0 {
		if ok, sup := l.rate.Allow("missed", time.Now()); ok {
			l.log.Warn().Int("missed", missed).Uint16("confirm_count", count).Int("suppressed", sup).Msg("confirmations overwritten unread")
		}
	}
	return count, nil
}

// watchdog watches one connection: gopcua's channel state, the
// subscription's liveness, and the up/not-up transitions for the log. It
// reports whether the link was up at some point.
//
// gopcua v0.8.0 does not hand keep-alives to the notification channel, so
// silence is ambiguous: nothing changed, or the subscription died. When no
// notification came for StaleAfter the watchdog reads the monitored nodes
// itself: the same values mean a quiet PLC (the link stays up); values the
// subscription never published make the link not up at once, and dead
// (reconnect) when they stay unpublished until DeadAfter.
func (l *Link) watchdog(c *conn) (wasUp bool) {
	t := time.NewTicker(watchdogTick(l.cfg))
	defer t.Stop()
	var lastState devices.LinkState = devices.LinkSyncing
	upOnce := false
	for {
		select {
		case <-c.ctx.Done():
			return wasUp
		case <-t.C:
		}
		if st := c.cl.State(); st != opcua.Connected {
			c.fail(fmt.Errorf("gopcua state %s: %w", st, ErrDisconnected))
			return wasUp
		}
		now := time.Now()
		l.mu.Lock()
		st, why := l.stateLocked(now)
		reason := ""
		if why != nil {
			reason = why.Error()
		}
		s := l.sess
		if st == devices.LinkUp {
			l.wasUp = true
			l.lastErr = ""
		}
		l.mu.Unlock()
		if st != lastState {
			// A link flapping between up and not up (a loaded server)
			// logs each reason at most once per second.
			switch {
			case st == devices.LinkUp:
				wasUp, upOnce = true, true
				if ok, n := l.rate.Allow("up", now); ok {
					l.log.Info().Int("suppressed", n).Msg("plc link up")
				}
			case !upOnce && (errors.Is(why, hostif.ErrHostLost) || errors.Is(why, hostif.ErrNotReady)):
				// The power-on FAULT_CODE 1 (host lost until the PLC sees
				// our heartbeat) and the wait for the subscription are part
				// of every normal start.
				l.log.Info().Str("reason", reason).Msg("plc link not up yet")
			default:
				if ok, n := l.rate.Allow("not up:"+reason, now); ok {
					l.log.Warn().Str("reason", reason).Int("suppressed", n).Msg("plc link not up")
				}
			}
			lastState = st
		}
		if l.blocked.Load() || now.Sub(latest(latest(s.lastNotif, s.lastProbeOK), time.Unix(0, l.unblocked.Load()))) < l.cfg.StaleAfter {
			continue
		}
		if err := l.probe(c, s); err != nil {
			c.fail(err)
			return wasUp
		}
	}
}

// watchdogTick is how often the watchdog looks; a probe after StaleAfter
// repeats at this pace.
func watchdogTick(c Config) time.Duration { return min(50*time.Millisecond, c.StaleAfter/4) }

// probe reads the monitored values and compares them with what the
// subscription last published.
func (l *Link) probe(c *conn, before sessionState) error {
	v, err := l.readPLC(c.ctx, c)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.sess
	if s.lastNotif != before.lastNotif || l.blocked.Load() {
		return nil // a notification came meanwhile, or the gateway is slow
	}
	p := &l.blk
	same := v.heartbeat == p.Heartbeat && v.ack == s.ackSeq && v.count == s.count && v.fault == p.FaultCode && v.boot == p.BootID
	if !s.subscribed && now.Sub(s.connectedAt) > l.cfg.StaleAfter+l.cfg.Timeout {
		return fmt.Errorf("no notification %s after subscribing: %w", now.Sub(s.connectedAt).Round(time.Millisecond), ErrSubscriptionDead)
	}
	if same || !s.subscribed {
		if same {
			s.lastProbeOK = now
		}
		s.mismatchSince = time.Time{}
		return nil
	}
	if s.mismatchSince.IsZero() {
		s.mismatchSince = now
		return nil
	}
	if now.Sub(s.mismatchSince) >= l.cfg.DeadAfter-l.cfg.StaleAfter {
		return fmt.Errorf("plc values changed %s ago and were never published (heartbeat %d/%d, ack %d/%d, count %d/%d): %w",
			now.Sub(s.mismatchSince).Round(time.Millisecond), v.heartbeat, p.Heartbeat, v.ack, s.ackSeq, v.count, s.count, ErrSubscriptionDead)
	}
	return nil
}
