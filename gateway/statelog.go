package gateway

import (
	"fmt"
	"math/bits"
	"time"

	"sortgw/devices"
	"sortgw/gateway/journal"
)

// Bounds on link-state and chute-state records. A link that flaps or a
// chute whose sensor chatters must not flood the journal: changes that
// come too fast are coalesced into the next record, whose Count says how
// many changes it stands for (1 when none were coalesced).
const (
	// linkBurst link-state records may come at once; then one per
	// linkEvery.
	linkBurst = 8
	linkEvery = 10 * time.Second
	// chuteBurst chute-state records may come at once per line (a whole
	// sorter reporting its full chutes at start); then chuteRate a second.
	chuteBurst = 64
	chuteRate  = 20
	// chuteEvery is the least time between two records of the same bit
	// of the same chute, so that one chattering chute cannot take the
	// line's whole budget.
	chuteEvery = time.Second
)

// bucket is a token bucket: burst records at once, then one per every.
type bucket struct {
	tokens float64
	last   time.Time
	burst  float64
	every  time.Duration
}

func newBucket(burst int, every time.Duration) bucket {
	return bucket{tokens: float64(burst), burst: float64(burst), every: every}
}

func (b *bucket) allow(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+float64(now.Sub(b.last))/float64(b.every))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Chute bits the journal follows.
const (
	bitFull = iota
	bitDisabled
	nBits
)

var bitNames = [nBits]string{"full", "disabled"}

// stateJournal turns the PLC link's status, sampled on every status tick,
// into link-state and chute-state records. Owned by the line's loop.
//
// A record's Count is the number of changes it stands for: those seen
// since the previous record of the same link or chute bit (1 normally;
// more when changes came faster than the bounds let records through, and
// then the record may even name the state of the previous one: the link
// or chute went and came back).
type stateJournal struct {
	link        devices.LinkState // as last journaled
	linkSeen    devices.LinkState // at the previous tick
	linkChanges uint32            // changes seen since the last link-state record
	linkBudget  bucket

	seen    [nBits]devices.ChuteBits // at the previous tick (link up)
	pending [nBits]devices.ChuteBits // changed since its last record
	changes [nBits][]uint32          // per chute: changes since its last record
	lastAt  [nBits][]time.Time       // per chute: its last record
	budget  bucket
}

func newStateJournal(chutes int) *stateJournal {
	s := &stateJournal{link: devices.LinkDown, linkSeen: devices.LinkDown,
		linkBudget: newBucket(linkBurst, linkEvery), budget: newBucket(chuteBurst, time.Second/chuteRate)}
	for b := range nBits {
		s.changes[b] = make([]uint32, chutes+1)
		s.lastAt[b] = make([]time.Time, chutes+1)
	}
	return s
}

// observeStatus journals what changed in st since the last tick, as far
// as the bounds allow; what they hold back is journaled, coalesced, on a
// later tick.
func (l *Line) observeStatus(st *devices.PLCStatus, now time.Time) {
	s := l.states
	if st.State != s.linkSeen {
		s.linkChanges++
		s.linkSeen = st.State
	}
	if s.linkChanges > 0 && s.linkBudget.allow(now) {
		cause := ""
		if st.State != devices.LinkUp {
			cause = st.LastError
		}
		l.append(journal.Record{Time: now, Line: l.cfg.Name, Kind: journal.KindLinkState,
			Detail: fmt.Sprintf("plc %s: %s -> %s", st.Name, s.link, st.State), Cause: cause,
			Count: s.linkChanges})
		s.link, s.linkChanges = st.State, 0
	}
	// The PLC's chute bits mean something only while the link is up; what
	// changed during an outage shows as a change when it is back.
	if st.State != devices.LinkUp {
		return
	}
	for b, cur := range [nBits]*devices.ChuteBits{&st.Full, &st.Disabled} {
		for w := range cur {
			for x := cur[w] ^ s.seen[b][w]; x != 0; x &= x - 1 {
				i := bits.TrailingZeros64(x)
				if n := w*64 + i + 1; n <= l.cfg.Chutes {
					s.changes[b][n]++
					s.pending[b][w] |= 1 << i
				}
			}
			s.seen[b][w] = cur[w]
			for x := s.pending[b][w]; x != 0; x &= x - 1 {
				i := bits.TrailingZeros64(x)
				n := w*64 + i + 1
				if now.Sub(s.lastAt[b][n]) < chuteEvery || !s.budget.allow(now) {
					continue
				}
				onOff := " off"
				if cur[w]&(1<<i) != 0 {
					onOff = " on"
				}
				l.append(journal.Record{Time: now, Line: l.cfg.Name, Kind: journal.KindChuteState, Chute: uint16(n),
					Detail: bitNames[b] + onOff, Cause: "plc", Count: s.changes[b][n]})
				s.pending[b][w] &^= 1 << i
				s.changes[b][n], s.lastAt[b][n] = 0, now
			}
		}
	}
}
