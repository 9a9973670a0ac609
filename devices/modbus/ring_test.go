package modbus

import (
	"testing"
	"time"

	"sortgw/devices"
)

func packed(words []uint16, chutes int) devices.ChuteBits {
	var cb devices.ChuteBits
	packBits(&cb, words, chutes)
	return cb
}

func TestCanWrite(t *testing.T) {
	cases := []struct {
		seq, ack uint16
		ring     int
		want     bool
	}{
		{1, 0, 16, true},
		{15, 0, 16, true},  // 15 outstanding is the most
		{16, 0, 16, false}, // would be the 16th
		{17, 0, 16, false},
		{5, 65530, 16, true},   // (5 - 65530) mod 65536 = 11
		{9, 65530, 16, true},   // 15
		{10, 65530, 16, false}, // 16
		{0, 65535, 16, true},   // the wrap itself
		{65535, 65535, 16, true},
		{3, 0, 4, true},
		{4, 0, 4, false},
	}
	for _, tc := range cases {
		if got := canWrite(tc.seq, tc.ack, tc.ring); got != tc.want {
			t.Errorf("canWrite(seq %d, ack %d, ring %d) = %v, want %v", tc.seq, tc.ack, tc.ring, got, tc.want)
		}
	}
}

func TestAckWindowAndPassed(t *testing.T) {
	cases := []struct {
		name              string
		newAck, ack, next uint16
		in                bool
	}{
		{"unchanged", 5, 5, 6, true},
		{"all taken", 10, 5, 11, true},
		{"some taken", 7, 5, 11, true},
		{"beyond what was written", 11, 5, 11, false},
		{"backwards", 4, 5, 11, false},
		{"across the wrap", 2, 65530, 5, true},
		{"across the wrap, beyond", 5, 65530, 5, false},
	}
	for _, tc := range cases {
		if got := ackInWindow(tc.newAck, tc.ack, tc.next); got != tc.in {
			t.Errorf("%s: ackInWindow(%d, %d, %d) = %v, want %v", tc.name, tc.newAck, tc.ack, tc.next, got, tc.in)
		}
	}
	passedCases := []struct {
		seq, ack, newAck uint16
		want             bool
	}{
		{6, 5, 7, true},
		{7, 5, 7, true},
		{8, 5, 7, false},
		{65535, 65530, 2, true},
		{0, 65530, 2, true},
		{2, 65530, 2, true},
		{3, 65530, 2, false},
		{5, 5, 7, false}, // the old ACK itself was taken before
	}
	for _, tc := range passedCases {
		if got := passed(tc.seq, tc.ack, tc.newAck); got != tc.want {
			t.Errorf("passed(seq %d, ack %d -> %d) = %v, want %v", tc.seq, tc.ack, tc.newAck, got, tc.want)
		}
	}
}

func TestCmdQueue(t *testing.T) {
	q := newCmdQueue(3)
	now := time.Now()
	cmd := func(tid uint32, dl time.Duration) queued {
		c := devices.Command{TID: tid}
		if dl != 0 {
			c.Deadline = now.Add(dl)
		}
		return queued{cmd: c, at: now}
	}
	for _, c := range []queued{cmd(1, -time.Second), cmd(2, 0), cmd(3, time.Second)} {
		if !q.push(c) {
			t.Fatal("push refused below capacity")
		}
	}
	if q.push(cmd(4, 0)) {
		t.Fatal("push accepted beyond capacity")
	}
	var late []uint32
	earliest := q.expire(now, func(c queued) { late = append(late, c.cmd.TID) })
	if len(late) != 1 || late[0] != 1 {
		t.Fatalf("late %v, want [1]", late)
	}
	if !earliest.Equal(now.Add(time.Second)) {
		t.Fatalf("earliest %v, want now+1s", earliest)
	}
	if !q.push(cmd(5, 0)) || q.len() != 3 {
		t.Fatalf("queue len %d after push, want 3", q.len())
	}
	var order []uint32
	for {
		c, ok := q.pop()
		if !ok {
			break
		}
		order = append(order, c.cmd.TID)
	}
	want := []uint32{2, 3, 5}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

func TestPending(t *testing.T) {
	p := newPending()
	mk := func(tid uint32, seq uint16) *entry { return &entry{cmd: devices.Command{TID: tid}, seq: seq} }
	a, b, c, d := mk(7, 1), mk(8, 2), mk(7, 3), mk(9, 4)
	for _, e := range []*entry{a, b, c, d} {
		p.add(e)
	}
	if p.n != 4 {
		t.Fatalf("n %d", p.n)
	}
	// Neither TID-7 command taken: the oldest is matched.
	if got := p.oldestFor(7); got != a {
		t.Fatalf("oldest for 7 = seq %d, want 1", got.seq)
	}
	// Only the newer one taken: a confirmation belongs to a taken command.
	c.taken = true
	if got := p.oldestFor(7); got != c {
		t.Fatalf("oldest taken for 7 = seq %d, want 3", got.seq)
	}
	p.remove(c)
	if got := p.oldestFor(7); got != a {
		t.Fatalf("after remove: seq %d, want 1", got.seq)
	}
	p.remove(a)
	if p.oldestFor(7) != nil {
		t.Fatal("tid 7 still pending")
	}
	if _, ok := p.byTID[7]; ok {
		t.Fatal("tid 7 left in the index")
	}
	var order []uint16
	for e := p.head; e != nil; e = e.next {
		order = append(order, e.seq)
	}
	if len(order) != 2 || order[0] != 2 || order[1] != 4 || p.n != 2 || p.tail != d {
		t.Fatalf("order %v n %d", order, p.n)
	}
}

func TestErrLog(t *testing.T) {
	e := errLog{every: time.Second}
	t0 := time.Now()
	steps := []struct {
		at         time.Duration
		msg        string
		ok         bool
		suppressed int
	}{
		{0, "dial: refused", true, 0},
		{100 * time.Millisecond, "dial: refused", false, 0},
		{900 * time.Millisecond, "dial: refused", false, 0},
		{1100 * time.Millisecond, "dial: refused", true, 2},
		{1200 * time.Millisecond, "read: timeout", true, 0},
		{1300 * time.Millisecond, "dial: refused", true, 0},
	}
	for i, s := range steps {
		ok, n := e.allow(t0.Add(s.at), s.msg)
		if ok != s.ok || n != s.suppressed {
			t.Errorf("step %d (%s at %v): allow = %v, %d; want %v, %d", i, s.msg, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}
