package fieldbussim

// The OPC UA front of the emulated PLC, on gopcua's server package (v0.8.0).
//
// gopcua's server is young; this file works around what it lacks, each
// workaround inside this file and named here so it can be dropped when the
// library catches up:
//
//   - Secured channels: gopcua starts every server channel in security mode
//     None, so it cannot decrypt a client's secured OpenSecureChannel
//     request (Basic256Sha256 fails with a decoding error). Clients connect
//     to our TCP proxy; it answers the Hello, reads the policy URI from the
//     clear asymmetric header of the OPN message and relays None channels
//     to gopcua's own listener (internal loopback port) and secured ones to
//     our channel broker, which makes the channel with policy and key set
//     and dispatches requests to the same handlers.
//   - Restart and shutdown: gopcua closes a channel by sending
//     CloseSecureChannel and then waits up to 10 s for the client to hang
//     up; the proxy cuts the TCP connections instead. Restart keeps the
//     gopcua server object and forgets every session (our session guard
//     refuses the old tokens) rather than parsing the nodeset again. All subscriptions are
//     deleted and all secure channels closed at shutdown, which the library
//     leaves running (goroutine leaks).
//   - Sorter namespace: our own server.NameSpace, so reads serve one
//     consistent PLC snapshot and writes are typed (BadTypeMismatch) and go
//     to the PLC core, not into a generic attribute map.
//   - Write: our own handler. The library applies every node on its own and
//     has no notion of a divert command; we buffer TrackingId/Chute/Reason per
//     slot and hand the command to the PLC core when Seq is written.
//   - Notifications: the library's ChangeNotification blocks on a full
//     subscription queue while holding the monitored-item lock (it can
//     deadlock with a dying subscription). We queue without blocking and
//     retry a node on the next publish tick instead.
//   - Sessions: the library does not check that Read/Write/Subscribe come
//     from an activated session, nor OnlySecure, nor a client certificate
//     trust list. Every service is wrapped: it needs an activated session
//     bound to its secure channel, CreateSession enforces OnlySecure and the
//     trust list. gopcua's service types are unexported-field structs, so
//     bindService sets their one *server.Server field (checked by reflection
//     at start-up; a library change fails loudly instead of corrupting).
//   - Subscriptions: ids are len(map)+1 in the library, so they collide once
//     one is deleted; tombstones keep ids unique. Publishing intervals are
//     clamped to MinPublishingInterval (a 0 ms request would panic the
//     library's ticker).
//   - CreateMonitoredItems: our own. The library's takes the monitored-item
//     lock and then the subscription lock, the reverse of a dying
//     subscription's order, so it can deadlock the server; and it sends
//     initial values with a blocking send per item.
//   - Handler panics (nil sessions, unknown monitored item ids) are
//     recovered and answered with BadInternalError.
//   - GetEndpoints: the library lists only endpoints whose URL equals the
//     client's exactly, so a trailing "/", localhost or a host name got an
//     empty list. Ours answers every URL with the public endpoints (those on
//     the client's host first), as real servers do.
//   - CreateSession: the session timeout is revised to what the client
//     asked, clamped to 1 s..1 h (60 s for 0); ServerEndpoints is filled for
//     any URL the same way.
//
// Limits that remain: the server offers one secure mode (Sign or
// SignAndEncrypt, as configured); a channel opened in the other mode is
// closed after its OpenSecureChannel (gopcua's channel has no way to answer
// it with BadSecurityModeRejected). Sampling intervals are not honoured:
// a node is sent at most once per publishing interval, its newest value.
// The library prints its nodeset import and "Started listening" through the
// standard library's global logger, which a package must not redirect:
// binaries route it with LibraryLogWriter. Sessions are not expired.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"
	"github.com/gopcua/opcua/uasc"
	"github.com/rs/zerolog"
)

// OPC UA security settings (OPCUAConfig.Security).
const (
	SecurityNone           = "None"
	SecuritySign           = "Sign"
	SecuritySignAndEncrypt = "SignAndEncrypt"
)

// OPCUAConfig configures the OPC UA front of the PLC.
type OPCUAConfig struct {
	// Addr is the listen address ("" = off; "127.0.0.1:0" picks a port, kept
	// across Restart).
	Addr string
	// Namespace is the namespace URI (default "urn:sortgw:sorter").
	Namespace string
	// NodePrefix starts every string node id (default "Sorter").
	NodePrefix string
	// Security is "None" (default), "Sign" or "SignAndEncrypt"; the secure
	// ones offer Basic256Sha256 in that mode, and None too unless OnlySecure.
	Security   string
	OnlySecure bool
	// CertFile and KeyFile hold the server certificate (PEM or DER) and its
	// RSA key; empty: a self-signed one is generated in memory (or written
	// to CertDir when set).
	CertFile, KeyFile string
	CertDir           string
	// ApplicationURI of the server (default "urn:sortgw:fieldbus-sim"); it
	// is put into a generated certificate.
	ApplicationURI string
	// TrustedClientCerts are client certificate files (PEM or DER). When
	// set, a session on a secured channel must present one of them. Empty:
	// every client certificate is accepted (tests, commissioning).
	TrustedClientCerts []string
	// MinPublishingInterval is the shortest publishing interval granted
	// (default 10ms, what the contract promises).
	MinPublishingInterval time.Duration

	// extraNamespaces come before the sorter's (Quirks.ExtraNamespaces).
	extraNamespaces int
}

// ErrOPCUAConfig wraps OPC UA configuration errors.
var ErrOPCUAConfig = errors.New("opcua config")

// Validate fills defaults and checks the configuration.
func (c *OPCUAConfig) Validate() error {
	if c.Namespace == "" {
		c.Namespace = "urn:sortgw:sorter"
	}
	if c.NodePrefix == "" {
		c.NodePrefix = "Sorter"
	}
	if c.ApplicationURI == "" {
		c.ApplicationURI = "urn:sortgw:fieldbus-sim"
	}
	switch c.Security {
	case "":
		c.Security = SecurityNone
	case SecurityNone, SecuritySign, SecuritySignAndEncrypt:
	default:
		return fmt.Errorf("%w: security %q: want None, Sign or SignAndEncrypt", ErrOPCUAConfig, c.Security)
	}
	if c.OnlySecure && c.Security == SecurityNone {
		return fmt.Errorf("%w: only-secure with security None", ErrOPCUAConfig)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%w: cert file and key file go together", ErrOPCUAConfig)
	}
	if c.MinPublishingInterval == 0 {
		c.MinPublishingInterval = 10 * time.Millisecond
	}
	if c.MinPublishingInterval < time.Millisecond {
		return fmt.Errorf("%w: min publishing interval %v: want at least 1ms", ErrOPCUAConfig, c.MinPublishingInterval)
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("%w: addr %q: %w", ErrOPCUAConfig, c.Addr, err)
		}
	}
	return nil
}

// OPCUAStats are the OPC UA front's counters.
type OPCUAStats struct {
	Restarts uint64
	Sessions uint64 // sessions created
	// Writes counts WriteRequests; DivertCommands the divert commands handed
	// to the PLC (a Seq written).
	Writes         uint64
	DivertCommands uint64
	// NonConformingDiverts counts divert commands not written as the
	// contract asks (exactly the four nodes of one slot, Seq last).
	NonConformingDiverts uint64
	TypeMismatches       uint64
	// Refused counts services refused for want of an activated session, a
	// secure channel or a trusted certificate.
	Refused uint64
	// NotifyRetries counts notifications deferred because a subscription's
	// queue was full.
	NotifyRetries uint64
	// Panics counts recovered handler panics (library bugs).
	Panics uint64
}

type uaType uint8

const (
	uaUint16 uaType = iota
	uaUint32
	uaBoolArray
)

func (t uaType) typeID() ua.TypeID {
	switch t {
	case uaUint32:
		return ua.TypeIDUint32
	case uaBoolArray:
		return ua.TypeIDBoolean
	}
	return ua.TypeIDUint16
}

func (t uaType) dataType() *ua.NodeID {
	switch t {
	case uaUint32:
		return ua.NewNumericNodeID(0, id.UInt32)
	case uaBoolArray:
		return ua.NewNumericNodeID(0, id.Boolean)
	}
	return ua.NewNumericNodeID(0, id.UInt16)
}

// writeKind says what a write to a node does.
type writeKind uint8

const (
	wNone writeKind = iota
	wHostHeartbeat
	wHostState
	wPlanVersion
	wDivertTID
	wDivertChute
	wDivertReason
	wDivertSeq
)

// divertMem is the OPC UA side's memory of one divert slot: what the host
// wrote to TrackingId/Chute/Reason since its last Seq.
type divertMem struct {
	tid           uint32
	chute, reason uint16
	dirty         [3]bool // tid, chute, reason
}

// opcuaState is what reads and notifications are served from.
type opcuaState struct {
	snap PLCSnapshot
	mem  [RingSize]divertMem
	at   time.Time
}

// uaVar is one variable node of the sorter namespace.
type uaVar struct {
	name   string // full string id, e.g. "Sorter.Plc.Heartbeat"
	leaf   string
	parent string
	typ    uaType
	write  writeKind
	slot   int
	get    func(st *opcuaState) any
}

// opcuaServer is the PLC's OPC UA front.
type opcuaServer struct {
	cfg  OPCUAConfig
	plc  *PLC
	log  zerolog.Logger
	cert []byte
	key  *rsa.PrivateKey
	// trusted client certificates by thumbprint; nil = accept all
	trusted map[string]bool

	vars    []*uaVar
	byName  map[string]*uaVar
	folders []string // folder string ids, parents first

	ready     chan struct{}
	restartCh chan struct{}

	mu       sync.RWMutex // guards state, inst, ln, hosts, port, endpoint
	state    opcuaState
	inst     *uaInstance
	ln       net.Listener // the public listener (our proxy), kept across restarts
	hosts    []string     // advertised host names
	port     int
	endpoint string

	wg       sync.WaitGroup        // proxy goroutines
	pending  map[net.Conn]struct{} // accepted, not yet routed (guarded by mu)
	stopping bool                  // Run is returning (guarded by mu)
	down     atomic.Bool           // SetDown: every new connection is closed at once
	chanSeq  atomic.Uint32         // secure channel ids of our broker

	updMu sync.Mutex // serialises refresh (publisher vs write handler)

	stats struct {
		restarts, sessions, writes, diverts, nonConforming, typeMismatch, refused, notifyRetries, panics atomic.Uint64
	}
	listenOnce sync.Once
	listenErr  error
}

