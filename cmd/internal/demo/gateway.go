package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"sortgw/cmd/internal/upstream"
	"sortgw/devices"
	"sortgw/devices/modbus"
	"sortgw/devices/opcua"
	"sortgw/devices/scanner"
	"sortgw/gateway"
	"sortgw/gateway/journal"
	gwup "sortgw/gateway/upstream"
	"sortgw/sortplan"
)

// runGateway opens the journal, wires the line against the running sim and
// runs the gateway until ctx is done. The gateway runs the journal and
// closes it last (lines drain, then HTTP, then the journal).
func (d *Demo) runGateway(ctx context.Context, ready func(url string)) error {
	dir := d.cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sortgw-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	// The demo is the configuration the memory goal names: the journal's
	// record ring and the item table are sized for the demo's rate, not for
	// the defaults' 65,536 (which preallocate 30 MB). See docs/performance.md.
	j, err := journal.Open(journal.Config{Path: filepath.Join(dir, "journal.db"), QueueSize: 8192}, d.log.With().Str("part", "journal").Logger())
	if err != nil {
		return err
	}
	m := gateway.NewMetrics()
	line, err := d.newLine(j, m)
	if err != nil {
		return errors.Join(err, j.Close())
	}
	gcfg := gateway.Config{Listen: d.cfg.HTTP, Token: d.cfg.Token, DrainGrace: 3 * time.Second,
		Version: d.cfg.Version + "-demo", Journal: j}
	up, err := d.newUpstream(dir, j, m, line)
	if err != nil {
		return errors.Join(err, j.Close())
	}
	if up != nil {
		gcfg.Upstream = up
	}
	gw, err := gateway.New(gcfg, []*gateway.Line{line}, j, m, d.log.With().Str("part", "http").Logger())
	if err != nil {
		return errors.Join(err, j.Close())
	}
	d.line = line
	go func() {
		select {
		case <-gw.Started():
			if up != nil {
				select {
				case <-up.Started():
					d.tail = "sortgw tail -nats " + up.ClientURL()
				case <-ctx.Done():
					return
				}
			}
			if ready != nil {
				ready("http://" + gw.Addr() + "/")
			}
		case <-ctx.Done():
		}
	}()
	return gw.Run(ctx)
}

// newUpstream makes the demo's upstream: an embedded NATS server with
// JetStream on a loopback port the OS picks, its store in the demo's
// directory, and the publisher of the journal to it (site "demo").
//
// Plans for the line are taken from the server's object store too (bucket
// SORTGW_PLANS, object demo/L1), results in the KV bucket
// SORTGW_PLAN_RESULTS.
func (d *Demo) newUpstream(dir string, j *journal.Journal, m *gateway.Metrics, line *gateway.Line) (*upstream.Runner, error) {
	if d.cfg.NoNATS {
		return nil, nil
	}
	cfg := upstream.Config{Config: gwup.Config{Site: "demo"}, NATS: upstream.NATS{
		Embedded: &upstream.Embedded{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")},
		Plans:    &upstream.Plans{}}}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	up, err := upstream.New(cfg, j, d.log)
	if err != nil {
		return nil, err
	}
	m.Registry.MustRegister(up.Collectors()...)
	up.SetLines([]upstream.PlanLine{line})
	return up, nil
}

// Tail is the command that watches the demo's upstream stream live, ""
// without NATS; set before Run calls ready.
func (d *Demo) Tail() string { return d.tail }

// newLine makes the PLC link and the scanners against the sim, and the line
// with the demo's plan and the sim's manifest installed.
func (d *Demo) newLine(j gateway.Journal, m *gateway.Metrics) (*gateway.Line, error) {
	cfg := &d.cfg
	var mbuf bytes.Buffer
	if err := d.sim.WriteManifest(&mbuf); err != nil {
		return nil, fmt.Errorf("demo: manifest: %w", err)
	}
	manifest, err := sortplan.ParseManifest("demo-manifest.csv", &mbuf)
	if err != nil {
		return nil, fmt.Errorf("demo: manifest: %w", err)
	}
	var plc devices.PLCLink
	// The link adds the "plc" key itself: a second one here would make
	// JSON lines with the key twice.
	plog := d.log.With().Str("line", "L1").Logger()
	if cfg.Protocol == "opcua" {
		plc, err = opcua.New(opcua.Config{Name: "demo-plc", Endpoint: d.sim.OPCUAEndpoint(), Chutes: cfg.Chutes}, plog)
	} else {
		plc, err = modbus.New(modbus.Config{Name: "demo-plc", Addr: d.sim.ModbusAddr(), Chutes: cfg.Chutes}, plog)
	}
	if err != nil {
		return nil, err
	}
	var scs []scanner.Config
	for i, a := range d.sim.ScannerAddrs() {
		scs = append(scs, scanner.Config{Name: "S" + strconv.Itoa(i+1), Addr: a})
	}
	src, err := scanner.New(scs, d.log.With().Str("part", "scanners").Logger())
	if err != nil {
		return nil, err
	}
	line, err := gateway.NewLine(gateway.LineConfig{Name: "L1", Chutes: cfg.Chutes, ContainerCapacity: cfg.ContainerCapacity,
		Capacity: demoCapacity(cfg.Rate), ConfirmTimeout: cfg.ConfirmTimeout}, plc, src, j, m, d.log)
	if err != nil {
		return nil, err
	}
	if _, err := line.InstallPlan(d.plan, manifest); err != nil {
		return nil, err
	}
	return line, nil
}
