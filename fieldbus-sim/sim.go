package fieldbussim

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Config configures the emulated sorter. The zero value of every field
// selects the contract's default.
type Config struct {
	// Chutes is CHUTE_COUNT (default 256, at most 2048).
	Chutes int
	// PLCCycle is the PLC scan cycle (default 5ms).
	PLCCycle time.Duration
	// ImmediateScan makes the PLC take commands off the ring as soon as the
	// host writes them, as well as every cycle. A real PLC waits for its
	// cycle; this is for benchmarks where the sim must not be the ceiling.
	ImmediateScan bool
	// HostWatchdog is how long HOST_HEARTBEAT may stand still before
	// FAULT_CODE 1 (default 1s).
	HostWatchdog time.Duration
	// Seed drives induction, labels and losses (not BOOT_ID).
	Seed int64
	// StrictTIDs: the PLC takes a command only for a TID its conveyor
	// inducted and scanned; every other TID is refused with result 7. Off
	// (the Go API's default), a sim with Conveyor.Rate 0 is in commissioning
	// mode: every commanded TID is an item of its own. With a rate, only
	// tracked TIDs are taken either way; StrictTIDs keeps a sim started at
	// rate 0 from accepting invented TIDs.
	StrictTIDs bool

	Modbus   ModbusConfig
	OPCUA    OPCUAConfig
	Scanners ScannerConfig
	// DisableScanners sends no telegrams and opens no scanner sockets
	// (tests that play the host on the PLC core directly).
	DisableScanners bool
	Labels          LabelConfig
	Conveyor        ConveyorConfig
	// Quirks are contract violations to commission a host against
	// (quirks.go); none by default.
	Quirks Quirks

	// TruthLimit bounds the per-item ground-truth records Report keeps
	// (default 200,000, a day at about 2 items/s): past it the oldest
	// finished records are dropped down to 90% of it and counted in
	// Report.Evicted. Items still on the belt are never dropped, and
	// Report.Counts count every item regardless. A long run at a high rate
	// (the demo) sets it lower to keep its memory flat.
	TruthLimit int

	// Clock is the sim's time; nil = real time.
	Clock Clock
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("fieldbus-sim config")

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	if err := c.applyQuirks(); err != nil {
		return err
	}
	if c.Chutes == 0 {
		c.Chutes = 256
	}
	if c.Chutes < 1 || c.Chutes > MaxChutes {
		return fmt.Errorf("%w: chutes %d: want 1..%d", ErrConfig, c.Chutes, MaxChutes)
	}
	if c.PLCCycle == 0 {
		c.PLCCycle = defaultPLCCycle
	}
	if c.PLCCycle < 100*time.Microsecond {
		return fmt.Errorf("%w: plc cycle %v: want at least 100µs", ErrConfig, c.PLCCycle)
	}
	if c.HostWatchdog == 0 {
		c.HostWatchdog = defaultHostWatchdog
	}
	if c.TruthLimit == 0 {
		c.TruthLimit = defaultTruthLimit
	}
	if c.TruthLimit < 10 {
		return fmt.Errorf("%w: truth limit %d: want at least 10 records", ErrConfig, c.TruthLimit)
	}
	if c.HostWatchdog < 0 {
		return fmt.Errorf("%w: host watchdog %v: negative", ErrConfig, c.HostWatchdog)
	}
	c.Modbus.setDefaults()
	if err := c.Modbus.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.Modbus.Addr != "" {
		if err := newRegMap(c.Modbus, c.Chutes).validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if err := c.Conveyor.validate(c.Chutes); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.OPCUA.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !c.DisableScanners {
		if err := c.Scanners.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if err := c.Labels.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.Clock == nil {
		c.Clock = RealClock{}
	}
	return nil
}

// Sim is the emulated sorter: PLC, conveyor, scanners and protocol fronts.
type Sim struct {
	cfg   Config
	log   zerolog.Logger
	clk   Clock
	sched *scheduler
	plc   *PLC
	truth *truth
	conv  *conveyor

	mbFront *modbusFront
	mb      *modbusServer
	ua      *opcuaServer
	scan    *scanners
	labels  *labelGen

	ready    chan struct{}
	done     chan struct{}
	runOnce  sync.Once
	mu       sync.Mutex
	mbAddr   string
	runError error
}

// New builds a sim from cfg (validated here).
func New(cfg Config, log zerolog.Logger) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, log: log, clk: cfg.Clock, ready: make(chan struct{}), done: make(chan struct{})}
	if cfg.Quirks.On() {
		log.Warn().Str("quirks", cfg.Quirks.String()).Msg("the emulated PLC breaks the interface on purpose (quirks)")
	}
	s.sched = newScheduler(s.clk)
	s.truth = newTruth(s.clk.Now())
	s.truth.limit = cfg.TruthLimit
	s.plc = newPLC(plcConfig{
		Chutes:              cfg.Chutes,
		Cycle:               cfg.PLCCycle,
		ImmediateScan:       cfg.ImmediateScan,
		Commissioning:       cfg.Conveyor.Rate == 0 && !cfg.StrictTIDs,
		CommissioningTravel: cfg.Conveyor.CommissioningTravel,
		HeartbeatPeriod:     defaultHeartbeatPeriod,
		HostWatchdog:        cfg.HostWatchdog,
		Quirks:              cfg.Quirks,
	}, s.clk, s.sched, s.truth, log.With().Str("sim", "plc").Logger())
	s.conv = newConveyor(cfg.Conveyor, cfg.Chutes, cfg.Seed, s.plc, s.truth, s.sched, log.With().Str("sim", "conveyor").Logger())
	if cfg.Modbus.Addr != "" {
		s.mbFront = &modbusFront{
			plc: s.plc, m: newRegMap(cfg.Modbus, cfg.Chutes), unit: cfg.Modbus.UnitID,
			byRegister: cfg.Modbus.RegisterByRegister, idle: cfg.Modbus.IdleTimeout,
			log: log.With().Str("sim", "modbus").Logger(), done: s.done,
		}
		s.mbFront.setHold(&s.mbFront.silentUnit, cfg.Modbus.SilentWrongUnit)
		s.mbFront.setHold(&s.mbFront.mute, cfg.Modbus.Mute)
		s.mb = &modbusServer{cfg: cfg.Modbus, front: s.mbFront, log: s.mbFront.log}
	}
	s.labels = newLabelGen(cfg.Labels, rand.New(rand.NewPCG(uint64(cfg.Seed), 0x1abe15)))
	s.conv.labels = s.labels.Next
	if cfg.OPCUA.Addr != "" {
		ua, err := newOPCUAServer(cfg.OPCUA, s.plc, log.With().Str("sim", "opcua").Logger())
		if err != nil {
			return nil, err
		}
		s.ua = ua
	}
	if !cfg.DisableScanners {
		sc, err := newScanners(cfg.Scanners, log.With().Str("sim", "scanners").Logger())
		if err != nil {
			return nil, err
		}
		s.scan = sc
		n := sc.Len()
		s.conv.send = func(t telegram) {
			i := int(t.tid % uint32(n))
			if t.label.NoRead || len(t.label.Codes) == 0 {
				sc.SendNoRead(i, t.tid)
				return
			}
			sc.Send(i, t.tid, t.label.Codes)
		}
	}
	return s, nil
}