// uaInstance is one life of the gopcua server (Restart makes a new one).
type uaInstance struct {
	srv      *server.Server
	ns       *sorterNS
	ctx      context.Context
	cancel   context.CancelFunc
	noneAddr string         // gopcua's own listener (None channels)
	secLn    *uacp.Listener // our listener for secured channels (nil with security None)
	secAddr  string
	handlers map[uint16]server.Handler // the guarded handlers, for our broker
	wg       sync.WaitGroup            // our broker's goroutines
	// dispatchMu serialises service handling across gopcua's dispatcher and
	// ours, as gopcua's services expect one caller at a time.
	dispatchMu sync.Mutex

	mu       sync.Mutex
	channels map[*uasc.SecureChannel]bool // channel -> secured (not None); nil entry value = unknown
	known    map[*uasc.SecureChannel]bool // secured-ness computed
	sessions map[string]*uaSession        // by authentication token
	retry    map[*uaVar]bool              // notifications to retry
	conns    map[net.Conn]struct{}        // proxied connections, both sides
	closed   bool
	quiet    *atomic.Bool // silences the library's logger once stopping
}

type uaSession struct {
	sc        *uasc.SecureChannel
	activated bool
}

// newOPCUAServer builds the OPC UA front (cfg is validated here). It loads
// or generates the certificate when a secure mode is configured.
func newOPCUAServer(cfg OPCUAConfig, plc *PLC, log zerolog.Logger) (*opcuaServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkServiceLayout(); err != nil {
		return nil, err
	}
	o := &opcuaServer{cfg: cfg, plc: plc, log: log, ready: make(chan struct{}), restartCh: make(chan struct{}, 1),
		pending: map[net.Conn]struct{}{}}
	if cfg.Security != SecurityNone {
		var err error
		if cfg.CertFile != "" {
			if o.cert, err = LoadCertificate(cfg.CertFile); err != nil {
				return nil, fmt.Errorf("opcua: %w", err)
			}
			if o.key, err = LoadKey(cfg.KeyFile); err != nil {
				return nil, fmt.Errorf("opcua: %w", err)
			}
		} else {
			o.cert, o.key, err = GenerateCert(CertOptions{ApplicationURI: cfg.ApplicationURI})
			if err != nil {
				return nil, fmt.Errorf("opcua: %w", err)
			}
			if cfg.CertDir != "" {
				cf, _, err := WriteCertFiles(cfg.CertDir, "fieldbus-sim", o.cert, o.key)
				if err != nil {
					return nil, fmt.Errorf("opcua: %w", err)
				}
				log.Info().Str("cert", cf).Str("thumbprint", Thumbprint(o.cert)).Msg("opcua self-signed certificate written")
			}
		}
		if len(cfg.TrustedClientCerts) > 0 {
			o.trusted = map[string]bool{}
			for _, f := range cfg.TrustedClientCerts {
				der, err := LoadCertificate(f)
				if err != nil {
					return nil, fmt.Errorf("opcua: trusted client certificate: %w", err)
				}
				o.trusted[Thumbprint(der)] = true
			}
		}
	}
	o.buildVars(plc.Snapshot().ChuteCount)
	o.state.snap = plc.Snapshot()
	o.state.at = time.Now()
	return o, nil
}

// buildVars lays out the contract's address space.
func (o *opcuaServer) buildVars(chutes uint16) {
	p := o.cfg.NodePrefix
	o.byName = map[string]*uaVar{}
	o.folders = []string{p, p + ".Host", p + ".Divert"}
	for k := range RingSize {
		o.folders = append(o.folders, p+".Divert."+strconv.Itoa(k))
	}
	o.folders = append(o.folders, p+".Plc", p+".Confirm")
	for j := range RingSize {
		o.folders = append(o.folders, p+".Confirm."+strconv.Itoa(j))
	}
	o.folders = append(o.folders, p+".Chutes")
	add := func(parent, leaf string, typ uaType, w writeKind, slot int, get func(*opcuaState) any) {
		v := &uaVar{name: parent + "." + leaf, leaf: leaf, parent: parent, typ: typ, write: w, slot: slot, get: get}
		o.vars = append(o.vars, v)
		o.byName[v.name] = v
	}
	h := p + ".Host"
	add(h, "Heartbeat", uaUint16, wHostHeartbeat, 0, func(s *opcuaState) any { return s.snap.HostHeartbeat })
	add(h, "State", uaUint16, wHostState, 0, func(s *opcuaState) any { return s.snap.HostState })
	add(h, "PlanVersion", uaUint16, wPlanVersion, 0, func(s *opcuaState) any { return s.snap.PlanVersion })
	for k := range RingSize {
		d := p + ".Divert." + strconv.Itoa(k)
		add(d, "TrackingId", uaUint32, wDivertTID, k, func(s *opcuaState) any {
			if s.mem[k].dirty[0] {
				return s.mem[k].tid
			}
			return s.snap.Divert[k].TID
		})
		add(d, "Chute", uaUint16, wDivertChute, k, func(s *opcuaState) any {
			if s.mem[k].dirty[1] {
				return s.mem[k].chute
			}
			return s.snap.Divert[k].Chute
		})
		add(d, "Reason", uaUint16, wDivertReason, k, func(s *opcuaState) any {
			if s.mem[k].dirty[2] {
				return s.mem[k].reason
			}
			return s.snap.Divert[k].Reason
		})
		add(d, "Seq", uaUint16, wDivertSeq, k, func(s *opcuaState) any { return s.snap.Divert[k].Seq })
	}
	// Confirmation slots before Count: notifications go out in this order.
	for j := range RingSize {
		c := p + ".Confirm." + strconv.Itoa(j)
		add(c, "Num", uaUint16, wNone, j, func(s *opcuaState) any { return s.snap.Confirm[j].Num })
		add(c, "TrackingId", uaUint32, wNone, j, func(s *opcuaState) any { return s.snap.Confirm[j].TID })
		add(c, "Chute", uaUint16, wNone, j, func(s *opcuaState) any { return s.snap.Confirm[j].Chute })
		add(c, "Result", uaUint16, wNone, j, func(s *opcuaState) any { return s.snap.Confirm[j].Result })
	}
	add(p+".Confirm", "Count", uaUint16, wNone, 0, func(s *opcuaState) any { return s.snap.ConfirmCount })
	pl := p + ".Plc"
	add(pl, "Heartbeat", uaUint16, wNone, 0, func(s *opcuaState) any { return s.snap.Heartbeat })
	add(pl, "State", uaUint16, wNone, 0, func(s *opcuaState) any { return s.snap.SorterState })
	add(pl, "AckSeq", uaUint16, wNone, 0, func(s *opcuaState) any { return s.snap.AckSeq })
	add(pl, "FaultCode", uaUint16, wNone, 0, func(s *opcuaState) any { return s.snap.FaultCode })
	add(pl, "ChuteCount", uaUint16, wNone, 0, func(s *opcuaState) any { return s.snap.ChuteCount })
	add(pl, "BootId", uaUint16, wNone, 0, func(s *opcuaState) any { return s.snap.BootID })
	ch := p + ".Chutes"
	add(ch, "Full", uaBoolArray, wNone, 0, func(s *opcuaState) any { return s.snap.Full })
	add(ch, "Disabled", uaBoolArray, wNone, 0, func(s *opcuaState) any { return s.snap.Disabled })
}

// Listen binds the public listener and starts the server, so that Endpoint
// is valid; Run calls it if the caller did not. Only Run stops what Listen
// started.
//
// Clients connect to a small TCP proxy of ours, not to gopcua's listener:
// it lets a restart cut every connection at once (gopcua only sends a
// CloseSecureChannel and waits for the client) and it routes secured
// channels to our own channel broker, because gopcua v0.8.0 starts every
// server channel in security mode None and cannot decrypt a secured
// OpenSecureChannel request.
func (o *opcuaServer) Listen() error {
	o.listenOnce.Do(func() {
		ln, err := net.Listen("tcp", o.cfg.Addr)
		if err != nil {
			o.listenErr = fmt.Errorf("opcua: listen %s: %w", o.cfg.Addr, err)
			return
		}
		host, _, _ := net.SplitHostPort(o.cfg.Addr)
		port := ln.Addr().(*net.TCPAddr).Port
		var hosts []string
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			// gopcua matches the URL a client asks for exactly, so list every
			// name the host answers to.
			if hn, err := os.Hostname(); err == nil {
				hosts = append(hosts, hn)
			}
			hosts = append(hosts, "localhost", "127.0.0.1")
			if addrs, err := net.InterfaceAddrs(); err == nil {
				for _, a := range addrs {
					if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
						hosts = append(hosts, ipn.IP.String())
					}
				}
			}
		} else {
			hosts = []string{host}
		}
		o.mu.Lock()
		o.ln = ln
		o.hosts, o.port = hosts, port
		o.endpoint = "opc.tcp://" + net.JoinHostPort(hosts[0], strconv.Itoa(port))
		o.mu.Unlock()
		inst, err := o.start()
		if err != nil {
			ln.Close()
			o.listenErr = err
			return
		}
		o.mu.Lock()
		o.inst = inst
		o.mu.Unlock()
		o.log.Info().Str("endpoint", o.endpoint).Str("security", o.cfg.Security).Bool("only_secure", o.cfg.OnlySecure).
			Str("namespace", o.cfg.Namespace).Msg("opcua listening")
		close(o.ready)
	})
	return o.listenErr
}

// Ready is closed once the server listens.
func (o *opcuaServer) Ready() <-chan struct{} { return o.ready }

// Endpoint is the server's endpoint URL ("opc.tcp://127.0.0.1:port").
func (o *opcuaServer) Endpoint() string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.endpoint
}

