package fieldbussim

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rs/zerolog"
	mbserver "github.com/simonvetter/modbus"
)

// FuzzModbusRequest feeds arbitrary holding-register requests (what any
// client on the network can send) to the Modbus front: it never panics,
// answers reads with exactly the registers asked for, and never lets a write
// touch the PLC block.
func FuzzModbusRequest(f *testing.F) {
	seed := func(unit uint8, write bool, addr, qty uint16, vals ...uint16) {
		b := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.BigEndian.PutUint16(b[2*i:], v)
		}
		f.Add(unit, write, addr, qty, b)
	}
	seed(1, false, 100, 119)
	seed(1, false, 0, 100)
	seed(1, true, 0, 1, 7)
	seed(1, true, 10, 5, 1, 0, 42, 3, 0)
	seed(1, true, 15, 5, 2, 0xffff, 0xffff, 300, 9)
	seed(1, true, 100, 1, 5)
	seed(1, true, 3, 1, 5)
	seed(2, false, 100, 1)
	seed(1, false, 65535, 1)
	seed(1, true, 85, 6, 1, 2, 3, 4, 5, 6)

	clk := NewVirtualClock(epoch)
	sched := newScheduler(clk)
	p := newPLC(plcConfig{Chutes: 256, Cycle: time.Millisecond, Commissioning: true, ImmediateScan: true,
		CommissioningTravel: time.Millisecond, HeartbeatPeriod: 100 * time.Millisecond, HostWatchdog: time.Second},
		clk, sched, newTruth(epoch), zerolog.Nop())
	p.start()
	defer sched.close()
	front := &modbusFront{plc: p, m: newRegMap(ModbusConfig{DivertBase: 10, PLCBase: 100}, 256), unit: 1, log: zerolog.Nop()}

	f.Fuzz(func(t *testing.T, unit uint8, write bool, addr, qty uint16, data []byte) {
		args := make([]uint16, len(data)/2)
		for i := range args {
			args[i] = binary.BigEndian.Uint16(data[2*i:])
		}
		if write {
			qty = uint16(len(args))
		}
		if qty == 0 || qty > 125 || uint32(addr)+uint32(qty) > 0x10000 {
			return // the library refuses these before the handler
		}
		before := p.Snapshot()
		res, err := front.HandleHoldingRegisters(&mbserver.HoldingRegistersRequest{UnitId: unit, Addr: addr, Quantity: qty, IsWrite: write, Args: args})
		if unit != 1 {
			if err == nil {
				t.Fatalf("unit %d answered", unit)
			}
			return
		}
		if !write && err == nil && len(res) != int(qty) {
			t.Fatalf("read %d x%d: %d registers", addr, qty, len(res))
		}
		if write && int(addr)+int(qty) > 100 && int(addr) < 219 && err == nil {
			t.Fatalf("write %d x%d into the PLC block accepted", addr, qty)
		}
		after := p.Snapshot()
		if after.BootID != before.BootID || after.ChuteCount != 256 {
			t.Fatalf("PLC block changed by a host request: %+v", after)
		}
		clk.Advance(time.Millisecond)
	})
}
