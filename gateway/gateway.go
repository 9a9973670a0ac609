// Package gateway is the sorter gateway's item pipeline: per line it turns
// scanner reads into divert commands with the active sort plan, follows
// every item to exactly one outcome, books confirmed diverts into chute
// containers, and serves the status page, its live updates, the actions of
// maintenance technicians and the Prometheus metrics.
//
// The gateway sees devices only through the contracts in package devices
// and keeps its audit trail in package gateway/journal.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
	"sortgw/gateway/operators"
)

// Config configures the gateway's HTTP side and its shutdown.
type Config struct {
	// Listen is the status page's address (default 127.0.0.1:8080; use
	// 127.0.0.1:0 in tests).
	Listen string `yaml:"listen"`
	// Token is the bearer token that actions need. Empty: every action is
	// refused (the page is read-only).
	Token string `yaml:"token"`
	// DrainGrace bounds how long a stop waits for outstanding commands
	// (default 10s).
	DrainGrace time.Duration `yaml:"drain_grace"`
	// Version is shown on the status page (the build's, not a setting).
	Version string `yaml:"-"`
	// SSEInterval is how often /events pushes a snapshot (default 1s).
	SSEInterval time.Duration `yaml:"sse_interval"`
	// WriteTimeout bounds how long one response may take to write (default
	// 15s): a client that stops reading lets go of its connection then.
	// The status stream (/events) sets a fresh deadline per message.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxSSEClients caps the live status streams served at once (default
	// 64); more are refused with 503 and counted.
	MaxSSEClients int `yaml:"max_sse_clients"`
	// OperatorsFile names the technicians' accounts (package operators;
	// `sortgw operator add`). Empty: no logins, actions by token only.
	// The file is read again when it changes.
	OperatorsFile string `yaml:"operators_file"`
	// Operators are the accounts when the caller has read them already
	// (the site does, to point at the bad line); nil: New reads
	// OperatorsFile.
	Operators *operators.Set `yaml:"-"`
	// SessionIdle ends a technician's session after this long without a
	// request (default 12h, a shift).
	SessionIdle time.Duration `yaml:"session_idle"`
	// ReadOnly refuses every action, from sessions and the token alike.
	ReadOnly bool `yaml:"read_only"`
	// LoginFailures failed logins of one name, or from one address, lock
	// it for LoginLockout (defaults 5 and 1m).
	LoginFailures int           `yaml:"login_failures"`
	LoginLockout  time.Duration `yaml:"login_lockout"`
	// Journal, when set, is run by Gateway.Run and stopped and closed
	// last, after the lines and the HTTP server (*journal.Journal).
	Journal JournalRunner `yaml:"-"`
	// LabelPrinter is the host:port of a Zebra printer's raw port (TCP
	// 9100) for container labels; empty: labels are not sent.
	LabelPrinter string `yaml:"label_printer"`
	// Shifts are the site's shifts; the status page counts the current
	// one's parcels since it started. Empty: no shift counters.
	Shifts []Shift `yaml:"shifts"`
	// Training, when set, offers the training panel over an emulated
	// sorter (GET /api/training, POST /api/training/{id}). Only the demo
	// sets it; nil in production.
	Training Trainer `yaml:"-"`
	// Upstream, when set, publishes the journal upstream
	// (gateway/upstream): it starts after the journal and stops after the
	// lines and the HTTP server, before the journal, whose records it
	// reads. Its failures never stop sorting; its alarm shows on every
	// line.
	Upstream Upstream `yaml:"-"`
}

// Upstream is the upstream publisher's life cycle as the gateway drives
// it (cmd/internal/upstream.Runner).
type Upstream interface {
	Run(ctx context.Context) error
	// Alarm is the upstream alarm's text, "" while there is none.
	Alarm() string
}

// JournalRunner is the journal's life cycle as the gateway drives it; the
// gateway's own start and stop records go through Append, and Health
// feeds the status page, the metrics and readiness.
type JournalRunner interface {
	Run(ctx context.Context) error
	Close() error
	Append(rec journal.Record) (uint64, error)
	Health() journal.Health
}

