// Package journal is the gateway's audit journal: the decision and the
// outcome of every item pass, and the sorter, plan and gateway events
// around them, kept in one bbolt file for weeks.
//
// Append never waits for the disk. Records go into a bounded in-memory
// queue; Run's writer takes them off in batches and commits each batch in
// one bbolt transaction (group commit: a batch closes after FlushInterval
// or MaxBatch records, whichever comes first, and the fsync of one batch
// covers all its records). A full queue is never silent: Append returns
// ErrFull and counts the record as not kept, AppendWait waits for room.
// Health says whether commits fail, whether the queue is full and how
// much disk is free; Config.WhenFull is the decided policy for a full
// queue (keep sorting, or stop the lines taking new reads: StopReads). WaitDurable and Flush
// block until records are committed: a record whose WaitDurable returned
// nil survives a crash of the process (kill -9; TestProcessKill9 shows
// it). Every commit is fdatasync'ed (bbolt with NoSync false, asserted by
// TestCommitSyncSettings), so it also survives power loss as far as the
// filesystem and the disk honour fdatasync (no volatile write cache that
// lies); no test here cuts the power, so that part rests on configuration,
// not on a demonstration.
//
// The journal also tracks open items: a (line, TID, pass) with a
// decision and no outcome yet. Items still open when the
// journal is reopened (the gateway crashed or stopped with items on the
// belt) get an outcome record "lost-at-restart", so every pass ends in
// exactly one outcome even across a crash.
//
// Queries (by TID, by barcode, by time, most recent, and item passes by
// what is printed on the label: search.go) read committed records
// through secondary index buckets. Retention deletes records older
// than MaxAge and, while the live data exceeds MaxBytes, the oldest ones,
// in bounded transactions. bbolt never shrinks its file: pages freed by
// retention are reused by later records, so the file stays at its high
// water mark (about MaxBytes) rather than shrinking back.
package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"sortgw/devices"
)

// Errors callers branch on.
// commitRetryMax caps the wait between attempts to commit while commits
// fail (a full or failing disk).
const commitRetryMax = time.Second

var (
	// ErrFull: Append found the queue full; the record was not taken.
	ErrFull = errors.New("journal queue full")
	// ErrClosed: the journal was closed.
	ErrClosed = errors.New("journal closed")
	// ErrRunning: Run was called while another Run is active.
	ErrRunning = errors.New("journal already running")
	// ErrNotFound: Get found no record with that seq.
	ErrNotFound = errors.New("journal record not found")
	// ErrRetiredKind: Append was given a kind nothing writes any more
	// (Kind.Retired); old records of it still decode.
	ErrRetiredKind = errors.New("retired journal record kind")
)

