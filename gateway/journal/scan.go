package journal

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Scan calls fn for every record of the given kinds with a sequence
// number >= from, in append order. Records of other kinds are passed
// over by their kind byte, without decoding. It is meant for state
// rebuilt at start (the consolidation record): one read transaction, so
// fn must not call back into the journal. fn returning an error stops
// the scan with that error.
func (j *Journal) Scan(from uint64, kinds []Kind, fn func(*Record) error) error {
	var want [256]bool
	for _, k := range kinds {
		want[k] = true
	}
	return j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], from)
		var r Record
		for k, v := c.Seek(start[:]); k != nil; k, v = c.Next() {
			if !want[kindOf(v)] {
				continue
			}
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("journal scan: record %d: %w", seqFromIndexKey(k), err)
			}
			if err := fn(&r); err != nil {
				return err
			}
		}
		return nil
	})
}
