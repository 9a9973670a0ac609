package upstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
)

// Sink publishes messages to the bus.
type Sink interface {
	// Publish sends msgs in order and returns how many of the leading
	// ones the server acknowledged as stored (a duplicate the server
	// dropped counts as acknowledged). An error says why the rest were
	// not; the publisher retries them from the journal. msgs is reused
	// by the next round: keep the messages' fields, never the slice.
	Publish(ctx context.Context, msgs []Message) (acked int, err error)
}

// Outbox is the journal as the publisher reads it. *journal.Journal
// satisfies it.
type Outbox interface {
	After(seq uint64, n int) ([]journal.Record, error)
	WaitDurable(ctx context.Context, seq uint64) error
	Append(rec journal.Record) (uint64, error)
	ByKind(k journal.Kind, n, scan int) ([]journal.Record, error)
	Retain(from uint64)
	Stats() journal.Stats
}

// Config configures the publisher. Zero values take the defaults.
type Config struct {
	// Site names the site in subjects and message ids. Required.
	Site string `yaml:"site"`
	// Batch is the most records one publish round sends (default 1000).
	Batch int `yaml:"batch"`
	// CursorEvery is the least time between two cursor records (default
	// 1s). A crash re-publishes at most this much, which the server's
	// de-duplication window (default 2 minutes) absorbs.
	CursorEvery time.Duration `yaml:"cursor_every"`
	// AlarmRecords and AlarmAge: a backlog above either raises the
	// upstream alarm (defaults 100000 records and 5 minutes).
	AlarmRecords uint64        `yaml:"alarm_records"`
	AlarmAge     time.Duration `yaml:"alarm_age"`
	// AlarmFailing: publish rounds failing for longer than this (server
	// unreachable, wrong credentials, a stream with other limits) raise
	// the upstream alarm (default 30s).
	AlarmFailing time.Duration `yaml:"alarm_failing"`
	// Linger is how long the publisher lets records gather after it has
	// caught up before it publishes again (default 50ms; negative: none).
	// Fewer, larger rounds cost the sorting process less CPU; the stream
	// is that much later.
	Linger time.Duration `yaml:"linger"`
	// RetryMax caps the wait between attempts while the server is
	// unreachable (default 5s).
	RetryMax time.Duration `yaml:"retry_max"`
	// Now is the clock (nil: time.Now).
	Now func() time.Time `yaml:"-"`
}

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	if c.Site == "" {
		return errors.New("upstream: site is required")
	}
	if Token(c.Site) != c.Site || len(c.Site) > 64 {
		return fmt.Errorf("upstream: site %q must be one subject token (no '.', '*', '>' or spaces, at most 64 bytes)", c.Site)
	}
	if c.Batch == 0 {
		c.Batch = 1000
	}
	if c.CursorEvery == 0 {
		c.CursorEvery = time.Second
	}
	if c.AlarmRecords == 0 {
		c.AlarmRecords = 100_000
	}
	if c.AlarmAge == 0 {
		c.AlarmAge = 5 * time.Minute
	}
	if c.AlarmFailing == 0 {
		c.AlarmFailing = 30 * time.Second
	}
	if c.Linger == 0 {
		c.Linger = 50 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Batch < 1 || c.CursorEvery < 0 || c.AlarmAge < 0 || c.RetryMax < 0 {
		return fmt.Errorf("upstream: batch %d < 1 or a negative duration", c.Batch)
	}
	return nil
}

// Stats is a snapshot of the publisher for metrics and the status page.
type Stats struct {
	Cursor    uint64 // last seq the server acknowledged
	Durable   uint64 // last seq durable in the journal
	Backlog   uint64 // records durable and not yet acknowledged
	OldestAge time.Duration
	Published uint64 // messages acknowledged since start
	Errors    uint64 // failed publish rounds since start
	// Lost counts records retention deleted before they were published
	// (seen as a gap in seqs after the cursor).
	Lost          uint64
	LastPublish   time.Time
	LastError     string
	LastErrorTime time.Time
}