// Config configures a Journal. Zero values take the defaults Validate
// fills in.
type Config struct {
	// Path of the bbolt file (created if missing). Required.
	Path string `yaml:"path"`
	// QueueSize bounds the records waiting for the writer (default 65536).
	QueueSize int `yaml:"queue_size"`
	// MaxBatch is the most records one transaction commits (default 256).
	MaxBatch int `yaml:"max_batch"`
	// FlushInterval is the longest a record waits in the queue before its
	// batch starts committing (default 5ms).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxAge: records older than this are deleted (default 30 days;
	// negative keeps records forever).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes: while the live data exceeds this, the oldest records are
	// deleted until it is 10% below (default 1 GiB; negative: no limit).
	MaxBytes int64 `yaml:"max_bytes"`
	// PruneInterval is how often Run checks retention (default 1 minute).
	PruneInterval time.Duration `yaml:"prune_interval"`
	// PruneBatch is the most records one retention transaction deletes,
	// so pruning never holds the writer off for long (default 2000).
	PruneBatch int `yaml:"prune_batch"`
	// QueryLimit caps the records one query returns (default 10000).
	QueryLimit int `yaml:"query_limit"`
	// LockTimeout: how long Open waits for another process's lock on the
	// file (default 2s).
	LockTimeout time.Duration `yaml:"lock_timeout"`
	// PageReleaseInterval is how often the file's pages mapped into the
	// process are released (Linux; see pages.go): the journal's share of
	// the gateway's RSS stays what readers touch in one interval instead
	// of growing with the file (default 15s; negative: never). A release
	// costs a few minor page faults for the pages read next.
	PageReleaseInterval time.Duration `yaml:"page_release_interval"`
	// InitialMmapSize lets read transactions run without blocking the
	// writer's remaps until the file reaches it (default 64 MiB).
	InitialMmapSize int `yaml:"initial_mmap_size"`
	// WhenFull is the decided policy for a full queue (default
	// keep-sorting): "keep-sorting" sorts on and counts every record not
	// kept; "stop-reads" stops the lines commanding new reads until the
	// queue drains below ResumePercent. Both log at error level
	// (rate-limited) and show on the status page, /metrics and /readyz.
	WhenFull string `yaml:"when_full"`
	// ResumePercent: a queue that filled counts as full until it drains
	// to this percent of QueueSize (default 50; 1..99).
	ResumePercent int `yaml:"resume_percent"`
	// FailingGrace: commits failing for longer than this make the gateway
	// not ready (default 5s); shorter hiccups only show as failing.
	FailingGrace time.Duration `yaml:"failing_grace"`
	// NotKeptLogEvery is the least time between two log lines about
	// records not kept while the queue stays full (default 10s).
	NotKeptLogEvery time.Duration `yaml:"not_kept_log_every"`
	// DiskCheckInterval is how often the free space of the journal's
	// folder is measured (default 10s; negative: only at Open).
	DiskCheckInterval time.Duration `yaml:"disk_check_interval"`
	// DiskWarnBytes and DiskWarnPercent: free space below either warns
	// (log, page, metric) before the disk fills (defaults 1 GiB and 10%;
	// negative: that threshold is off).
	DiskWarnBytes   int64   `yaml:"disk_warn_bytes"`
	DiskWarnPercent float64 `yaml:"disk_warn_percent"`
	// DiskCriticalBytes and DiskCriticalPercent: free space below either
	// is an alarm and makes the gateway not ready (defaults 128 MiB and
	// 1%; negative: off).
	DiskCriticalBytes   int64   `yaml:"disk_critical_bytes"`
	DiskCriticalPercent float64 `yaml:"disk_critical_percent"`
	// Now is the clock for record times and retention (nil: time.Now).
	Now func() time.Time `yaml:"-"` // a test clock, not a site setting
	// ExportDir, when set, receives the consolidation records (parcels
	// booked to containers, closes, loads, departures) as CSV, one file
	// per day (consolidation-2026-12-05.csv), before retention deletes
	// them: the van manifests outlive the journal's retention.
	ExportDir string `yaml:"manifest_export_dir"`
	// CommitFault, when set, is asked before each commit and an error it
	// returns fails that commit (the transaction is rolled back, the
	// records stay queued), as a full or failing disk does. A test seam
	// for the gateway's and the journal's own tests, not a site setting.
	CommitFault func() error `yaml:"-"`
}

