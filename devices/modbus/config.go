package modbus

import (
	"errors"
	"fmt"
	"net"
	"time"

	"sortgw/devices"
)

// Word orders for 32-bit values (TID) split over two registers.
const (
	WordOrderHighFirst = "high-first"
	WordOrderLowFirst  = "low-first"

	// SlotWriteOneRequest writes a divert slot's five registers with one
	// function-16 request, as the interface says.
	SlotWriteOneRequest = "one-request"
	// SlotWriteSeqLast writes TID_HI..REASON with one function-16 request
	// and then SEQ alone with a second: for PLCs whose Modbus server
	// applies a request register by register while the program scans, so
	// that SEQ (the slot's first register) never lands before the command
	// it announces.
	SlotWriteSeqLast = "seq-last"
)

// MinPoll is the floor of Poll and FastPoll: the link reads the PLC block
// at most once per MinPoll on average, so a PLC's Modbus server, which
// serves a request every few ms fine, is not hammered (a read that came
// due during a long one follows it at once, and the one immediate re-read
// after a large CONFIRM_COUNT jump aside).
const MinPoll = time.Millisecond

// DefaultFastPoll is FastPoll's default: at least two reads per 5ms scan
// cycle, so each scan's confirmations are read before the next scan's
// (at 1,000 items/s about 5 a scan, far from the ring's 16), for about
// 500 requests/s on a busy line. BenchmarkLinkRate compares 5, 2 and 1ms
// with the fixed poll.
const DefaultFastPoll = 2 * time.Millisecond

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid modbus link config")