// Publisher publishes the journal's records upstream. Run it after the
// journal starts and stop it before the journal closes.
type Publisher struct {
	cfg  Config
	out  Outbox
	sink Sink
	log  zerolog.Logger

	cursor    atomic.Uint64
	published atomic.Uint64
	errs      atomic.Uint64
	lost      atomic.Uint64
	lastPub   atomic.Int64 // unix ns
	oldest    atomic.Int64 // unix ns of the oldest unpublished record; 0: none known

	round round // Run's encoding state, reused from round to round

	mu      sync.Mutex
	lastErr string
	errAt   time.Time
	lostAt  time.Time
	failing time.Time // first failure of the current streak; zero after a success
}

// New makes a publisher of out's records to sink.
func New(cfg Config, out Outbox, sink Sink, log zerolog.Logger) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Publisher{cfg: cfg, out: out, sink: sink, log: log.With().Str("part", "upstream").Logger()}, nil
}

// cursorScan bounds the records walked back at start for the last cursor
// record (only their kind byte is read).
const cursorScan = 0 // the whole journal: once per start, and cursors are frequent

// loadCursor finds the last cursor record. ok is false when there is
// none (a first start): everything in the journal is then published.
func (p *Publisher) loadCursor() (seq uint64, ok bool, err error) {
	recs, err := p.out.ByKind(journal.KindUpstreamCursor, 1, cursorScan)
	if err != nil {
		return 0, false, fmt.Errorf("upstream: read cursor: %w", err)
	}
	if len(recs) == 0 {
		return 0, false, nil
	}
	seq, err = strconv.ParseUint(recs[0].Detail, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("upstream: cursor record %d: %q: %w", recs[0].Seq, recs[0].Detail, err)
	}
	return seq, true, nil
}

// Run publishes until ctx is done. It returns an error only when the
// journal cannot be read at start; publish failures are retried, counted
// and shown by Stats and Alarm.
func (p *Publisher) Run(ctx context.Context) error {
	cursor, known, err := p.loadCursor()
	if err != nil {
		return err
	}
	p.cursor.Store(cursor)
	p.out.Retain(cursor + 1)
	p.log.Info().Uint64("cursor", cursor).Bool("first_start", !known).Msg("upstream publisher starting")
	// pending: messages were acknowledged since the journal last got the
	// cursor. Only they make a cursor record worth writing: a cursor that
	// moved over records not published (the cursor records themselves)
	// is not written, or every cursor record would call for another.
	pending := false
	var lastWrite time.Time
	var retry time.Duration
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if retry > 0 {
			timer.Reset(retry)
			select {
			case <-ctx.Done():
				p.writeCursor(&pending, cursor)
				return nil
			case <-timer.C:
			}
		}
		recs, err := p.out.After(cursor, p.cfg.Batch)
		if err != nil {
			p.fail(fmt.Errorf("read journal after %d: %w", cursor, err))
			retry = p.backoff(retry)
			continue
		}
		if len(recs) == 0 {
			// Caught up: wait for the next record. A cursor still to
			// write is written CursorEvery after the last one, not at
			// every catch-up (at 1,000 items/s that would be a cursor
			// record per round).
			p.oldest.Store(0)
			wctx, cancel := ctx, context.CancelFunc(func() {})
			if pending {
				due := lastWrite.Add(p.cfg.CursorEvery)
				if now := p.cfg.Now(); !now.Before(due) {
					p.writeCursor(&pending, cursor)
					lastWrite = now
				} else {
					wctx, cancel = context.WithTimeout(ctx, due.Sub(now))
				}
			}
			err := p.out.WaitDurable(wctx, cursor+1)
			cancel()
			if err != nil && (ctx.Err() != nil || errors.Is(err, journal.ErrClosed)) {
				p.writeCursor(&pending, cursor)
				return nil
			}
			if err == nil && p.cfg.Linger > 0 {
				timer.Reset(p.cfg.Linger)
				select {
				case <-ctx.Done():
					p.writeCursor(&pending, cursor)
					return nil
				case <-timer.C:
				}
			}
			continue
		}
		if gap := recs[0].Seq - cursor - 1; gap > 0 && (known || cursor > 0) {
			p.lost.Add(gap)
			p.mu.Lock()
			p.lostAt = p.cfg.Now()
			p.mu.Unlock()
			p.log.Error().Uint64("from", cursor+1).Uint64("records", gap).
				Msg("upstream: journal retention deleted records before they were published")
		}
		known = true
		p.oldest.Store(recs[0].Time.UnixNano())
		msgs := p.round.encode(p.cfg.Site, recs, p.fail)
		acked, err := p.sink.Publish(ctx, msgs)
		// The cursor moves to the record before the first unacknowledged
		// message, or past the whole batch.
		next := recs[len(recs)-1].Seq
		if acked < len(msgs) {
			next = msgs[acked].Seq - 1
		}
		if acked > 0 {
			pending = true
			p.published.Add(uint64(acked))
			p.lastPub.Store(p.cfg.Now().UnixNano())
		}
		if next > cursor {
			cursor = next
			p.cursor.Store(cursor)
			p.out.Retain(cursor + 1)
		}
		if err != nil {
			if ctx.Err() != nil {
				p.writeCursor(&pending, cursor)
				return nil
			}
			p.fail(err)
			retry = p.backoff(retry)
			continue
		}
		retry = 0
		p.mu.Lock()
		p.failing = time.Time{}
		p.mu.Unlock()
		if now := p.cfg.Now(); now.Sub(lastWrite) >= p.cfg.CursorEvery && pending {
			p.writeCursor(&pending, cursor)
			lastWrite = now
		}
	}
}

