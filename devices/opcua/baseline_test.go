package opcua

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
)

// runBaselineSim runs an emulated sorter with the given OPC UA front until
// the test ends. Its PLC takes commands as they are written, so a write
// the PLC would take is visible as soon as the request returns.
func runBaselineSim(t *testing.T, front fieldbussim.OPCUAConfig) *fieldbussim.Sim {
	t.Helper()
	front.Addr = "127.0.0.1:0"
	s, err := fieldbussim.New(fieldbussim.Config{OPCUA: front, ImmediateScan: true},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("sim run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("sim run: %v", err)
		}
	})
	return s
}

// TestRawClient writes through the raw baseline client against the
// emulated sorter: the values land on the link's nodes (namespace found
// by URI, the configured prefix), and the idle slot is never taken.
func TestRawClient(t *testing.T) {
	for _, tc := range []struct {
		name string
		sim  fieldbussim.OPCUAConfig
		cfg  Config // Endpoint filled in
	}{
		{name: "default nodes"},
		{name: "own namespace and prefix",
			sim: fieldbussim.OPCUAConfig{Namespace: "urn:site:line7", NodePrefix: "Line7"},
			cfg: Config{Namespace: "urn:site:line7", NodePrefix: "Line7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := runBaselineSim(t, tc.sim)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := tc.cfg
			cfg.Endpoint = sim.OPCUAEndpoint()
			r, err := DialRaw(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			dh, err := r.WriteHostState(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			ds, err := r.WriteIdleSlot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if dh <= 0 || ds <= 0 {
				t.Errorf("round trips %v, %v: want > 0", dh, ds)
			}
			snap := sim.PLC().Snapshot()
			if snap.HostState != 1 || snap.HostHeartbeat != 0 || snap.PlanVersion != 0 {
				t.Errorf("host block heartbeat %d state %d plan %d, want 0 1 0", snap.HostHeartbeat, snap.HostState, snap.PlanVersion)
			}
			want := fieldbussim.DivertSlot{Seq: 0, TID: 40000, Chute: 1, Reason: 0}
			if snap.Divert[0] != want {
				t.Errorf("divert slot 0 = %+v, want %+v", snap.Divert[0], want)
			}
			if snap.Divert[1] != (fieldbussim.DivertSlot{}) {
				t.Errorf("divert slot 1 = %+v, want it untouched", snap.Divert[1])
			}
			if n := sim.PLC().CommandsTaken(); n != 0 {
				t.Errorf("PLC took %d commands from the idle slot", n)
			}
		})
	}
}

func TestDialRawRefusesSecurity(t *testing.T) {
	_, err := DialRaw(context.Background(), Config{Endpoint: "opc.tcp://127.0.0.1:1", Security: SecuritySign,
		CertFile: "c.pem", KeyFile: "k.pem", TrustedServerCerts: []string{"s.pem"}})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
}

// TestRawSpare: the spare write, the bench's rate-matched floor, is one
// WriteRequest of a slot's four nodes, one past the ring, that the server
// refuses node by node, and it leaves the PLC as it was, so it can run
// beside a link.
func TestRawSpare(t *testing.T) {
	sim := runBaselineSim(t, fieldbussim.OPCUAConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := DialRaw(ctx, Config{Endpoint: sim.OPCUAEndpoint()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	before := sim.PLC().Snapshot()
	for range 20 {
		d, err := r.WriteSpare(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d <= 0 {
			t.Errorf("round trip %v: want > 0", d)
		}
	}
	after := sim.PLC().Snapshot()
	if after.Divert != before.Divert || after.HostState != before.HostState || after.AckSeq != before.AckSeq {
		t.Errorf("spare writes changed the PLC: before %+v, after %+v", before, after)
	}
	if n := sim.PLC().CommandsTaken(); n != 0 {
		t.Errorf("PLC took %d commands", n)
	}
}