// Config configures one Modbus TCP link to a sorter PLC. Every address is a
// default from the contract's default map, not a constant: real sites move
// the blocks. A zero field takes its default in Validate; UnitID 0
// therefore means 1 (a site that needs unit id 0 is not served by this
// link).
type Config struct {
	// Name identifies the PLC in logs and on the status page.
	Name string `yaml:"name"`
	// Addr is the PLC's "host:port".
	Addr string `yaml:"addr"`
	// UnitID is the Modbus unit id the link addresses (default 1).
	UnitID byte `yaml:"unit_id"`
	// HostBase is the first register of the host block (HOST_HEARTBEAT,
	// HOST_STATE, PLAN_VERSION); default 0.
	HostBase uint16 `yaml:"host_base"`
	// DivertBase is the first register of the divert ring (default 10).
	DivertBase uint16 `yaml:"divert_base"`
	// PLCBase is the first register of the PLC block (default 100).
	PLCBase uint16 `yaml:"plc_base"`
	// Ring is the number of divert slots (default 16). It must be a power
	// of two so that slot = seq mod Ring stays contiguous when the uint16
	// sequence number wraps 65535 -> 0.
	Ring int `yaml:"ring"`
	// ConfirmRing is the number of confirmation slots (default Ring). Same
	// power-of-two rule.
	ConfirmRing int `yaml:"confirm_ring"`
	// Chutes is the sorter's chute count N (default 256, at most 2048). It
	// sizes the CHUTE_FULL and CHUTE_DISABLED blocks: max(N,256)/16 words
	// each (rounded up), so every map of up to 256 chutes is the default
	// map. Commands for a chute above Chutes are refused by Send. Not a
	// key of its own in a site file: the line's chutes sets it.
	Chutes int `yaml:"-"`
	// WordOrder of TID_HI/TID_LO: "high-first" (default) or "low-first".
	WordOrder string `yaml:"word_order"`
	// Poll is the interval between reads of the PLC block while the link
	// is idle (default 10ms, at least MinPoll). Confirmations are lost
	// unless the interval between two reads x confirmation rate <
	// ConfirmRing.
	Poll time.Duration `yaml:"poll"`
	// FastPoll is the interval between reads of the PLC block while the
	// link has work: a command queued, written and not yet taken, or taken
	// with its confirmation still due (default 2ms, or Poll if that is
	// shorter; MinPoll..Poll; equal to Poll: one interval). A read that
	// finds CONFIRM_COUNT moved by half the confirmation ring or more is
	// followed at once by one more read. See docs/plc-interface.md.
	FastPoll time.Duration `yaml:"fast_poll"`
	// Heartbeat is the interval of HOST_HEARTBEAT writes (default 100ms).
	Heartbeat time.Duration `yaml:"heartbeat"`
	// Timeout bounds a dial and every request (default 250ms). It also
	// bounds how long Run takes to return after its ctx is done.
	Timeout time.Duration `yaml:"timeout"`
	// PLCWatchdog: PLC_HEARTBEAT unchanged this long makes the link
	// LinkSyncing: commands wait (default 1s).
	PLCWatchdog time.Duration `yaml:"plc_watchdog"`
	// BackoffMin and BackoffMax bound the redial back-off (defaults 100ms
	// and 2s). The first retry comes within BackoffMin; each later one
	// doubles, with jitter, up to BackoffMax.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// QueueSize bounds the commands waiting for a ring slot (default 1024).
	QueueSize int `yaml:"queue_size"`
	// EventBuffer is the capacity of the Events channel (default 4096).
	EventBuffer int `yaml:"event_buffer"`
	// BusyRetries is how often a request answered with exception 06
	// (busy), 0A or 0B is repeated on the same connection before it counts
	// as failed (default 3; negative: none); BusyDelay is the pause before
	// each repeat (default 2ms). No exception ends the connection.
	BusyRetries int           `yaml:"busy_retries"`
	BusyDelay   time.Duration `yaml:"busy_delay"`
	// Connections is 2 (default: one connection for divert writes, one for
	// polling and the heartbeat, so a command never waits behind a poll)
	// or 1 (for PLCs that accept a single client; a command may then wait
	// for one poll round trip).
	Connections int `yaml:"connections"`
	// MaxUnconfirmed bounds the commands remembered while waiting for
	// their confirmation (default 65536); beyond it the oldest is
	// forgotten (its confirmation still arrives as an event).
	MaxUnconfirmed int `yaml:"max_unconfirmed"`
	// SlotWrite is how a divert slot is written: "one-request" (default,
	// the interface's one function-16 request of all five registers) or
	// "seq-last" (the command's four registers, then SEQ in a second
	// request) for a PLC that does not apply a request as a whole. See
	// docs/plc-interface.md.
	SlotWrite string `yaml:"slot_write"`
	// SecondHostHold: evidence that another host writes this PLC's host
	// registers holds commands until there has been none for this long
	// (default 5s). See docs/plc-interface.md.
	SecondHostHold time.Duration `yaml:"second_host_hold"`
}

