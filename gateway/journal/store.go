package journal

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// On-disk layout (one bbolt file):
//
//	records  seq (8, big endian)                     -> encoded Record
//	by-tid   tid (4) seq (8)                          -> empty
//	by-code  span (4), uvarint len, code (<= 512 bytes), seq (8) -> empty
//	by-time  unix ns with the sign bit flipped (8) seq (8) -> empty
//	open     uvarint len, line, tid (4), pass (2)     -> seq (8) of the last
//	         opening record, unix ns (8) of the first
//	meta     "last-seq" -> seq (8); "format" -> version (1);
//	         "search-index" -> the fingerprint of by-key and by-code
//	by-key   span (4) kind (1) hash (8) seq (8) -> empty (searchkey.go)
//
// Big-endian keys keep bbolt's byte order equal to numeric order, so seq,
// time and (tid, seq) ranges are cursor scans.
//
// The two indexes whose keys are barcodes or hashes lead with the span of
// the record's seq (seq >> spanShift, about 4,000 passes): new entries land
// in the newest span and retention removes the oldest, so writing touches a
// few pages at the two ends of the tree instead of a page anywhere in it.
// A lookup seeks its key once per span, newest first (spanWalk).
var (
	bucketRecords = []byte("records")
	bucketTID     = []byte("by-tid")
	bucketCode    = []byte("by-code")
	bucketTime    = []byte("by-time")
	bucketOpen    = []byte("open")
	bucketMeta    = []byte("meta")

	keyLastSeq = []byte("last-seq")
	keyFormat  = []byte("format")

	allBuckets = [][]byte{bucketRecords, bucketTID, bucketCode, bucketTime, bucketOpen, bucketMeta, bucketSearch}
)

// maxIndexedCode bounds a barcode's index key (bbolt keys are limited to
// 32 KiB; a scanner frame may hold 4 KiB). Longer codes are indexed by
// their first maxIndexedCode bytes and filtered on lookup.
const maxIndexedCode = 512

func seqKey(b []byte, seq uint64) []byte { return binary.BigEndian.AppendUint64(b, seq) }

func timeBits(t time.Time) uint64 { return uint64(t.UnixNano()) ^ 1<<63 }

func timeKey(b []byte, t time.Time, seq uint64) []byte {
	b = binary.BigEndian.AppendUint64(b, timeBits(t))
	return binary.BigEndian.AppendUint64(b, seq)
}

func tidPrefix(b []byte, tid uint32) []byte { return binary.BigEndian.AppendUint32(b, tid) }

// spanShift groups the by-code and by-key entries by seq: 16,384 seqs
// (about 4,000 passes) a span, so a 1 GiB journal holds some 500 spans and
// the newest span's index pages are about a megabyte.
const spanShift = 14

// spanOf is the span of a seq. 4 bytes hold 2^46 seqs.
func spanOf(seq uint64) uint32 { return uint32(seq >> spanShift) }

// spanStart is the first seq of span s.
func spanStart(s uint32) uint64 { return uint64(s) << spanShift }

func appendSpan(b []byte, s uint32) []byte { return binary.BigEndian.AppendUint32(b, s) }

// codeKey is the by-code entry of code in the record seq.
func codeKey(b []byte, code string, seq uint64) []byte {
	return seqKey(codeSuffix(appendSpan(b, spanOf(seq)), code), seq)
}

// codeSuffix is what follows the span in code's by-code entries.
func codeSuffix(b []byte, code string) []byte {
	if len(code) > maxIndexedCode {
		code = code[:maxIndexedCode]
	}
	b = binary.AppendUvarint(b, uint64(len(code)))
	return append(b, code...)
}

func openKey(b []byte, line string, tid uint32, pass uint16) []byte {
	b = binary.AppendUvarint(b, uint64(len(line)))
	b = append(b, line...)
	b = binary.BigEndian.AppendUint32(b, tid)
	return binary.BigEndian.AppendUint16(b, pass)
}

