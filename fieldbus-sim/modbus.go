package fieldbussim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	mbserver "github.com/simonvetter/modbus"
)

// ModbusConfig configures the Modbus TCP front of the PLC. Addresses are the
// contract's default map unless set.
type ModbusConfig struct {
	// Addr is the listen address; "" switches the Modbus front off.
	Addr   string
	UnitID byte // 1
	// HostBase is HOST_HEARTBEAT's address (HOST_STATE, PLAN_VERSION follow);
	// DivertBase the first divert slot (0: HostBase+10); PLCBase
	// PLC_HEARTBEAT's address (0: HostBase+100).
	HostBase, DivertBase, PLCBase uint16
	// MaxClients bounds concurrent connections (default 16).
	MaxClients int
	// IdleTimeout closes a connection that sent nothing for this long (default 5m).
	IdleTimeout time.Duration

	// The options below make the front harder than the contract's minimum,
	// as real PLCs are; all are off by default.

	// WordOrder of 32-bit values (TID in the divert and confirmation
	// slots): WordOrderHighFirst (default, the contract) or
	// WordOrderLowFirst (TID_LO in the slot's second register).
	WordOrder string
	// RegisterByRegister applies a function-16 write one register at a
	// time in address order, with a PLC scan after each register but the
	// last, as a PLC whose communication task runs between its scans does.
	// A scan then sees a half-written divert slot: SEQ (the slot's first
	// register) new while TID, CHUTE and REASON are still the old command's.
	RegisterByRegister bool
	// SilentWrongUnit leaves a request for another unit id unanswered
	// instead of answering exception 0B. The library serves a connection's
	// requests in order, so the connection answers nothing after it either;
	// it is closed, without a reply, when the option is switched off
	// (Sim.SetModbusFault), after IdleTimeout, or when the sim stops.
	SilentWrongUnit bool
	// Mute accepts connections and never answers a request (a PLC whose
	// communication processor hangs); held requests end as for
	// SilentWrongUnit.
	Mute bool
	// NeverAccept replaces the listener by one that completes no TCP
	// connection: a socket listening with a backlog of 0, whose one queue
	// place is taken by the sim itself and never accepted, so Linux drops
	// every client SYN and a dial hangs until the client's timeout. Linux only.
	NeverAccept bool

	// plcShift moves the PLC block off PLCBase (Quirks.ShiftPLCBlock).
	plcShift uint16
}

// Word orders of 32-bit values (ModbusConfig.WordOrder).
const (
	WordOrderHighFirst = "high-first"
	WordOrderLowFirst  = "low-first"
)