// Certificate returns the server certificate (DER), nil with security None.
func (o *opcuaServer) Certificate() []byte { return o.cert }

// maxNodesPerRead is the MaxNodesPerRead the server advertises.
const maxNodesPerRead = 1000

// DropConnections cuts every client's TCP connection without restarting the
// server (a cable pulled): sessions and subscriptions survive on the
// server, a client may re-activate its session on a new channel. It returns
// the number of client connections cut.
func (o *opcuaServer) DropConnections() int {
	o.mu.RLock()
	inst := o.inst
	o.mu.RUnlock()
	if inst == nil {
		return 0
	}
	inst.mu.Lock()
	n := len(inst.conns) / 2
	for c := range inst.conns {
		c.Close()
	}
	inst.mu.Unlock()
	o.log.Warn().Int("connections", n).Msg("fault: opcua connections dropped")
	return n
}

// SetDown takes the PLC off the network (on) or back: while down every
// client connection is cut and every new one closed at once, before its
// Hello (a client sees its dial fail); sessions survive on the server as
// they do behind a pulled cable.
func (o *opcuaServer) SetDown(on bool) {
	if o.down.Swap(on) == on {
		return
	}
	if on {
		o.DropConnections()
	}
	o.log.Warn().Bool("down", on).Msg("fault: opcua server off the network")
}

// Restart stops the server and starts a new one on the same port (a PLC
// reboot of its OPC UA stack): every session and subscription is gone and
// clients must create them again. It returns at once; Run does the work.
func (o *opcuaServer) Restart() {
	select {
	case o.restartCh <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (o *opcuaServer) Stats() OPCUAStats {
	s := &o.stats
	return OPCUAStats{
		Restarts: s.restarts.Load(), Sessions: s.sessions.Load(), Writes: s.writes.Load(),
		DivertCommands: s.diverts.Load(), NonConformingDiverts: s.nonConforming.Load(),
		TypeMismatches: s.typeMismatch.Load(), Refused: s.refused.Load(),
		NotifyRetries: s.notifyRetries.Load(), Panics: s.panics.Load(),
	}
}

// Run serves until ctx is done: it proxies client connections, publishes
// PLC changes to monitored items and carries out restarts. It stops the
// server and every goroutine the library started for it before it returns.
func (o *opcuaServer) Run(ctx context.Context) error {
	if err := o.Listen(); err != nil {
		return err
	}
	changed, unsubscribe := o.plc.Changed()
	defer unsubscribe()
	retry := time.NewTicker(o.cfg.MinPublishingInterval)
	defer retry.Stop()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := o.ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					o.log.Error().Err(err).Msg("opcua accept")
				}
				return
			}
			o.wg.Add(1)
			go func() { defer o.wg.Done(); o.proxy(c) }()
		}
	}()
	defer func() {
		o.ln.Close()
		o.mu.Lock()
		inst := o.inst
		o.inst = nil
		o.stopping = true
		for c := range o.pending { // connections still in their Hello
			c.Close()
		}
		o.mu.Unlock()
		if inst != nil {
			o.stop(inst)
		}
		o.wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			o.refresh()
		case <-retry.C:
			o.retryNotifications()
		case <-o.restartCh:
			o.reset()
			o.stats.restarts.Add(1)
			o.log.Warn().Str("endpoint", o.Endpoint()).Msg("fault: opcua server restarted; sessions and subscriptions dropped")
			o.refresh()
		}
	}
}

// reset carries out Restart: every client connection is cut and every
// session, subscription and secure channel forgotten, as when the PLC's
// OPC UA stack restarts. The gopcua server object is kept: building one
// parses the library's standard nodeset (a second, several under -race),
// and a client sees the same either way: its connection drops, its session
// is unknown (BadSessionIDInvalid) and its subscriptions are gone.
func (o *opcuaServer) reset() {
	o.mu.RLock()
	inst := o.inst
	o.mu.RUnlock()
	if inst == nil {
		return
	}
	inst.dispatchMu.Lock() // no service runs while the state goes
	defer inst.dispatchMu.Unlock()
	inst.mu.Lock()
	for c := range inst.conns {
		c.Close()
	}
	chans := make([]*uasc.SecureChannel, 0, len(inst.channels))
	for sc := range inst.channels {
		chans = append(chans, sc)
	}
	clear(inst.channels)
	clear(inst.known)
	clear(inst.sessions)
	clear(inst.retry)
	inst.mu.Unlock()
	for _, sc := range chans {
		sc.Close()
	}
	deleteSubscriptions(inst.srv.SubscriptionService)
}

func deleteSubscriptions(ss *server.SubscriptionService) {
	if ss == nil {
		return
	}
	ss.Mu.Lock()
	ids := make([]uint32, 0, len(ss.Subs))
	for id := range ss.Subs {
		ids = append(ids, id)
	}
	ss.Mu.Unlock()
	for _, id := range ids {
		ss.DeleteSubscription(id)
	}
}

// refresh takes a new PLC snapshot and notifies the monitored items of every
// node whose value changed (confirmation slots before Count).
func (o *opcuaServer) refresh() {
	o.updMu.Lock()
	defer o.updMu.Unlock()
	snap := o.plc.Snapshot()
	o.mu.Lock()
	old := o.state
	if snap.BootID != old.snap.BootID {
		// Cold start: the PLC's memory, our divert buffers with it, is gone.
		o.state.mem = [RingSize]divertMem{}
	}
	o.state.snap = snap
	o.state.at = time.Now()
	inst := o.inst
	var changed []*uaVar
	for _, v := range o.vars {
		if !valueEqual(v.get(&old), v.get(&o.state)) {
			changed = append(changed, v)
		}
	}
	o.mu.Unlock()
	if inst != nil && len(changed) > 0 {
		o.notify(inst, changed)
	}
}

func valueEqual(a, b any) bool {
	if x, ok := a.([]bool); ok {
		y, _ := b.([]bool)
		return slices.Equal(x, y)
	}
	return a == b
}

// notify queues a data-change notification for every monitored item of vars
// without blocking; a full subscription queue defers the node to the next
// retry tick (its newest value is sent then).
func (o *opcuaServer) notify(inst *uaInstance, vars []*uaVar) {
	mis := inst.srv.MonitoredItemService
	if mis == nil {
		return
	}
	var deferred []*uaVar
	mis.Mu.Lock()
	for _, v := range vars {
		items := mis.Nodes[inst.ns.nodeID(v.name).String()]
		for _, it := range items {
			if it == nil || it.Sub == nil || it.Req == nil || it.Req.ItemToMonitor == nil {
				continue
			}
			n := &ua.MonitoredItemNotification{
				ClientHandle: it.Req.RequestedParameters.ClientHandle,
				Value:        inst.ns.Attribute(inst.ns.nodeID(v.name), it.Req.ItemToMonitor.AttributeID),
			}
			select {
			case it.Sub.NotifyChannel <- n:
			default:
				deferred = append(deferred, v)
				o.stats.notifyRetries.Add(1)
			}
		}
	}
	mis.Mu.Unlock()
	if len(deferred) > 0 {
		inst.mu.Lock()
		for _, v := range deferred {
			inst.retry[v] = true
		}
		inst.mu.Unlock()
	}
}

func (o *opcuaServer) retryNotifications() {
	o.mu.RLock()
	inst := o.inst
	o.mu.RUnlock()
	if inst == nil {
		return
	}
	inst.mu.Lock()
	if len(inst.retry) == 0 {
		inst.mu.Unlock()
		return
	}
	var vars []*uaVar
	for _, v := range o.vars { // keep the address-space order
		if inst.retry[v] {
			vars = append(vars, v)
		}
	}
	clear(inst.retry)
	inst.mu.Unlock()
	o.notify(inst, vars)
}

// freeLoopbackPort asks the OS for a free port on 127.0.0.1. gopcua
// listens on the URL it advertises, so the port must be known up front.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start builds and launches the gopcua server.
func (o *opcuaServer) start() (*uaInstance, error) {
	inst, err := o.build()
	if err != nil {
		return nil, err
	}
	return inst, o.launch(inst)
}

// build makes one gopcua server life, not yet listening: gopcua's listener
// will be on an internal loopback port for None channels, ours for secured
// channels. (Building parses gopcua's whole standard nodeset: about a
// second, so a restart builds before it stops the old server.)
func (o *opcuaServer) build() (*uaInstance, error) {
	o.mu.RLock()
	hosts, port := o.hosts, o.port
	o.mu.RUnlock()
	internal, err := freeLoopbackPort()
	if err != nil {
		return nil, fmt.Errorf("opcua: internal port: %w", err)
	}
	quiet := new(atomic.Bool)
	// gopcua listens on the first endpoint and advertises them all; a client
	// asking for the public URL is only shown the public endpoints.
	opts := []server.Option{server.EndPoint("127.0.0.1", internal)}
	for _, h := range hosts {
		opts = append(opts, server.EndPoint(h, port))
	}
	opts = append(opts,
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.ServerName("sortgw fieldbus-sim"),
		server.ManufacturerName("sortgw"),
		server.ProductName("sortgw emulated sorter PLC"),
		server.SetLogger(gopcuaLogger{o.log.With().Str("lib", "gopcua").Logger(), quiet}),
	)
	if !o.cfg.OnlySecure {
		opts = append(opts, server.EnableSecurity("None", ua.MessageSecurityModeNone))
	}
	switch o.cfg.Security {
	case SecuritySign:
		opts = append(opts, server.EnableSecurity("Basic256Sha256", ua.MessageSecurityModeSign))
	case SecuritySignAndEncrypt:
		opts = append(opts, server.EnableSecurity("Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt))
	}
	if o.key != nil {
		opts = append(opts, server.PrivateKey(o.key), server.Certificate(o.cert))
	}
	srv := server.New(opts...)
	inst := &uaInstance{
		srv:      srv,
		quiet:    quiet,
		noneAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(internal)),
		channels: map[*uasc.SecureChannel]bool{},
		known:    map[*uasc.SecureChannel]bool{},
		sessions: map[string]*uaSession{},
		retry:    map[*uaVar]bool{},
		conns:    map[net.Conn]struct{}{},
		handlers: map[uint16]server.Handler{},
	}
	for i := range o.cfg.extraNamespaces {
		server.NewNodeNameSpace(srv, fmt.Sprintf("urn:fieldbus-sim:vendor:%d", i+1))
	}
	inst.ns = &sorterNS{o: o, name: o.cfg.Namespace}
	idx := srv.AddNamespace(inst.ns)
	inst.ns.build(uint16(idx))
	if ns0, err := srv.Namespace(0); err == nil {
		// Hang the Sorter folder under Objects so that browsing finds it.
		if objs := ns0.Objects(); objs != nil {
			objs.AddRef(inst.ns.root, server.RefTypeIDOrganizes, true)
		}
		// gopcua advertises MaxNodesPerRead 32 but serves any number; the
		// contract's "all new confirmation slots in one ReadRequest" can
		// take 65 nodes, so advertise what is served.
		ns0.AddNode(server.NewNode(
			ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead),
			server.Attributes{
				ua.AttributeIDBrowseName: server.DataValueFromValue(&ua.QualifiedName{Name: "MaxNodesPerRead"}),
				ua.AttributeIDNodeClass:  server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			}, nil,
			func() *ua.DataValue { return server.DataValueFromValue(uint32(maxNodesPerRead)) },
		))
	}
	o.registerHandlers(inst)
	return inst, nil
}