// Validate checks the config and fills in defaults.
func (c *Config) Validate() error {
	if c.Path == "" {
		return errors.New("journal config: path is required")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.QueueSize, 65536)
	def(&c.MaxBatch, 256)
	def(&c.PruneBatch, 2000)
	def(&c.QueryLimit, 10000)
	def(&c.InitialMmapSize, 64<<20)
	if c.PageReleaseInterval == 0 {
		c.PageReleaseInterval = 15 * time.Second
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 5 * time.Millisecond
	}
	if c.MaxAge == 0 {
		c.MaxAge = 30 * 24 * time.Hour
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 1 << 30
	}
	if c.PruneInterval == 0 {
		c.PruneInterval = time.Minute
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.WhenFull == "" {
		c.WhenFull = KeepSorting
	}
	def(&c.ResumePercent, 50)
	durDef := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	durDef(&c.FailingGrace, 5*time.Second)
	durDef(&c.NotKeptLogEvery, 10*time.Second)
	durDef(&c.DiskCheckInterval, 10*time.Second)
	if c.DiskWarnBytes == 0 {
		c.DiskWarnBytes = 1 << 30
	}
	if c.DiskWarnPercent == 0 {
		c.DiskWarnPercent = 10
	}
	if c.DiskCriticalBytes == 0 {
		c.DiskCriticalBytes = 128 << 20
	}
	if c.DiskCriticalPercent == 0 {
		c.DiskCriticalPercent = 1
	}
	switch {
	case c.WhenFull != KeepSorting && c.WhenFull != StopReads:
		return fmt.Errorf("journal config: when full %q: want %s or %s", c.WhenFull, KeepSorting, StopReads)
	case c.ResumePercent < 1 || c.ResumePercent > 99:
		return fmt.Errorf("journal config: resume percent %d out of range 1..99", c.ResumePercent)
	case c.FailingGrace < 0:
		return fmt.Errorf("journal config: failing grace %s < 0", c.FailingGrace)
	case c.NotKeptLogEvery < 0:
		return fmt.Errorf("journal config: not kept log every %s < 0", c.NotKeptLogEvery)
	case c.DiskWarnPercent > 100 || c.DiskCriticalPercent > 100:
		return fmt.Errorf("journal config: disk warn percent %g or disk critical percent %g above 100", c.DiskWarnPercent, c.DiskCriticalPercent)
	case c.QueueSize < 1:
		return fmt.Errorf("journal config: queue size %d < 1", c.QueueSize)
	case c.MaxBatch < 1:
		return fmt.Errorf("journal config: max batch %d < 1", c.MaxBatch)
	case c.PruneBatch < 1:
		return fmt.Errorf("journal config: prune batch %d < 1", c.PruneBatch)
	case c.QueryLimit < 1:
		return fmt.Errorf("journal config: query limit %d < 1", c.QueryLimit)
	case c.InitialMmapSize < 0:
		return fmt.Errorf("journal config: initial mmap size %d < 0", c.InitialMmapSize)
	case c.FlushInterval < 0:
		return fmt.Errorf("journal config: flush interval %s < 0", c.FlushInterval)
	case c.PruneInterval < 0:
		return fmt.Errorf("journal config: prune interval %s < 0", c.PruneInterval)
	case c.LockTimeout < 0:
		return fmt.Errorf("journal config: lock timeout %s < 0", c.LockTimeout)
	}
	return nil
}

// Journal is an open audit journal. Append, AppendWait, WaitDurable,
// Flush, the queries and Stats are safe for concurrent use.
type Journal struct {
	cfg Config
	log zerolog.Logger
	db  *bolt.DB
	q   *queue
	// pageSize is read once: db.Info must not be called after Close.
	pageSize int

	kick     chan struct{} // cap 1: records arrived, or Flush asked
	flushReq atomic.Bool
	stop     chan struct{} // closed by Close

	durable atomic.Uint64
	durMu   sync.Mutex
	durCh   chan struct{} // closed and replaced at every commit
	durShut bool

	mu      sync.Mutex // running, closed, runDone
	running bool
	closed  bool
	runDone chan struct{}

	writeMu sync.Mutex // the writer's batch and arena; Run vs Close
	batch   []Record
	arena   []byte
	failing bool // the last commit failed (log once per streak)
	// onCommit, when set (tests), runs as bbolt's commit handler: after
	// the transaction's pages and meta page are written and synced, before
	// the records are published as durable.
	onCommit func(last uint64)

	pruneMu     sync.Mutex
	sizePruning bool // above MaxBytes: prune down to the low mark

	full          atomic.Uint64
	committed     atomic.Uint64
	batches       atomic.Uint64
	lastBatch     atomic.Int64
	commitErrors  atomic.Uint64
	pageReleases  atomic.Uint64 // releasePages runs that dropped mapped pages
	pruned        atomic.Uint64
	prunedUnsent  atomic.Uint64 // pruned while held for upstream (outbox.go)
	retain        atomic.Uint64 // first seq held for upstream; 0: none
	pruneTx       atomic.Uint64
	open          atomic.Int64
	unmatched     atomic.Uint64
	lostAtRestart int
	errMu         sync.Mutex
	lastErr       string
	commitLatency devices.Histogram

	// Health (health.go).
	notKept    [NumNotKeptReasons]atomic.Uint64
	lastCommit atomic.Int64  // unix ns of the last successful commit
	fullKick   chan struct{} // cap 1: Append found the queue full
	stopReads  bool          // WhenFull is StopReads (read per item)
	// Under errMu with lastErr:
	lastErrAt    time.Time
	failingSince time.Time // zero while commits succeed
	okSince      time.Time // when commits last began succeeding (or Open)
	disk         Disk
}

// Open opens (or creates) the journal file, closes every item left open by
// the previous run with a lost-at-restart outcome, and returns the journal
// ready to take records. Run must be running for records to reach the
// disk; Close flushes whatever is still queued.
func Open(cfg Config, log zerolog.Logger) (*Journal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout:         cfg.LockTimeout,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: cfg.InitialMmapSize,
		// Durability: every commit is fdatasync'ed before Update returns
		// (NoSync false), growing the file is synced too (NoGrowSync
		// false), and the freelist is written with each commit
		// (NoFreelistSync false) so that Open need not scan the file.
		// WaitDurable's promise rests on these; TestCommitSyncSettings
		// asserts them.
		NoSync:         false,
		NoGrowSync:     false,
		NoFreelistSync: false,
	})
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", cfg.Path, err)
	}
	j := &Journal{
		cfg:       cfg,
		log:       log.With().Str("journal", cfg.Path).Logger(),
		db:        db,
		kick:      make(chan struct{}, 1),
		fullKick:  make(chan struct{}, 1),
		okSince:   time.Now(),
		stopReads: cfg.WhenFull == StopReads,
		stop:      make(chan struct{}),
		durCh:     make(chan struct{}),
	}
	j.pageSize = db.Info().PageSize
	var last uint64
	if err := db.Update(func(tx *bolt.Tx) error {
		var err error
		last, err = initBuckets(tx)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w", cfg.Path, err)
	}
	if err := j.ensureSearchIndex(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w", cfg.Path, err)
	}
	last, n, err := j.recoverOpen(last)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: close items left open: %w", cfg.Path, err)
	}
	j.lostAtRestart = n
	j.durable.Store(last)
	j.q = newQueue(cfg.QueueSize, last+1, cfg.QueueSize*cfg.ResumePercent/100)
	j.CheckDisk()
	ev := j.log.Info().Uint64("last_seq", last)
	if n > 0 {
		ev = j.log.Warn().Uint64("last_seq", last)
	}
	ev.Int("lost_at_restart", n).Msg("journal opened")
	return j, nil
}