// ErrRunTwice is returned by a second call of Run.
var ErrRunTwice = errors.New("fieldbus-sim: Run called twice")

// Run binds the listeners, starts the PLC and the conveyor and serves until
// ctx is done; it closes everything it opened before it returns. If a part
// fails, Run stops the others and returns its error.
func (s *Sim) Run(ctx context.Context) error {
	first := false
	s.runOnce.Do(func() { first = true })
	if !first {
		return ErrRunTwice
	}
	defer close(s.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Bind everything first, so that Ready means every address is valid.
	type part struct {
		name string
		run  func(context.Context) error
	}
	var parts []part
	bindErr := func() error {
		if s.mb != nil {
			s.mb.mu.Lock()
			err := s.mb.bind()
			s.mb.mu.Unlock()
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.mbAddr = s.mb.addr
			s.mu.Unlock()
			parts = append(parts, part{"modbus", s.mb.run})
			m := s.cfg.Modbus
			s.log.Info().Str("addr", s.mb.addr).Uint8("unit", m.UnitID).Str("word_order", m.WordOrder).
				Bool("fc16_by_register", m.RegisterByRegister).Bool("silent_unit", m.SilentWrongUnit).
				Bool("mute", m.Mute).Bool("never_accept", m.NeverAccept).Bool("strict_tids", s.cfg.StrictTIDs).
				Msg("modbus tcp listening")
		}
		if s.scan != nil {
			if err := s.scan.Listen(); err != nil {
				return err
			}
			parts = append(parts, part{"scanners", s.scan.Run})
		}
		if s.ua != nil {
			if err := s.ua.Listen(); err != nil {
				return err
			}
			parts = append(parts, part{"opcua", s.ua.Run})
		}
		return nil
	}()
	if bindErr != nil {
		cancel() // the parts already bound run with a done context: they close at once
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.run(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", p.name, err)
				cancel()
			}
		}()
	}
	if bindErr == nil {
		s.plc.start()
		s.conv.start()
		close(s.ready)
	}
	<-ctx.Done()
	s.conv.stop()
	s.plc.stop()
	wg.Wait()
	s.sched.close()
	close(errs)
	if bindErr != nil {
		return bindErr
	}
	return <-errs // nil if none failed
}

