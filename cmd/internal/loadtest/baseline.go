package loadtest

// The raw transport floors, measured in the same run against line 1's
// emulated sorter so that every latency of the gateway reads as a ratio
// of a round trip that does less work than the gateway's path:
//
//   - cold: the idle divert slot written back to back before the gateway
//     starts (the very request the link makes, which the PLC accepts);
//     shown only, no ratio uses it (the machine is idle then).
//   - rate-matched: a spare write (devices' RawClient.WriteSpare: a
//     slot-sized function-16 request into the reserved registers 5..9, or
//     a WriteRequest of the four nodes of the slot one past the ring,
//     which the PLC refuses without acting on them) at the items' rate,
//     Poisson-timed, on a connection of its own, during the whole window.
//   - hot: the same spare write back to back, a burst of Config.Baselines
//     on that connection right after the window, with the load still
//     running: the transport's best case on the machine as the load
//     leaves it. Not during the window: a back-to-back loop would take
//     one of the machine's two cores from the gateway it measures.
//
// The spare write refused by the PLC skips the register update and the
// scan notification a divert write costs the emulator (microseconds), so
// it is a floor: a ratio below 1.0 against it is a measuring error.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"sortgw/devices/modbus"
	"sortgw/devices/opcua"
	fieldbussim "sortgw/fieldbus-sim"
)

// rawClient is modbus.RawClient or opcua.RawClient.
type rawClient interface {
	WriteIdleSlot(ctx context.Context) (time.Duration, error)
	WriteSpare(ctx context.Context) (time.Duration, error)
}

// rawName is the floor's short name in ratios: raw-fc16 or raw-gopcua.
func rawName(protocol string) string {
	if protocol == "modbus" {
		return "raw-fc16"
	}
	return "raw-gopcua"
}

// dialRaw connects a raw client of the protocol to sim; the name says what
// one spare write is.
func dialRaw(ctx context.Context, protocol string, sim *fieldbussim.Sim) (c rawClient, name string, closeFn func(), err error) {
	if protocol == "modbus" {
		mc, err := modbus.DialRaw(ctx, modbus.Config{Addr: sim.ModbusAddr(), Timeout: time.Second})
		if err != nil {
			return nil, "", nil, err
		}
		a, _ := mc.SpareAddr()
		return mc, fmt.Sprintf("goburrow fc16, 5 regs at reserved %d..%d", a, a+4), func() { _ = mc.Close() }, nil
	}
	oc, err := opcua.DialRaw(ctx, opcua.Config{Endpoint: sim.OPCUAEndpoint(), Timeout: 10 * time.Second})
	if err != nil {
		return nil, "", nil, err
	}
	return oc, "gopcua Write, 4 nodes of spare slot 16", func() { _ = oc.Close(ctx) }, nil
}

// coldBaseline times the idle slot write back to back before any load.
func coldBaseline(ctx context.Context, cfg *Config, sim *fieldbussim.Sim) (LatStats, error) {
	c, _, closeFn, err := dialRaw(ctx, cfg.Protocol, sim)
	if err != nil {
		return LatStats{}, fmt.Errorf("bench: %s baseline: %w", cfg.Protocol, err)
	}
	defer closeFn()
	for range 50 { // warm the connection
		if _, err := c.WriteIdleSlot(ctx); err != nil {
			return LatStats{}, fmt.Errorf("bench: cold baseline: %w", err)
		}
	}
	st, _, err := backToBack(ctx, cfg.Baselines, 0, c.WriteIdleSlot)
	return st, err
}

// backToBack takes n samples of one, back to back, stopping early after
// limit (0: none); it returns them sorted.
func backToBack(ctx context.Context, n int, limit time.Duration, one func(context.Context) (time.Duration, error)) (LatStats, latencies, error) {
	lat := make(latencies, 0, n)
	t0 := time.Now()
	for range n {
		if limit > 0 && time.Since(t0) > limit {
			break
		}
		d, err := one(ctx)
		if err != nil {
			return LatStats{}, nil, fmt.Errorf("bench: baseline: %w", err)
		}
		lat = append(lat, d)
	}
	return summarise(lat), lat, nil
}