func (c *ModbusConfig) setDefaults() {
	if c.UnitID == 0 {
		c.UnitID = 1
	}
	if c.DivertBase == 0 {
		c.DivertBase = c.HostBase + 10
	}
	if c.PLCBase == 0 {
		c.PLCBase = c.HostBase + 100
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 16
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.WordOrder == "" {
		c.WordOrder = WordOrderHighFirst
	}
}

func (c *ModbusConfig) validate() error {
	if c.WordOrder != WordOrderHighFirst && c.WordOrder != WordOrderLowFirst {
		return fmt.Errorf("modbus word order %q: want %q or %q", c.WordOrder, WordOrderHighFirst, WordOrderLowFirst)
	}
	return nil
}

// regMap is the register layout for a chute count.
type regMap struct {
	hostBase, divertBase, plcBase uint16
	chuteWords                    int  // words per chute bit field: 16 for up to 256 chutes
	lowFirst                      bool // TID_LO before TID_HI
}

// PLC block offsets from PLCBase.
const (
	offHeartbeat    = 0
	offSorterState  = 1
	offAckSeq       = 2
	offConfirmCount = 3
	offFaultCode    = 4
	offChuteCount   = 5
	offChuteBits    = 6
	hostWords       = 3
	slotWords       = 5
	ringWords       = RingSize * slotWords
)

func newRegMap(c ModbusConfig, chutes int) regMap {
	w := (chutes + 15) / 16
	if w < 16 {
		w = 16 // the default map keeps 256 chutes' worth, so BOOT_ID stays at 218
	}
	return regMap{hostBase: c.HostBase, divertBase: c.DivertBase, plcBase: c.PLCBase + c.plcShift, chuteWords: w,
		lowFirst: c.WordOrder == WordOrderLowFirst}
}

func (m regMap) plcLen() int     { return offChuteBits + 2*m.chuteWords + ringWords + 1 }
func (m regMap) confirmOff() int { return offChuteBits + 2*m.chuteWords }
func (m regMap) bootOff() int    { return m.confirmOff() + ringWords }
func (m regMap) hostEnd() int    { return int(m.hostBase) + hostWords }
func (m regMap) divertEnd() int  { return int(m.divertBase) + ringWords }
func (m regMap) plcEnd() int     { return int(m.plcBase) + m.plcLen() }
func (m regMap) readLow() int    { return min(int(m.hostBase), int(m.divertBase), int(m.plcBase)) }
func (m regMap) readHigh() int   { return max(m.hostEnd(), m.divertEnd(), m.plcEnd()) }
func in(a, lo, hi int) bool      { return a >= lo && a < hi }
func (m regMap) hostWritable(a int) bool {
	return in(a, int(m.hostBase), m.hostEnd()) || in(a, int(m.divertBase), m.divertEnd())
}

func (m regMap) validate() error {
	type blk struct {
		name   string
		lo, hi int
	}
	bs := []blk{{"host", int(m.hostBase), m.hostEnd()}, {"divert", int(m.divertBase), m.divertEnd()}, {"plc", int(m.plcBase), m.plcEnd()}}
	for i := range bs {
		if bs[i].hi > 0x10000 {
			return fmt.Errorf("modbus map: %s block %d..%d beyond register 65535", bs[i].name, bs[i].lo, bs[i].hi-1)
		}
		for j := i + 1; j < len(bs); j++ {
			if bs[i].lo < bs[j].hi && bs[j].lo < bs[i].hi {
				return fmt.Errorf("modbus map: %s block %d..%d overlaps %s block %d..%d",
					bs[i].name, bs[i].lo, bs[i].hi-1, bs[j].name, bs[j].lo, bs[j].hi-1)
			}
		}
	}
	return nil
}

// readRegsLocked fills out with registers addr..addr+len(out)-1. Reserved
// registers and gaps between the blocks read 0; it reports false if any
// address lies outside the map.
func (p *PLC) readRegsLocked(m regMap, addr int, out []uint16) bool {
	if addr < m.readLow() || addr+len(out) > m.readHigh() {
		return false
	}
	for i := range out {
		out[i] = p.regLocked(m, addr+i)
	}
	return true
}

func hi16(v uint32) uint16 { return uint16(v >> 16) }
func lo16(v uint32) uint16 { return uint16(v) }

// tidWords is a TID as the slot's second and third registers.
func (m regMap) tidWords(v uint32) (uint16, uint16) {
	if m.lowFirst {
		return lo16(v), hi16(v)
	}
	return hi16(v), lo16(v)
}

func (p *PLC) regLocked(m regMap, a int) uint16 {
	switch {
	case in(a, int(m.hostBase), m.hostEnd()):
		switch a - int(m.hostBase) {
		case 0:
			return p.hostHB
		case 1:
			return p.hostState
		default:
			return p.planVersion
		}
	case in(a, int(m.divertBase), m.divertEnd()):
		o := a - int(m.divertBase)
		s := p.divert[o/slotWords]
		w1, w2 := m.tidWords(s.TID)
		return [slotWords]uint16{s.Seq, w1, w2, s.Chute, s.Reason}[o%slotWords]
	case in(a, int(m.plcBase), m.plcEnd()):
		o := a - int(m.plcBase)
		switch {
		case o == offHeartbeat:
			return p.heartbeat
		case o == offSorterState:
			return uint16(p.state)
		case o == offAckSeq:
			return p.ackSeq
		case o == offConfirmCount:
			return p.confirmCount
		case o == offFaultCode:
			return p.faultCodeLocked()
		case o == offChuteCount:
			return uint16(p.cfg.Chutes)
		case o < offChuteBits+m.chuteWords:
			return bitsWord(p.full, o-offChuteBits)
		case o < m.confirmOff():
			return bitsWord(p.disabled, o-offChuteBits-m.chuteWords)
		case o < m.bootOff():
			c := o - m.confirmOff()
			s := p.confirm[c/slotWords]
			w1, w2 := m.tidWords(s.TID)
			return [slotWords]uint16{s.Num, w1, w2, s.Chute, s.Result}[c%slotWords]
		default:
			return p.bootID
		}
	}
	return 0
}

// bitsWord packs chutes 16w+1..16w+16: chute n is bit (n-1) mod 16.
func bitsWord(b []bool, w int) uint16 {
	var v uint16
	for i := 0; i < 16; i++ {
		if k := w*16 + i; k < len(b) && b[k] {
			v |= 1 << i
		}
	}
	return v
}

// writeRegsLocked applies a host write. Every address must be a host
// register (reserved registers and the PLC block are refused as a whole).
// With byRegister, a PLC scan runs after every register but the last.
func (p *PLC) writeRegsLocked(m regMap, addr int, vals []uint16, byRegister bool) bool {
	for i := range vals {
		if !m.hostWritable(addr + i) {
			return false
		}
	}
	for i, v := range vals {
		if i > 0 && byRegister && p.running {
			p.scanLocked()
			p.notifyLocked()
		}
		a := addr + i
		if in(a, int(m.hostBase), m.hostEnd()) {
			switch a - int(m.hostBase) {
			case 0:
				p.writeHostHeartbeatLocked(v)
			case 1:
				p.hostState = v
			default:
				p.planVersion = v
			}
			continue
		}
		o := a - int(m.divertBase)
		s := &p.divert[o/slotWords]
		switch o % slotWords {
		case 0:
			s.Seq = v
		case 1, 2:
			if (o%slotWords == 1) != m.lowFirst {
				s.TID = uint32(v)<<16 | s.TID&0xffff
			} else {
				s.TID = s.TID&0xffff0000 | uint32(v)
			}
		case 3:
			s.Chute = v
		case 4:
			s.Reason = v
		}
	}
	p.afterHostWriteLocked()
	return true
}

// modbusFront answers Modbus requests from the PLC's register image and
// carries the Modbus-side faults.
type modbusFront struct {
	plc        *PLC
	m          regMap
	unit       byte
	byRegister bool
	idle       time.Duration // how long a held request waits at most
	log        zerolog.Logger
	done       <-chan struct{}

	mu        sync.Mutex
	delayNext time.Duration
	delayOn   ExceptionTarget
	excCode   byte
	excLeft   int
	excOn     ExceptionTarget
	requests  uint64
	// clients are the connections (client address and port) that sent a
	// request, to show a client that kept its connection; at most
	// maxClientsSeen are remembered, clientsSeen counts them all.
	clients     map[string]struct{}
	clientsSeen uint64
	// silentUnit and mute are non-nil while the fault is on; switching it
	// off closes the channel and so releases the requests held.
	silentUnit, mute chan struct{}
	held             uint64 // requests left unanswered so far
}

var errByException = map[byte]error{
	1: mbserver.ErrIllegalFunction, 2: mbserver.ErrIllegalDataAddress, 3: mbserver.ErrIllegalDataValue,
	4: mbserver.ErrServerDeviceFailure, 5: mbserver.ErrAcknowledge, 6: mbserver.ErrServerDeviceBusy,
	8: mbserver.ErrMemoryParityError, 0x0a: mbserver.ErrGWPathUnavailable, 0x0b: mbserver.ErrGWTargetFailedToRespond,
}

// ExceptionTarget says which requests a Modbus fault hits: the ones
// InjectModbusExceptionOn answers with the exception, or the one whose
// reply DelayNextReplyOn holds back.
type ExceptionTarget uint8

// Exception targets.
const (
	ExceptionAny    ExceptionTarget = iota // every request
	ExceptionReads                         // function 3 only
	ExceptionWrites                        // function 16 (and 6) only
	ExceptionDivert                        // writes that touch the divert ring only
)

// targets reports whether a fault aimed at on applies to a request of kind.
func targets(on, kind ExceptionTarget) bool {
	return on == ExceptionAny || on == kind || on == ExceptionWrites && kind == ExceptionDivert
}

const maxClientsSeen = 4096

// SupportedException reports whether InjectModbusException can send code.
func SupportedException(code byte) bool { _, ok := errByException[code]; return ok }

// setHold switches a hold fault (silentUnit or mute) on or off.
func (f *modbusFront) setHold(ch *chan struct{}, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case on && *ch == nil:
		*ch = make(chan struct{})
	case !on && *ch != nil:
		close(*ch)
		*ch = nil
	}
}