// recoverOpen writes a lost-at-restart outcome for every open item, in
// transactions of at most a few thousand, and returns the new last seq.
func (j *Journal) recoverOpen(last uint64) (uint64, int, error) {
	now := j.cfg.Now()
	total := 0
	for {
		var batch []Record
		err := j.db.Update(func(tx *bolt.Tx) error {
			batch = batch[:0]
			open := tx.Bucket(bucketOpen)
			recs := tx.Bucket(bucketRecords)
			var bad [][]byte
			c := open.Cursor()
			for k, v := c.First(); k != nil && len(batch) < 4096; k, v = c.Next() {
				line, tid, pass, ok := parseOpenKey(k)
				if !ok || tid == 0 || len(v) != 16 {
					bad = append(bad, append([]byte(nil), k...))
					continue
				}
				r := Record{Kind: KindOutcome, Time: now, Line: line, TID: tid, Pass: pass, Outcome: OutcomeLostAtRestart}
				prevSeq := seqFromIndexKey(v[:8])
				since := time.Unix(0, int64(seqFromIndexKey(v[8:]))).UTC()
				var p Record
				if pv := recs.Get(v[:8]); pv != nil && decodeRecord(pv, &p) == nil {
					r.Scanner, r.Dest, r.Chute, r.Reason = p.Scanner, p.Dest, p.Chute, p.Reason
					r.Route, r.PlanVersion, r.CmdSeq = p.Route, p.PlanVersion, p.CmdSeq
				}
				r.Detail = fmt.Sprintf("open since %s at restart; last record %d", since.Format(time.RFC3339Nano), prevSeq)
				last++
				r.Seq = last
				batch = append(batch, r)
			}
			for _, k := range bad {
				if err := open.Delete(k); err != nil {
					return err
				}
			}
			if len(bad) > 0 {
				j.log.Error().Int("entries", len(bad)).Msg("journal: dropped unreadable open-item entries")
			}
			_, _, err := writeBatch(tx, batch, nil)
			return err
		})
		if err != nil {
			return last, total, err
		}
		total += len(batch)
		if len(batch) == 0 {
			return last, total, nil
		}
	}
}