// rateFloor is the rate-matched floor: started with the window, stopped
// with it, then the hot burst on the same connection. A failed write
// (the chaos run drops connections and restarts the PLC) is counted and
// the connection dialled afresh.
type rateFloor struct {
	protocol string
	sim      *fieldbussim.Sim
	c        rawClient // nil while not connected
	closeFn  func()
	name     string
	rate     float64
	stop     context.CancelFunc
	done     chan rateResult
}

type rateResult struct {
	lat     LatStats
	samples latencies // sorted
	errors  int
	err     error
}

// startRateFloor dials and starts writing at rate (Poisson arrivals, their
// times fixed in advance; a late one is sent at once, a stall longer than
// 100 ms is not made up), until stopRate.
func startRateFloor(ctx context.Context, protocol string, sim *fieldbussim.Sim, rate float64) (*rateFloor, error) {
	f := &rateFloor{protocol: protocol, sim: sim, rate: rate, done: make(chan rateResult, 1)}
	if err := f.dial(ctx); err != nil {
		return nil, fmt.Errorf("bench: %s rate-matched baseline: %w", protocol, err)
	}
	for range 50 {
		if _, err := f.c.WriteSpare(ctx); err != nil {
			f.close()
			return nil, fmt.Errorf("bench: %s rate-matched baseline: %w", protocol, err)
		}
	}
	rctx, stop := context.WithCancel(ctx)
	f.stop = stop
	go func() { f.done <- f.run(rctx) }()
	return f, nil
}

func (f *rateFloor) dial(ctx context.Context) error {
	f.close()
	c, name, closeFn, err := dialRaw(ctx, f.protocol, f.sim)
	if err != nil {
		return err
	}
	f.c, f.closeFn = c, closeFn
	if f.name == "" { // set once, before run starts: window reads it meanwhile
		f.name = name
	}
	return nil
}

func (f *rateFloor) close() {
	if f.c != nil {
		f.closeFn()
		f.c = nil
	}
}

// write is one spare write, dialling first if the last one failed.
func (f *rateFloor) write(ctx context.Context) (time.Duration, error) {
	if f.c == nil {
		if err := f.dial(ctx); err != nil {
			return 0, err
		}
	}
	d, err := f.c.WriteSpare(ctx)
	if err != nil {
		f.close()
	}
	return d, err
}

func (f *rateFloor) run(ctx context.Context) rateResult {
	var res rateResult
	lat := make(latencies, 0, min(int(f.rate*120), 1<<20))
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0xf100))
	gap := func() time.Duration { return time.Duration(rnd.ExpFloat64() / f.rate * float64(time.Second)) }
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	next := time.Now().Add(gap())
	for {
		if w := time.Until(next); w > 0 {
			t.Reset(w)
			select {
			case <-ctx.Done():
				res.lat, res.samples = summarise(lat), lat
				return res
			case <-t.C:
			}
		} else if w < -100*time.Millisecond {
			next = time.Now()
		}
		if ctx.Err() != nil {
			res.lat, res.samples = summarise(lat), lat
			return res
		}
		d, err := f.write(ctx)
		switch {
		case err == nil:
			if len(lat) < cap(lat) {
				lat = append(lat, d)
			}
		case ctx.Err() == nil:
			res.errors++
			if res.err == nil {
				res.err = err
			}
			// Not a dial per scheduled write while the PLC is away.
			next = time.Now().Add(50 * time.Millisecond)
		}
		next = next.Add(gap())
	}
}

// stopRate ends the rate-matched writes and returns their figures.
func (f *rateFloor) stopRate() rateResult {
	f.stop()
	return <-f.done
}

// hot runs the back-to-back burst on the (warm) connection and closes it:
// n writes, or as many as 3 s allow (the load runs on meanwhile, and a
// busy machine makes OPC UA writes slow). A failed write is dialled again
// and left out, up to 20 times.
func (f *rateFloor) hot(ctx context.Context, n int) (LatStats, latencies, error) {
	defer f.close()
	fails := 0
	return backToBack(ctx, n, 3*time.Second, func(ctx context.Context) (time.Duration, error) {
		for {
			d, err := f.write(ctx)
			if err == nil || ctx.Err() != nil || fails >= 20 {
				return d, err
			}
			fails++
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return 0, err
			}
		}
	})
}