// Validate fills defaults.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.DrainGrace == 0 {
		c.DrainGrace = 10 * time.Second
	}
	if c.DrainGrace < 0 {
		return fmt.Errorf("gateway: negative drain grace %v", c.DrainGrace)
	}
	if c.SSEInterval == 0 {
		c.SSEInterval = time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 15 * time.Second
	}
	if c.MaxSSEClients == 0 {
		c.MaxSSEClients = 64
	}
	if c.WriteTimeout < 0 || c.MaxSSEClients < 0 {
		return fmt.Errorf("gateway: negative write timeout %v or SSE client cap %d", c.WriteTimeout, c.MaxSSEClients)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if err := validateShifts(c.Shifts); err != nil {
		return err
	}
	return c.validateAuth()
}

// Searcher is the journal's query side used by the item search and the
// journal view. *journal.Journal satisfies it.
type Searcher interface {
	ByTID(tid uint32) ([]journal.Record, error)
	ByBarcode(code string) ([]journal.Record, error)
	Range(from, to time.Time, limit int) ([]journal.Record, error)
	// Items lists item passes (decision and outcome joined) by search
	// key, newest first, a page at a time (items.go).
	Items(q journal.ItemQuery) (journal.ItemPage, error)
	// QueryLimit is the most records one query returns.
	QueryLimit() int
}

// Gateway runs several lines and the HTTP server in front of them.
type Gateway struct {
	cfg    Config
	lines  []*Line
	byName map[string]*Line
	search Searcher
	met    *Metrics
	log    zerolog.Logger

	draining atomic.Bool
	sse      atomic.Int64 // live /events streams
	refusals *rateLogger  // refused HTTP requests
	started  chan struct{}
	stopping chan struct{} // closed when the HTTP side must let go (SSE)
	addr     atomic.Value  // string
	reloadMu sync.Mutex
	authn    *authState // logins and sessions (session.go)
	// trainingActive is sortgw_training_faults_active (nil without
	// Config.Training).
	trainingActive prometheus.Gauge
}

// New makes a gateway over lines. search may be nil (no item search).
func New(cfg Config, lines []*Line, search Searcher, m *Metrics, log zerolog.Logger) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, errors.New("gateway: no lines")
	}
	if m == nil {
		m = NewMetrics()
	}
	m.state.setVersion(cfg.Version)
	g := &Gateway{cfg: cfg, lines: lines, byName: map[string]*Line{}, search: search, met: m, log: log,
		started: make(chan struct{}), stopping: make(chan struct{}), refusals: newRateLogger(log, time.Second)}
	for _, l := range lines {
		if g.byName[l.Name()] != nil {
			return nil, fmt.Errorf("gateway: duplicate line %q", l.Name())
		}
		g.byName[l.Name()] = l
		// A line may already run (tests start lines first): published
		// atomically, read by its loop at every snapshot.
		shifts := slices.Clone(cfg.Shifts)
		l.shifts.Store(&shifts)
	}
	g.addr.Store("")
	var err error
	if g.authn, err = newAuthState(cfg, m, log); err != nil {
		return nil, err
	}
	if cfg.Training != nil {
		tg, err := newTrainingGauge(m.Registry)
		if err != nil {
			return nil, fmt.Errorf("gateway: training metric: %w", err)
		}
		g.trainingActive = tg
	}
	if cfg.Journal != nil {
		m.watchJournal(cfg.Journal.Health)
	}
	if cfg.Upstream != nil {
		for _, l := range lines {
			l.upstreamAlarm = cfg.Upstream.Alarm
		}
	}
	return g, nil
}

// Lines returns the gateway's lines.
func (g *Gateway) Lines() []*Line { return g.lines }

// Line returns the named line or nil.
func (g *Gateway) Line(name string) *Line { return g.byName[name] }

// Started is closed once the HTTP listener is bound (Addr is valid).
func (g *Gateway) Started() <-chan struct{} { return g.started }

// Addr is the bound HTTP address.
func (g *Gateway) Addr() string { return g.addr.Load().(string) }