// Append queues rec and returns its seq without waiting for the disk. It
// sets rec.Time to the journal's clock when zero. The journal keeps
// rec.Codes: the caller must not change that slice afterwards. With the
// queue full it returns ErrFull at once and counts it (Stats.Full): the
// record is not taken, and the caller decides (AppendWait blocks instead).
func (j *Journal) Append(rec Record) (uint64, error) {
	if rec.Kind.Retired() {
		return 0, fmt.Errorf("journal append %s: %w", rec.Kind, ErrRetiredKind)
	}
	if rec.Time.IsZero() {
		rec.Time = j.cfg.Now()
	}
	seq, kick, _, err := j.q.push(&rec, mono(), j.cfg.MaxBatch)
	if err != nil {
		switch err {
		case ErrFull:
			j.full.Add(1)
			j.notKept[NotKeptQueueFull].Add(1)
			select {
			case j.fullKick <- struct{}{}:
			default:
			}
		case ErrClosed:
			j.notKept[NotKeptClosed].Add(1)
		}
		return 0, err
	}
	if kick {
		j.signal()
	}
	return seq, nil
}

// AppendWait is Append that waits for room in the queue (back-pressure)
// until ctx is done.
func (j *Journal) AppendWait(ctx context.Context, rec Record) (uint64, error) {
	if rec.Kind.Retired() {
		return 0, fmt.Errorf("journal append %s: %w", rec.Kind, ErrRetiredKind)
	}
	if rec.Time.IsZero() {
		rec.Time = j.cfg.Now()
	}
	for {
		seq, kick, wait, err := j.q.push(&rec, mono(), j.cfg.MaxBatch)
		if err == nil {
			if kick {
				j.signal()
			}
			return seq, nil
		}
		if err != ErrFull {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("journal append: %w", ctx.Err())
		case <-wait:
		}
	}
}

func (j *Journal) signal() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// WaitDurable blocks until the record with this seq (and every record
// before it) is committed and synced, ctx is done, or the journal closes.
func (j *Journal) WaitDurable(ctx context.Context, seq uint64) error {
	for {
		if j.durable.Load() >= seq {
			return nil
		}
		j.durMu.Lock()
		ch, shut := j.durCh, j.durShut
		j.durMu.Unlock()
		if j.durable.Load() >= seq {
			return nil
		}
		if shut {
			return fmt.Errorf("wait for journal record %d: %w", seq, ErrClosed)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for journal record %d: %w", seq, ctx.Err())
		case <-ch:
		}
	}
}

// Flush asks the writer to commit everything appended so far without
// waiting out FlushInterval, and waits until it is durable.
func (j *Journal) Flush(ctx context.Context) error {
	target := j.q.lastSeq()
	if j.durable.Load() >= target {
		return nil
	}
	j.flushReq.Store(true)
	j.signal()
	return j.WaitDurable(ctx, target)
}

func (j *Journal) setDurable(seq uint64) {
	j.durable.Store(seq)
	j.durMu.Lock()
	close(j.durCh)
	j.durCh = make(chan struct{})
	j.durMu.Unlock()
}