// preamble applies the per-request faults: silence, then an injected
// exception, both before the request touches the PLC. kind is the
// request's ExceptionTarget (reads or writes; ExceptionAny for the rest).
func (f *modbusFront) preamble(unit uint8, client string, kind ExceptionTarget) error {
	f.mu.Lock()
	mute, silent := f.mute, f.silentUnit
	if mute == nil && (unit == f.unit || silent == nil) {
		f.requests++
	}
	if _, ok := f.clients[client]; !ok {
		f.clientsSeen++
		if f.clients == nil {
			f.clients = make(map[string]struct{})
		}
		if len(f.clients) < maxClientsSeen {
			f.clients[client] = struct{}{}
		}
	}
	f.mu.Unlock()
	switch {
	case mute != nil:
		return f.hold(mute, "modbus request held: mute")
	case unit != f.unit && silent != nil:
		return f.hold(silent, "modbus request for another unit id held: silent")
	case unit != f.unit:
		// Another unit id: a gateway would say its target did not answer.
		return mbserver.ErrGWTargetFailedToRespond
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.excLeft > 0 && targets(f.excOn, kind) {
		f.excLeft--
		return errByException[f.excCode]
	}
	return nil
}

// hold leaves a request unanswered until release is closed, the sim stops
// or the idle timeout passes. The library cannot skip a reply and go on
// with the connection, so the connection is then closed without one
// (ErrProtocolError makes the library hang up).
func (f *modbusFront) hold(release <-chan struct{}, msg string) error {
	f.mu.Lock()
	f.held++
	first := f.held == 1
	f.mu.Unlock()
	if first {
		f.log.Debug().Msg(msg)
	}
	t := time.NewTimer(f.idle)
	defer t.Stop()
	select {
	case <-release:
	case <-f.done:
	case <-t.C:
	}
	return mbserver.ErrProtocolError
}

// delay holds the reply back once, after the request took effect: the client
// times out, then the late reply arrives on its socket. Only a request of
// the target kind (see DelayNextReplyOn) takes the delay.
func (f *modbusFront) delay(kind ExceptionTarget) {
	f.mu.Lock()
	d := f.delayNext
	if d <= 0 || !targets(f.delayOn, kind) {
		f.mu.Unlock()
		return
	}
	f.delayNext = 0
	f.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-f.done:
	}
}