// launch starts a built server life listening.
func (o *opcuaServer) launch(inst *uaInstance) error {
	ctx, cancel := context.WithCancel(context.Background())
	inst.ctx, inst.cancel = ctx, cancel
	if o.key != nil {
		l, err := uacp.Listen(ctx, "opc.tcp://127.0.0.1:0", nil)
		if err != nil {
			cancel()
			return fmt.Errorf("opcua: secure listener: %w", err)
		}
		inst.secLn, inst.secAddr = l, l.Addr().String()
	}
	if err := inst.srv.Start(ctx); err != nil {
		cancel()
		if inst.secLn != nil {
			inst.secLn.Close()
		}
		return fmt.Errorf("opcua: start on %s: %w", inst.noneAddr, err)
	}
	if inst.secLn != nil {
		inst.wg.Add(1)
		go func() { defer inst.wg.Done(); o.acceptSecure(inst) }()
	}
	return nil
}

// stop ends one server life and every goroutine the library runs for it.
func (o *opcuaServer) stop(inst *uaInstance) {
	inst.quiet.Store(true)
	// Cut the clients first: gopcua's channel readers see EOF at once
	// instead of waiting (up to 10 s) for the client to hang up.
	inst.mu.Lock()
	inst.closed = true
	for c := range inst.conns {
		c.Close()
	}
	inst.mu.Unlock()
	if inst.secLn != nil {
		inst.secLn.Close()
	}
	// Closing the server closes its listener and channels and waits for
	// their readers; its dispatcher (ctx) must still run then, as a reader
	// may be handing it a last message.
	if err := inst.srv.Close(); err != nil {
		o.log.Debug().Err(err).Msg("opcua close")
	}
	// Channels whose client left are no longer the library's, but their
	// token-expiry goroutines run until the channel is closed.
	inst.mu.Lock()
	chans := make([]*uasc.SecureChannel, 0, len(inst.channels))
	for sc := range inst.channels {
		chans = append(chans, sc)
	}
	inst.mu.Unlock()
	for _, sc := range chans {
		sc.Close()
	}
	deleteSubscriptions(inst.srv.SubscriptionService)
	inst.cancel()
	inst.wg.Wait()
}

// ---- the front proxy and the secure channel broker ----

// proxy routes one client connection: it reads the Hello and the
// OpenSecureChannel header to learn the channel's security policy, then
// relays the bytes to gopcua's listener (None) or ours (secured).
func (o *opcuaServer) proxy(c net.Conn) {
	o.mu.Lock()
	if o.stopping || o.down.Load() {
		o.mu.Unlock()
		c.Close()
		return
	}
	o.pending[c] = struct{}{}
	o.mu.Unlock()
	hello, opn, secured, err := sniffPolicy(c)
	o.mu.Lock()
	delete(o.pending, c)
	o.mu.Unlock()
	o.mu.RLock()
	inst := o.inst
	o.mu.RUnlock()
	if err != nil || inst == nil {
		if err != nil {
			o.log.Debug().Err(err).Str("peer", c.RemoteAddr().String()).Msg("opcua connection dropped before a channel")
		}
		c.Close()
		return
	}
	target := inst.noneAddr
	if secured {
		if inst.secAddr == "" {
			o.stats.refused.Add(1)
			o.log.Warn().Str("peer", c.RemoteAddr().String()).Msg("opcua secured channel refused: server has security None")
			c.Close()
			return
		}
		target = inst.secAddr
	}
	up, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		o.log.Debug().Err(err).Msg("opcua proxy dial")
		c.Close()
		return
	}
	inst.mu.Lock()
	if inst.closed {
		inst.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	inst.conns[c], inst.conns[up] = struct{}{}, struct{}{}
	inst.mu.Unlock()
	defer func() {
		c.Close()
		up.Close()
		inst.mu.Lock()
		delete(inst.conns, c)
		delete(inst.conns, up)
		inst.mu.Unlock()
	}()
	// Replay the Hello upstream and drop its Acknowledge: the client has ours.
	up.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := up.Write(hello); err != nil {
		return
	}
	if ack, err := readMessage(up, 1<<16); err != nil || string(ack[:4]) != "ACKF" {
		o.log.Debug().Err(err).Msg("opcua proxy: no acknowledge upstream")
		return
	}
	up.SetDeadline(time.Time{})
	if _, err := up.Write(opn); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(c, up)
		c.Close()
	}()
	io.Copy(up, c)
	up.Close()
	<-done
}

// readMessage reads one UACP message (8-byte header with its size) whole.
func readMessage(c net.Conn, max int) ([]byte, error) {
	h := make([]byte, 8)
	if _, err := io.ReadFull(c, h); err != nil {
		return nil, err
	}
	size := int(binary.LittleEndian.Uint32(h[4:]))
	if size < 8 || size > max {
		return nil, fmt.Errorf("opcua: %q message of %d bytes", h[:3], size)
	}
	b := make([]byte, size)
	copy(b, h)
	_, err := io.ReadFull(c, b[8:])
	return b, err
}

// ackMessage is the Acknowledge gopcua's server sends to every Hello.
func ackMessage() ([]byte, error) {
	body, err := ua.Encode(uacp.DefaultServerACK)
	if err != nil {
		return nil, err
	}
	h := uacp.Header{MessageType: "ACK", ChunkType: 'F', MessageSize: uint32(len(body) + 8)}
	hb, err := h.Encode()
	if err != nil {
		return nil, err
	}
	return append(hb, body...), nil
}

// sniffPolicy answers the client's Hello itself (the client waits for the
// Acknowledge before it opens a channel), then reads the start of the
// OpenSecureChannel message up to the security policy URI, which the
// asymmetric security header carries in clear. It returns the Hello and
// the OPN bytes read.
func sniffPolicy(c net.Conn) (hello, opn []byte, secured bool, err error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	hello, err = readMessage(c, 1<<16)
	if err != nil {
		return nil, nil, false, err
	}
	if string(hello[:4]) != "HELF" {
		return nil, nil, false, fmt.Errorf("opcua: first message %q, want HELF", hello[:4])
	}
	ack, err := ackMessage()
	if err != nil {
		return nil, nil, false, err
	}
	if _, err := c.Write(ack); err != nil {
		return nil, nil, false, err
	}
	// Message header (8), secure channel id (4), policy URI length (4).
	opn = make([]byte, 16)
	if _, err := io.ReadFull(c, opn); err != nil {
		return nil, nil, false, err
	}
	if string(opn[:3]) != "OPN" {
		return hello, opn, false, nil // let the server answer whatever it is
	}
	n := int(int32(binary.LittleEndian.Uint32(opn[12:])))
	if n <= 0 || n > 1024 {
		return hello, opn, false, nil
	}
	uri := make([]byte, n)
	if _, err := io.ReadFull(c, uri); err != nil {
		return nil, nil, false, err
	}
	return hello, append(opn, uri...), string(uri) != ua.SecurityPolicyURINone, nil
}

// secureMode is the message security mode of the secured endpoint.
func (o *opcuaServer) secureMode() ua.MessageSecurityMode {
	if o.cfg.Security == SecuritySign {
		return ua.MessageSecurityModeSign
	}
	return ua.MessageSecurityModeSignAndEncrypt
}

// acceptSecure serves secured channels with our own broker: gopcua's
// channel starts in mode None and would not decrypt the client's first
// message; ours starts with the policy and key set, and the client's
// OpenSecureChannel request then sets the mode (Sign or SignAndEncrypt).
func (o *opcuaServer) acceptSecure(inst *uaInstance) {
	for {
		conn, err := inst.secLn.Accept(inst.ctx)
		if err != nil {
			var op *net.OpError
			if errors.As(err, &op) || errors.Is(err, net.ErrClosed) || inst.ctx.Err() != nil {
				return
			}
			o.log.Debug().Err(err).Msg("opcua secure accept")
			continue
		}
		inst.wg.Add(1)
		go func() { defer inst.wg.Done(); o.serveSecure(inst, conn) }()
	}
}

