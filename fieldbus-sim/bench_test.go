package fieldbussim

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// BenchmarkModbusRing measures how many divert commands per second the
// emulated PLC takes over Modbus TCP from one goburrow client that writes
// the ring as fast as ACK_SEQ allows (at most 15 outstanding, one
// function-16 write per command, one 1-register read of ACK_SEQ when the
// window is full).
func BenchmarkModbusRing(b *testing.B) {
	cases := []struct {
		name      string
		cycle     time.Duration
		immediate bool
		poll      time.Duration
	}{
		{"cycle5ms/busy", 5 * time.Millisecond, false, 0},
		{"cycle5ms/poll1ms", 5 * time.Millisecond, false, time.Millisecond},
		{"cycle1ms/busy", time.Millisecond, false, 0},
		{"cycle1ms/poll200us", time.Millisecond, false, 200 * time.Microsecond},
		{"immediate/busy", time.Millisecond, true, 0},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s := startSim(b, Config{PLCCycle: tc.cycle, ImmediateScan: tc.immediate, HostWatchdog: time.Hour,
				Conveyor: ConveyorConfig{CommissioningTravel: time.Millisecond}})
			c := dial(b, s, 1)
			seq, ack := uint16(0), uint16(0)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for uint16(seq+1-ack) >= 16 {
					r, err := c.ReadHoldingRegisters(102, 1)
					if err != nil {
						b.Fatal(err)
					}
					if ack = regs(r)[0]; uint16(seq+1-ack) >= 16 && tc.poll > 0 {
						time.Sleep(tc.poll) // the host's poll interval while the window is full
					}
				}
				seq++
				if err := c.tryDivert(seq, uint32(i)+1, uint16(i%32)+1, 0); err != nil {
					b.Fatal(err)
				}
			}
			for ack != seq {
				r, err := c.ReadHoldingRegisters(102, 1)
				if err != nil {
					b.Fatal(err)
				}
				ack = regs(r)[0]
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cmds/s")
		})
	}
}

// BenchmarkPLCCore is the PLC core alone (no network): one WriteDivert per
// command, consumed on write, decided in commissioning mode. It shows what
// the sim itself costs per command.
func BenchmarkPLCCore(b *testing.B) {
	clk := NewVirtualClock(epoch)
	sched := newScheduler(clk)
	defer sched.close()
	p := newPLC(plcConfig{Chutes: 256, Cycle: time.Millisecond, Commissioning: true, ImmediateScan: true,
		CommissioningTravel: time.Millisecond, HeartbeatPeriod: 100 * time.Millisecond, HostWatchdog: time.Hour},
		clk, sched, newTruth(epoch), zerolog.Nop())
	p.start()
	p.truth.limit = 1000
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq := uint16(i + 1)
		if err := p.WriteDivert(int(seq%16), uint32(i%1000)+1, uint16(i%256)+1, 0, seq); err != nil {
			b.Fatal(err)
		}
		if i%15 == 14 {
			clk.Advance(time.Millisecond) // a scan: the commissioning items are decided
		}
	}
}