// HandleHoldingRegisters serves function 3 (read anywhere in the map) and
// function 16 (write host registers only). Function 6 reaches here too (the
// library does not tell it apart from a one-register 16) and is treated the same.
func (f *modbusFront) HandleHoldingRegisters(req *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	kind := ExceptionReads
	if req.IsWrite {
		kind = ExceptionWrites
		if int(req.Addr) < f.m.divertEnd() && int(req.Addr)+len(req.Args) > int(f.m.divertBase) {
			kind = ExceptionDivert
		}
	}
	if err := f.preamble(req.UnitId, req.ClientAddr, kind); err != nil {
		return nil, err
	}
	defer f.delay(kind)
	p := f.plc
	if req.IsWrite {
		p.mu.Lock()
		ok := p.writeRegsLocked(f.m, int(req.Addr), req.Args, f.byRegister)
		p.mu.Unlock()
		if !ok {
			return nil, mbserver.ErrIllegalDataAddress
		}
		return nil, nil
	}
	out := make([]uint16, req.Quantity)
	p.mu.Lock()
	ok := p.readRegsLocked(f.m, int(req.Addr), out)
	if a := int(f.m.plcBase) + offConfirmCount; ok && in(a, int(req.Addr), int(req.Addr)+len(out)) {
		p.markReadLocked()
	}
	p.mu.Unlock()
	if !ok {
		return nil, mbserver.ErrIllegalDataAddress
	}
	return out, nil
}

// HandleCoils refuses coil functions: the map has none.
func (f *modbusFront) HandleCoils(req *mbserver.CoilsRequest) ([]bool, error) {
	if err := f.preamble(req.UnitId, req.ClientAddr, ExceptionAny); err != nil {
		return nil, err
	}
	return nil, mbserver.ErrIllegalFunction
}

// HandleDiscreteInputs refuses function 2.
func (f *modbusFront) HandleDiscreteInputs(req *mbserver.DiscreteInputsRequest) ([]bool, error) {
	if err := f.preamble(req.UnitId, req.ClientAddr, ExceptionAny); err != nil {
		return nil, err
	}
	return nil, mbserver.ErrIllegalFunction
}

// HandleInputRegisters refuses function 4: everything is a holding register.
func (f *modbusFront) HandleInputRegisters(req *mbserver.InputRegistersRequest) ([]uint16, error) {
	if err := f.preamble(req.UnitId, req.ClientAddr, ExceptionAny); err != nil {
		return nil, err
	}
	return nil, mbserver.ErrIllegalFunction
}