// Run is the writer: it commits queued records in groups and runs
// retention every PruneInterval, until ctx is done or Close is called;
// then it commits everything still queued and returns. A commit that fails
// (disk full, I/O error) is logged and retried with back-off, its records
// kept: the queue fills and Append reports ErrFull rather than losing
// records. Run returns nil on a clean stop, or the error that kept it from
// committing the queue at the end.
func (j *Journal) Run(ctx context.Context) error {
	j.mu.Lock()
	switch {
	case j.closed:
		j.mu.Unlock()
		return ErrClosed
	case j.running:
		j.mu.Unlock()
		return ErrRunning
	}
	j.running = true
	done := make(chan struct{})
	j.runDone = done
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		j.running = false
		close(done)
		j.mu.Unlock()
	}()

	pruneTick := time.NewTicker(j.cfg.PruneInterval)
	defer pruneTick.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	pruneDue := true
	var retry time.Duration
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	released := make(chan struct{})
	go func() { defer close(watched); j.watch(wctx) }()
	go func() { defer close(released); j.releaseLoop(wctx) }()
	defer func() { stopWatch(); <-watched; <-released }()
	for {
		if retry > 0 {
			timer.Reset(retry)
			select {
			case <-ctx.Done():
				return j.drain()
			case <-j.stop:
				return j.drain()
			case <-timer.C:
			}
		}
		n, oldest := j.q.peek()
		if n == 0 {
			j.flushReq.Store(false)
		}
		if n > 0 || j.pendingBatch() {
			wait := j.cfg.FlushInterval - time.Duration(mono()-oldest)
			if n == 0 || n >= j.cfg.MaxBatch || wait <= 0 || j.flushReq.Load() {
				if err := j.commitNext(); err != nil {
					// A failing commit is cheap; try again at least once a
					// second so that the audit trail catches up within a
					// second of the disk's return.
					retry = min(max(2*retry, 50*time.Millisecond), commitRetryMax)
					continue
				}
				retry = 0
				// Under a sustained backlog the select below is never
				// reached: look at the stop signals and the prune ticker
				// here too.
				select {
				case <-ctx.Done():
					return j.drain()
				case <-j.stop:
					return j.drain()
				case <-pruneTick.C:
					pruneDue = true
				default:
				}
				if pruneDue {
					pruneDue = j.pruneStep()
				}
				continue
			}
			timer.Reset(wait)
		}
		if n == 0 && pruneDue {
			pruneDue = j.pruneStep()
			continue
		}
		select {
		case <-ctx.Done():
			return j.drain()
		case <-j.stop:
			return j.drain()
		case <-j.kick:
		case <-timer.C:
		case <-pruneTick.C:
			pruneDue = true
		}
		timer.Stop()
	}
}

func (j *Journal) pendingBatch() bool {
	j.writeMu.Lock()
	defer j.writeMu.Unlock()
	return len(j.batch) > 0
}

// commitNext commits the batch a failed commit left behind, or the next
// MaxBatch records of the queue, in one transaction.
func (j *Journal) commitNext() error {
	j.writeMu.Lock()
	defer j.writeMu.Unlock()
	if len(j.batch) == 0 {
		j.batch = j.q.take(j.batch[:0], j.cfg.MaxBatch)
	}
	n := len(j.batch)
	if n == 0 {
		return nil
	}
	start := time.Now()
	var res batchResult
	first, last := j.batch[0].Seq, j.batch[n-1].Seq
	err := j.db.Update(func(tx *bolt.Tx) error {
		if j.onCommit != nil {
			tx.OnCommit(func() { j.onCommit(last) })
		}
		var err error
		j.arena, res, err = writeBatch(tx, j.batch, j.arena)
		if err == nil && j.cfg.CommitFault != nil {
			err = j.cfg.CommitFault() // rolls the written batch back
		}
		return err
	})
	if err != nil {
		j.commitErrors.Add(1)
		err = fmt.Errorf("commit journal records %d..%d: %w", first, last, err)
		now := time.Now()
		j.errMu.Lock()
		j.lastErr, j.lastErrAt = err.Error(), now
		if j.failingSince.IsZero() {
			j.failingSince = now
		}
		j.errMu.Unlock()
		if !j.failing {
			j.log.Error().Err(err).Msg("journal commit failed; retrying, records kept in memory")
		}
		j.failing = true
		return err
	}
	now := time.Now()
	j.lastCommit.Store(now.UnixNano())
	if j.failing {
		j.errMu.Lock()
		down := now.Sub(j.failingSince)
		j.failingSince, j.okSince = time.Time{}, now
		j.errMu.Unlock()
		j.log.Info().Uint64("seq", last).Str("failed_for", down.Round(time.Millisecond).String()).Msg("journal commits again")
		j.failing = false
	}
	j.commitLatency.Observe(time.Since(start))
	j.committed.Add(uint64(n))
	j.batches.Add(1)
	j.lastBatch.Store(int64(n))
	j.open.Add(int64(res.opened - res.closed))
	j.unmatched.Add(uint64(res.unmatched))
	clear(j.batch)
	j.batch = j.batch[:0]
	if cap(j.arena) > 8<<20 {
		j.arena = nil // one huge batch should not pin its arena forever
	}
	// Update returned nil: bbolt has written and fdatasync'ed the batch.
	// Only now may WaitDurable let its callers go.
	j.setDurable(last)
	return nil
}