// Ready is closed once every listener is bound.
func (s *Sim) Ready() <-chan struct{} { return s.ready }

// ModbusAddr is the Modbus TCP address ("127.0.0.1:port"), "" if off or not yet bound.
func (s *Sim) ModbusAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mbAddr
}

// PLC is the emulated PLC core.
func (s *Sim) PLC() *PLC { return s.plc }

// Report returns the ground truth so far.
func (s *Sim) Report() Report {
	s.plc.mu.Lock()
	defer s.plc.mu.Unlock()
	rep := s.truth.report(len(s.conv.items), s.conv.onBeltLocked)
	rep.Commands = s.plc.commandsTaken
	return rep
}

// TruthSize is the number of per-item ground-truth records held and
// their bound now: Config.TruthLimit finished records plus the items on
// the belt, which are never dropped. Cheap to poll, unlike Report.
func (s *Sim) TruthSize() (kept, bound int) {
	s.plc.mu.Lock()
	defer s.plc.mu.Unlock()
	return len(s.truth.items), s.truth.limit + len(s.conv.items)
}

// OnBelt is the number of items on the belt now.
func (s *Sim) OnBelt() int {
	s.plc.mu.Lock()
	defer s.plc.mu.Unlock()
	return len(s.conv.items)
}

// SetRate changes the induction rate (items/s); 0 stops induction.
func (s *Sim) SetRate(itemsPerSecond float64) { s.conv.setRate(itemsPerSecond) }

// Inducted is how many items were inducted so far.
func (s *Sim) Inducted() uint64 {
	s.plc.mu.Lock()
	defer s.plc.mu.Unlock()
	return s.truth.inducted
}

// DropPLCConnections closes every PLC client connection (Modbus; OPC UA
// sessions through RestartOPCUA). The server listens again at once.
func (s *Sim) DropPLCConnections() {
	if s.mb != nil {
		if err := s.mb.dropConnections(); err != nil {
			s.log.Error().Err(err).Msg("drop modbus connections")
		} else {
			s.log.Warn().Msg("fault: modbus connections dropped")
		}
	}
}

// SetPLCDown takes the PLC off the network until called with false: the
// Modbus server completes no connection (NeverAccept) and the OPC UA
// server closes every connection at once; existing connections drop.
// Off, both accept again on the same address.
func (s *Sim) SetPLCDown(on bool) error {
	if s.mb != nil {
		if err := s.mb.setNeverAccept(on); err != nil {
			return fmt.Errorf("plc down: %w", err)
		}
	}
	if s.ua != nil {
		s.ua.SetDown(on)
	}
	s.log.Warn().Bool("down", on).Msg("fault: plc off the network")
	return nil
}

// SorterFault puts the sorter into SORTER_STATE 3 with FAULT_CODE code
// (on), or clears the code and runs it again (off; a sorter in another
// state than fault keeps it). Code 1 is the PLC's own host-lost code and
// refused; 0 sets the state alone.
func (s *Sim) SorterFault(on bool, code uint16) error {
	if !on {
		code = 0
	}
	if err := s.plc.SetFaultCode(code); err != nil {
		return fmt.Errorf("sorter fault: %w", err)
	}
	if on {
		s.plc.SetSorterState(StateFault)
	} else if s.plc.State() == StateFault {
		s.plc.SetSorterState(StateRunning)
	}
	return nil
}

