package opcua

import (
	"testing"
	"time"

	"sortgw/devices"
)

// checkWire checks the divert writes the server received: each is one
// WriteRequest of exactly its slot's four nodes, Seq last, for the command
// of that Seq (TID base + (seq - first)); on each connection the Seqs go
// up (the ring in order, rewrites of the oldest first); every Seq of
// first .. first+n-1 was written.
func checkWire(t *testing.T, writes []tapWrite, first uint16, n int, base uint32) {
	t.Helper()
	last := map[int]uint16{}
	written := map[uint16]bool{}
	for i, w := range writes {
		if !w.conforming(DefaultNodePrefix) {
			t.Fatalf("write %d not as the contract asks: %+v", i, w)
		}
		d := int(uint16(w.seq - first))
		if d >= n || w.tid != base+uint32(d) {
			t.Fatalf("write %d: seq %d tid %d, want tid %d", i, w.seq, w.tid, base+uint32(d))
		}
		if prev, ok := last[w.conn]; ok && int16(w.seq-prev) <= 0 {
			t.Fatalf("write %d on connection %d: seq %d after seq %d", i, w.conn, w.seq, prev)
		}
		last[w.conn] = w.seq
		written[w.seq] = true
	}
	for i := range n {
		if !written[first+uint16(i)] {
			t.Fatalf("seq %d never written", first+uint16(i))
		}
	}
}

// checkTakenOnce checks that the PLC took every command once, in Seq
// order (EventTaken), and that none was lost.
func checkTakenOnce(t *testing.T, evs []devices.Event, first uint16, n int, base uint32) {
	t.Helper()
	taken := 0
	for _, e := range evs {
		switch e.Kind {
		case devices.EventTaken:
			if want := first + uint16(taken); e.Seq != want || e.TID != base+uint32(taken) {
				t.Fatalf("taken #%d: seq %d tid %d, want seq %d tid %d", taken, e.Seq, e.TID, want, base+uint32(taken))
			}
			taken++
		case devices.EventLost, devices.EventLate:
			t.Fatalf("unexpected %+v", e)
		}
	}
	if taken != n {
		t.Fatalf("%d taken, want %d", taken, n)
	}
}

