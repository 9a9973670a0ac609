package journal

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Queries see committed records only (call Flush first to include
// everything appended). Each returns at most Config.QueryLimit records.

// QueryLimit is the most records one query returns (Config.QueryLimit).
func (j *Journal) QueryLimit() int { return j.cfg.QueryLimit }

// Get returns the record with this seq, or ErrNotFound.
func (j *Journal) Get(seq uint64) (Record, error) {
	var r Record
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get(seqKey(nil, seq))
		if v == nil {
			return fmt.Errorf("journal record %d: %w", seq, ErrNotFound)
		}
		if err := decodeRecord(v, &r); err != nil {
			return fmt.Errorf("journal record %d: %w", seq, err)
		}
		return nil
	})
	return r, err
}

// ByTID returns the records about tid on every line, oldest first; if
// there are more than QueryLimit, the newest QueryLimit.
func (j *Journal) ByTID(tid uint32) ([]Record, error) {
	recs, err := j.byPrefix(bucketTID, tidPrefix(nil, tid), false, nil)
	if err != nil {
		return nil, fmt.Errorf("journal records of tid %d: %w", tid, err)
	}
	return recs, nil
}

// ByBarcode returns the records that carried exactly this code in Codes
// (reads, decisions, outcomes, duplicates: whatever the caller put it
// in), oldest first; if there are more than QueryLimit, the newest
// QueryLimit. Use ByTID on a result for the rest of the item's story.
func (j *Journal) ByBarcode(code string) ([]Record, error) {
	var keep func(*Record) bool
	if len(code) > maxIndexedCode {
		keep = func(r *Record) bool { return slices.Contains(r.Codes, code) }
	}
	recs, err := j.byPrefix(bucketCode, codeSuffix(nil, code), true, keep)
	if err != nil {
		return nil, fmt.Errorf("journal records of code %q: %w", code, err)
	}
	return recs, nil
}

// byPrefix walks the index entries prefix+seq (span+prefix+seq, span by
// span, when spanned) from the newest back, fetches their records and
// returns them oldest first, at most QueryLimit.
func (j *Journal) byPrefix(bucket, prefix []byte, spanned bool, keep func(*Record) bool) ([]Record, error) {
	var out []Record
	err := j.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		var err error
		yield := func(seq uint64, _ []byte) bool {
			var r Record
			var ok bool
			if r, ok, err = getRecord(recs, seq); err != nil {
				return false
			}
			if ok && (keep == nil || keep(&r)) {
				out = append(out, r)
			}
			return len(out) < j.cfg.QueryLimit
		}
		c := tx.Bucket(bucket).Cursor()
		if spanned {
			spanWalk(c, prefix, ^uint64(0), math.MaxInt, yield)
		} else {
			walkBack(c, prefix, ^uint64(0), yield)
		}
		return err
	})
	slices.Reverse(out)
	return out, err
}

func getRecord(recs *bolt.Bucket, seq uint64) (Record, bool, error) {
	var r Record
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	v := recs.Get(k[:])
	if v == nil {
		return r, false, nil // a dangling index entry; retention removes it
	}
	if err := decodeRecord(v, &r); err != nil {
		return r, false, fmt.Errorf("record %d: %w", seq, err)
	}
	return r, true, nil
}

// Range returns the records with from <= Time < to, oldest first, at most
// limit of them (limit <= 0 or above QueryLimit: QueryLimit).
func (j *Journal) Range(from, to time.Time, limit int) ([]Record, error) {
	if limit <= 0 || limit > j.cfg.QueryLimit {
		limit = j.cfg.QueryLimit
	}
	var out []Record
	err := j.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		c := tx.Bucket(bucketTime).Cursor()
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], timeBits(from))
		stop := timeBits(to)
		for k, _ := c.Seek(start[:]); k != nil && len(out) < limit; k, _ = c.Next() {
			if len(k) != 16 || binary.BigEndian.Uint64(k) >= stop {
				break
			}
			r, ok, err := getRecord(recs, seqFromIndexKey(k))
			if err != nil {
				return err
			}
			if ok {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal records from %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return out, nil
}

// Recent returns the last n records appended (and committed), newest
// first.
func (j *Journal) Recent(n int) ([]Record, error) {
	if n <= 0 || n > j.cfg.QueryLimit {
		n = j.cfg.QueryLimit
	}
	var out []Record
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			var r Record
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("record %d: %w", seqFromIndexKey(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recent journal records: %w", err)
	}
	return out, nil
}

// OpenItem is an item pass with a read, decision or command and no
// outcome yet.
type OpenItem struct {
	Line    string    `json:"line"`
	TID     uint32    `json:"tid"`
	Pass    uint16    `json:"pass"`
	Since   time.Time `json:"since"`    // time of its first opening record
	LastSeq uint64    `json:"last_seq"` // its latest read, decision or command
}

// OpenItems lists the open items (at most QueryLimit), by line, TID, pass.
func (j *Journal) OpenItems() ([]OpenItem, error) {
	var out []OpenItem
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOpen).Cursor()
		for k, v := c.First(); k != nil && len(out) < j.cfg.QueryLimit; k, v = c.Next() {
			line, tid, pass, ok := parseOpenKey(k)
			if !ok || len(v) != 16 {
				continue
			}
			out = append(out, OpenItem{
				Line: line, TID: tid, Pass: pass,
				LastSeq: binary.BigEndian.Uint64(v),
				Since:   time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))).UTC(),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal open items: %w", err)
	}
	return out, nil
}

// ByKind returns the newest records of kind k (at most n, and at most
// QueryLimit), oldest first, looking at no more than the newest scan
// records (scan <= 0: all of them). Only the kind byte of the records
// passed over is read, so a walk over a large journal stays cheap; it is
// meant for rare kinds read once at start (alarm history).
func (j *Journal) ByKind(k Kind, n, scan int) ([]Record, error) {
	if n <= 0 || n > j.cfg.QueryLimit {
		n = j.cfg.QueryLimit
	}
	var out []Record
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		seen := 0
		for key, v := c.Last(); key != nil && len(out) < n && (scan <= 0 || seen < scan); key, v = c.Prev() {
			seen++
			if kindOf(v) != k {
				continue
			}
			var r Record
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("record %d: %w", seqFromIndexKey(key), err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal records of kind %s: %w", k, err)
	}
	slices.Reverse(out)
	return out, nil
}

// kindOf reads an encoded record's kind without decoding the rest
// (KindUnknown if the bytes are too short to say).
func kindOf(v []byte) Kind {
	if len(v) < 2 {
		return KindUnknown
	}
	_, n := binary.Uvarint(v[1:])
	if n <= 0 || 1+n >= len(v) {
		return KindUnknown
	}
	return Kind(v[1+n])
}
