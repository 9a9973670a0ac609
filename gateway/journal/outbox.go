package journal

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The journal is the upstream publisher's outbox (gateway/upstream): it
// reads committed records in seq order with After, and holds the records
// it has not published yet with Retain, so that retention by age never
// deletes them. Retention by size still does when the live data is above
// MaxBytes (the disk is the harder limit); those records are counted in
// Stats.PrunedUnsent, and the publisher, seeing the gap in seqs, counts
// them lost and raises its alarm.

// After returns up to n committed records with seq > seq, in seq order
// (n <= 0 or above QueryLimit: QueryLimit). Records are committed and
// synced before a reader can see them, so what After returns is durable.
func (j *Journal) After(seq uint64, n int) ([]Record, error) {
	if n <= 0 || n > j.cfg.QueryLimit {
		n = j.cfg.QueryLimit
	}
	out := make([]Record, 0, min(n, 1024))
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Seek(seqKey(nil, seq+1)); k != nil && len(out) < n; k, v = c.Next() {
			var r Record
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("record %d: %w", seqFromIndexKey(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal records after %d: %w", seq, err)
	}
	return out, nil
}

// Retain asks retention by age to keep every record with seq >= from (0:
// hold nothing). The upstream publisher sets it to its cursor + 1.
func (j *Journal) Retain(from uint64) { j.retain.Store(from) }

// held reports whether retention by age must keep the record seq.
func (j *Journal) held(seq uint64) bool {
	from := j.retain.Load()
	return from != 0 && seq >= from
}
