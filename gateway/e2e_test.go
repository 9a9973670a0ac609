package gateway

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/modbus"
	"sortgw/devices/opcua"
	"sortgw/devices/scanner"
	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// e2eConfig shapes one end-to-end run against fieldbus-sim.
type e2eConfig struct {
	Name     string // the variant, for the table of harder emulators
	Protocol string
	Items    uint64
	Rate     float64
	Chutes   int
	DropAt   uint64 // drop the PLC connections once this many items were inducted (0: never)
	// Sim sets emulator options; Modbus sets the link to match them;
	// Endpoint turns the emulator's OPC UA endpoint into the URL the link
	// is configured with (as a site engineer might type it).
	Sim      func(*fieldbussim.Config)
	Modbus   func(*modbus.Config)
	OPCUA    func(*opcua.Config)
	Endpoint func(string) string
	// Gateway sets gateway options (logins, read-only) before New.
	Gateway func(*Config)
}

// e2e is a running sim + line + journal.
type e2e struct {
	sim     *fieldbussim.Sim
	line    *Line
	gw      *Gateway
	journal *journal.Journal
	plan    *sortplan.Plan
}

// startE2E starts the sim, a journal in t.TempDir, the PLC link of the
// wanted protocol, the scanners and a gateway with one line. Everything
// stops in t.Cleanup, in order.
func startE2E(t *testing.T, c e2eConfig, token string) *e2e {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	scfg := fieldbussim.Config{
		Chutes:   c.Chutes,
		PLCCycle: time.Millisecond,
		Seed:     7,
		Scanners: fieldbussim.ScannerConfig{Count: 2},
		Labels:   fieldbussim.LabelConfig{NoReadRate: 0.02, MultiReadRate: 0.01, ConflictRate: 0.5},
		Conveyor: fieldbussim.ConveyorConfig{
			// Induction starts once the gateway is ready (SetRate below);
			// 0 would put the PLC in commissioning mode.
			Rate:                0.001,
			BeltSpeed:           10,
			ScannerToFirstChute: 8,
			ChutePitch:          0.5,
			ContainerCapacity:   40,
			EmptyAfter:          500 * time.Millisecond,
		},
	}
	// A real PLC takes commands only for the TIDs its conveyor inducted.
	scfg.StrictTIDs = true
	if c.Protocol == "opcua" {
		scfg.OPCUA.Addr = "127.0.0.1:0"
	} else {
		scfg.Modbus.Addr = "127.0.0.1:0"
	}
	if c.Sim != nil {
		c.Sim(&scfg)
	}
	sim, err := fieldbussim.New(scfg, log.With().Str("part", "sim").Logger())
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	t.Cleanup(func() {
		stopSim()
		if err := <-simDone; err != nil && err != context.Canceled {
			t.Errorf("sim: %v", err)
		}
	})
	select {
	case <-sim.Ready():
	case err := <-simDone:
		t.Fatalf("sim: %v", err)
	}

	j, err := journal.Open(journal.Config{Path: filepath.Join(t.TempDir(), "j.db"), QueryLimit: 1 << 21}, log)
	if err != nil {
		t.Fatal(err)
	}
	jctx, stopJ := context.WithCancel(context.Background())
	jdone := make(chan error, 1)
	go func() { jdone <- j.Run(jctx) }()
	t.Cleanup(func() {
		stopJ()
		<-jdone
		if err := j.Close(); err != nil {
			t.Errorf("journal close: %v", err)
		}
	})

	var plc devices.PLCLink
	if c.Protocol == "opcua" {
		ep := sim.OPCUAEndpoint()
		if c.Endpoint != nil {
			ep = c.Endpoint(ep)
		}
		ocfg := opcua.Config{Name: "plc", Endpoint: ep, Chutes: c.Chutes}
		if c.OPCUA != nil {
			c.OPCUA(&ocfg)
		}
		plc, err = opcua.New(ocfg, log)
	} else {
		mcfg := modbus.Config{Name: "plc", Addr: sim.ModbusAddr(), Chutes: c.Chutes, Poll: 2 * time.Millisecond}
		if c.Modbus != nil {
			c.Modbus(&mcfg)
		}
		plc, err = modbus.New(mcfg, log)
	}
	if err != nil {
		t.Fatal(err)
	}
	var scs []scanner.Config
	for i, a := range sim.ScannerAddrs() {
		scs = append(scs, scanner.Config{Name: "S" + strconv.Itoa(i+1), Addr: a})
	}
	src, err := scanner.New(scs, log)
	if err != nil {
		t.Fatal(err)
	}
	planCSV, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: c.Chutes, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := sortplan.ParsePlan("gen.csv", bytes.NewReader(planCSV), c.Chutes)
	if err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	if err := sim.WriteManifest(&mb); err != nil {
		t.Fatal(err)
	}
	man, err := sortplan.ParseManifest("sim-manifest.csv", &mb)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	// Budget: 0.9 x scanner-to-first-chute / belt speed. Confirm timeout:
	// past the farthest decision point (4 s), before the item's next lap (6 s).
	line, err := NewLine(LineConfig{Name: "L1", Chutes: c.Chutes, Budget: 720 * time.Millisecond, ConfirmTimeout: 4500 * time.Millisecond},
		plc, src, j, m, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := line.InstallPlan(plan, man); err != nil {
		t.Fatal(err)
	}
	gcfg := Config{Listen: "127.0.0.1:0", Token: token, DrainGrace: 5 * time.Second, SSEInterval: 200 * time.Millisecond}
	if c.Gateway != nil {
		c.Gateway(&gcfg)
	}
	gw, err := New(gcfg, []*Line{line}, j, m, log)
	if err != nil {
		t.Fatal(err)
	}
	gctx, stopGW := context.WithCancel(context.Background())
	gdone := make(chan error, 1)
	go func() { gdone <- gw.Run(gctx) }()
	var stopped bool
	t.Cleanup(func() {
		if !stopped {
			stopGW()
			<-gdone
		}
	})
	<-gw.Started()
	waitFor(t, "gateway ready", gw.Ready)
	e := &e2e{sim: sim, line: line, gw: gw, journal: j, plan: plan}
	_ = stopped
	return e
}

// passKey names one pass of one item.
type passKey struct {
	tid  uint32
	pass uint16
}

func TestEndToEndModbus(t *testing.T) {
	skipLong(t)
	c := e2eConfig{Protocol: "modbus", Items: 10000, Rate: 1000, Chutes: 64, DropAt: 5000}
	if raceEnabled {
		c = e2eConfig{Protocol: "modbus", Items: 3000, Rate: 300, Chutes: 64, DropAt: 1500}
	}
	runE2E(t, c)
}

func TestEndToEndOPCUA(t *testing.T) {
	skipLong(t)
	// OPC UA costs more CPU per command than Modbus; 3,000 items keep the
	// test in tens of seconds on the 2-core CI machine.
	c := e2eConfig{Protocol: "opcua", Items: 3000, Rate: 300, Chutes: 64, DropAt: 1500}
	if raceEnabled {
		c = e2eConfig{Protocol: "opcua", Items: 2000, Rate: 100, Chutes: 64, DropAt: 1000}
	}
	runE2E(t, c)
}

// skipLong skips a long end-to-end run under go test -short.
func skipLong(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("long end-to-end run against the emulator; runs without -short")
	}
}