func (o *opcuaServer) serveSecure(inst *uaInstance, conn *uacp.Conn) {
	defer conn.Close()
	cfg := &uasc.Config{
		SecurityPolicyURI: ua.SecurityPolicyURIBasic256Sha256,
		SecurityMode:      ua.MessageSecurityModeSignAndEncrypt,
		Certificate:       o.cert,
		LocalKey:          o.key,
		Lifetime:          uint32(time.Hour / time.Millisecond),
	}
	id := o.chanSeq.Add(1)
	sc, err := uasc.NewServerSecureChannel("", conn, cfg, make(chan error, 1), id, id, id)
	if err != nil {
		o.log.Error().Err(err).Msg("opcua secure channel")
		return
	}
	inst.mu.Lock()
	inst.channels[sc] = true
	inst.known[sc] = true
	inst.mu.Unlock()
	defer sc.Close()
	for {
		msg := sc.Receive(inst.ctx)
		if msg.Err != nil {
			if !errors.Is(msg.Err, io.EOF) && inst.ctx.Err() == nil {
				o.log.Debug().Err(msg.Err).Msg("opcua secure channel closed")
			}
			return
		}
		req := msg.Request()
		if req == nil {
			// An OpenSecureChannel (issue or renew), handled inside the
			// channel; it has set the client's mode in cfg. Only the
			// configured mode is offered.
			if want := o.secureMode(); cfg.SecurityMode != want {
				o.stats.refused.Add(1)
				o.log.Warn().Str("peer", conn.RemoteAddr().String()).Stringer("mode", cfg.SecurityMode).
					Stringer("offered", want).Msg("opcua secure channel refused: security mode not offered")
				return
			}
			continue
		}
		h := inst.handlers[ua.ServiceTypeID(req)]
		var resp ua.Response
		if h == nil {
			err = ua.StatusBadServiceUnsupported
		} else {
			resp, err = h(sc, req, msg.RequestID)
		}
		if err != nil {
			code, ok := err.(ua.StatusCode)
			if !ok {
				code = ua.StatusBadUnexpectedError
			}
			handle := uint32(0)
			if hdr := req.Header(); hdr != nil {
				handle = hdr.RequestHandle
			}
			resp = &ua.ServiceFault{ResponseHeader: responseHeader(handle, code)}
		}
		if resp == nil {
			continue // Publish: the subscription answers later
		}
		if err := sc.SendResponseWithContext(inst.ctx, msg.RequestID, resp); err != nil {
			return
		}
	}
}

// gopcuaLogger adapts zerolog to the library's printf-style logger, one level
// down: the library logs ordinary disconnects as errors.
// It goes quiet when the server stops: the library's goroutines log their
// exit after Close has returned, when the logger's owner may be gone.
type gopcuaLogger struct {
	l     zerolog.Logger
	quiet *atomic.Bool
}

func (g gopcuaLogger) Debug(msg string, args ...any) {}
func (g gopcuaLogger) Info(msg string, args ...any) {
	if !g.quiet.Load() {
		g.l.Debug().Msgf(msg, args...)
	}
}
func (g gopcuaLogger) Warn(msg string, args ...any) {
	if !g.quiet.Load() {
		g.l.Debug().Msgf(msg, args...)
	}
}
func (g gopcuaLogger) Error(msg string, args ...any) {
	if !g.quiet.Load() {
		g.l.Info().Msgf(msg, args...)
	}
}

// ---- the sorter namespace ----

// sorterNS is the contract's address space as a gopcua NameSpace.
type sorterNS struct {
	o     *opcuaServer
	name  string
	id    uint16
	root  *server.Node
	nodes map[string]*server.Node // folders by NodeID.String()
	vars  map[string]*uaVar       // variables by NodeID.String()
	kids  map[string][]string     // string id -> child string ids
}

func (ns *sorterNS) nodeID(name string) *ua.NodeID { return ua.NewStringNodeID(ns.id, name) }

func (ns *sorterNS) build(idx uint16) {
	ns.id = idx
	ns.nodes = map[string]*server.Node{}
	ns.vars = map[string]*uaVar{}
	ns.kids = map[string][]string{}
	for _, f := range ns.o.folders {
		leaf := f[strings.LastIndexByte(f, '.')+1:]
		n := server.NewNode(ns.nodeID(f), server.Attributes{
			ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassObject)),
			ua.AttributeIDBrowseName:  server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: idx, Name: leaf}),
			ua.AttributeIDDisplayName: server.DataValueFromValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: leaf}),
		}, nil, nil)
		ns.nodes[ns.nodeID(f).String()] = n
		if i := strings.LastIndexByte(f, '.'); i > 0 {
			ns.kids[f[:i]] = append(ns.kids[f[:i]], f)
		}
	}
	ns.root = ns.nodes[ns.nodeID(ns.o.cfg.NodePrefix).String()]
	for _, v := range ns.o.vars {
		ns.vars[ns.nodeID(v.name).String()] = v
		ns.kids[v.parent] = append(ns.kids[v.parent], v.name)
	}
}

// Name is the namespace URI.
func (ns *sorterNS) Name() string { return ns.name }

// AddNode is not supported: the address space is the contract's.
func (ns *sorterNS) AddNode(n *server.Node) *server.Node { return n }

// Node returns folder nodes and a minimal node for variables.
func (ns *sorterNS) Node(nid *ua.NodeID) *server.Node {
	if nid == nil {
		return nil
	}
	k := nid.String()
	if n := ns.nodes[k]; n != nil {
		return n
	}
	if v := ns.vars[k]; v != nil {
		return server.NewNode(nid, server.Attributes{
			ua.AttributeIDNodeClass:  server.DataValueFromValue(uint32(ua.NodeClassVariable)),
			ua.AttributeIDBrowseName: server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: ns.id, Name: v.leaf}),
		}, nil, nil)
	}
	return nil
}

// Objects returns the Sorter folder.
func (ns *sorterNS) Objects() *server.Node { return ns.root }

// Root returns the Sorter folder.
func (ns *sorterNS) Root() *server.Node { return ns.root }

// ID is the namespace index.
func (ns *sorterNS) ID() uint16 { return ns.id }

// SetID is called by the server when the namespace is added.
func (ns *sorterNS) SetID(i uint16) { ns.id = i }

func (ns *sorterNS) stringID(nid *ua.NodeID) (string, bool) {
	if nid == nil || nid.Namespace() != ns.id || nid.Type() != ua.NodeIDTypeString {
		return "", false
	}
	return nid.StringID(), true
}

func badValue(code ua.StatusCode) *ua.DataValue {
	return &ua.DataValue{
		EncodingMask:    ua.DataValueServerTimestamp | ua.DataValueStatusCode,
		ServerTimestamp: time.Now(),
		Status:          code,
	}
}

func goodValue(v any) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}
}

// Attribute serves reads and monitored-item samples.
func (ns *sorterNS) Attribute(nid *ua.NodeID, attr ua.AttributeID) *ua.DataValue {
	name, ok := ns.stringID(nid)
	if !ok {
		return badValue(ua.StatusBadNodeIDUnknown)
	}
	leaf := name[strings.LastIndexByte(name, '.')+1:]
	if _, isFolder := ns.nodes[nid.String()]; isFolder {
		switch attr {
		case ua.AttributeIDNodeID:
			return goodValue(nid)
		case ua.AttributeIDNodeClass:
			return goodValue(int32(ua.NodeClassObject))
		case ua.AttributeIDBrowseName:
			return goodValue(&ua.QualifiedName{NamespaceIndex: ns.id, Name: leaf})
		case ua.AttributeIDDisplayName:
			return goodValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: leaf})
		case ua.AttributeIDDescription:
			return goodValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: name})
		case ua.AttributeIDEventNotifier:
			return goodValue(byte(0))
		case ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask:
			return goodValue(uint32(0))
		}
		return badValue(ua.StatusBadAttributeIDInvalid)
	}
	v := ns.o.byName[name]
	if v == nil {
		return badValue(ua.StatusBadNodeIDUnknown)
	}
	switch attr {
	case ua.AttributeIDValue:
		ns.o.mu.RLock()
		val := v.get(&ns.o.state)
		at := ns.o.state.at
		ns.o.mu.RUnlock()
		if b, ok := val.([]bool); ok {
			val = slices.Clone(b) // the snapshot is replaced, never mutated; clone anyway for the encoder
		}
		return &ua.DataValue{
			EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
			Value:           ua.MustVariant(val),
			SourceTimestamp: at,
			ServerTimestamp: time.Now(),
		}
	case ua.AttributeIDNodeID:
		return goodValue(nid)
	case ua.AttributeIDNodeClass:
		return goodValue(int32(ua.NodeClassVariable))
	case ua.AttributeIDBrowseName:
		return goodValue(&ua.QualifiedName{NamespaceIndex: ns.id, Name: v.leaf})
	case ua.AttributeIDDisplayName:
		return goodValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: v.leaf})
	case ua.AttributeIDDescription:
		return goodValue(&ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: v.name})
	case ua.AttributeIDDataType:
		return goodValue(v.typ.dataType())
	case ua.AttributeIDValueRank:
		if v.typ == uaBoolArray {
			return goodValue(int32(1))
		}
		return goodValue(int32(-1))
	case ua.AttributeIDArrayDimensions:
		if v.typ == uaBoolArray {
			ns.o.mu.RLock()
			n := uint32(ns.o.state.snap.ChuteCount)
			ns.o.mu.RUnlock()
			return goodValue([]uint32{n})
		}
		return badValue(ua.StatusBadAttributeIDInvalid)
	case ua.AttributeIDAccessLevel, ua.AttributeIDUserAccessLevel:
		lvl := byte(ua.AccessLevelTypeCurrentRead)
		if v.write != wNone {
			lvl |= byte(ua.AccessLevelTypeCurrentWrite)
		}
		return goodValue(lvl)
	case ua.AttributeIDMinimumSamplingInterval:
		return goodValue(float64(ns.o.cfg.MinPublishingInterval) / float64(time.Millisecond))
	case ua.AttributeIDHistorizing:
		return goodValue(false)
	case ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask:
		return goodValue(uint32(0))
	}
	return badValue(ua.StatusBadAttributeIDInvalid)
}

// SetAttribute writes one node outside a WriteRequest (the library calls it
// only from its own Write handler, which ours replaces).
func (ns *sorterNS) SetAttribute(nid *ua.NodeID, attr ua.AttributeID, val *ua.DataValue) ua.StatusCode {
	res := ns.o.write([]*ua.WriteValue{{NodeID: nid, AttributeID: attr, Value: val}})
	return res[0]
}