// round holds what encoding a round of records reuses. A round's
// payloads go into one fresh buffer and its message ids into one string
// (the sink may hold a message until its acknowledgement, and a late
// retry must never see another round's bytes), sized from the last
// round; the message slice and the subjects are reused. A few allocations
// per round instead of a dozen per record: less garbage for the GC that
// the sorting goroutines share.
type round struct {
	msgs     []Message
	subjects map[subjectKey]string
	dataCap  int
	ids      strings.Builder
	idEnds   []int
}

type subjectKey struct {
	line string
	kind journal.Kind
}

// maxSubjects bounds the subject cache (lines times kinds is far less).
const maxSubjects = 4096

// encode makes the messages of recs' published records; a record that
// cannot be encoded is reported to fail and left out (it cannot happen
// with the journal's types; counted, not stuck on).
func (r *round) encode(site string, recs []journal.Record, fail func(error)) []Message {
	clear(r.msgs)
	r.msgs = r.msgs[:0]
	if r.subjects == nil || len(r.subjects) > maxSubjects {
		r.subjects = make(map[subjectKey]string)
	}
	data := make([]byte, 0, r.dataCap)
	r.ids.Reset()
	r.ids.Grow(len(recs) * (len(site) + 8))
	r.idEnds = r.idEnds[:0]
	for i := range recs {
		rec := &recs[i]
		if !Published(rec.Kind) {
			continue
		}
		start := len(data)
		var err error
		data, err = AppendPayload(data, site, rec)
		if err != nil {
			data = data[:start]
			fail(err)
			continue
		}
		k := subjectKey{rec.Line, rec.Kind}
		subj, ok := r.subjects[k]
		if !ok {
			subj = Subject(site, rec)
			r.subjects[k] = subj
		}
		r.ids.WriteString(site)
		r.ids.WriteByte('/')
		var num [20]byte
		r.ids.Write(strconv.AppendUint(num[:0], rec.Seq, 10))
		r.idEnds = append(r.idEnds, r.ids.Len())
		// Data is capped at its own end: nothing appended later can
		// write into it, even when the buffer has room.
		r.msgs = append(r.msgs, Message{Subject: subj, Seq: rec.Seq, Data: data[start:len(data):len(data)]})
	}
	r.dataCap = max(r.dataCap, len(data))
	ids, from := r.ids.String(), 0
	for i, end := range r.idEnds {
		r.msgs[i].ID = ids[from:end]
		from = end
	}
	return r.msgs
}

func (p *Publisher) backoff(d time.Duration) time.Duration {
	return min(max(2*d, 50*time.Millisecond), p.cfg.RetryMax)
}

func (p *Publisher) fail(err error) {
	n := p.errs.Add(1)
	p.mu.Lock()
	first := p.lastErr == "" || p.cfg.Now().Sub(p.errAt) > 10*time.Second
	p.lastErr, p.errAt = err.Error(), p.cfg.Now()
	if p.failing.IsZero() {
		p.failing = p.errAt
	}
	p.mu.Unlock()
	if first { // rate-limited: a long outage fails every few seconds
		p.log.Warn().Err(err).Uint64("errors", n).Msg("upstream publish failed; the backlog waits in the journal")
	}
}

