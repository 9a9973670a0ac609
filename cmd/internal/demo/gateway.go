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
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		// -dir names a folder to keep: made if it is not there yet.
		return fmt.Errorf("demo: state directory: %w", err)
	}
	// The demo is the configuration the memory goal names: the journal's
	// record ring and the item table are sized for the demo's rate, not for
	// the defaults' 65,536 (which preallocate 30 MB). See docs/performance.md.
	j, err := journal.Open(journal.Config{Path: filepath.Join(dir, "journal.db"), QueueSize: demoQueueSize,
		// The index inserts touch pages all over the file (about 9 MB of
		// mapping in 15 s at 20 items/s): release them more often.
		PageReleaseInterval: demoPageRelease}, d.log.With().Str("part", "journal").Logger())
	if err != nil {
		return err
	}
	m := gateway.NewMetrics()
	line, err := d.newLine(dir, j, m)
	if err != nil {
		return errors.Join(err, j.Close())
	}
	gcfg := gateway.Config{Listen: d.cfg.HTTP, Token: d.cfg.Token, DrainGrace: 3 * time.Second,
		Version: d.cfg.Version + "-demo", Journal: j, Training: newTrainer(d.sim, d.cfg.Chutes)}
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
	var bw boundWatch
	boundsDone := make(chan struct{})
	bctx, stopBounds := context.WithCancel(ctx)
	go func() {
		defer close(boundsDone)
		if d.cfg.Check {
			d.watchBounds(bctx, &bw, j)
		}
	}()
	// At the stop, induction stops first: the sim's report then holds no
	// item inducted after the gateway stopped reading.
	stopInduct := context.AfterFunc(ctx, func() { d.sim.SetRate(0) })
	defer stopInduct()
	dockCtx, stopDock := context.WithCancel(ctx)
	dockDone := make(chan struct{})
	go func() {
		defer close(dockDone)
		d.runDock(dockCtx, gw, line)
	}()
	err = gw.Run(ctx)
	stopDock()
	<-dockDone
	stopBounds()
	<-boundsDone
	if d.cfg.Check && err == nil {
		bw.observe(d.bounds(j))
		d.check, err = checkJournal(context.WithoutCancel(ctx), filepath.Join(dir, "journal.db"), "L1", d.sim.Report(), bw.result())
	}
	return err
}

// demoQueueSize is the journal's record queue in the demo (Config.QueueSize):
// 8,192 records, 2.7 MB preallocated. 2,048 was tried: on the loaded
// 2-core machine at 200 items/s the writer fell behind and the queue
// filled (records not kept), so the demo keeps the room.
const demoQueueSize = 8192

// demoPageRelease is how often the demo's journal releases its mapped
// pages (journal.Config.PageReleaseInterval; the default is 15 s).
const demoPageRelease = 5 * time.Second

// bounds counts every bounded per-item structure of the demo against its
// bound: the sim's ground truth, the line's item table, the manifests
// kept in memory, the journal's queue.
func (d *Demo) bounds(j *journal.Journal) []Bound {
	// The sim never drops an item still on the belt: its bound is its
	// limit plus those.
	kept, bound := d.sim.TruthSize()
	out := []Bound{{Name: "sim ground truth", Max: kept, Limit: bound}}
	if s := d.line.Snapshot(); s != nil {
		t := s.Totals
		out = append(out, Bound{Name: "line item table", Max: t.Tracked, Limit: t.TrackCapacity},
			Bound{Name: "container manifests", Max: t.Manifests, Limit: t.KeepManifests},
			Bound{Name: "van manifests", Max: t.Vans, Limit: t.KeepVans})
	}
	h := j.Health()
	// Records not kept (queue full, closed) break the audit trail: their
	// bound is 0.
	return append(out, Bound{Name: "journal queue", Max: j.Stats().Queued, Limit: demoQueueSize},
		Bound{Name: "journal records not kept", Max: int(h.NotKeptTotal()), Limit: 0})
}

// watchBounds samples the bounds every second until ctx is done.
func (d *Demo) watchBounds(ctx context.Context, bw *boundWatch, j *journal.Journal) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		bw.observe(d.bounds(j))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Check is the verdict of the run with Config.Check, once Run returned
// (nil without it, or when Run failed).
func (d *Demo) Check() *Check { return d.check }

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
// with the demo's plan and the sim's manifest installed. Both are files in
// dir, loaded the way a site loads them, so that the status page's Reload
// plan reads them again (a technician can practise editing the plan, and
// a broken edit is refused with the old plan kept).
func (d *Demo) newLine(dir string, j gateway.Journal, m *gateway.Metrics) (*gateway.Line, error) {
	cfg := &d.cfg
	planFile, manifestFile, err := d.writePlanFiles(dir)
	if err != nil {
		return nil, err
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
		Capacity: demoCapacity(cfg.Rate, cfg.Chutes), Remember: demoRemember(cfg.Chutes),
		KeepManifests: demoKeepManifests, KeepVans: demoKeepVans,
		ConfirmTimeout: cfg.ConfirmTimeout, DockClock: d.day.Now,
		PlanFile: planFile, ManifestFile: manifestFile}, plc, src, j, m, d.log)
	if err != nil {
		return nil, err
	}
	if _, err := line.ReloadPlan(); err != nil {
		return nil, err
	}
	d.planFile = planFile
	return line, nil
}

// writePlanFiles writes the demo's plan and the sim's manifest into dir
// (plan.csv, manifest.csv). A plan file already there is kept: a demo run
// again on the same state directory starts with the plan the technician
// edited.
func (d *Demo) writePlanFiles(dir string) (planFile, manifestFile string, err error) {
	planFile, manifestFile = filepath.Join(dir, "plan.csv"), filepath.Join(dir, "manifest.csv")
	if _, err := os.Stat(planFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(planFile, d.planCSV, 0o644); err != nil {
			return "", "", fmt.Errorf("demo: plan file: %w", err)
		}
	} else if err != nil {
		return "", "", fmt.Errorf("demo: plan file: %w", err)
	}
	var mbuf bytes.Buffer
	if err := d.sim.WriteManifest(&mbuf); err != nil {
		return "", "", fmt.Errorf("demo: manifest: %w", err)
	}
	if err := os.WriteFile(manifestFile, mbuf.Bytes(), 0o644); err != nil {
		return "", "", fmt.Errorf("demo: manifest file: %w", err)
	}
	return planFile, manifestFile, nil
}