// Browse lists a node's references: children (Organizes for folders,
// HasComponent for variables), the parent (inverse) and the type definition.
func (ns *sorterNS) Browse(bd *ua.BrowseDescription) *ua.BrowseResult {
	name, ok := ns.stringID(bd.NodeID)
	if !ok || (ns.nodes[bd.NodeID.String()] == nil && ns.vars[bd.NodeID.String()] == nil) {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	var refs []*ua.ReferenceDescription
	ref := func(target string, refType uint32, forward bool) {
		nid := ns.nodeID(target)
		leaf := target[strings.LastIndexByte(target, '.')+1:]
		class, typeDef := ua.NodeClassObject, uint32(id.FolderType)
		if ns.vars[nid.String()] != nil {
			class, typeDef = ua.NodeClassVariable, id.BaseDataVariableType
		}
		if !browseWants(bd, refType, forward, class) {
			return
		}
		refs = append(refs, &ua.ReferenceDescription{
			ReferenceTypeID: ua.NewNumericNodeID(0, refType),
			IsForward:       forward,
			NodeID:          ua.NewExpandedNodeID(nid, "", 0),
			BrowseName:      &ua.QualifiedName{NamespaceIndex: ns.id, Name: leaf},
			DisplayName:     &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: leaf},
			NodeClass:       class,
			TypeDefinition:  ua.NewNumericExpandedNodeID(0, typeDef),
		})
	}
	isVar := ns.vars[bd.NodeID.String()] != nil
	typeDef := uint32(id.FolderType)
	if isVar {
		typeDef = id.BaseDataVariableType
	}
	if browseWants(bd, id.HasTypeDefinition, true, ua.NodeClassObjectType|ua.NodeClassVariableType) {
		refs = append(refs, &ua.ReferenceDescription{
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HasTypeDefinition),
			IsForward:       true,
			NodeID:          ua.NewNumericExpandedNodeID(0, typeDef),
			BrowseName:      &ua.QualifiedName{Name: "Type"},
			DisplayName:     &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: "Type"},
			NodeClass:       ua.NodeClassObjectType,
			TypeDefinition:  ua.NewTwoByteExpandedNodeID(0),
		})
	}
	for _, k := range ns.kids[name] {
		rt := uint32(id.Organizes)
		if ns.vars[ns.nodeID(k).String()] != nil {
			rt = id.HasComponent
		}
		ref(k, rt, true)
	}
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		rt := uint32(id.Organizes)
		if isVar {
			rt = id.HasComponent
		}
		ref(name[:i], rt, false)
	}
	return &ua.BrowseResult{StatusCode: ua.StatusGood, References: refs}
}

// browseWants filters a reference by the browse description's direction,
// reference type (exact, or any hierarchical one under References /
// HierarchicalReferences) and node class mask.
func browseWants(bd *ua.BrowseDescription, refType uint32, forward bool, class ua.NodeClass) bool {
	switch bd.BrowseDirection {
	case ua.BrowseDirectionForward:
		if !forward {
			return false
		}
	case ua.BrowseDirectionInverse:
		if forward {
			return false
		}
	}
	if rt := bd.ReferenceTypeID; rt != nil && rt.IntID() != 0 {
		want := rt.IntID()
		switch {
		case want == refType:
		case want == id.References && bd.IncludeSubtypes:
		case want == id.HierarchicalReferences && bd.IncludeSubtypes && refType != id.HasTypeDefinition:
		default:
			return false
		}
	}
	if bd.NodeClassMask != 0 && bd.NodeClassMask&uint32(class) == 0 {
		return false
	}
	return true
}

// ---- writes ----

// write applies NodesToWrite in order and returns the per-node results.
func (o *opcuaServer) write(nodes []*ua.WriteValue) []ua.StatusCode {
	o.mu.RLock()
	inst := o.inst
	o.mu.RUnlock()
	results := make([]ua.StatusCode, len(nodes))
	failed := map[int]bool{} // slots with a refused node in this request
	touched := false
	for i, wv := range nodes {
		v, code := o.lookupWrite(inst, wv)
		if code != ua.StatusOK {
			results[i] = code
			if v != nil && v.write >= wDivertTID {
				failed[v.slot] = true
			}
			continue
		}
		val := wv.Value.Value.Value()
		touched = true
		switch v.write {
		case wHostHeartbeat:
			o.plc.WriteHostHeartbeat(val.(uint16))
		case wHostState:
			o.plc.WriteHostState(val.(uint16))
		case wPlanVersion:
			o.plc.WritePlanVersion(val.(uint16))
		case wDivertTID, wDivertChute, wDivertReason:
			o.mu.Lock()
			m := &o.state.mem[v.slot]
			switch v.write {
			case wDivertTID:
				m.tid, m.dirty[0] = val.(uint32), true
			case wDivertChute:
				m.chute, m.dirty[1] = val.(uint16), true
			default:
				m.reason, m.dirty[2] = val.(uint16), true
			}
			o.mu.Unlock()
		case wDivertSeq:
			if failed[v.slot] {
				// Another node of this command was refused: taking the
				// command would act on stale values the host thinks failed.
				results[i] = ua.StatusBadInvalidState
				continue
			}
			results[i] = o.commitDivert(v.slot, val.(uint16), nodes, i)
		}
	}
	if touched {
		o.refresh()
	}
	return results
}

// lookupWrite finds the variable a WriteValue targets and checks it.
func (o *opcuaServer) lookupWrite(inst *uaInstance, wv *ua.WriteValue) (*uaVar, ua.StatusCode) {
	if wv == nil || wv.NodeID == nil {
		return nil, ua.StatusBadNodeIDInvalid
	}
	var v *uaVar
	if inst != nil {
		if name, ok := inst.ns.stringID(wv.NodeID); ok {
			v = o.byName[name]
		}
		if v == nil {
			if n := inst.srv.Node(wv.NodeID); n != nil {
				return nil, ua.StatusBadNotWritable
			}
			return nil, ua.StatusBadNodeIDUnknown
		}
	}
	if v == nil {
		return nil, ua.StatusBadNodeIDUnknown
	}
	if wv.AttributeID != ua.AttributeIDValue {
		return v, ua.StatusBadNotWritable
	}
	if v.write == wNone {
		return v, ua.StatusBadNotWritable
	}
	if wv.IndexRange != "" {
		return v, ua.StatusBadWriteNotSupported
	}
	if wv.Value == nil || wv.Value.Value == nil || wv.Value.Value.Type() != v.typ.typeID() || wv.Value.Value.ArrayLength() > 0 {
		o.stats.typeMismatch.Add(1)
		return v, ua.StatusBadTypeMismatch
	}
	switch wv.Value.Value.Value().(type) {
	case uint16, uint32:
	default:
		o.stats.typeMismatch.Add(1)
		return v, ua.StatusBadTypeMismatch
	}
	return v, ua.StatusOK
}

// commitDivert hands slot's command to the PLC core: the buffered
// TrackingId/Chute/Reason (or what the slot held) with seq.
func (o *opcuaServer) commitDivert(slot int, seq uint16, nodes []*ua.WriteValue, seqIdx int) ua.StatusCode {
	o.mu.Lock()
	m := &o.state.mem[slot]
	d := o.state.snap.Divert[slot]
	if m.dirty[0] {
		d.TID = m.tid
	}
	if m.dirty[1] {
		d.Chute = m.chute
	}
	if m.dirty[2] {
		d.Reason = m.reason
	}
	*m = divertMem{}
	// WriteDivert under o.mu: a refresh in between must not show the slot
	// without its buffered values.
	err := o.plc.WriteDivert(slot, d.TID, d.Chute, d.Reason, seq)
	ns := (*sorterNS)(nil)
	if o.inst != nil {
		ns = o.inst.ns
	}
	o.mu.Unlock()
	if err != nil {
		o.log.Error().Err(err).Int("slot", slot).Msg("opcua divert")
		return ua.StatusBadInternalError
	}
	o.stats.diverts.Add(1)
	if !o.conformingDivert(ns, slot, nodes, seqIdx) {
		n := o.stats.nonConforming.Add(1)
		if n == 1 || n%1000 == 0 {
			o.log.Warn().Int("slot", slot).Uint16("seq", seq).Uint64("count", n).
				Msg("divert command not written as one request of the slot's four nodes with Seq last")
		}
	}
	return ua.StatusOK
}

// conformingDivert: the request holds exactly the four nodes of slot, Seq
// last, as the contract asks.
func (o *opcuaServer) conformingDivert(ns *sorterNS, slot int, nodes []*ua.WriteValue, seqIdx int) bool {
	if ns == nil || len(nodes) != 4 || seqIdx != 3 {
		return false
	}
	seen := map[writeKind]bool{}
	for _, wv := range nodes {
		name, ok := ns.stringID(wv.NodeID)
		v := o.byName[name]
		if !ok || v == nil || v.slot != slot || v.write < wDivertTID || seen[v.write] {
			return false
		}
		seen[v.write] = true
	}
	return true
}

// ---- service wrappers ----

// checkServiceLayout verifies, once, that gopcua's service structs are what
// bindService assumes: one field, srv *server.Server.
func checkServiceLayout() error {
	want := reflect.TypeOf((*server.Server)(nil))
	for _, t := range []reflect.Type{
		reflect.TypeOf(server.SessionService{}), reflect.TypeOf(server.AttributeService{}),
		reflect.TypeOf(server.DiscoveryService{}), reflect.TypeOf(server.ViewService{}),
		reflect.TypeOf(server.NodeManagementService{}), reflect.TypeOf(server.QueryService{}),
		reflect.TypeOf(server.MethodService{}),
	} {
		if t.NumField() != 1 || t.Field(0).Type != want || t.Size() != unsafe.Sizeof(uintptr(0)) {
			return fmt.Errorf("opcua: gopcua %s has changed layout; the service wrappers need updating", t.Name())
		}
	}
	return nil
}

// bindService returns a gopcua service bound to srv. The service structs hold
// only an unexported *server.Server (checked by checkServiceLayout), and the
// library offers no constructor for wrapping its handlers.
func bindService[T any](srv *server.Server) *T {
	t := new(T)
	*(**server.Server)(unsafe.Pointer(t)) = srv
	return t
}

// serviceOpt says how a wrapped service is guarded.
type serviceOpt uint8

const (
	noSession   serviceOpt = iota // discovery, session creation
	needSession                   // an activated session bound to this channel
)