// Ready reports whether every line can sort, the journal keeps records
// (see journal.Health.Unready) and the gateway is not draining.
func (g *Gateway) Ready() bool {
	if g.draining.Load() || g.journalUnready() != "" {
		return false
	}
	for _, l := range g.lines {
		if !l.Ready() {
			return false
		}
	}
	return true
}

// journalUnready is why the journal keeps the gateway from being ready,
// or "".
func (g *Gateway) journalUnready() string {
	if g.cfg.Journal == nil {
		return ""
	}
	return g.cfg.Journal.Health().Unready
}

// Reload is the SIGHUP reload: it reloads every line's plan from its
// files. A line whose new plan fails keeps its old one; the errors are
// joined. The journal records the cause "sighup"; ReloadFor names another.
func (g *Gateway) Reload() error { return g.ReloadFor(PlanBySIGHUP) }

// ReloadFor is Reload on behalf of by.
func (g *Gateway) ReloadFor(by PlanCause) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	var errs []error
	for _, l := range g.lines {
		if _, err := l.ReloadPlanFor(by); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Snapshot gathers every line's latest snapshot.
func (g *Gateway) Snapshot() Snapshot {
	s := Snapshot{At: time.Now(), Version: g.cfg.Version, Ready: g.Ready(), Draining: g.draining.Load()}
	if g.cfg.Journal != nil {
		v := journalViewOf(g.cfg.Journal.Health(), s.At)
		s.Journal = &v
	}
	for _, l := range g.lines {
		s.Lines = append(s.Lines, *l.Snapshot())
	}
	return s
}

// Run runs the journal, the lines and the HTTP server until ctx is done or
// one of them fails, then stops them in a fixed order:
//
//  1. the lines drain: they take no new reads, outstanding commands get
//     DrainGrace to be confirmed, and every item still open is recorded;
//  2. the HTTP server stops, after the lines, so the status page shows the
//     drain to the end;
//  3. the journal stops last, after it has made durable every record the
//     lines wrote while stopping, and is closed.
//
// The journal gets a start record once it runs (before the lines start)
// and a stop record with the cause (ctx's cause, e.g. the signal, or the
// failure) after the lines have drained and the HTTP server stopped, just
// before it stops itself.
//
// A part that fails stops its siblings the same way (a failed line stops
// the other lines). A failed journal stops sorting at once, without a
// drain: without an audit trail the gateway must not go on diverting.
// The first failure is returned.
func (g *Gateway) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		err = fmt.Errorf("gateway: listen %s: %w", g.cfg.Listen, err)
		g.journalStop("start failed", err, 0)
		return g.closeJournal(err)
	}
	g.addr.Store(ln.Addr().String())
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}

	// Each part runs on a context of its own, detached from ctx, so that
	// the stop order below, not the order of cancellation, decides who
	// stops first.
	base := context.WithoutCancel(ctx)
	journal := newRunGroup(base)
	if g.cfg.Journal != nil {
		journal.Go(func(ctx context.Context) error {
			if err := g.cfg.Journal.Run(ctx); err != nil && ctx.Err() == nil {
				return fmt.Errorf("journal: %w", err)
			}
			return nil
		})
	}
	g.journalStart()
	upstream := newRunGroup(base)
	if g.cfg.Upstream != nil {
		upstream.Go(func(ctx context.Context) error {
			if err := g.cfg.Upstream.Run(ctx); err != nil {
				// Sorting goes on: the records wait in the journal.
				g.log.Error().Err(err).Msg("upstream publisher stopped")
			}
			return nil
		})
	}
	lines := newRunGroup(base)
	for _, l := range g.lines {
		lines.Go(l.Run)
	}
	web := newRunGroup(base)
	web.Go(func(context.Context) error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("gateway: http: %w", err)
		}
		return nil
	})
	close(g.started)
	g.log.Info().Str("addr", g.Addr()).Msg("status page listening")

	linesDone := make(chan struct{})
	go func() { lines.wg.Wait(); close(linesDone) }()

	// 1. Lines.
	var why string // the stop's cause, for the journal
	select {
	case <-ctx.Done():
		why = context.Cause(ctx).Error()
		g.drain(linesDone)
	case <-lines.Failed():
		why = "a line failed"
		g.log.Error().Err(lines.Err()).Msg("a line failed; stopping the others")
		g.drain(linesDone)
	case <-web.Failed():
		why = "the status page server failed"
		g.log.Error().Err(web.Err()).Msg("status page server failed; stopping")
		g.drain(linesDone)
	case <-journal.Failed():
		why = "the journal failed"
		g.log.Error().Err(journal.Err()).Msg("journal failed; stopping sorting at once")
	}
	open := 0 // still open after the drain: recorded lost-at-restart
	for _, l := range g.lines {
		open += l.OpenNow()
	}
	lines.Stop()
	lineErr := lines.Wait()

	// 2. HTTP: SSE streams let go first, then the server shuts down.
	g.draining.Store(true)
	close(g.stopping)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	web.Stop()
	httpErr := web.Wait()

	// The stop record: after the lines' last records, before the journal
	// stops (which commits it).
	g.journalStop(why, errors.Join(journal.Err(), lineErr, httpErr), open)

	// 3. Upstream: it reads the journal, so it stops before the journal
	// closes; what it has not published waits there for the next start.
	upstream.Stop()
	_ = upstream.Wait()

	// 4. Journal: Run commits what is queued before it returns.
	journal.Stop()
	journalErr := journal.Wait()
	return g.closeJournal(errors.Join(journalErr, lineErr, httpErr))
}