// writeCursor records the cursor in the journal. The record is not
// published; the next round steps over it without writing another.
func (p *Publisher) writeCursor(pending *bool, cursor uint64) {
	if !*pending {
		return
	}
	if _, err := p.out.Append(journal.Record{Kind: journal.KindUpstreamCursor,
		Detail: strconv.FormatUint(cursor, 10)}); err != nil {
		p.log.Warn().Err(err).Uint64("cursor", cursor).Msg("upstream cursor not recorded; a restart re-publishes from the previous one")
		return
	}
	*pending = false
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() Stats {
	s := Stats{
		Cursor:    p.cursor.Load(),
		Durable:   p.out.Stats().DurableSeq,
		Published: p.published.Load(),
		Errors:    p.errs.Load(),
		Lost:      p.lost.Load(),
	}
	if s.Durable > s.Cursor {
		s.Backlog = s.Durable - s.Cursor
	}
	if ns := p.lastPub.Load(); ns != 0 {
		s.LastPublish = time.Unix(0, ns).UTC()
	}
	if ns := p.oldest.Load(); ns != 0 && s.Backlog > 0 {
		s.OldestAge = max(p.cfg.Now().Sub(time.Unix(0, ns)), 0)
	}
	p.mu.Lock()
	s.LastError, s.LastErrorTime = p.lastErr, p.errAt
	p.mu.Unlock()
	return s
}

// lostAlarmFor is how long records lost to retention keep the alarm up.
const lostAlarmFor = time.Hour

// Alarm is the upstream alarm's text, or "" while there is none: a
// backlog older or larger than the thresholds, or records lost to
// retention in the last hour.
func (p *Publisher) Alarm() string {
	s := p.Stats()
	p.mu.Lock()
	lostAt, failing := p.lostAt, p.failing
	p.mu.Unlock()
	switch {
	case !failing.IsZero() && p.cfg.Now().Sub(failing) > p.cfg.AlarmFailing:
		return fmt.Sprintf("upstream publish failing for %s (backlog %d records): %s",
			p.cfg.Now().Sub(failing).Round(time.Second), s.Backlog, s.LastError)
	case !lostAt.IsZero() && p.cfg.Now().Sub(lostAt) < lostAlarmFor:
		return fmt.Sprintf("upstream: %d journal records pruned before they were published", s.Lost)
	case s.Backlog > p.cfg.AlarmRecords || s.OldestAge > p.cfg.AlarmAge:
		t := fmt.Sprintf("upstream backlog %d records, oldest %s", s.Backlog, s.OldestAge.Round(time.Second))
		if s.LastError != "" {
			t += ": " + s.LastError
		}
		return t
	}
	return ""
}

// Collectors are the publisher's metrics, for the gateway's registry.
func (p *Publisher) Collectors() []prometheus.Collector {
	g := func(name, help string, f func(Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(p.Stats()) })
	}
	c := func(name, help string, f func(Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(p.Stats()) })
	}
	return []prometheus.Collector{
		g("sortgw_upstream_backlog_records", "Journal records durable and not yet acknowledged upstream.", func(s Stats) float64 { return float64(s.Backlog) }),
		g("sortgw_upstream_backlog_age_seconds", "Age of the oldest record not yet acknowledged upstream (0: none).", func(s Stats) float64 { return s.OldestAge.Seconds() }),
		g("sortgw_upstream_cursor_seq", "Last journal seq acknowledged upstream.", func(s Stats) float64 { return float64(s.Cursor) }),
		g("sortgw_upstream_last_publish_timestamp_seconds", "When a message was last acknowledged upstream (0: never since start).", func(s Stats) float64 {
			if s.LastPublish.IsZero() {
				return 0
			}
			return float64(s.LastPublish.UnixNano()) / 1e9
		}),
		c("sortgw_upstream_published_total", "Messages acknowledged upstream since start.", func(s Stats) float64 { return float64(s.Published) }),
		c("sortgw_upstream_errors_total", "Failed upstream publish rounds since start.", func(s Stats) float64 { return float64(s.Errors) }),
		c("sortgw_upstream_lost_records_total", "Journal records pruned by retention before they were published.", func(s Stats) float64 { return float64(s.Lost) }),
	}
}
