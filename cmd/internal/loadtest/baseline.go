package loadtest

// The raw transport baselines, measured in the same run against line 1's
// emulated sorter so that every latency of the gateway reads as a ratio:
// the devices packages' raw clients (the protocol library alone, on the
// link's registers and nodes), timed here.

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
	WriteHostState(ctx context.Context, v uint16) (time.Duration, error)
}

// dialRaw connects a raw client of the protocol to sim; the name says what
// one idle slot write is.
func dialRaw(ctx context.Context, protocol string, sim *fieldbussim.Sim) (c rawClient, name string, closeFn func(), err error) {
	if protocol == "modbus" {
		mc, err := modbus.DialRaw(ctx, modbus.Config{Addr: sim.ModbusAddr(), Timeout: time.Second})
		if err != nil {
			return nil, "", nil, err
		}
		return mc, "goburrow fc16 (5 regs)", func() { _ = mc.Close() }, nil
	}
	oc, err := opcua.DialRaw(ctx, opcua.Config{Endpoint: sim.OPCUAEndpoint(), Timeout: 10 * time.Second})
	if err != nil {
		return nil, "", nil, err
	}
	return oc, "gopcua Write (4 nodes)", func() { _ = oc.Close(ctx) }, nil
}

// coldBaselines times the idle slot write before any load: back to back
// ("hot"), and paced like the load (exponential gaps at the bench rate).
func coldBaselines(ctx context.Context, cfg *Config, sim *fieldbussim.Sim) (name string, hot, paced LatStats, err error) {
	c, name, closeFn, err := dialRaw(ctx, cfg.Protocol, sim)
	if err != nil {
		return "", hot, paced, fmt.Errorf("bench: %s baseline: %w", cfg.Protocol, err)
	}
	defer closeFn()
	hot, paced, err = runBaseline(ctx, cfg.Baselines, cfg.Rate, func() (time.Duration, error) { return c.WriteIdleSlot(ctx) })
	return name, hot, paced, err
}

// loadBaseline rewrites HOST_STATE with 1 (ready, what the link writes
// there itself) about 100 times a second, on a connection of its own,
// until ctx is done: the transport as the load leaves it.
func loadBaseline(ctx context.Context, protocol string, sim *fieldbussim.Sim) LatStats {
	c, _, closeFn, err := dialRaw(ctx, protocol, sim)
	if err != nil {
		return LatStats{}
	}
	defer closeFn()
	var lat latencies
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return summarise(lat)
		case <-t.C:
		}
		if d, err := c.WriteHostState(ctx, 1); err == nil && ctx.Err() == nil {
			lat = append(lat, d)
		}
		t.Reset(min(time.Duration(rand.ExpFloat64()*float64(10*time.Millisecond)), 50*time.Millisecond))
	}
}

// runBaseline warms the connection, then takes n samples back to back and
// up to n (at most ~3 s of them) at exponential gaps of mean 1/rate.
func runBaseline(ctx context.Context, n int, rate float64, one func() (time.Duration, error)) (hot, paced LatStats, err error) {
	for range 50 {
		if _, err := one(); err != nil {
			return hot, paced, fmt.Errorf("bench: baseline: %w", err)
		}
	}
	lat := make(latencies, 0, n)
	for range n {
		d, err := one()
		if err != nil {
			return hot, paced, fmt.Errorf("bench: baseline: %w", err)
		}
		lat = append(lat, d)
	}
	hot = summarise(lat)
	np := min(n, max(200, int(rate*3)))
	mean := time.Second / time.Duration(max(rate, 1))
	lat = lat[:0]
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for range np {
		t.Reset(min(time.Duration(rand.ExpFloat64()*float64(mean)), 20*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			return hot, paced, ctx.Err()
		}
		d, err := one()
		if err != nil {
			return hot, paced, fmt.Errorf("bench: baseline: %w", err)
		}
		lat = append(lat, d)
	}
	return hot, summarise(lat), nil
}