// Validate fills in defaults and checks the whole configuration, including
// that the host block, the divert ring and the PLC block neither overlap
// nor run past register 65535.
func (c *Config) Validate() error {
	if c.Name == "" {
		c.Name = "plc"
	}
	if c.Addr == "" {
		return fmt.Errorf("%w: plc %q: addr is empty", ErrInvalidConfig, c.Name)
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || !devices.ValidPort(port) {
		return fmt.Errorf("%w: plc %q: addr %q: want host:port with a port in 1..65535 (Modbus TCP is usually 502)", ErrInvalidConfig, c.Name, c.Addr)
	}
	if c.UnitID == 0 {
		c.UnitID = 1
	}
	if c.DivertBase == 0 {
		c.DivertBase = 10
	}
	if c.PLCBase == 0 {
		c.PLCBase = 100
	}
	if c.Ring == 0 {
		c.Ring = 16
	}
	if c.ConfirmRing == 0 {
		c.ConfirmRing = c.Ring
	}
	if c.Chutes == 0 {
		c.Chutes = 256
	}
	if c.WordOrder == "" {
		c.WordOrder = WordOrderHighFirst
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.Poll, 10*time.Millisecond)
	setDur(&c.FastPoll, min(DefaultFastPoll, c.Poll))
	setDur(&c.Heartbeat, 100*time.Millisecond)
	setDur(&c.Timeout, 250*time.Millisecond)
	setDur(&c.PLCWatchdog, time.Second)
	setDur(&c.BackoffMin, 100*time.Millisecond)
	setDur(&c.BackoffMax, 2*time.Second)
	setDur(&c.BusyDelay, 2*time.Millisecond)
	setDur(&c.SecondHostHold, 5*time.Second)
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = 4096
	}
	if c.BusyRetries == 0 {
		c.BusyRetries = 3
	}
	if c.Connections == 0 {
		c.Connections = 2
	}
	if c.MaxUnconfirmed == 0 {
		c.MaxUnconfirmed = 1 << 16
	}
	if c.SlotWrite == "" {
		c.SlotWrite = SlotWriteOneRequest
	}

	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: plc %q: %s", ErrInvalidConfig, c.Name, fmt.Sprintf(format, a...))
	}
	if c.SlotWrite != SlotWriteOneRequest && c.SlotWrite != SlotWriteSeqLast {
		return bad("slot_write %q: want %q or %q", c.SlotWrite, SlotWriteOneRequest, SlotWriteSeqLast)
	}
	if !powerOfTwo(c.Ring) || c.Ring < 2 || c.Ring > 1024 {
		return bad("ring %d: want a power of two in 2..1024", c.Ring)
	}
	if !powerOfTwo(c.ConfirmRing) || c.ConfirmRing < 2 || c.ConfirmRing > 1024 {
		return bad("confirm ring %d: want a power of two in 2..1024", c.ConfirmRing)
	}
	if c.Chutes < 1 || c.Chutes > devices.MaxChutes {
		return bad("chutes %d: want 1..%d", c.Chutes, devices.MaxChutes)
	}
	if c.WordOrder != WordOrderHighFirst && c.WordOrder != WordOrderLowFirst {
		return bad("word order %q: want %q or %q", c.WordOrder, WordOrderHighFirst, WordOrderLowFirst)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"poll", c.Poll}, {"fast poll", c.FastPoll}, {"heartbeat", c.Heartbeat}, {"timeout", c.Timeout}, {"plc watchdog", c.PLCWatchdog},
		{"backoff min", c.BackoffMin}, {"backoff max", c.BackoffMax}, {"busy delay", c.BusyDelay},
		{"second host hold", c.SecondHostHold}} {
		if d.v < 0 {
			return bad("%s %v is negative", d.name, d.v)
		}
	}
	if c.Poll < MinPoll {
		return bad("poll %v: want at least %v", c.Poll, MinPoll)
	}
	if c.FastPoll < MinPoll || c.FastPoll > c.Poll {
		return bad("fast poll %v: want %v..poll (%v)", c.FastPoll, MinPoll, c.Poll)
	}
	if c.BackoffMax < c.BackoffMin {
		return bad("backoff max %v below backoff min %v", c.BackoffMax, c.BackoffMin)
	}
	if c.Heartbeat >= time.Second {
		// The PLC declares the host lost after 1 s without a change.
		return bad("heartbeat %v: must be well under the PLC's 1s host watchdog", c.Heartbeat)
	}
	if c.PLCWatchdog <= c.Poll {
		return bad("plc watchdog %v must exceed poll %v", c.PLCWatchdog, c.Poll)
	}
	if c.QueueSize < 1 || c.EventBuffer < 1 || c.MaxUnconfirmed < 1 {
		return bad("queue size, event buffer and max unconfirmed must be positive")
	}
	if c.Connections != 1 && c.Connections != 2 {
		return bad("connections %d: want 1 or 2", c.Connections)
	}
	return newLayout(c).check()
}

func powerOfTwo(n int) bool { return n > 0 && n&(n-1) == 0 }