// TestEndToEndHarderPLC runs the gateway against each of the emulator's
// harder-than-the-contract options, each held against the ground truth
// like the runs above: every pass one outcome, no mismatch. Every variant
// runs with StrictTIDs (startE2E), so a command for a TID the conveyor did
// not induct would be refused and show up as a mismatch.
func TestEndToEndHarderPLC(t *testing.T) {
	skipLong(t)
	items, rate, drop := uint64(1500), 300.0, uint64(750)
	if raceEnabled {
		items, rate, drop = 800, 150, 400
	}
	lowFirst := func(c *modbus.Config) { c.WordOrder = modbus.WordOrderLowFirst }
	// A secured link asks GetEndpoints for the URL it is configured with.
	certs := writeTestCerts(t)
	for _, c := range []e2eConfig{
		// A PLC that applies a request register by register needs the
		// link's seq-last slot write: with one request, SEQ (the slot's
		// first register) lands before the command it announces.
		{Name: "modbus fc16 register by register, slot_write seq-last", Protocol: "modbus",
			Sim:    func(c *fieldbussim.Config) { c.Modbus.RegisterByRegister = true },
			Modbus: func(c *modbus.Config) { c.SlotWrite = modbus.SlotWriteSeqLast }},
		{Name: "modbus low-first word order", Protocol: "modbus",
			Sim:    func(c *fieldbussim.Config) { c.Modbus.WordOrder = fieldbussim.WordOrderLowFirst },
			Modbus: lowFirst},
		{Name: "opcua endpoint with trailing slash", Protocol: "opcua",
			Endpoint: func(ep string) string { return ep + "/" }},
		{Name: "opcua signed, endpoint via localhost with trailing slash", Protocol: "opcua",
			Sim: func(c *fieldbussim.Config) {
				c.OPCUA.Security = fieldbussim.SecuritySign
				c.OPCUA.CertFile, c.OPCUA.KeyFile = certs.serverCert, certs.serverKey
			},
			OPCUA: func(c *opcua.Config) {
				c.Security = opcua.SecuritySign
				c.CertFile, c.KeyFile = certs.clientCert, certs.clientKey
				c.TrustedServerCerts = []string{certs.serverCert}
			},
			Endpoint: func(ep string) string { return strings.Replace(ep, "127.0.0.1", "localhost", 1) + "/" }},
	} {
		c.Items, c.Rate, c.DropAt, c.Chutes = items, rate, drop, 64
		t.Run(c.Name, func(t *testing.T) {
			runE2E(t, c)
		})
	}
}