// journalStart records the gateway's start: its version and lines.
func (g *Gateway) journalStart() {
	if g.cfg.Journal == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sortgw %s; lines:", g.cfg.Version)
	for i, l := range g.lines {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s (%d chutes, ", l.Name(), l.cfg.Chutes)
		if pi := l.PlanInfo(); pi.Version != 0 {
			fmt.Fprintf(&b, "plan %q version %d)", pi.Name, pi.Version)
		} else {
			b.WriteString("no plan: degraded)")
		}
	}
	if _, err := g.cfg.Journal.Append(journal.Record{Kind: journal.KindStart, Count: uint32(len(g.lines)),
		Detail: clip(b.String())}); err != nil {
		g.log.Error().Err(err).Msg("journal refused the start record")
	}
}

// journalStop records the gateway's stop: why, the failure if any, and
// how many items were still open when the lines stopped.
func (g *Gateway) journalStop(why string, failure error, open int) {
	if g.cfg.Journal == nil {
		return
	}
	r := journal.Record{Kind: journal.KindStop, Cause: why, Count: uint32(max(open, 0))}
	if failure != nil {
		r.Detail = clip(failure.Error())
	}
	if _, err := g.cfg.Journal.Append(r); err != nil {
		g.log.Error().Err(err).Msg("journal refused the stop record")
	}
}

// closeJournal closes the journal (if the gateway runs one) and adds its
// error to err.
func (g *Gateway) closeJournal(err error) error {
	if g.cfg.Journal == nil {
		return err
	}
	if cerr := g.cfg.Journal.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close journal: %w", cerr))
	}
	return err
}

// drain stops new reads and waits (at most DrainGrace) for open items.
func (g *Gateway) drain(linesDone <-chan struct{}) {
	g.draining.Store(true)
	for _, l := range g.lines {
		l.Drain()
	}
	g.log.Info().Dur("grace_ms", g.cfg.DrainGrace).Msg("draining: no new reads, waiting for outstanding commands")
	deadline := time.NewTimer(g.cfg.DrainGrace)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		open := 0
		for _, l := range g.lines {
			open += l.OpenNow()
		}
		if open == 0 {
			g.log.Info().Msg("drained")
			return
		}
		select {
		case <-deadline.C:
			g.log.Warn().Int("open", open).Msg("drain grace over; open items are recorded lost at stop")
			return
		case <-linesDone:
			return
		case <-tick.C:
		}
	}
}