func (o *opcuaServer) registerHandlers(inst *uaInstance) {
	srv := inst.srv
	disc := bindService[server.DiscoveryService](srv)
	sess := bindService[server.SessionService](srv)
	attr := bindService[server.AttributeService](srv)
	view := bindService[server.ViewService](srv)
	nm := bindService[server.NodeManagementService](srv)
	query := bindService[server.QueryService](srv)
	method := bindService[server.MethodService](srv)
	sub := func() *server.SubscriptionService { return srv.SubscriptionService } // made by Start
	mis := func() *server.MonitoredItemService { return srv.MonitoredItemService }

	reg := func(typeID uint16, opt serviceOpt, h server.Handler) {
		g := o.guard(inst, opt, h)
		srv.RegisterHandler(typeID, g)
		inst.handlers[typeID] = g
	}
	reg(id.FindServersRequest_Encoding_DefaultBinary, noSession, disc.FindServers)
	reg(id.FindServersOnNetworkRequest_Encoding_DefaultBinary, noSession, disc.FindServersOnNetwork)
	reg(id.GetEndpointsRequest_Encoding_DefaultBinary, noSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return o.getEndpoints(inst, r)
	})
	reg(id.RegisterServerRequest_Encoding_DefaultBinary, noSession, disc.RegisterServer)
	reg(id.RegisterServer2Request_Encoding_DefaultBinary, noSession, disc.RegisterServer2)

	reg(id.CreateSessionRequest_Encoding_DefaultBinary, noSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return o.createSession(inst, sess, sc, r, reqID)
	})
	reg(id.ActivateSessionRequest_Encoding_DefaultBinary, noSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return o.activateSession(inst, sess, sc, r, reqID)
	})
	reg(id.CloseSessionRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		resp, err := sess.CloseSession(sc, r, reqID)
		if err == nil {
			inst.mu.Lock()
			delete(inst.sessions, r.Header().AuthenticationToken.String())
			inst.mu.Unlock()
		}
		return resp, err
	})
	reg(id.CancelRequest_Encoding_DefaultBinary, needSession, sess.Cancel)

	reg(id.AddNodesRequest_Encoding_DefaultBinary, needSession, nm.AddNodes)
	reg(id.AddReferencesRequest_Encoding_DefaultBinary, needSession, nm.AddReferences)
	reg(id.DeleteNodesRequest_Encoding_DefaultBinary, needSession, nm.DeleteNodes)
	reg(id.DeleteReferencesRequest_Encoding_DefaultBinary, needSession, nm.DeleteReferences)

	reg(id.BrowseRequest_Encoding_DefaultBinary, needSession, view.Browse)
	reg(id.BrowseNextRequest_Encoding_DefaultBinary, needSession, view.BrowseNext)
	reg(id.TranslateBrowsePathsToNodeIDsRequest_Encoding_DefaultBinary, needSession, view.TranslateBrowsePathsToNodeIDs)
	reg(id.RegisterNodesRequest_Encoding_DefaultBinary, needSession, view.RegisterNodes)
	reg(id.UnregisterNodesRequest_Encoding_DefaultBinary, needSession, view.UnregisterNodes)

	reg(id.QueryFirstRequest_Encoding_DefaultBinary, needSession, query.QueryFirst)
	reg(id.QueryNextRequest_Encoding_DefaultBinary, needSession, query.QueryNext)

	reg(id.ReadRequest_Encoding_DefaultBinary, needSession, attr.Read)
	reg(id.HistoryReadRequest_Encoding_DefaultBinary, needSession, attr.HistoryRead)
	reg(id.WriteRequest_Encoding_DefaultBinary, needSession, o.handleWrite)
	reg(id.HistoryUpdateRequest_Encoding_DefaultBinary, needSession, attr.HistoryUpdate)

	reg(id.CallRequest_Encoding_DefaultBinary, needSession, method.Call)

	reg(id.CreateSubscriptionRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return o.createSubscription(sub(), sc, r, reqID)
	})
	reg(id.ModifySubscriptionRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return sub().ModifySubscription(sc, r, reqID)
	})
	reg(id.SetPublishingModeRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return sub().SetPublishingMode(sc, r, reqID)
	})
	reg(id.PublishRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return sub().Publish(sc, r, reqID)
	})
	reg(id.RepublishRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return sub().Republish(sc, r, reqID)
	})
	reg(id.TransferSubscriptionsRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return sub().TransferSubscriptions(sc, r, reqID)
	})
	reg(id.DeleteSubscriptionsRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return o.deleteSubscriptions(sub(), sc, r, reqID)
	})
	reg(id.CreateMonitoredItemsRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return o.createMonitoredItems(inst, r)
	})
	reg(id.ModifyMonitoredItemsRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return mis().ModifyMonitoredItems(sc, r, reqID)
	})
	reg(id.SetMonitoringModeRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		req, ok := r.(*ua.SetMonitoringModeRequest)
		if !ok {
			return nil, ua.StatusBadRequestTypeInvalid
		}
		if !knownItems(mis(), req.MonitoredItemIDs) {
			return nil, ua.StatusBadMonitoredItemIDInvalid
		}
		return mis().SetMonitoringMode(sc, r, reqID)
	})
	reg(id.SetTriggeringRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return mis().SetTriggering(sc, r, reqID)
	})
	reg(id.DeleteMonitoredItemsRequest_Encoding_DefaultBinary, needSession, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		req, ok := r.(*ua.DeleteMonitoredItemsRequest)
		if !ok {
			return nil, ua.StatusBadRequestTypeInvalid
		}
		if !knownItems(mis(), req.MonitoredItemIDs) {
			return nil, ua.StatusBadMonitoredItemIDInvalid
		}
		return mis().DeleteMonitoredItems(sc, r, reqID)
	})
}

// guard wraps a handler: it records the channel (closed at shutdown),
// checks the session when asked and turns a library panic into
// BadInternalError.
func (o *opcuaServer) guard(inst *uaInstance, opt serviceOpt, h server.Handler) server.Handler {
	return func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (resp ua.Response, err error) {
		defer func() {
			if p := recover(); p != nil {
				o.stats.panics.Add(1)
				o.log.Error().Interface("panic", p).Str("service", fmt.Sprintf("%T", r)).Msg("opcua handler panic recovered")
				resp, err = nil, ua.StatusBadInternalError
			}
		}()
		inst.dispatchMu.Lock()
		defer inst.dispatchMu.Unlock()
		inst.mu.Lock()
		if _, ok := inst.channels[sc]; !ok {
			inst.channels[sc] = false
		}
		inst.mu.Unlock()
		if opt == needSession {
			if code := o.checkSession(inst, sc, r); code != ua.StatusOK {
				o.stats.refused.Add(1)
				return nil, code
			}
		}
		return h(sc, r, reqID)
	}
}

func (o *opcuaServer) checkSession(inst *uaInstance, sc *uasc.SecureChannel, r ua.Request) ua.StatusCode {
	hdr := r.Header()
	if hdr == nil || hdr.AuthenticationToken == nil {
		return ua.StatusBadSessionIDInvalid
	}
	inst.mu.Lock()
	s := inst.sessions[hdr.AuthenticationToken.String()]
	inst.mu.Unlock()
	switch {
	case s == nil:
		return ua.StatusBadSessionIDInvalid
	case !s.activated:
		return ua.StatusBadSessionNotActivated
	case s.sc != sc:
		return ua.StatusBadSecureChannelIDInvalid
	}
	return ua.StatusOK
}

// channelSecured tells a None channel from a secured one. The library keeps
// the channel's mode private; NewSessionSignature returns no signature
// exactly when the mode is None. The answer is cached per channel.
func (o *opcuaServer) channelSecured(inst *uaInstance, sc *uasc.SecureChannel) bool {
	inst.mu.Lock()
	if inst.known[sc] {
		sec := inst.channels[sc]
		inst.mu.Unlock()
		return sec
	}
	inst.mu.Unlock()
	secured := false
	if o.cert != nil {
		nonce := make([]byte, 32)
		rand.Read(nonce)
		sig, _, err := sc.NewSessionSignature(o.cert, nonce)
		secured = err != nil || len(sig) > 0
	}
	inst.mu.Lock()
	inst.channels[sc], inst.known[sc] = secured, true
	inst.mu.Unlock()
	return secured
}

func (o *opcuaServer) createSession(inst *uaInstance, sess *server.SessionService, sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.CreateSessionRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	secured := o.channelSecured(inst, sc)
	if o.cfg.OnlySecure && !secured {
		o.stats.refused.Add(1)
		o.log.Warn().Str("peer", sc.RemoteAddr().String()).Msg("opcua session refused: channel security None, server is only-secure")
		return nil, ua.StatusBadSecurityModeRejected
	}
	if secured && o.trusted != nil && !o.trusted[Thumbprint(req.ClientCertificate)] {
		o.stats.refused.Add(1)
		o.log.Warn().Str("peer", sc.RemoteAddr().String()).Str("thumbprint", Thumbprint(req.ClientCertificate)).
			Msg("opcua session refused: client certificate not trusted")
		return nil, ua.StatusBadCertificateUntrusted
	}
	resp, err := sess.CreateSession(sc, r, reqID)
	if err != nil {
		return resp, err
	}
	if cr, ok := resp.(*ua.CreateSessionResponse); ok {
		cr.RevisedSessionTimeout = reviseSessionTimeout(req.RequestedSessionTimeout)
		if len(cr.ServerEndpoints) == 0 {
			cr.ServerEndpoints = o.publicEndpoints(inst, req.EndpointURL)
		}
	}
	if cr, ok := resp.(*ua.CreateSessionResponse); ok && cr.AuthenticationToken != nil {
		inst.mu.Lock()
		inst.sessions[cr.AuthenticationToken.String()] = &uaSession{sc: sc}
		inst.mu.Unlock()
		o.stats.sessions.Add(1)
	}
	return resp, nil
}

