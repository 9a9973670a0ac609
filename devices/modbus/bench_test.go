package modbus

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	gmb "github.com/goburrow/modbus"

	"sortgw/devices"
)

// The benchmarks measure the link against the emulated sorter on loopback
// (docs/performance.md, section "Modbus link", holds the figures and the
// command):
//
//	go test -run '^$' -bench . -benchtime 1000x ./devices/modbus
var benchShapes = []struct {
	name        string
	cycle, poll time.Duration
}{
	{"cycle5ms_poll10ms", 5 * time.Millisecond, 10 * time.Millisecond},
	{"cycle1ms_poll1ms", time.Millisecond, time.Millisecond},
}

// BenchmarkRawRoundTrip is the baseline: one goburrow function-16 request
// of five registers (a divert slot's size) and one function-3 read of the
// 119-register PLC block, on one connection, nothing else going on.
func BenchmarkRawRoundTrip(b *testing.B) {
	s := startSim(b, simConfig(5*time.Millisecond, 10*time.Millisecond))
	h := gmb.NewTCPClientHandler(s.ModbusAddr())
	h.SlaveId, h.Timeout, h.IdleTimeout = 1, time.Second, 0
	if err := h.Connect(); err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	c := gmb.NewClient(h)
	b.Run("write5", func(b *testing.B) {
		// Slot 0 with SEQ 0: the PLC (ACK_SEQ 0) waits for SEQ 1 in slot 1,
		// so it never takes this.
		payload := make([]byte, 10)
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			if _, err := c.WriteMultipleRegisters(10, 5, payload); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		reportQuantiles(b, "rtt", lat)
	})
	// The same request paced like BenchmarkLinkLatency (a random pause of
	// up to 15ms before each): the fair baseline for a link that is idle
	// between commands, since an idle process wakes slower than a hot loop.
	b.Run("write5_paced", func(b *testing.B) {
		payload := make([]byte, 10)
		lat := make([]time.Duration, 0, b.N)
		pace := time.NewTimer(0)
		defer pace.Stop()
		for b.Loop() {
			b.StopTimer()
			pace.Reset(time.Duration(rand.Int64N(int64(15 * time.Millisecond))))
			<-pace.C
			b.StartTimer()
			t0 := time.Now()
			if _, err := c.WriteMultipleRegisters(10, 5, payload); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		reportQuantiles(b, "rtt", lat)
	})
	b.Run("read119", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			if _, err := c.ReadHoldingRegisters(100, 119); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		reportQuantiles(b, "rtt", lat)
	})
}

// BenchmarkLinkLatency sends one command at a time, at a random moment
// relative to the PLC's scan and the link's poll, and measures Send to
// EventWritten and Send to EventTaken.
func BenchmarkLinkLatency(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			s := startSim(b, simConfig(shape.cycle, 5*time.Millisecond))
			cfg := linkConfig(s)
			cfg.Poll = shape.poll
			h := startLink(b, cfg, true)
			waitState(b, h.link, devices.LinkUp, 5*time.Second)
			written := make([]time.Duration, 0, b.N)
			taken := make([]time.Duration, 0, b.N)
			pace := time.NewTimer(0)
			defer pace.Stop()
			tid := uint32(0)
			for b.Loop() {
				b.StopTimer()
				pace.Reset(time.Duration(rand.Int64N(int64(shape.cycle + shape.poll))))
				<-pace.C
				b.StartTimer()
				tid++
				nBefore := h.ev.len()
				t0 := time.Now()
				if err := h.link.Send(context.Background(), devices.Command{TID: tid, Chute: uint16(1 + tid%256)}); err != nil {
					b.Fatal(err)
				}
				var w, tk time.Time
				h.ev.wait(b, "taken", 5*time.Second, func() bool {
					for _, e := range h.ev.since(nBefore) {
						if e.TID != tid {
							continue
						}
						switch e.Kind {
						case devices.EventWritten:
							w = e.At
						case devices.EventTaken:
							tk = e.At
						}
					}
					return !tk.IsZero()
				})
				written = append(written, w.Sub(t0))
				taken = append(taken, tk.Sub(t0))
			}
			b.StopTimer()
			reportQuantiles(b, "written", written)
			reportQuantiles(b, "taken", taken)
			// The time between two polls: a tail far above the poll
			// interval is a host that did not get the CPU in time.
			g := h.link.PollInterval()
			b.ReportMetric(float64(g.P99)/1e3, "poll-gap-p99-µs")
			// Send to the start of the write: the link's own share of
			// "written" (histogram bucket bound, about 12% high).
			b.ReportMetric(float64(h.link.Latency().Dispatch.P50)/1e3, "dispatch-p50-µs")
			b.ReportMetric(float64(shape.cycle+shape.poll+2*time.Millisecond)/1e6, "taken-goal-ms")
		})
	}
}