// SetScannerOff switches scanner i off (on) or back: off, it sends
// nothing, drops its connections and refuses new ones (a listening
// scanner closes its listener, a dialling one stops dialling); back on, it
// listens again on the same address or redials.
func (s *Sim) SetScannerOff(i int, on bool) error {
	if s.scan == nil {
		return fmt.Errorf("scanner %d off: %w", i, errNotRunning)
	}
	return s.scan.SetOff(i, on)
}

// ModbusFault names a Modbus fault that SetModbusFault switches at run time.
type ModbusFault string

// Modbus faults (see the ModbusConfig fields of the same names).
const (
	FaultSilentWrongUnit ModbusFault = "silent-unit"  // ModbusConfig.SilentWrongUnit
	FaultMute            ModbusFault = "mute"         // ModbusConfig.Mute
	FaultNeverAccept     ModbusFault = "never-accept" // ModbusConfig.NeverAccept
)

// ErrUnknownFault is returned by SetModbusFault for a name it does not know.
var ErrUnknownFault = errors.New("unknown fault")

// SetModbusFault switches a Modbus fault on or off while the sim runs.
// Switching SilentWrongUnit or Mute off closes the connections whose
// requests were held, without a reply; switching NeverAccept on drops every
// connection, and off listens normally again on the same port.
func (s *Sim) SetModbusFault(f ModbusFault, on bool) error {
	if s.mbFront == nil {
		return fmt.Errorf("modbus fault %s: %w", f, errNotRunning)
	}
	switch f {
	case FaultSilentWrongUnit:
		s.mbFront.setHold(&s.mbFront.silentUnit, on)
	case FaultMute:
		s.mbFront.setHold(&s.mbFront.mute, on)
	case FaultNeverAccept:
		if err := s.mb.setNeverAccept(on); err != nil {
			return fmt.Errorf("modbus fault %s: %w", f, err)
		}
	default:
		return fmt.Errorf("modbus fault %q: %w", f, ErrUnknownFault)
	}
	s.log.Warn().Str("fault", string(f)).Bool("on", on).Msg("fault: modbus fault switched")
	return nil
}

// ModbusHeld is how many Modbus requests the sim left unanswered
// (SilentWrongUnit, Mute) so far.
func (s *Sim) ModbusHeld() uint64 {
	if s.mbFront == nil {
		return 0
	}
	s.mbFront.mu.Lock()
	defer s.mbFront.mu.Unlock()
	return s.mbFront.held
}

// StallPLCHeartbeat keeps PLC_HEARTBEAT still for d.
func (s *Sim) StallPLCHeartbeat(d time.Duration) {
	s.plc.StallHeartbeat(d)
	s.log.Warn().Dur("for_ms", d).Msg("fault: plc heartbeat stalled")
}

// DelayNextReply holds the next Modbus response back by d (it takes effect
// at once; only the reply is late).
func (s *Sim) DelayNextReply(d time.Duration) { s.DelayNextReplyOn(d, ExceptionAny) }

// DelayNextReplyOn is DelayNextReply for the next request of one kind:
// ExceptionReads aims at a host's polling rather than at another client's
// writes on the same PLC.
func (s *Sim) DelayNextReplyOn(d time.Duration, on ExceptionTarget) {
	if s.mbFront == nil {
		return
	}
	s.mbFront.mu.Lock()
	s.mbFront.delayNext, s.mbFront.delayOn = d, on
	s.mbFront.mu.Unlock()
	s.log.Warn().Dur("delay_ms", d).Uint8("on", uint8(on)).Msg("fault: next modbus reply delayed")
}

// InjectModbusException answers the next n Modbus requests with exception
// code (1..6, 8, 10, 11; another code is sent as 4, server device failure).
func (s *Sim) InjectModbusException(code byte, n int) {
	s.InjectModbusExceptionOn(code, n, ExceptionAny)
}

