package journal

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Prune applies retention now: it deletes records older than MaxAge, then
// the oldest records while the live data is above MaxBytes (down to 10%
// below it), in transactions of at most PruneBatch records so appends
// keep committing in between. It returns how many records it deleted. Run
// calls the same steps every PruneInterval; Prune is for tests and tools.
func (j *Journal) Prune(ctx context.Context) (int, error) {
	total := 0
	for {
		n, more, err := j.pruneOnce()
		total += n
		if err != nil || !more {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("prune journal: %w", err)
		}
	}
}

// pruneStep is Run's retention step: one bounded transaction. It reports
// whether more is due.
func (j *Journal) pruneStep() bool {
	_, more, err := j.pruneOnce()
	if err != nil {
		j.log.Error().Err(err).Msg("journal retention failed")
		return false
	}
	return more
}

func (j *Journal) pruneOnce() (deleted int, more bool, err error) {
	j.pruneMu.Lock()
	defer j.pruneMu.Unlock()
	if j.cfg.MaxAge > 0 {
		cutoff := timeBits(j.cfg.Now().Add(-j.cfg.MaxAge))
		n, err := j.deleteOldest(bucketTime, func(k []byte) bool {
			return len(k) == 16 && binary.BigEndian.Uint64(k) < cutoff && !j.held(seqFromIndexKey(k))
		})
		if err != nil {
			return n, false, fmt.Errorf("prune journal by age: %w", err)
		}
		if n == j.cfg.PruneBatch {
			return n, true, nil
		}
		deleted = n
	}
	if j.cfg.MaxBytes > 0 {
		_, live, err := j.sizes()
		if err != nil {
			return deleted, false, fmt.Errorf("prune journal by size: %w", err)
		}
		low := j.cfg.MaxBytes - j.cfg.MaxBytes/10
		if live > j.cfg.MaxBytes || (j.sizePruning && live > low) {
			j.sizePruning = true
			n, err := j.deleteOldest(bucketRecords, func([]byte) bool { return true })
			deleted += n
			if err != nil {
				return deleted, false, fmt.Errorf("prune journal by size: %w", err)
			}
			if n > 0 {
				return deleted, true, nil
			}
		}
		j.sizePruning = false
	}
	return deleted, false, nil
}

// deleteOldest deletes up to PruneBatch records in one transaction,
// walking bucket (records, or the time index) from its first key while
// keep says the key is due. Index keys whose record is already gone are
// deleted as well, so a dangling entry can never stall retention.
func (j *Journal) deleteOldest(bucket []byte, due func(k []byte) bool) (int, error) {
	n := 0
	err := j.db.Update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucket)
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < j.cfg.PruneBatch && due(k); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		if j.cfg.ExportDir != "" {
			// Exported before the delete commits: a failed export keeps
			// the records (retention retries), none is lost unexported.
			if err := j.exportConsolidation(tx, keys); err != nil {
				return err
			}
		}
		for _, k := range keys {
			if j.held(seqFromIndexKey(k)) {
				j.prunedUnsent.Add(1) // by size: the disk wins over the outbox
			}
			if err := deleteRecord(tx, seqFromIndexKey(k)); err != nil {
				return err
			}
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		j.pruned.Add(uint64(n))
		j.pruneTx.Add(1)
	}
	return n, nil
}

// sizes returns the file's high water mark and the bytes in use (the high
// water mark less free and pending pages).
func (j *Journal) sizes() (file, live int64, err error) {
	err = j.db.View(func(tx *bolt.Tx) error {
		file = tx.Size()
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	st := j.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(j.pageSize)
	return file, file - free, nil
}