// BenchmarkLinkThroughput pushes b.N commands through one link as fast as
// the ring allows and reports commands/s beside the ring's ceiling of 15
// per (PLC cycle + poll).
func BenchmarkLinkThroughput(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			s := startSim(b, simConfig(shape.cycle, 5*time.Millisecond))
			cfg := linkConfig(s)
			cfg.Poll = shape.poll
			h := startLink(b, cfg, true)
			waitState(b, h.link, devices.LinkUp, 5*time.Second)
			base := h.link.Status().Taken
			b.ResetTimer()
			t0 := time.Now()
			for i := 0; i < b.N; {
				err := h.link.Send(context.Background(), devices.Command{TID: uint32(i + 1), Chute: uint16(1 + i%256)})
				if errors.Is(err, devices.ErrQueueFull) {
					h.ev.wait(b, "room in the queue", 10*time.Second, func() bool { return h.link.Status().Queued < cfg.QueueSize/2 })
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			h.ev.wait(b, "all taken", time.Minute, func() bool { return h.link.Status().Taken-base >= uint64(b.N) })
			el := time.Since(t0)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "cmds/s")
			b.ReportMetric(15/(shape.cycle+shape.poll).Seconds(), "ceiling-cmds/s")
		})
	}
}

func reportQuantiles(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(p*float64(len(d))+0.5) - 1
		i = min(max(i, 0), len(d)-1)
		return float64(d[i]) / 1e3
	}
	b.ReportMetric(q(0.50), name+"-p50-µs")
	b.ReportMetric(q(0.99), name+"-p99-µs")
	b.ReportMetric(q(0.999), name+"-p99.9-µs")
}

// BenchmarkLinkRate sends b.N commands at a steady rate (the issue's
// loads) through one link to the commissioning PLC, once with a fixed
// poll (FastPoll = Poll) and once per FastPoll of the adaptive schedule,
// back to back in the same run, and reports Send-to-written quantiles, missed
// confirmations per 1,000 commands, block reads per second and the
// process's CPU per command (link and emulated PLC together: both sides
// of every poll):
//
//	go test -run '^$' -bench LinkRate -benchtime 20000x ./devices/modbus
func BenchmarkLinkRate(b *testing.B) {
	loads := []struct {
		name        string
		rate        int
		cycle, poll time.Duration
	}{
		{"1000ps_cycle5ms_poll10ms", 1000, 5 * time.Millisecond, 10 * time.Millisecond},
		{"800ps_cycle5ms_poll10ms", 800, 5 * time.Millisecond, 10 * time.Millisecond},
		{"1000ps_cycle1ms_poll1ms", 1000, time.Millisecond, time.Millisecond},
		{"1000ps_cycle1ms_poll2ms", 1000, time.Millisecond, 2 * time.Millisecond},
	}
	for _, ld := range loads {
		// fixed: FastPoll = Poll; the others: the adaptive schedule at that
		// FastPoll (the default is DefaultFastPoll, or Poll if shorter).
		for _, mode := range []struct {
			name string
			fast time.Duration
		}{{"fixed", ld.poll}, {"fast5ms", 5 * time.Millisecond}, {"fast2ms", 2 * time.Millisecond}, {"fast1ms", time.Millisecond}} {
			if mode.fast > ld.poll || mode.fast == ld.poll && mode.name != "fixed" {
				continue
			}
			b.Run(ld.name+"/"+mode.name, func(b *testing.B) {
				// Travel half a cycle off the scan grid: a scan a little late
				// must not merge two scans' confirmations (an artefact of the
				// emulator's fixed travel time, which no host can read apart).
				s := startSim(b, simConfig(ld.cycle, 100*time.Millisecond+ld.cycle/2))
				cfg := linkConfig(s)
				cfg.Poll, cfg.FastPoll, cfg.QueueSize = ld.poll, mode.fast, 4096
				h := startLink(b, cfg, true)
				waitState(b, h.link, devices.LinkUp, 5*time.Second)
				st0, ps0, cpu0 := h.link.Status(), h.link.PollStats(), cpuTime()
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				b.ResetTimer()
				t0 := time.Now()
				sent := 0
				for sent < b.N {
					due := min(b.N, int(time.Since(t0).Seconds()*float64(ld.rate))+1)
					for ; sent < due; sent++ {
						cmd := devices.Command{TID: uint32(sent + 1), Chute: uint16(1 + sent%256)}
						if err := h.link.Send(context.Background(), cmd); err != nil {
							b.Fatal(err)
						}
					}
					<-tick.C
				}
				h.ev.wait(b, "every confirmation", time.Minute, func() bool {
					st := h.link.Status()
					return st.Confirmed+st.Missed-st0.Confirmed-st0.Missed >= uint64(b.N)
				})
				el := time.Since(t0)
				b.StopTimer()
				st, ps, cpu := h.link.Status(), h.link.PollStats(), cpuTime()
				lat := h.link.Latency()
				b.ReportMetric(float64(lat.Written.P50)/1e3, "written-p50-µs")
				b.ReportMetric(float64(lat.Written.P99)/1e3, "written-p99-µs")
				b.ReportMetric(float64(lat.Written.P999)/1e3, "written-p99.9-µs")
				b.ReportMetric(float64(st.Missed-st0.Missed)*1000/float64(b.N), "missed/1000")
				// Of those, found by a read that started more than its
				// interval late: the loaded host's share, not the schedule's.
				b.ReportMetric(float64(ps.MissedLate-ps0.MissedLate)*1000/float64(b.N), "missed-late/1000")
				reads := ps.Slow + ps.Fast + ps.Reread - ps0.Slow - ps0.Fast - ps0.Reread
				b.ReportMetric(float64(reads)/el.Seconds(), "reads/s")
				b.ReportMetric(float64(cpu-cpu0)/1e3/float64(b.N), "cpu-µs/cmd")
				b.ReportMetric(float64(h.link.PollInterval().P99)/1e3, "poll-gap-p99-µs")
			})
		}
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