// InjectModbusExceptionOn is InjectModbusException for the requests of one
// kind only (reads, writes or any); the others are answered normally.
func (s *Sim) InjectModbusExceptionOn(code byte, n int, on ExceptionTarget) {
	if s.mbFront == nil {
		return
	}
	if !SupportedException(code) {
		code = 4
	}
	s.mbFront.mu.Lock()
	s.mbFront.excCode, s.mbFront.excLeft, s.mbFront.excOn = code, n, on
	s.mbFront.mu.Unlock()
	s.log.Warn().Uint8("code", code).Int("requests", n).Uint8("target", uint8(on)).Msg("fault: modbus exceptions injected")
}

// ModbusExceptionsLeft is how many injected exceptions are still to be
// answered.
func (s *Sim) ModbusExceptionsLeft() int {
	if s.mbFront == nil {
		return 0
	}
	s.mbFront.mu.Lock()
	defer s.mbFront.mu.Unlock()
	return s.mbFront.excLeft
}

// ModbusClients is how many Modbus connections (client address and port)
// have sent a request since the sim started: a client that keeps its
// connections adds none.
func (s *Sim) ModbusClients() uint64 {
	if s.mbFront == nil {
		return 0
	}
	s.mbFront.mu.Lock()
	defer s.mbFront.mu.Unlock()
	return s.mbFront.clientsSeen
}

// EmergencyStop sets or releases the emergency stop (see PLC.EmergencyStop).
func (s *Sim) EmergencyStop(on bool) { s.plc.EmergencyStop(on) }

// SetChuteFull sets a chute's full bit as a technician would.
func (s *Sim) SetChuteFull(n uint16, on bool) {
	if err := s.plc.SetChuteFull(n, on); err != nil {
		s.log.Error().Err(err).Msg("set chute full")
	}
}

// SetChuteDisabled sets a chute's disabled bit.
func (s *Sim) SetChuteDisabled(n uint16, on bool) {
	if err := s.plc.SetChuteDisabled(n, on); err != nil {
		s.log.Error().Err(err).Msg("set chute disabled")
	}
}

// WarmRestart restarts the PLC keeping its memory and BOOT_ID; client
// connections drop.
func (s *Sim) WarmRestart() {
	s.plc.warmRestart()
	s.dropAll()
}

// ColdRestart returns the PLC to its power-on state with a new BOOT_ID;
// tracked items are forgotten; client connections drop.
func (s *Sim) ColdRestart() {
	s.plc.coldRestart()
	s.dropAll()
}

func (s *Sim) dropAll() {
	s.DropPLCConnections()
	s.RestartOPCUA()
}

// OPCUAEndpoint is the OPC UA endpoint URL, "" if off.
func (s *Sim) OPCUAEndpoint() string {
	if s.ua == nil {
		return ""
	}
	return s.ua.Endpoint()
}

// ScannerAddrs lists each scanner's listen address (or dial-out target).
func (s *Sim) ScannerAddrs() []string {
	if s.scan == nil {
		return nil
	}
	return s.scan.Addrs()
}

// ScannerStats returns the scanners' counters.
func (s *Sim) ScannerStats() []ScannerStats {
	if s.scan == nil {
		return nil
	}
	return s.scan.Stats()
}

// RestartOPCUA restarts the OPC UA server on the same port: every session drops.
func (s *Sim) RestartOPCUA() {
	if s.ua != nil {
		s.ua.Restart()
	}
}

// DropScanner closes scanner i's connections.
func (s *Sim) DropScanner(i int) {
	if s.scan != nil {
		s.scan.Drop(i)
	}
}

// ScannerGarbage sends n frames of junk from scanner i.
func (s *Sim) ScannerGarbage(i, n int) {
	if s.scan != nil {
		s.scan.Garbage(i, n)
	}
}

// ScannerOversize sends n frames over the 4096-byte limit from scanner i.
func (s *Sim) ScannerOversize(i, n int) {
	if s.scan != nil {
		s.scan.Oversize(i, n)
	}
}

// WriteManifest writes the manifest CSV "package_id,destination": every
// package id a label can carry (the generator's pre-generated pool),
// closed by the row END,<rows>.
func (s *Sim) WriteManifest(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"package_id", "destination"}); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	rows := s.labels.Manifest()
	for _, row := range rows {
		if err := cw.Write(row[:]); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
	}
	// The trailer a manifest must end with: END and its row count, so that
	// a copy cut off on its way is refused.
	if err := cw.Write([]string{"END", strconv.Itoa(len(rows))}); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}
