package upstream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	gwup "sortgw/gateway/upstream"
)

// Runner is upstream as the gateway runs it: the embedded server (if
// any), the connection, the stream and the publisher. It satisfies
// gateway.Upstream. Nothing in it stops sorting: a server that cannot
// start, a NATS that cannot be reached, wrong credentials or a stream
// with other limits are retried, logged and shown as the upstream alarm.
type Runner struct {
	cfg Config
	log zerolog.Logger
	pub *gwup.Publisher
	out gwup.Outbox

	mu       sync.Mutex
	sink     *Sink
	startErr error
	connErr  error // the connection's last error, nil once connected
	srv      *server.Server
	url      string
	lines    map[string]PlanLine
	ready    chan struct{} // closed once connected to a server (tests, demo)
	once     sync.Once
}

// New makes the runner over the journal out; cfg must have passed
// Validate and be Enabled.
func New(cfg Config, out gwup.Outbox, log zerolog.Logger) (*Runner, error) {
	r := &Runner{cfg: cfg, out: out, log: log.With().Str("part", "upstream").Logger(), ready: make(chan struct{})}
	pub, err := gwup.New(cfg.Config, out, r, log)
	if err != nil {
		return nil, err
	}
	r.pub = pub
	return r, nil
}

// Publisher is the runner's publisher (stats, alarm).
func (r *Runner) Publisher() *gwup.Publisher { return r.pub }

// Started is closed once the runner has a server to talk to (the
// embedded one started, or the URL dialled).
func (r *Runner) Started() <-chan struct{} { return r.ready }

// ClientURL is the URL clients (sortgw tail) use: the embedded server's,
// or the configured one.
func (r *Runner) ClientURL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.url
}

// Publish implements gwup.Sink until the connection exists.
func (r *Runner) Publish(ctx context.Context, msgs []gwup.Message) (int, error) {
	r.mu.Lock()
	s, startErr := r.sink, r.startErr
	r.mu.Unlock()
	if s == nil {
		if startErr != nil {
			return 0, startErr
		}
		return 0, errors.New("nats not started yet")
	}
	return s.Publish(ctx, msgs)
}

// Run starts the server (embedded) and the connection, then publishes
// until ctx is done; it then closes the connection and stops the server.
// It returns an error only if the journal cannot be read.
func (r *Runner) Run(ctx context.Context) error {
	defer r.stop()
	if !r.start(ctx) {
		return nil
	}
	plansDone := make(chan struct{})
	if r.cfg.NATS.Plans != nil {
		go func() { defer close(plansDone); r.watchPlans(ctx) }()
	} else {
		close(plansDone)
	}
	defer func() { <-plansDone }()
	return r.pub.Run(ctx)
}

// start brings the server and the connection up, retrying a server that
// cannot start until ctx is done (false then).
func (r *Runner) start(ctx context.Context) bool {
	url := r.cfg.NATS.URL
	if e := r.cfg.NATS.Embedded; e != nil {
		wait := time.Second
		for {
			srv, err := StartServer(e, "sortgw-"+r.cfg.Site)
			if err == nil {
				r.mu.Lock()
				r.srv, r.startErr = srv, nil
				r.mu.Unlock()
				url = srv.ClientURL()
				break
			}
			r.mu.Lock()
			r.startErr = err
			r.mu.Unlock()
			r.log.Error().Err(err).Dur("retry_in", wait).Msg("embedded nats server did not start; sorting goes on, the backlog waits in the journal")
			select {
			case <-ctx.Done():
				return false
			case <-time.After(wait):
			}
			wait = min(2*wait, 30*time.Second)
		}
	}
	var sink *Sink
	var extra []nats.Option
	r.mu.Lock()
	if r.srv != nil {
		// The embedded server in the same process: publish over an
		// in-process pipe, not loopback TCP (no socket syscalls and
		// netpoller wake-ups per flush on either side). Clients of the
		// site (sortgw tail, MQTT) still use the listener.
		extra = append(extra, nats.InProcessServer(r.srv))
	}
	r.mu.Unlock()
	nc, err := Connect(&r.cfg.NATS, url, "sortgw "+r.cfg.Site, func(err error) {
		r.mu.Lock()
		r.connErr = err
		r.mu.Unlock()
		if err != nil {
			r.log.Warn().Err(err).Msg("nats connection")
		}
	}, extra...)
	if err == nil {
		sink, err = NewSink(nc, &r.cfg)
	}
	if sink != nil {
		sink.connErr = func() error {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.connErr
		}
	}
	r.mu.Lock()
	r.url = url
	if err != nil {
		r.startErr = err // a bad creds file: shown as the alarm, sorting goes on
	} else {
		r.sink = sink
	}
	r.mu.Unlock()
	if err != nil {
		r.log.Error().Err(err).Msg("upstream not connected")
		if nc != nil {
			nc.Close()
		}
		<-ctx.Done()
		return false
	}
	r.once.Do(func() { close(r.ready) })
	return true
}

func (r *Runner) stop() {
	r.mu.Lock()
	s, srv := r.sink, r.srv
	r.sink, r.srv = nil, nil
	r.mu.Unlock()
	if s != nil {
		// Acks still in flight are dropped; their records were not passed
		// by the cursor and go again next time (de-duplicated).
		s.nc.Close()
	}
	StopServer(srv)
}

// Alarm is the upstream alarm's text, "" while there is none.
func (r *Runner) Alarm() string {
	r.mu.Lock()
	err := r.startErr
	r.mu.Unlock()
	if err != nil {
		return "upstream not started: " + err.Error()
	}
	return r.pub.Alarm()
}

// Collectors are the publisher's metrics.
func (r *Runner) Collectors() []prometheus.Collector { return r.pub.Collectors() }
