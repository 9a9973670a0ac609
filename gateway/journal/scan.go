package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

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

// ScanFile reads the journal file at path read-only and calls fn for
// every record whose Time lies in [from, to) (a zero bound is open), in
// append order, with a Record it reuses: fn must copy what it keeps. It
// recovers nothing and writes nothing, unlike Open, so it can read a copy
// of a live journal for analysis (`sortgw replay`); on the live file it
// waits up to lockTimeout for the running gateway's lock and fails. A
// record that does not decode is an error naming its seq, never skipped.
// An error from fn stops the scan and is returned as is.
func ScanFile(ctx context.Context, path string, from, to time.Time, lockTimeout time.Duration, fn func(*Record) error) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("journal %s: locked by a running gateway (copy the file and read the copy): %w", path, err)
		}
		return fmt.Errorf("journal %s: %w", path, err)
	}
	defer db.Close()
	var r Record
	n := 0
	return db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		if recs == nil {
			return fmt.Errorf("journal %s: no records bucket: not a sortgw journal", path)
		}
		c := recs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("journal %s: record %x: %w", path, k, err)
			}
			if (!from.IsZero() && r.Time.Before(from)) || (!to.IsZero() && !r.Time.Before(to)) {
				continue
			}
			if err := fn(&r); err != nil {
				return err
			}
		}
		return nil
	})
}
