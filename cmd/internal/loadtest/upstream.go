package loadtest

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"sortgw/cmd/internal/upstream"
	"sortgw/gateway"
	"sortgw/gateway/journal"
	gwup "sortgw/gateway/upstream"
)

// upstream wires the publisher of the journal to an embedded NATS
// JetStream server (loopback, port chosen by the OS, store in dir), as a
// site with upstream.nats.embedded runs it.
func (s *scenario) upstream(dir string, j *journal.Journal, gcfg *gateway.Config) error {
	cfg := upstream.Config{Config: gwup.Config{Site: "bench"}, NATS: upstream.NATS{
		Embedded: &upstream.Embedded{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")}}}
	if err := cfg.Validate(); err != nil {
		return err
	}
	up, err := upstream.New(cfg, tallyOutbox{j, s.tally}, s.log)
	if err != nil {
		return err
	}
	s.metrics.Registry.MustRegister(up.Collectors()...)
	gcfg.Upstream = up
	return nil
}

// tallyOutbox is the journal as the publisher sees it, its cursor records
// counted by the tally like every other append (the ground truth checks
// that the journal holds nothing the tally did not see).
type tallyOutbox struct {
	*journal.Journal
	tally *tallyJournal
}

func (o tallyOutbox) Append(rec journal.Record) (uint64, error) { return o.tally.Append(rec) }

// UpstreamArms is issue 13's comparison in one process: windows with the
// upstream publisher off and on, alternating, each a scenario of its own
// (sims and gateway built afresh, its own warm-up), so that an "off"
// window has no publisher and no NATS server running. Read-to-written is
// pooled per arm.
type UpstreamArms struct {
	Windows  []*Report // in the order run: off, on, off, on, ...
	Off, On  LatStats  // read-to-written, pooled per arm
	Protocol string
}

// RunUpstreamArms runs pairs (off, on) pairs of windows of cfg (its
// Upstream field is ignored) and calls each with every window's report as
// it ends. A window that fails its checks is in its report; a run that
// fails returns what ran so far and the error.
func RunUpstreamArms(ctx context.Context, cfg Config, pairs int, log zerolog.Logger, each func(on bool, i int, rep *Report)) (*UpstreamArms, error) {
	a := &UpstreamArms{Protocol: cfg.Protocol}
	var off, on latencies
	for i := range 2 * pairs {
		c := cfg
		c.Upstream = i%2 == 1
		c.SkipDecide = cfg.SkipDecide || i > 0 // the decision benchmark once
		rep, err := Run(ctx, c, log)
		if rep != nil {
			a.Windows = append(a.Windows, rep)
			if c.Upstream {
				on = append(on, rep.written...)
			} else {
				off = append(off, rep.written...)
			}
			if each != nil {
				each(c.Upstream, i, rep)
			}
		}
		if err != nil {
			a.Off, a.On = summarise(off), summarise(on)
			return a, err
		}
	}
	a.Off, a.On = summarise(off), summarise(on)
	return a, nil
}

// OK: every window's checks held.
func (a *UpstreamArms) OK() bool {
	for _, r := range a.Windows {
		if !r.OK() {
			return false
		}
	}
	return true
}

// Print writes the per-window figures and the pooled comparison.
func (a *UpstreamArms) Print(w io.Writer) {
	fmt.Fprintf(w, "\n== upstream off/on, %s, %d windows alternating (each its own sims, gateway and warm-up)\n", a.Protocol, len(a.Windows))
	for i, r := range a.Windows {
		arm := "off"
		if r.Cfg.Upstream {
			arm = "on "
		}
		fmt.Fprintf(w, "window %d upstream %s: read-to-written n %d, p50 %s ms, p99 %s ms, p99.9 %s ms; taken/s %.0f, CPU %.0f%%\n", i+1, arm,
			r.Written.N, ms(r.Written.P50), ms(r.Written.P99), ms(r.Written.P999), float64(r.Taken)/r.Window.Seconds(), 100*r.CPU.Seconds()/r.Window.Seconds())
	}
	x := func(on, off time.Duration) string {
		if off <= 0 {
			return "-"
		}
		return strconv.FormatFloat(float64(on)/float64(off), 'f', 2, 64) + "x"
	}
	fmt.Fprintf(w, "pooled read-to-written: off n %d p50 %s ms p99 %s ms; on n %d p50 %s ms p99 %s ms; on/off p50 %s, p99 %s (goal at most 1.1x)\n",
		a.Off.N, ms(a.Off.P50), ms(a.Off.P99), a.On.N, ms(a.On.P50), ms(a.On.P99), x(a.On.P50, a.Off.P50), x(a.On.P99, a.Off.P99))
}