// drain commits everything appended before it was called (producers
// that keep appending cannot hold it up); it gives up at the first
// failure.
func (j *Journal) drain() error {
	target := j.q.lastSeq()
	for j.durable.Load() < target {
		if n, _ := j.q.peek(); n == 0 && !j.pendingBatch() {
			return nil // cannot happen: seq order is commit order
		}
		if err := j.commitNext(); err != nil {
			return err
		}
	}
	return nil
}

// Close stops Run (which commits what is queued), refuses further
// records, commits any that came in meanwhile and closes the file. It is
// safe to call twice; the second call returns nil.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	running, done := j.running, j.runDone
	j.mu.Unlock()

	close(j.stop)
	if running {
		<-done
	}
	j.q.close()
	err := j.drain()
	if err != nil {
		n, _ := j.q.peek()
		j.writeMu.Lock()
		n += len(j.batch)
		j.writeMu.Unlock()
		j.notKept[NotKeptAtClose].Add(uint64(n))
		j.log.Error().Err(err).Int("records", n).Msg("ALARM journal closed with records not committed: they are lost")
	}
	j.durMu.Lock()
	j.durShut = true
	close(j.durCh)
	j.durCh = make(chan struct{})
	j.durMu.Unlock()
	return errors.Join(err, j.db.Close())
}

// LostAtRestart is how many items Open found open and closed with a
// lost-at-restart outcome.
func (j *Journal) LostAtRestart() int { return j.lostAtRestart }

// Stats is a snapshot of the journal's counters for the status page and
// metrics.
type Stats struct {
	Appended     uint64 // records accepted by Append and AppendWait
	Committed    uint64 // records committed and synced
	Batches      uint64 // write transactions that committed records
	Full         uint64 // Append calls refused with ErrFull
	Queued       int    // records waiting for the writer
	LastBatch    int    // records in the last committed batch
	LastSeq      uint64 // seq of the last record appended
	DurableSeq   uint64 // every record up to this seq is on disk
	CommitErrors uint64
	LastError    string
	// Open is the number of items with a read, decision or command and no
	// outcome yet; Unmatched counts outcomes of a pass (Pass != 0) that
	// closed no open item: a second outcome, or one with no opening record.
	Open          int64
	Unmatched     uint64
	LostAtRestart int
	Pruned        uint64 // records deleted by retention
	PageReleases  uint64 // times the file's mapped pages were released (PageReleaseInterval)
	// PrunedUnsent: records retention by size deleted before the upstream
	// publisher had published them (Retain).
	PrunedUnsent uint64
	PruneTx      uint64 // retention transactions
	// FileBytes is the file's high water mark; LiveBytes excludes free
	// pages (what retention compares with MaxBytes).
	FileBytes int64
	LiveBytes int64
	// Commit is the latency of one batch's transaction including fsync.
	Commit devices.HistogramSnapshot
}

// Stats returns the current counters.
func (j *Journal) Stats() Stats {
	appended, queued := j.q.counters()
	s := Stats{
		Appended:      appended,
		Committed:     j.committed.Load(),
		Batches:       j.batches.Load(),
		Full:          j.full.Load(),
		Queued:        queued,
		LastBatch:     int(j.lastBatch.Load()),
		LastSeq:       j.q.lastSeq(),
		DurableSeq:    j.durable.Load(),
		CommitErrors:  j.commitErrors.Load(),
		Open:          j.open.Load(),
		Unmatched:     j.unmatched.Load(),
		LostAtRestart: j.lostAtRestart,
		Pruned:        j.pruned.Load(),
		PageReleases:  j.pageReleases.Load(),
		PrunedUnsent:  j.prunedUnsent.Load(),
		PruneTx:       j.pruneTx.Load(),
		Commit:        j.commitLatency.Snapshot(),
	}
	j.errMu.Lock()
	s.LastError = j.lastErr
	j.errMu.Unlock()
	s.FileBytes, s.LiveBytes, _ = j.sizes()
	return s
}