// TestLinkPipelinedRingOrder: with several WriteRequests in flight the
// server still receives the ring in order, each command as one request of
// its slot's four nodes with Seq last, and the writes do overlap.
func TestLinkPipelinedRingOrder(t *testing.T) {
	sim := sharedSim(t)
	tp, ep := startTap(t, sim.endpoint)
	tl := startLink(t, Config{Endpoint: ep})
	tl.waitUp(t)
	first := tl.Status().NextSeq
	taken0 := sim.PLC().CommandsTaken()
	const n, base = 300, 20_000
	for i := range n {
		if err := tl.Send(t.Context(), devices.Command{TID: base + uint32(i), Chute: uint16(i%200 + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "every command taken", func() bool { return tl.rec.count(devices.EventTaken) == n })
	writes, maxOut := tp.snapshot()
	checkWire(t, writes, first, n, base)
	checkTakenOnce(t, tl.rec.snapshot(), first, n, base)
	if got := sim.PLC().CommandsTaken() - taken0; got != n {
		t.Fatalf("plc took %d commands, want %d", got, n)
	}
	t.Logf("%d divert writes, at most %d out at once", len(writes), maxOut)
	if maxOut < 2 || maxOut > DefaultMaxInFlight {
		t.Fatalf("at most %d divert writes out at once, want 2..%d", maxOut, DefaultMaxInFlight)
	}
}

// TestLinkWriteFailureMidPipeline: the server refuses one command's write
// while later ones are out on the same connection. The link reconnects,
// rewrites from the failed one on, in order, and the PLC takes every
// command exactly once, in order: no gap, no duplicate.
func TestLinkWriteFailureMidPipeline(t *testing.T) {
	sim := sharedSim(t)
	tp, ep := startTap(t, sim.endpoint)
	tl := startLink(t, Config{Endpoint: ep, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	tl.waitUp(t)
	first := tl.Status().NextSeq
	taken0 := sim.PLC().CommandsTaken()
	const n, base = 120, 30_000
	bad := first + 40
	tp.mu.Lock()
	tp.spoil = func(w *tapWrite) bool { return w.seq == bad }
	tp.mu.Unlock()
	// The tap holds the refused write's reply, and with it every later
	// message from the server on that connection, ACK_SEQ notifications
	// included, until a later write has gone out. So the link must have
	// ring room for later writes without a newer ACK_SEQ: the first 40
	// commands are taken (and the link knows it) before the burst that
	// starts with the refused one; otherwise, on a busy machine, the
	// ring could be full at that moment and nothing later could go out.
	send := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := tl.Send(t.Context(), devices.Command{TID: base + uint32(i), Chute: uint16(i%200 + 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 40)
	waitFor(t, 30*time.Second, "the first 40 commands taken", func() bool { return tl.rec.count(devices.EventTaken) == 40 })
	send(40, n)
	waitFor(t, 30*time.Second, "every command taken", func() bool { return tl.rec.count(devices.EventTaken) == n })
	waitFor(t, 30*time.Second, "every command confirmed", func() bool {
		return tl.rec.count(devices.EventConfirmed)+tl.rec.count(devices.EventMissed) >= n
	})
	writes, _ := tp.snapshot()
	checkWire(t, writes, first, n, base)
	evs := tl.rec.snapshot()
	checkTakenOnce(t, evs, first, n, base)
	if got := sim.PLC().CommandsTaken() - taken0; got != n {
		t.Fatalf("plc took %d commands, want %d", got, n)
	}
	confirmed := map[uint32]int{}
	for _, e := range evs {
		if e.Kind == devices.EventConfirmed {
			confirmed[e.TID]++
		}
	}
	for i := range n {
		if c := confirmed[base+uint32(i)]; c > 1 {
			t.Fatalf("tid %d confirmed %d times", base+i, c)
		}
	}
	// The failure came mid-pipeline: later seqs went out on the failing
	// connection after the refused write, and the refused one was
	// written again on a later connection.
	var spoiled *tapWrite
	later, again := false, false
	for i := range writes {
		w := &writes[i]
		switch {
		case w.spoiled:
			spoiled = w
		case spoiled != nil && w.conn == spoiled.conn && int16(w.seq-bad) > 0:
			later = true
		case spoiled != nil && w.conn > spoiled.conn && w.seq == bad:
			again = true
		}
	}
	if spoiled == nil || !later || !again {
		t.Fatalf("spoiled %v, later writes on its connection %v, rewritten %v", spoiled != nil, later, again)
	}
	if st := tl.Status(); st.Reconnects < 1 || st.Lost != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestLinkConfirmationsBetweenNotifications: confirmations at 25/s while
// the subscription publishes every second (the longest the 1 s keep-alive
// allows): 25 per notification, more than the ring of 16 holds. With
// the reader's timer off (reads on notifications and kicks only) 17 of
// 150 were lost; the reader's timed reads lose none (they tolerate a 640 ms
// stall of a loaded test machine; at 50/s a CI run under -race once
// stalled past the 320 ms that allowed).
func TestLinkConfirmationsBetweenNotifications(t *testing.T) {
	// Its own sim: the shared one may still be confirming another test's
	// commands, in bursts at the ring's ceiling.
	sim := startSim(t, simOpts{travel: time.Second})
	count0 := sim.PLC().Snapshot().ConfirmCount
	tl := startLink(t, Config{Endpoint: sim.endpoint, PublishInterval: time.Second})
	tl.waitUp(t)
	const n = 150
	tick := time.NewTicker(40 * time.Millisecond) // load shaping, not synchronisation
	defer tick.Stop()
	for i := range n {
		<-tick.C
		if err := tl.Send(t.Context(), devices.Command{TID: 40_000 + uint32(i), Chute: 1, Deadline: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "every confirmation accounted for", func() bool {
		return tl.rec.count(devices.EventConfirmed)+tl.rec.count(devices.EventMissed) >= n
	})
	if m := tl.rec.count(devices.EventMissed); m != 0 {
		t.Fatalf("%d of %d confirmations missed", m, n)
	}
	if got := sim.PLC().Snapshot().ConfirmCount - count0; got != n {
		t.Fatalf("plc confirmed %d, want %d", got, n)
	}
}
