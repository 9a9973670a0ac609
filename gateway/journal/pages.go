package journal

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Mapped pages. bbolt reads the file through a read-only shared mapping,
// and every page a reader touches (the upstream publisher reads each new
// record once, the search index and the status page read recent ones)
// stays mapped in the process: the kernel counts it in the gateway's RSS
// until memory runs short, so RSS grew with the file (about 70 MB an hour
// at 20 items/s, up to MaxBytes). releasePages drops the mappings of the
// whole file every PageReleaseInterval (15 s); the pages stay in the page cache
// and the next read maps them again from there, without I/O. What the
// journal adds to RSS is thus bounded by what it touches in one interval.

// releaseLoop runs releasePages every PageReleaseInterval until ctx is done.
func (j *Journal) releaseLoop(ctx context.Context) {
	if j.cfg.PageReleaseInterval <= 0 {
		return
	}
	tick := time.NewTicker(j.cfg.PageReleaseInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := j.releasePages(); err != nil {
				j.log.Warn().Err(err).Msg("journal: releasing mapped pages failed")
			}
		}
	}
}

// releasePages drops the file's mapped pages from the process (Linux; a
// no-op elsewhere). It runs inside a read transaction: bbolt remaps only
// under the lock a reader holds, so the range is the live mapping
// throughout.
func (j *Journal) releasePages() error {
	return j.db.View(func(tx *bolt.Tx) error {
		n, err := dropMapped(j.db.Info().Data, tx.Size())
		if err == nil && n > 0 {
			j.pageReleases.Add(1)
		}
		return err
	})
}
