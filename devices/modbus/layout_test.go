package modbus

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"sortgw/devices"
)

func validConfig(t *testing.T, mod func(*Config)) Config {
	t.Helper()
	c := Config{Name: "test", Addr: "127.0.0.1:502"}
	if mod != nil {
		mod(&c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	return c
}

func TestDefaultMap(t *testing.T) {
	c := validConfig(t, nil)
	l := newLayout(&c)
	// The contract's default map: PLC block 100..218, 119 registers, one read.
	if got, want := int(l.plcBase), 100; got != want {
		t.Errorf("plc base %d, want %d", got, want)
	}
	if l.blockLen != 119 {
		t.Errorf("block len %d, want 119", l.blockLen)
	}
	checks := []struct {
		name string
		got  int
		want int
	}{
		{"CHUTE_FULL", int(l.plcBase) + offFull, 106},
		{"CHUTE_DISABLED", int(l.plcBase) + l.offDisabled, 122},
		{"CONFIRM[0]", int(l.plcBase) + l.offConfirm, 138},
		{"BOOT_ID", int(l.plcBase) + l.offBootID, 218},
		{"DIVERT[0]", int(l.slotAddr(0)), 10},
		{"DIVERT[1]", int(l.slotAddr(1)), 15},
		{"DIVERT[15]", int(l.slotAddr(15)), 85},
		{"seq 16 -> DIVERT[0]", int(l.slotAddr(16)), 10},
		{"seq 65535 -> DIVERT[15]", int(l.slotAddr(65535)), 85},
		{"seq 0 -> DIVERT[0]", int(l.slotAddr(0)), 10},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s at %d, want %d", c.name, c.got, c.want)
		}
	}
	if sp := l.readSpans(); len(sp) != 1 || sp[0] != (span{addr: 100, count: 119}) {
		t.Errorf("read spans %+v, want one read of 119 at 100", sp)
	}
}

func TestLargerMaps(t *testing.T) {
	cases := []struct {
		name     string
		chutes   int
		bitWords int
		bootID   int // absolute address
		spans    []span
	}{
		{"8 chutes keep the default map", 8, 16, 218, []span{{100, 119, 0}}},
		{"256 chutes", 256, 16, 218, []span{{100, 119, 0}}},
		{"257 chutes", 257, 17, 220, []span{{100, 121, 0}}},
		{"300 chutes", 300, 19, 224, []span{{100, 125, 0}}},
		{"301 chutes", 301, 19, 224, []span{{100, 125, 0}}},
		{"320 chutes", 320, 20, 226, []span{{100, 125, 0}, {225, 2, 125}}},
		{"2048 chutes", 2048, 128, 442, []span{{100, 125, 0}, {225, 125, 125}, {350, 93, 250}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t, func(c *Config) { c.Chutes = tc.chutes })
			l := newLayout(&c)
			if l.bitWords != tc.bitWords {
				t.Errorf("bit words %d, want %d", l.bitWords, tc.bitWords)
			}
			if got := int(l.plcBase) + l.offBootID; got != tc.bootID {
				t.Errorf("BOOT_ID at %d, want %d", got, tc.bootID)
			}
			if got := int(l.plcBase) + l.offDisabled; got != 106+tc.bitWords {
				t.Errorf("CHUTE_DISABLED at %d, want %d", got, 106+tc.bitWords)
			}
			if got := l.readSpans(); !reflect.DeepEqual(got, tc.spans) {
				t.Errorf("read spans %+v, want %+v", got, tc.spans)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		name  string
		addr  uint16
		n     int
		limit int
		want  []span
	}{
		{"one register", 0, 1, maxWriteRegs, []span{{0, 1, 0}}},
		{"exactly 123", 10, 123, maxWriteRegs, []span{{10, 123, 0}}},
		{"124 writes", 10, 124, maxWriteRegs, []span{{10, 123, 0}, {133, 1, 123}}},
		{"exactly 125 reads", 100, 125, maxReadRegs, []span{{100, 125, 0}}},
		{"251 reads", 100, 251, maxReadRegs, []span{{100, 125, 0}, {225, 125, 125}, {350, 1, 250}}},
		{"nothing", 0, 0, maxReadRegs, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := split(tc.addr, tc.n, tc.limit); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("split(%d, %d, %d) = %+v, want %+v", tc.addr, tc.n, tc.limit, got, tc.want)
			}
		})
	}
}

// TestDivertPayload checks the function-16 payload of one command byte for
// byte in both word orders.
func TestDivertPayload(t *testing.T) {
	cases := []struct {
		order string
		want  []byte
	}{
		{WordOrderHighFirst, []byte{
			0x12, 0x34, // SEQ 0x1234
			0xde, 0xad, // TID_HI
			0xbe, 0xef, // TID_LO
			0x00, 0x2a, // CHUTE 42
			0x00, 0x04, // REASON 4 (alternate)
		}},
		{WordOrderLowFirst, []byte{
			0x12, 0x34, // SEQ
			0xbe, 0xef, // TID low word first
			0xde, 0xad, // then the high word
			0x00, 0x2a,
			0x00, 0x04,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.order, func(t *testing.T) {
			c := validConfig(t, func(c *Config) { c.WordOrder = tc.order })
			l := newLayout(&c)
			var regs [slotRegs]uint16
			l.divertRegs(&regs, 0x1234, 0xdeadbeef, 42, 4)
			got := encodeRegs(nil, regs[:])
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("payload % x, want % x", got, tc.want)
			}
			// And back: a confirmation slot in the same order decodes to the same TID.
			back := decodeRegs(nil, got)
			if tid := l.tid(back[1:3]); tid != 0xdeadbeef {
				t.Errorf("tid back %#x, want 0xdeadbeef", tid)
			}
		})
	}
}

// TestDecodeBlock decodes a function-3 reply's register bytes (default
// map, 119 registers) into the block.
func TestDecodeBlock(t *testing.T) {
	c := validConfig(t, nil)
	l := newLayout(&c)
	raw := make([]byte, 2*119)
	put := func(off int, v uint16) { raw[2*off], raw[2*off+1] = byte(v>>8), byte(v) }
	put(0, 0x0102)   // PLC_HEARTBEAT
	put(1, 1)        // SORTER_STATE running
	put(2, 0xfffe)   // ACK_SEQ
	put(3, 17)       // CONFIRM_COUNT
	put(4, 0)        // FAULT_CODE
	put(5, 256)      // CHUTE_COUNT
	put(6, 0x8001)   // CHUTE_FULL word 0: chutes 1 and 16
	put(21, 0x8000)  // word 15: chute 256
	put(22, 0x0002)  // CHUTE_DISABLED word 0: chute 2
	base := 38 + 5*1 // CONFIRM[1] holds confirmation 17
	put(base, 17)
	put(base+1, 0x0001)
	put(base+2, 0x0002)
	put(base+3, 42)
	put(base+4, 1)
	put(118, 0xb007) // BOOT_ID
	var b block
	if err := l.decode(&b, decodeRegs(nil, raw)); err != nil {
		t.Fatal(err)
	}
	if b.heartbeat != 0x0102 || b.sorterState != 1 || b.ackSeq != 0xfffe || b.confirmCount != 17 ||
		b.faultCode != 0 || b.chuteCount != 256 || b.bootID != 0xb007 {
		t.Errorf("header %+v", b)
	}
	if got := l.confirmAt(&b, 17); got != (confirmSlot{num: 17, tid: 0x00010002, chute: 42, result: 1}) {
		t.Errorf("confirm 17 = %+v", got)
	}
	full, disabled := bitsOf(b.full, 256), bitsOf(b.disabled, 256)
	if !reflect.DeepEqual(full, []int{1, 16, 256}) || !reflect.DeepEqual(disabled, []int{2}) {
		t.Errorf("full %v disabled %v", full, disabled)
	}
	if err := l.decode(&b, make([]uint16, 118)); err == nil {
		t.Error("short block decoded without error")
	}
}

func bitsOf(words []uint16, chutes int) []int {
	var out []int
	cb := packed(words, chutes)
	for n := 1; n <= chutes; n++ {
		if cb.Has(uint16(n)) {
			out = append(out, n)
		}
	}
	return out
}

func TestPackBitsMasksAboveChutes(t *testing.T) {
	words := []uint16{0xffff, 0xffff}
	cb := packed(words, 20)
	for n := 1; n <= 32; n++ {
		if got, want := cb.Has(uint16(n)), n <= 20; got != want {
			t.Errorf("chute %d: %v, want %v", n, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no addr", func(c *Config) { c.Addr = "" }, "addr is empty"},
		{"ring not a power of two", func(c *Config) { c.Ring = 10 }, "ring 10: want a power of two"},
		{"ring 1", func(c *Config) { c.Ring = 1 }, "ring 1"},
		{"confirm ring", func(c *Config) { c.ConfirmRing = 12 }, "confirm ring 12"},
		{"too many chutes", func(c *Config) { c.Chutes = 2049 }, "chutes 2049"},
		{"word order", func(c *Config) { c.WordOrder = "middle" }, `word order "middle"`},
		{"negative poll", func(c *Config) { c.Poll = -time.Millisecond }, "poll -1ms is negative"},
		{"poll under the floor", func(c *Config) { c.Poll = 500 * time.Microsecond }, "poll 500µs: want at least 1ms"},
		{"fast poll under the floor", func(c *Config) { c.FastPoll = 999 * time.Microsecond }, "fast poll 999µs: want 1ms..poll (10ms)"},
		{"fast poll over poll", func(c *Config) { c.FastPoll = 11 * time.Millisecond }, "fast poll 11ms: want 1ms..poll (10ms)"},
		{"negative fast poll", func(c *Config) { c.FastPoll = -time.Millisecond }, "fast poll -1ms is negative"},
		{"fast poll equal to poll", func(c *Config) { c.FastPoll = 10 * time.Millisecond }, ""},
		{"fast poll default under a short poll", func(c *Config) { c.Poll = time.Millisecond }, ""},
		{"heartbeat too slow", func(c *Config) { c.Heartbeat = time.Second }, "heartbeat 1s"},
		{"backoff inverted", func(c *Config) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond }, "backoff max"},
		{"connections", func(c *Config) { c.Connections = 3 }, "connections 3"},
		{"divert ring over plc block", func(c *Config) { c.DivertBase = 90 }, "divert ring 90..169 overlaps plc block 100..218"},
		{"host over divert", func(c *Config) { c.HostBase = 12 }, "host block 12..14 overlaps divert ring"},
		{"plc block past 65535", func(c *Config) { c.PLCBase = 65500 }, "runs past register 65535"},
		{"2048 chutes moved apart", func(c *Config) { c.Chutes = 2048; c.PLCBase = 1000 }, ""},
		{"2048 chutes on the default map fit", func(c *Config) { c.Chutes = 2048 }, ""},
		{"watchdog under poll", func(c *Config) { c.PLCWatchdog = 5 * time.Millisecond }, "plc watchdog"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Name: "t", Addr: "127.0.0.1:502"}
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			case err != nil && !errors.Is(err, ErrInvalidConfig):
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

func packed(words []uint16, chutes int) devices.ChuteBits {
	var cb devices.ChuteBits
	packBits(&cb, words, chutes)
	return cb
}