func parseOpenKey(k []byte) (line string, tid uint32, pass uint16, ok bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) != n+6 {
		return "", 0, 0, false
	}
	line = string(k[w : w+int(n)])
	rest := k[w+int(n):]
	return line, binary.BigEndian.Uint32(rest), binary.BigEndian.Uint16(rest[4:]), true
}

// seqFromIndexKey is the seq at the end of every index key.
func seqFromIndexKey(k []byte) uint64 {
	if len(k) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k[len(k)-8:])
}

// initBuckets creates the buckets and checks the format; it returns the
// last seq ever given.
func initBuckets(tx *bolt.Tx) (uint64, error) {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return 0, fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyFormat); v == nil {
		if err := meta.Put(keyFormat, []byte{formatVersion}); err != nil {
			return 0, err
		}
	} else if len(v) != 1 || v[0] != formatVersion {
		return 0, fmt.Errorf("journal format %v, this build reads %d", v, formatVersion)
	}
	var last uint64
	if v := meta.Get(keyLastSeq); len(v) == 8 {
		last = binary.BigEndian.Uint64(v)
	}
	// The records bucket is the truth should meta lag behind it.
	if k, _ := tx.Bucket(bucketRecords).Cursor().Last(); len(k) == 8 {
		last = max(last, binary.BigEndian.Uint64(k))
	}
	return last, nil
}

// batchResult counts what a batch did to the open items; applied to the
// journal's counters only once its transaction committed.
type batchResult struct {
	opened, closed, unmatched int
}

// writeBatch puts the records and their index entries in one write
// transaction. bbolt needs keys and values to live until the transaction
// ends, so they are cut from one arena that is reused batch after batch.
func writeBatch(tx *bolt.Tx, batch []Record, arena []byte) ([]byte, batchResult, error) {
	var res batchResult
	recs := tx.Bucket(bucketRecords)
	tids := tx.Bucket(bucketTID)
	codes := tx.Bucket(bucketCode)
	times := tx.Bucket(bucketTime)
	open := tx.Bucket(bucketOpen)
	search := tx.Bucket(bucketSearch)
	var keys []searchKey
	// Seq and time keys arrive in order, and PLCs hand out TIDs in rising
	// order: pack those pages full (157 -> 130 bytes a record in
	// BenchmarkQuery's journal). Barcodes arrive in any order.
	recs.FillPercent = 0.95
	times.FillPercent = 0.95
	tids.FillPercent = 0.9

	arena = arena[:0]
	cut := func(start int) []byte { return arena[start:len(arena):len(arena)] }
	for i := range batch {
		r := &batch[i]
		s := len(arena)
		arena = seqKey(arena, r.Seq)
		k := cut(s)
		s = len(arena)
		arena = appendRecord(arena, r)
		if err := recs.Put(k, cut(s)); err != nil {
			return arena, res, fmt.Errorf("put record %d: %w", r.Seq, err)
		}
		s = len(arena)
		arena = timeKey(arena, r.Time, r.Seq)
		if err := times.Put(cut(s), nil); err != nil {
			return arena, res, fmt.Errorf("index record %d by time: %w", r.Seq, err)
		}
		if r.TID != 0 {
			s = len(arena)
			arena = seqKey(tidPrefix(arena, r.TID), r.Seq)
			if err := tids.Put(cut(s), nil); err != nil {
				return arena, res, fmt.Errorf("index record %d by tid: %w", r.Seq, err)
			}
		}
		for _, c := range r.Codes {
			s = len(arena)
			arena = codeKey(arena, c, r.Seq)
			if err := codes.Put(cut(s), nil); err != nil {
				return arena, res, fmt.Errorf("index record %d by code: %w", r.Seq, err)
			}
		}
		keys = appendSearchKeys(keys[:0], r)
		for _, sk := range keys {
			s = len(arena)
			arena = searchEntry(arena, sk, r.Seq)
			if err := search.Put(cut(s), nil); err != nil {
				return arena, res, fmt.Errorf("index record %d for search: %w", r.Seq, err)
			}
		}
		if r.Kind == KindOutcome && r.Pass == 0 && !r.Outcome.Sorted() {
			// A read that never became a pass: its own row, an exception.
			s = len(arena)
			arena = exceptionKey(arena, r.Seq)
			if err := search.Put(cut(s), nil); err != nil {
				return arena, res, fmt.Errorf("index record %d as an exception: %w", r.Seq, err)
			}
		}
		if r.TID == 0 {
			continue
		}
		switch {
		case r.Kind.opens():
			s = len(arena)
			arena = openKey(arena, r.Line, r.TID, r.Pass)
			ok := cut(s)
			first := r.Time
			if v := open.Get(ok); len(v) == 16 {
				first = time.Unix(0, int64(binary.BigEndian.Uint64(v[8:])))
			} else {
				res.opened++
			}
			s = len(arena)
			arena = seqKey(arena, r.Seq)
			arena = binary.BigEndian.AppendUint64(arena, uint64(first.UnixNano()))
			if err := open.Put(ok, cut(s)); err != nil {
				return arena, res, fmt.Errorf("open item of record %d: %w", r.Seq, err)
			}
		case r.Kind == KindOutcome:
			s = len(arena)
			arena = openKey(arena, r.Line, r.TID, r.Pass)
			ok := cut(s)
			ov := open.Get(ok)
			if ov == nil {
				if r.Pass != 0 { // pass 0: a read that never became a pass
					res.unmatched++
				}
				continue
			}
			if dec := ov[:8]; len(ov) == 16 && !r.Outcome.Sorted() && kindOf(recs.Get(dec)) == KindDecision {
				// The pass's row (its decision's seq) is an exception.
				s = len(arena)
				arena = exceptionKey(arena, binary.BigEndian.Uint64(dec))
				if err := search.Put(cut(s), nil); err != nil {
					return arena, res, fmt.Errorf("index record %d as an exception: %w", r.Seq, err)
				}
			}
			res.closed++
			if err := open.Delete(ok); err != nil {
				return arena, res, fmt.Errorf("close item of record %d: %w", r.Seq, err)
			}
		}
	}
	if n := len(batch); n > 0 {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], batch[n-1].Seq)
		if err := tx.Bucket(bucketMeta).Put(keyLastSeq, v[:]); err != nil {
			return arena, res, fmt.Errorf("put last seq: %w", err)
		}
	}
	return arena, res, nil
}