type testCerts struct{ serverCert, serverKey, clientCert, clientKey string }

// writeTestCerts writes a self-signed server and client certificate.
func writeTestCerts(t *testing.T) testCerts {
	t.Helper()
	dir := t.TempDir()
	var c testCerts
	for _, x := range []struct {
		name      string
		uri       string
		cert, key *string
	}{
		{"server", "urn:sortgw:fieldbus-sim", &c.serverCert, &c.serverKey},
		{"client", "urn:sortgw:gateway", &c.clientCert, &c.clientKey},
	} {
		der, key, err := fieldbussim.GenerateCert(fieldbussim.CertOptions{ApplicationURI: x.uri, CommonName: x.name})
		if err != nil {
			t.Fatal(err)
		}
		if *x.cert, *x.key, err = fieldbussim.WriteCertFiles(dir, x.name, der, key); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func runE2E(t *testing.T, c e2eConfig) {
	e := startE2E(t, c, "")
	e.sim.SetRate(c.Rate)
	start := time.Now()
	if c.DropAt > 0 {
		waitForLong(t, "half the items inducted", 60*time.Second, func() bool { return e.sim.Inducted() >= c.DropAt })
		if c.Protocol == "opcua" {
			e.sim.RestartOPCUA()
		} else {
			e.sim.DropPLCConnections()
		}
	}
	waitForLong(t, "items inducted", 60*time.Second, func() bool { return e.sim.Inducted() >= c.Items })
	t.Logf("inducted %d in %v", e.sim.Inducted(), time.Since(start))
	e.sim.SetRate(0)
	// Every item leaves the belt (sorted, exception, reject, lost) and
	// every pass the gateway saw has its outcome.
	// Report() copies the whole ground truth under the PLC's lock: ask for
	// it only when the gateway has nothing open, and not too often.
	var lastReport time.Time
	waitForLong(t, "belt empty and every pass closed", 90*time.Second, func() bool {
		if e.line.OpenNow() != 0 || time.Since(lastReport) < 250*time.Millisecond {
			return false
		}
		lastReport = time.Now()
		return e.sim.Report().Counts.ItemsOnBelt == 0 && e.line.OpenNow() == 0
	})
	t.Logf("belt empty after %v", time.Since(start))
	if err := e.journal.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep := e.sim.Report()
	recs, err := e.journal.Range(time.Time{}, time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstTruth(t, rep, recs, c, e.line.plc.Status().Missed)
}

func waitForLong(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// checkAgainstTruth holds the journal against the sim's ground truth.
func checkAgainstTruth(t *testing.T, rep fieldbussim.Report, recs []journal.Record, c e2eConfig, linkMissed uint64) {
	t.Helper()
	decided := map[passKey]journal.Record{}
	outcome := map[passKey]journal.Record{}
	dupOutcomes := 0
	byOutcome := map[journal.Outcome]int{}
	for _, r := range recs {
		k := passKey{r.TID, r.Pass}
		switch r.Kind {
		case journal.KindDecision:
			decided[k] = r
		case journal.KindOutcome:
			if _, ok := outcome[k]; ok {
				dupOutcomes++
				t.Errorf("tid %d pass %d: second outcome %v", r.TID, r.Pass, r.Outcome)
			}
			outcome[k] = r
			byOutcome[r.Outcome]++
		}
	}
	for k := range decided {
		if _, ok := outcome[k]; !ok {
			t.Errorf("tid %d pass %d: decided, no outcome", k.tid, k.pass)
		}
	}
	var passes, agree, withCmd, noCmd, excused, shifted, refused int
	noCmdOutcomes := map[journal.Outcome]int{}
	mismatch := 0
	bad := func(format string, a ...any) {
		mismatch++
		if mismatch <= 20 {
			t.Errorf(format, a...)
		}
	}
	matches := func(o journal.Record, cmd fieldbussim.CommandRecord) bool {
		want, _ := journal.OutcomeFromResult(cmd.Result)
		return o.Outcome == want && (want != journal.OutcomeDiverted || o.Chute == cmd.EndChute)
	}
	for _, it := range rep.Items {
		// Every command the gateway sends names a TID the PLC's conveyor
		// inducted and scanned, once per pass: with StrictTIDs, a refusal
		// means the PLC took a command the gateway did not write (a
		// half-written or stale slot, a TID with the wrong word order).
		for _, p := range it.Passes {
			for _, cmd := range p.Commands {
				if fieldbussim.Result(cmd.Result) == fieldbussim.ResultRefused {
					refused++
					if refused <= 10 {
						t.Errorf("tid %d pass %d: the PLC refused command seq %d (chute %d): it did not come from a read",
							it.TID, p.Pass, cmd.Seq, cmd.Chute)
					}
				}
			}
		}
		// The sim numbers physical passes, the gateway numbers reads that
		// were not duplicates. They part when a command reaches the PLC
		// after the item passed its decision point (a telegram delayed on
		// the starved CI machine): the PLC keeps the command for the next
		// lap, and that lap's read is a duplicate to the gateway. Such a
		// pass is counted as shifted and the journal pass is held against
		// the sim's next pass.
		jp := uint16(1)
		for i, p := range it.Passes {
			if p.Pass <= 0 {
				continue // refusals of unknown TIDs: not items
			}
			passes++
			o, ok := outcome[passKey{it.TID, jp}]
			if !ok {
				bad("tid %d pass %d (journal pass %d, %s): no outcome in the journal", it.TID, p.Pass, jp, p.Result)
				jp++
				continue
			}
			if len(p.Commands) == 0 {
				noCmd++
				switch o.Outcome {
				// Not a timeout: a timeout says the link saw its command
				// taken, and the PLC took none for this pass.
				case journal.OutcomeHostLate, journal.OutcomeNotSent, journal.OutcomeLostDisconnect,
					journal.OutcomeMissedConfirmation:
					agree++
					noCmdOutcomes[o.Outcome]++
					jp++
				default:
					if i+1 < len(it.Passes) && len(it.Passes[i+1].Commands) > 0 && matches(o, it.Passes[i+1].Commands[0]) {
						shifted++
						continue
					}
					bad("tid %d pass %d: journal %v but the PLC took no command (%s)", it.TID, p.Pass, o.Outcome, p.Result)
					jp++
				}
				continue
			}
			withCmd++
			cmd := p.Commands[len(p.Commands)-1]
			switch {
			case matches(o, cmd):
				agree++
			case o.Outcome == journal.OutcomeMissedConfirmation || o.Outcome == journal.OutcomeTimeout ||
				o.Outcome == journal.OutcomeLostDisconnect:
				excused++
			default:
				bad("tid %d pass %d: journal %v chute %d, sim result %d (%s) chute %d",
					it.TID, p.Pass, o.Outcome, o.Chute, cmd.Result, cmd.ResultName, cmd.EndChute)
			}
			jp++
		}
	}
	t.Logf("%s: inducted %d, sim passes %d (%d with a command, %d without), journal outcomes %d, agree %d, excused %d, shifted %d, mismatches %d",
		c.Protocol, rep.Inducted, passes, withCmd, noCmd, len(outcome), agree, excused, shifted, mismatch)
	t.Logf("outcomes: %v; of the passes the PLC took no command for: %v; sim counts %+v", byOutcome, noCmdOutcomes, rep.Counts)
	if refused > 0 {
		t.Fatalf("the PLC refused %d commands", refused)
	}
	if rep.Inducted < c.Items {
		t.Fatalf("inducted %d < %d", rep.Inducted, c.Items)
	}
	if shifted*100 > passes {
		t.Fatalf("%d of %d passes shifted by a late command", shifted, passes)
	}
	if mismatch > 0 || dupOutcomes > 0 {
		t.Fatalf("%d passes disagree with the ground truth, %d duplicate outcomes", mismatch, dupOutcomes)
	}
	// Excused outcomes come only from confirmations the PLC overwrote before
	// the host read them (the contract's "missed confirmation": the link
	// drop, and poll loops starved for tens of ms on the shared 2-core
	// machine). Each missed confirmation closes one pass as missed, and
	// when the oldest-taken rule picked the wrong pass, the right one ends
	// in a timeout: at most two excused passes per missed confirmation.
	t.Logf("link reported %d missed confirmations", linkMissed)
	if uint64(byOutcome[journal.OutcomeMissedConfirmation]) > linkMissed {
		t.Fatalf("%d passes closed as missed, the link reported %d", byOutcome[journal.OutcomeMissedConfirmation], linkMissed)
	}
	if uint64(excused) > 2*linkMissed+uint64(byOutcome[journal.OutcomeLostDisconnect]) {
		t.Fatalf("%d excused passes for %d missed confirmations", excused, linkMissed)
	}
	if byOutcome[journal.OutcomeDiverted] < int(c.Items)/2 {
		t.Fatalf("only %d diverted", byOutcome[journal.OutcomeDiverted])
	}
}