func (o *opcuaServer) activateSession(inst *uaInstance, sess *server.SessionService, sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	hdr := r.Header()
	if hdr == nil || hdr.AuthenticationToken == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	tok := hdr.AuthenticationToken.String()
	inst.mu.Lock()
	s := inst.sessions[tok]
	inst.mu.Unlock()
	if s == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	if o.cfg.OnlySecure && !o.channelSecured(inst, sc) {
		o.stats.refused.Add(1)
		return nil, ua.StatusBadSecurityModeRejected
	}
	resp, err := sess.ActivateSession(sc, r, reqID)
	if err != nil {
		return resp, err
	}
	inst.mu.Lock()
	s.activated, s.sc = true, sc // activation (re)binds the session to this channel
	inst.mu.Unlock()
	return resp, nil
}

func (o *opcuaServer) handleWrite(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.WriteRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	o.stats.writes.Add(1)
	if len(req.NodesToWrite) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	results := o.write(req.NodesToWrite)
	return &ua.WriteResponse{
		ResponseHeader:  responseHeader(req.RequestHeader.RequestHandle, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// getEndpoints answers GetEndpoints for whatever URL the client used, as
// real servers do: the library only answers a URL equal to one of its own,
// so "opc.tcp://127.0.0.1:4840/" (trailing slash), localhost or the host's
// name got an empty list. Endpoints on the client's host come first; an
// unknown host gets every public endpoint.
func (o *opcuaServer) getEndpoints(inst *uaInstance, r ua.Request) (ua.Response, error) {
	req, ok := r.(*ua.GetEndpointsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	return &ua.GetEndpointsResponse{
		ResponseHeader: responseHeader(req.RequestHeader.RequestHandle, ua.StatusOK),
		Endpoints:      o.publicEndpoints(inst, req.EndpointURL),
	}, nil
}

// publicEndpoints lists the endpoints on the public port (not gopcua's
// internal listener): those whose host is the one in requested if there are
// any, else all of them.
func (o *opcuaServer) publicEndpoints(inst *uaInstance, requested string) []*ua.EndpointDescription {
	o.mu.RLock()
	port := strconv.Itoa(o.port)
	o.mu.RUnlock()
	reqHost := ""
	if u, err := url.Parse(strings.TrimSpace(requested)); err == nil {
		reqHost = u.Hostname()
	}
	var same, all []*ua.EndpointDescription
	for _, ep := range inst.srv.Endpoints() {
		u, err := url.Parse(ep.EndpointURL)
		if err != nil || u.Port() != port {
			continue
		}
		all = append(all, ep)
		if reqHost != "" && strings.EqualFold(u.Hostname(), reqHost) {
			same = append(same, ep)
		}
	}
	if len(same) > 0 {
		return same
	}
	return all
}

// Session timeouts the server grants: what the client asked, within these
// bounds (the library revised every request to 0). The emulator does not
// expire sessions; the value tells a client how often to keep it alive.
const (
	sessionTimeoutMin     = time.Second
	sessionTimeoutMax     = time.Hour
	sessionTimeoutDefault = time.Minute // for a request of 0 (or not a number)
)

// reviseSessionTimeout is the RevisedSessionTimeout (ms) for a requested one.
func reviseSessionTimeout(requestedMs float64) float64 {
	if !(requestedMs > 0) { // 0, negative, NaN
		return float64(sessionTimeoutDefault / time.Millisecond)
	}
	ms := func(d time.Duration) float64 { return float64(d / time.Millisecond) }
	return min(max(requestedMs, ms(sessionTimeoutMin)), ms(sessionTimeoutMax))
}

func responseHeader(handle uint32, code ua.StatusCode) *ua.ResponseHeader {
	return &ua.ResponseHeader{
		Timestamp:          time.Now(),
		RequestHandle:      handle,
		ServiceResult:      code,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
}

// createSubscription clamps the requested parameters (the library would
// panic on a 0 ms interval and accepts a lifetime below 3 keep-alives) and
// keeps subscription ids unique (the library uses len(map)+1).
func (o *opcuaServer) createSubscription(ss *server.SubscriptionService, sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.CreateSubscriptionRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	minMs := float64(o.cfg.MinPublishingInterval) / float64(time.Millisecond)
	if !(req.RequestedPublishingInterval >= minMs) { // also catches NaN
		req.RequestedPublishingInterval = minMs
	}
	if req.RequestedPublishingInterval > 3600_000 {
		req.RequestedPublishingInterval = 3600_000
	}
	req.RequestedPublishingInterval = float64(int64(req.RequestedPublishingInterval)) // the library's ticker takes whole ms
	if req.RequestedMaxKeepAliveCount == 0 {
		req.RequestedMaxKeepAliveCount = 10
	}
	if req.RequestedLifetimeCount < 3*req.RequestedMaxKeepAliveCount {
		req.RequestedLifetimeCount = 3 * req.RequestedMaxKeepAliveCount
	}
	ss.Mu.Lock()
	for {
		next := uint32(len(ss.Subs)) + 1
		if _, taken := ss.Subs[next]; !taken {
			break
		}
		// Fill the lowest free id with a tombstone so len+1 moves past the
		// ids in use. Tombstones have no session and are never run.
		for free := uint32(1); ; free++ {
			if _, used := ss.Subs[free]; !used {
				ss.Subs[free] = &server.Subscription{ID: free}
				break
			}
		}
	}
	ss.Mu.Unlock()
	return ss.CreateSubscription(sc, req, reqID)
}

// createMonitoredItems replaces the library's CreateMonitoredItems, which
// holds the monitored-item lock while it takes the subscription lock (the
// reverse of a dying subscription's order: a deadlock) and sends the initial
// values with a blocking send from a goroutine per item. Here the two locks
// are taken one after the other and the initial values are queued without
// blocking (a full queue defers the node to the retry tick).
func (o *opcuaServer) createMonitoredItems(inst *uaInstance, r ua.Request) (ua.Response, error) {
	req, ok := r.(*ua.CreateMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	ss, mis := inst.srv.SubscriptionService, inst.srv.MonitoredItemService
	ss.Mu.Lock()
	sub := ss.Subs[req.SubscriptionID]
	ss.Mu.Unlock()
	sess := inst.srv.Session(req.RequestHeader)
	if sub == nil || sub.Session == nil || sess == nil || sub.Session.AuthTokenID.String() != sess.AuthTokenID.String() {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	if len(req.ItemsToCreate) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	results := make([]*ua.MonitoredItemCreateResult, len(req.ItemsToCreate))
	var created []*server.MonitoredItem
	mis.Mu.Lock()
	for i, it := range req.ItemsToCreate {
		results[i] = &ua.MonitoredItemCreateResult{FilterResult: ua.NewExtensionObject(nil)}
		if it == nil || it.ItemToMonitor == nil || it.ItemToMonitor.NodeID == nil || it.RequestedParameters == nil {
			results[i].StatusCode = ua.StatusBadMonitoredItemFilterInvalid
			continue
		}
		nid := it.ItemToMonitor.NodeID
		if inst.srv.Node(nid) == nil {
			results[i].StatusCode = ua.StatusBadNodeIDUnknown
			continue
		}
		item := &server.MonitoredItem{ID: mis.NextID(), Sub: sub, Req: it, Mode: it.MonitoringMode}
		mis.Items[item.ID] = item
		mis.Nodes[nid.String()] = append(mis.Nodes[nid.String()], item)
		mis.Subs[sub.ID] = append(mis.Subs[sub.ID], item)
		results[i].StatusCode = ua.StatusOK
		results[i].MonitoredItemID = item.ID
		results[i].RevisedSamplingInterval = sub.RevisedPublishingInterval
		results[i].RevisedQueueSize = 1
		created = append(created, item)
	}
	mis.Mu.Unlock()
	for _, item := range created {
		nid := item.Req.ItemToMonitor.NodeID
		ns, err := inst.srv.Namespace(int(nid.Namespace()))
		if err != nil {
			continue
		}
		n := &ua.MonitoredItemNotification{
			ClientHandle: item.Req.RequestedParameters.ClientHandle,
			Value:        ns.Attribute(nid, item.Req.ItemToMonitor.AttributeID),
		}
		select {
		case sub.NotifyChannel <- n:
		default:
			if name, ok := inst.ns.stringID(nid); ok && o.byName[name] != nil {
				inst.mu.Lock()
				inst.retry[o.byName[name]] = true
				inst.mu.Unlock()
			}
		}
	}
	return &ua.CreateMonitoredItemsResponse{
		ResponseHeader:  responseHeader(req.RequestHeader.RequestHandle, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// liveSubscription: id names a real subscription, not a tombstone.
func liveSubscription(ss *server.SubscriptionService, id uint32) bool {
	ss.Mu.Lock()
	defer ss.Mu.Unlock()
	s, ok := ss.Subs[id]
	return ok && s.Session != nil
}

func knownItems(mis *server.MonitoredItemService, ids []uint32) bool {
	mis.Mu.Lock()
	defer mis.Mu.Unlock()
	for _, id := range ids {
		it, ok := mis.Items[id]
		if !ok || it == nil || it.Sub == nil || it.Sub.Session == nil {
			return false
		}
	}
	return true
}

// deleteSubscriptions answers ids of tombstones and unknown subscriptions
// itself (the library would dereference their nil session).
func (o *opcuaServer) deleteSubscriptions(ss *server.SubscriptionService, sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.DeleteSubscriptionsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results := make([]ua.StatusCode, len(req.SubscriptionIDs))
	var live []uint32
	var pos []int
	for i, id := range req.SubscriptionIDs {
		if liveSubscription(ss, id) {
			live = append(live, id)
			pos = append(pos, i)
		} else {
			results[i] = ua.StatusBadSubscriptionIDInvalid
		}
	}
	if len(live) > 0 {
		sub := *req
		sub.SubscriptionIDs = live
		resp, err := ss.DeleteSubscriptions(sc, &sub, reqID)
		if err != nil {
			return resp, err
		}
		dr, ok := resp.(*ua.DeleteSubscriptionsResponse)
		if !ok {
			return resp, nil
		}
		for j, code := range dr.Results {
			if j < len(pos) {
				results[pos[j]] = code
			}
		}
	}
	return &ua.DeleteSubscriptionsResponse{
		ResponseHeader:  responseHeader(req.RequestHeader.RequestHandle, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}