// deleteRecord removes a record and every index entry that points at it.
// The open bucket is left alone: an item stays open until its outcome or
// the next restart, however old its records are.
func deleteRecord(tx *bolt.Tx, seq uint64) error {
	recs := tx.Bucket(bucketRecords)
	k := seqKey(nil, seq)
	v := recs.Get(k)
	if v == nil {
		return nil
	}
	var r Record
	if err := decodeRecord(v, &r); err != nil {
		// A record we cannot read still goes; its index entries (if any)
		// are left behind and skipped by queries as dangling.
		return recs.Delete(k)
	}
	if err := tx.Bucket(bucketTime).Delete(timeKey(nil, r.Time, seq)); err != nil {
		return err
	}
	if r.TID != 0 {
		if err := tx.Bucket(bucketTID).Delete(seqKey(tidPrefix(nil, r.TID), seq)); err != nil {
			return err
		}
	}
	for _, c := range r.Codes {
		if err := tx.Bucket(bucketCode).Delete(codeKey(nil, c, seq)); err != nil {
			return err
		}
	}
	var kb [searchKeyLen]byte
	for _, sk := range appendSearchKeys(nil, &r) {
		if err := tx.Bucket(bucketSearch).Delete(searchEntry(kb[:0], sk, seq)); err != nil {
			return err
		}
	}
	if rowStart(&r) { // its exception entry, if it has one
		if err := tx.Bucket(bucketSearch).Delete(exceptionKey(kb[:0], seq)); err != nil {
			return err
		}
	}
	return recs.Delete(k)
}
