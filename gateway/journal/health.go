package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// Policies for a full queue (Config.WhenFull).
const (
	// KeepSorting: the line sorts on; every record the full queue refuses
	// is counted as not kept (by reason) and logged, rate-limited, at
	// error level. The audit trail has a hole; sorting has none.
	KeepSorting = "keep-sorting"
	// StopReads: the lines stop commanding new reads (they end not-sent,
	// the PLC recirculates them; the sorter's HOST_STATE shows degraded)
	// until the queue drains below Config.ResumePercent. The outcome
	// records of those reads cannot be kept either: they are counted.
	StopReads = "stop-reads"
)

// State is the journal's health as the status page, the metrics and
// readiness see it.
type State uint8

// Journal states.
const (
	// StateOK: commits succeed and the queue has room.
	StateOK State = iota
	// StateFailing: the last commit failed; records wait in the queue.
	StateFailing
	// StateFull: the queue filled and has not yet drained below the
	// resume mark; records are not being kept.
	StateFull
)

func (s State) String() string {
	switch s {
	case StateOK:
		return "ok"
	case StateFailing:
		return "failing"
	case StateFull:
		return "full"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// NotKeptReason says why a record was not kept.
type NotKeptReason uint8

// Reasons a record is not kept.
const (
	// NotKeptQueueFull: Append found the queue full.
	NotKeptQueueFull NotKeptReason = iota
	// NotKeptClosed: Append after Close (a part still writing at stop).
	NotKeptClosed
	// NotKeptAtClose: queued, but Close could not commit it (the disk
	// was still failing when the gateway stopped).
	NotKeptAtClose
	// NumNotKeptReasons is the number of reasons.
	NumNotKeptReasons
)

func (r NotKeptReason) String() string {
	switch r {
	case NotKeptQueueFull:
		return "queue-full"
	case NotKeptClosed:
		return "closed"
	case NotKeptAtClose:
		return "uncommitted-at-close"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// DiskState is the free space of the journal's filesystem against the
// thresholds.
type DiskState uint8

// Disk states.
const (
	// DiskUnknown: not checked (yet), or statfs failed.
	DiskUnknown DiskState = iota
	// DiskOK: free space above the warning thresholds.
	DiskOK
	// DiskLow: below a warning threshold: act before it fills.
	DiskLow
	// DiskCritical: below a critical threshold: the gateway is not ready.
	DiskCritical
)

func (d DiskState) String() string {
	switch d {
	case DiskUnknown:
		return "unknown"
	case DiskOK:
		return "ok"
	case DiskLow:
		return "low"
	case DiskCritical:
		return "critical"
	}
	return fmt.Sprintf("disk(%d)", uint8(d))
}

// Disk is the last free-space check of the journal's folder.
type Disk struct {
	State DiskState
	Dir   string
	// Free is what an unprivileged writer can still use (f_bavail).
	Free, Total uint64
	FreePct     float64
	// Warning says what is wrong, in words, when State is low or critical
	// (or the check failed).
	Warning string
	At      time.Time
}

// Health is the journal's state for the status page, metrics, readiness
// and alarms: a copy, safe to keep.
type Health struct {
	State State
	// Since is when State began (Open's time for a journal never unwell).
	Since time.Time
	// Policy is Config.WhenFull; HoldingReads is true while it is
	// stop-reads and the queue has not drained below the resume mark.
	Policy       string
	HoldingReads bool
	LastError    string
	LastErrorAt  time.Time
	// LastCommit is the time of the last successful commit (zero: none
	// since Open).
	LastCommit   time.Time
	CommitErrors uint64
	QueueLen     int
	QueueCap     int
	// NotKept counts records lost to the audit trail, by reason.
	NotKept [NumNotKeptReasons]uint64
	Disk    Disk
	// Unready, when not empty, is why the gateway must not report ready:
	// commits failing past Config.FailingGrace, the queue full, or the
	// disk below its critical threshold.
	Unready string
}

// NotKeptTotal is the sum over every reason.
func (h *Health) NotKeptTotal() uint64 {
	var n uint64
	for _, v := range h.NotKept {
		n += v
	}
	return n
}

// Health returns the journal's current health.
func (j *Journal) Health() Health {
	now := time.Now()
	qlen, qcap, latched, latchAt := j.q.fill()
	h := Health{
		Policy:       j.cfg.WhenFull,
		HoldingReads: latched && j.cfg.WhenFull == StopReads,
		CommitErrors: j.commitErrors.Load(),
		QueueLen:     qlen,
		QueueCap:     qcap,
	}
	if t := j.lastCommit.Load(); t != 0 {
		h.LastCommit = time.Unix(0, t)
	}
	for i := range h.NotKept {
		h.NotKept[i] = j.notKept[i].Load()
	}
	j.errMu.Lock()
	h.LastError, h.LastErrorAt = j.lastErr, j.lastErrAt
	h.Disk = j.disk
	failingSince := j.failingSince
	okSince := j.okSince
	j.errMu.Unlock()
	switch {
	case latched:
		h.State, h.Since = StateFull, latchAt
		h.Unready = fmt.Sprintf("journal queue full since %s (%d of %d records): records are not kept (policy %s)",
			latchAt.Format(time.RFC3339), qlen, qcap, j.cfg.WhenFull)
	case !failingSince.IsZero():
		h.State, h.Since = StateFailing, failingSince
		if d := now.Sub(failingSince); d >= j.cfg.FailingGrace {
			h.Unready = fmt.Sprintf("journal commits failing for %s: %s", d.Round(time.Second), h.LastError)
		}
	default:
		h.State, h.Since = StateOK, okSince
		if latchAt.After(okSince) {
			h.Since = latchAt // the end of the last full spell
		}
	}
	if h.Disk.State == DiskCritical {
		if h.Unready != "" {
			h.Unready += "; "
		}
		h.Unready += "journal disk: " + h.Disk.Warning
	}
	return h
}

// StopReads reports whether the lines must not command new reads: the
// policy is stop-reads and the queue filled and has not yet drained below
// the resume mark. It is one atomic load, for the per-read path.
func (j *Journal) StopReads() bool {
	return j.stopReads && j.q.holding.Load()
}

// CheckDisk measures the free space of the journal's folder now, updates
// Health and returns the result.
func (j *Journal) CheckDisk() Disk {
	d := Disk{Dir: filepath.Dir(j.cfg.Path), At: time.Now()}
	free, total, err := statfs(d.Dir)
	if err != nil {
		d.Warning = fmt.Sprintf("cannot read free space of %s: %v", d.Dir, err)
	} else {
		d.Free, d.Total = free, total
		if total > 0 {
			d.FreePct = float64(free) / float64(total) * 100
		}
		d.State = DiskOK
		c := &j.cfg
		switch {
		case below(free, d.FreePct, c.DiskCriticalBytes, c.DiskCriticalPercent):
			d.State = DiskCritical
			d.Warning = fmt.Sprintf("%s free of %s (%.1f%%) in %s, below the critical %s",
				bytesText(free), bytesText(total), d.FreePct, d.Dir, thresholdText(c.DiskCriticalBytes, c.DiskCriticalPercent))
		case below(free, d.FreePct, c.DiskWarnBytes, c.DiskWarnPercent):
			d.State = DiskLow
			d.Warning = fmt.Sprintf("%s free of %s (%.1f%%) in %s, below the warning %s",
				bytesText(free), bytesText(total), d.FreePct, d.Dir, thresholdText(c.DiskWarnBytes, c.DiskWarnPercent))
		}
	}
	j.errMu.Lock()
	j.disk = d
	j.errMu.Unlock()
	return d
}

// below: free is under the byte threshold or the percent threshold (a
// negative threshold is off).
func below(free uint64, pct float64, bytes int64, percent float64) bool {
	return bytes >= 0 && free < uint64(bytes) || percent >= 0 && pct < percent
}

func thresholdText(bytes int64, percent float64) string {
	switch {
	case bytes >= 0 && percent >= 0:
		return fmt.Sprintf("%s or %.1f%%", bytesText(uint64(bytes)), percent)
	case bytes >= 0:
		return bytesText(uint64(bytes))
	}
	return fmt.Sprintf("%.1f%%", percent)
}

func bytesText(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// watch runs beside the writer: it checks the disk every
// DiskCheckInterval and says in the log, loudly, when the queue fills,
// while records are not kept (at most every NotKeptLogEvery), and when it
// drains again. A full queue is known at once through fullKick.
func (j *Journal) watch(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var (
		lastDisk   = j.CheckDisk().State
		diskAt     = time.Now()
		wasFull    bool
		loggedAt   time.Time
		loggedNK   uint64 // not kept (queue-full) at the last log line
		spellStart uint64 // not kept when the current full spell began
	)
	j.logDisk(DiskUnknown, lastDisk)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-j.fullKick:
		}
		now := time.Now()
		if j.cfg.DiskCheckInterval > 0 && now.Sub(diskAt) >= j.cfg.DiskCheckInterval {
			diskAt = now
			d := j.CheckDisk().State
			if d != lastDisk {
				j.logDisk(lastDisk, d)
				lastDisk = d
			}
		}
		qlen, qcap, full, _ := j.q.fill()
		nk := j.notKept[NotKeptQueueFull].Load()
		switch {
		case full && !wasFull:
			spellStart = loggedNK
			j.log.Error().Str("policy", j.cfg.WhenFull).Int("queued", qlen).Int("capacity", qcap).
				Uint64("not_kept", nk).Str("last_error", j.Health().LastError).
				Msg("ALARM journal queue full: audit records are not kept until it drains; free the journal's disk")
			loggedAt, loggedNK = now, nk
		case full && nk != loggedNK && now.Sub(loggedAt) >= j.cfg.NotKeptLogEvery:
			j.log.Error().Str("policy", j.cfg.WhenFull).Uint64("not_kept", nk-loggedNK).Uint64("not_kept_total", nk).
				Msg("ALARM journal queue still full: audit records not kept")
			loggedAt, loggedNK = now, nk
		case !full && wasFull:
			j.log.Warn().Uint64("not_kept", nk-spellStart).Uint64("not_kept_total", nk).Int("queued", qlen).
				Msg("journal queue drained below the resume mark; records are kept again")
			loggedAt, loggedNK = now, nk
		}
		wasFull = full
	}
}

func (j *Journal) logDisk(from, to DiskState) {
	d := j.Health().Disk
	switch to {
	case DiskCritical:
		j.log.Error().Uint64("free_bytes", d.Free).Str("disk", to.String()).
			Msg("ALARM journal disk critically low: " + d.Warning + "; the gateway is not ready")
	case DiskLow:
		j.log.Warn().Uint64("free_bytes", d.Free).Str("disk", to.String()).
			Msg("journal disk low: " + d.Warning + "; free space before it fills")
	case DiskUnknown:
		if d.Warning != "" {
			j.log.Warn().Str("disk", to.String()).Msg("journal disk: " + d.Warning)
		}
	case DiskOK:
		if from == DiskLow || from == DiskCritical {
			j.log.Info().Uint64("free_bytes", d.Free).Str("disk", to.String()).Msg("journal disk space back above the warning threshold")
		}
	}
}