// modbusServer runs simonvetter's server. The library binds its own listener
// and exposes no connections, so dropping every connection is done by
// stopping the server and starting a fresh one on the same address (a fresh
// instance, since the library's Stop/Start reuse would race on its fields).
type modbusServer struct {
	cfg   ModbusConfig
	front *modbusFront
	log   zerolog.Logger

	mu       sync.Mutex
	addr     string
	srv      *mbserver.ModbusServer
	noAccept *noAcceptListener // instead of srv while NeverAccept is on
}

// LibraryLogWriter returns a writer for the standard library's log package
// that puts each line into l at debug level. gopcua's server prints its
// nodeset import and "Started listening" through the global standard
// logger, which a library must not redirect; a binary that runs the sim
// does: log.SetFlags(0); log.SetOutput(fieldbussim.LibraryLogWriter(l)).
func LibraryLogWriter(l zerolog.Logger) io.Writer { return zlWriter{l} }

// zlWriter feeds the library's log.Logger into zerolog at debug level.
type zlWriter struct{ log zerolog.Logger }

func (w zlWriter) Write(b []byte) (int, error) {
	w.log.Debug().Msg(strings.TrimSpace(string(b)))
	return len(b), nil
}

// bind reserves the address: the library listens by URL, so a ":0" port is
// first chosen by the OS here, released, and handed to the library. Should
// another process take the port in that window, a new one is chosen.
func (s *modbusServer) bind() error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var ln net.Listener
		ln, err = net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("modbus listen %s: %w", s.cfg.Addr, err)
		}
		s.addr = ln.Addr().String()
		if err = ln.Close(); err != nil {
			return fmt.Errorf("modbus listen %s: %w", s.cfg.Addr, err)
		}
		if s.cfg.NeverAccept {
			s.noAccept, err = listenNoAccept(s.addr)
		} else {
			err = s.startLocked(1)
		}
		if err == nil {
			return nil
		}
		if _, port, _ := net.SplitHostPort(s.cfg.Addr); port != "0" {
			break // a fixed port: the caller asked for exactly this one
		}
	}
	return err
}

// startLocked starts a fresh library server on s.addr, trying up to
// attempts times 10ms apart (after a drop the port may linger a moment).
func (s *modbusServer) startLocked(attempts int) error {
	var err error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		var srv *mbserver.ModbusServer
		srv, err = mbserver.NewServer(&mbserver.ServerConfiguration{
			URL:        "tcp://" + s.addr,
			Timeout:    s.cfg.IdleTimeout,
			MaxClients: uint(s.cfg.MaxClients),
			Logger:     log.New(zlWriter{s.log}, "", 0),
		}, s.front)
		if err != nil {
			return fmt.Errorf("modbus server %s: %w", s.addr, err)
		}
		if err = srv.Start(); err == nil {
			s.srv = srv
			return nil
		}
	}
	return fmt.Errorf("modbus server %s: %w", s.addr, err)
}

// dropConnections closes every client socket; the server listens again at
// once on the same address.
func (s *modbusServer) dropConnections() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noAccept != nil {
		return nil // no connection to drop
	}
	if s.srv == nil {
		return errNotRunning
	}
	_ = s.srv.Stop()
	s.srv = nil
	return s.startLocked(50)
}

// setNeverAccept swaps the server for a listener that completes no
// connection (every client connection drops), or back.
func (s *modbusServer) setNeverAccept(on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		return errNotRunning
	}
	if on == (s.noAccept != nil) {
		return nil
	}
	if on {
		if s.srv != nil {
			_ = s.srv.Stop()
			s.srv = nil
		}
		var err error
		for attempt := 0; attempt < 50; attempt++ {
			if attempt > 0 {
				time.Sleep(10 * time.Millisecond) // the port may linger a moment after Stop
			}
			if s.noAccept, err = listenNoAccept(s.addr); err == nil {
				return nil
			}
		}
		return err
	}
	s.noAccept.close()
	s.noAccept = nil
	return s.startLocked(50)
}

func (s *modbusServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		_ = s.srv.Stop()
		s.srv = nil
	}
	if s.noAccept != nil {
		s.noAccept.close()
		s.noAccept = nil
	}
}

// run serves until ctx is done.
func (s *modbusServer) run(ctx context.Context) error {
	<-ctx.Done()
	s.stop()
	return nil
}

var errNotRunning = errors.New("not running")
