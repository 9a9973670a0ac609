package journal

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"sortgw/sortplan"
)

// Pass is one row of the item list: one pass of an item, its decision and
// its outcome joined.
type Pass struct {
	// Seq is the seq of the record that starts the row (the decision, or
	// the outcome of a read that never became a pass): rows are listed
	// by it, newest first, and it is the paging cursor.
	Seq uint64
	// Decision is nil for a read that never became a pass (not sent:
	// TID 0, tracking table full, read queue full).
	Decision *Record
	// Outcome is nil while the pass is open.
	Outcome *Record
}

// First is the record that starts the row.
func (p *Pass) First() *Record {
	if p.Decision != nil {
		return p.Decision
	}
	return p.Outcome
}

// Sorted reports whether the outcome put the item into a chute.
func (o Outcome) Sorted() bool { return o == OutcomeDiverted || o == OutcomeDivertedOther }

// Exception reports whether the pass ended other than sorted. An open
// pass is not (yet) an exception.
func (p *Pass) Exception() bool { return p.Outcome != nil && !p.Outcome.Outcome.Sorted() }

// ItemQuery asks for a page of item passes.
type ItemQuery struct {
	// Q is what the technician typed: a TID, a code as read or without
	// its symbology identifier and separators, a package id (1Z, IMpb,
	// SSCC, TBA) or a ZIP5/ZIP+4. Empty: every pass (the recent list).
	Q string
	// Line keeps only passes on this line ("" every line).
	Line string
	// Exceptions keeps only passes whose outcome is not sorted.
	Exceptions bool
	// Before keeps only rows with Seq below it (0: from the newest).
	Before uint64
	// Limit is the most rows returned (<= 0: 50; at most QueryLimit).
	Limit int
}

// ItemPage is one page of rows, newest first. Next, when not 0, is the
// Before of the next (older) page; 0 means the journal holds no more.
type ItemPage struct {
	Passes []Pass
	Next   uint64
}

// source is one index walked for a query: entries prefix+seq in bucket,
// whose records pass check (nil: any row-start record).
type source struct {
	bucket []byte
	prefix []byte
	check  func(r *Record) bool
}

// itemScanCap bounds the index entries (or records) one source walks for
// one page, so that a rare filter over a large journal answers promptly
// with a cursor instead of reading the whole file.
func (j *Journal) itemScanCap() int { return min(max(j.cfg.QueryLimit, 1000), 50_000) }

// Items returns a page of item passes matching q, newest first.
func (j *Journal) Items(q ItemQuery) (ItemPage, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, j.cfg.QueryLimit)
	var page ItemPage
	err := j.db.View(func(tx *bolt.Tx) error {
		var err error
		page, err = j.items(tx, q)
		return err
	})
	if err != nil {
		return ItemPage{}, fmt.Errorf("journal item search %q: %w", q.Q, err)
	}
	return page, nil
}

// querySources turns what was typed into the indexes to walk.
func querySources(q string, exceptions bool) []source {
	switch {
	case q == "" && exceptions:
		return []source{{bucket: bucketSearch, prefix: exceptionKey(nil, 0)[:9]}}
	case q == "":
		return []source{{bucket: bucketRecords}}
	}
	var out []source
	if n := len(q); n <= 10 && allDigits(q) {
		if tid, err := strconv.ParseUint(q, 10, 32); err == nil && tid != 0 {
			out = append(out, source{bucket: bucketTID, prefix: tidPrefix(nil, uint32(tid)),
				check: func(r *Record) bool { return r.TID == uint32(tid) }})
		}
	}
	norm := NormaliseCode(q)
	for i, code := range []string{q, norm} {
		if code == "" || (i == 1 && code == q) {
			continue
		}
		out = append(out, source{bucket: bucketCode, prefix: codePrefix(nil, code),
			check: func(r *Record) bool { return slices.Contains(r.Codes, code) }})
	}
	var keys []searchKey
	add := func(kind byte, key string) {
		if key != "" && !slices.Contains(keys, searchKey{kind, key}) {
			keys = append(keys, searchKey{kind, key})
		}
	}
	add(keyStripped, norm)
	add(keyPackage, norm)
	if len(norm) == 20 && norm[:2] == "00" && allDigits(norm) {
		add(keyPackage, norm[2:]) // an SSCC typed with its AI
	}
	l := sortplan.ReadLabel(q)
	for _, id := range l.PackageIDs {
		add(keyPackage, NormaliseCode(id))
	}
	add(keyZIP, zip5(norm))
	if l.Country == "" || l.Country == "840" {
		add(keyZIP, zip5(l.Postal))
	}
	for _, k := range keys {
		out = append(out, source{bucket: bucketSearch, prefix: searchPrefix(nil, k.kind, k.key),
			check: func(r *Record) bool {
				var own [8]searchKey
				return slices.Contains(appendSearchKeys(own[:0], r), k)
			}})
	}
	return out
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// items merges the sources: each is walked from q.Before down, keeping
// up to Limit+1 rows that pass the filters, or until it has looked at
// itemScanCap entries. A source that stopped early has seen everything
// down to its floor; rows below the highest floor are left for the next
// page, so that no row is skipped between pages.
func (j *Journal) items(tx *bolt.Tx, q ItemQuery) (ItemPage, error) {
	recs := tx.Bucket(bucketRecords)
	rows := map[uint64]Pass{}
	var cut uint64
	for _, src := range querySources(q.Q, q.Exceptions) {
		floor, err := j.walkSource(tx, recs, src, q, rows)
		if err != nil {
			return ItemPage{}, err
		}
		cut = max(cut, floor)
	}
	var page ItemPage
	for seq, p := range rows {
		if seq >= cut {
			page.Passes = append(page.Passes, p)
		}
	}
	slices.SortFunc(page.Passes, func(a, b Pass) int { return cmp.Compare(b.Seq, a.Seq) })
	switch {
	case len(page.Passes) > q.Limit:
		page.Passes = page.Passes[:q.Limit]
		page.Next = page.Passes[q.Limit-1].Seq
	case cut > 0:
		page.Next = cut
	}
	return page, nil
}

// walkSource adds src's rows to rows and returns its floor: 0 when it
// walked to the end, else the lowest seq it looked at.
func (j *Journal) walkSource(tx *bolt.Tx, recs *bolt.Bucket, src source, q ItemQuery, rows map[uint64]Pass) (uint64, error) {
	c := tx.Bucket(src.bucket).Cursor()
	want := len(src.prefix) + 8
	before := q.Before
	if before == 0 {
		before = ^uint64(0)
	}
	k, v := c.Seek(seqKey(bytes.Clone(src.prefix), before))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	found, scanned := 0, 0
	// Walking the records themselves, an outcome comes before (below)
	// its decision: keep it for the decision instead of seeking it again.
	var outcomes map[passID]Record
	if src.prefix == nil {
		outcomes = map[passID]Record{}
	}
	for ; k != nil; k, v = c.Prev() {
		if len(k) != want || !bytes.HasPrefix(k, src.prefix) {
			if bytes.Compare(k, src.prefix) < 0 {
				return 0, nil
			}
			continue // a longer key with the same leading bytes
		}
		seq := seqFromIndexKey(k)
		if scanned++; scanned > j.itemScanCap() || found > q.Limit {
			return seq + 1, nil
		}
		var r Record
		if src.prefix == nil { // the records bucket itself
			if kd := kindOf(v); kd != KindDecision && kd != KindOutcome {
				continue
			}
			if err := decodeRecord(v, &r); err != nil {
				return 0, fmt.Errorf("record %d: %w", seq, err)
			}
			if r.Kind == KindOutcome && r.Pass != 0 {
				outcomes[passID{r.Line, r.TID, r.Pass}] = r
				continue
			}
		} else {
			var ok bool
			var err error
			if r, ok, err = getRecord(recs, seq); err != nil {
				return 0, err
			} else if !ok {
				continue // dangling; should not happen, never fatal
			}
		}
		if !rowStart(&r) || (q.Line != "" && r.Line != q.Line) || (src.check != nil && !src.check(&r)) {
			continue
		}
		if _, dup := rows[seq]; dup {
			found++
			continue
		}
		var p Pass
		id := passID{r.Line, r.TID, r.Pass}
		if o, ok := outcomes[id]; ok && r.Kind == KindDecision {
			// A decision of the same pass below this one (a TID handed
			// out again) must not take this outcome too.
			delete(outcomes, id)
			p = Pass{Seq: r.Seq, Decision: &r, Outcome: &o}
		} else {
			if outcomes != nil && r.Kind == KindDecision {
				delete(outcomes, id)
			}
			var err error
			if p, err = joinPass(tx, recs, r); err != nil {
				return 0, err
			}
		}
		if q.Exceptions && !p.Exception() {
			continue
		}
		rows[seq] = p
		found++
	}
	return 0, nil
}

// passID names one pass of one item.
type passID struct {
	line string
	tid  uint32
	pass uint16
}

// maxJoinScan bounds the records of one TID looked at to find a
// decision's outcome (duplicate reads come in between).
const maxJoinScan = 256

// joinPass finds the outcome of a row's decision: the first outcome of
// the same line, TID and pass after it, before any new decision of that
// pass (a TID the PLC handed out again).
func joinPass(tx *bolt.Tx, recs *bolt.Bucket, r Record) (Pass, error) {
	p := Pass{Seq: r.Seq}
	if r.Kind == KindOutcome {
		p.Outcome = &r
		return p, nil
	}
	p.Decision = &r
	if r.TID == 0 {
		return p, nil
	}
	prefix := tidPrefix(nil, r.TID)
	c := tx.Bucket(bucketTID).Cursor()
	n := 0
	for k, _ := c.Seek(seqKey(bytes.Clone(prefix), r.Seq+1)); k != nil && n < maxJoinScan; k, _ = c.Next() {
		if len(k) != 12 || !bytes.HasPrefix(k, prefix) {
			break
		}
		n++
		o, ok, err := getRecord(recs, seqFromIndexKey(k))
		if err != nil {
			return p, err
		}
		if !ok || o.Line != r.Line || o.Pass != r.Pass {
			continue
		}
		if o.Kind == KindOutcome {
			p.Outcome = &o
			break
		}
		if o.Kind == KindDecision {
			break
		}
	}
	return p, nil
}

// ensureSearchIndex builds the search index of a journal written before
// it existed, or under another key derivation (searchFingerprint). It
// reads the records in bounded read transactions and collects their
// entries (17 bytes each, about 2.7 a pass: some 75 MB for a 1 GiB
// journal), sorts them, and writes them in key order, in bounded write
// transactions that each only append to the end of the tree. A crash
// part-way leaves no fingerprint, so the next Open starts over.
func (j *Journal) ensureSearchIndex() error {
	want := searchFingerprint()
	var have []byte
	if err := j.db.View(func(tx *bolt.Tx) error {
		have = bytes.Clone(tx.Bucket(bucketMeta).Get(keySearchPrint))
		return nil
	}); err != nil {
		return err
	}
	if bytes.Equal(have, want) {
		return nil
	}
	start := time.Now()
	var entries [][searchKeyLen]byte
	var exc exceptionTracker
	var after []byte
	records := 0
	for done := false; !done; {
		err := j.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRecords).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			var keys []searchKey
			mark := func(seq uint64) {
				var e [searchKeyLen]byte
				exceptionKey(e[:0], seq)
				entries = append(entries, e)
			}
			for n := 0; k != nil && n < 50_000; k, v = c.Next() {
				n++
				records++
				after = append(after[:0], k...)
				if kd := kindOf(v); kd != KindOutcome && !kd.opens() {
					continue
				}
				var r Record
				if err := decodeRecord(v, &r); err != nil {
					continue // unreadable: queries skip it anyway
				}
				keys = appendSearchKeys(keys[:0], &r)
				for _, sk := range keys {
					var e [searchKeyLen]byte
					seqKey(searchPrefix(e[:0], sk.kind, sk.key), r.Seq)
					entries = append(entries, e)
				}
				exc.observe(&r, mark)
			}
			done = k == nil
			return nil
		})
		if err != nil {
			return fmt.Errorf("build search index: %w", err)
		}
	}
	slices.SortFunc(entries, func(a, b [searchKeyLen]byte) int { return bytes.Compare(a[:], b[:]) })
	entries = slices.Compact(entries) // a decision marked by two outcomes
	for i, first := 0, true; first || i < len(entries); first = false {
		err := j.db.Update(func(tx *bolt.Tx) error {
			if first {
				if err := tx.Bucket(bucketMeta).Delete(keySearchPrint); err != nil {
					return err
				}
				if err := tx.DeleteBucket(bucketSearch); err != nil {
					return err
				}
				if _, err := tx.CreateBucket(bucketSearch); err != nil {
					return err
				}
			}
			search := tx.Bucket(bucketSearch)
			search.FillPercent = 0.95 // appended in key order
			for n := 0; i < len(entries) && n < 200_000; n++ {
				if err := search.Put(entries[i][:], nil); err != nil {
					return err
				}
				i++
			}
			if i == len(entries) {
				return tx.Bucket(bucketMeta).Put(keySearchPrint, want)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("build search index: %w", err)
		}
	}
	ev := j.log.Info()
	if records == 0 {
		ev = j.log.Debug()
	}
	ev.Int("records", records).Int("keys", len(entries)).Dur("took", time.Since(start)).
		Bool("rebuilt", have != nil).Msg("journal search index built")
	return nil
}

// searchIndexBytes is the space the search index takes (its pages in
// use), for sizing.
func (j *Journal) searchIndexBytes() (int64, error) {
	var n int64
	err := j.db.View(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketSearch).Stats()
		n = int64(st.BranchAlloc + st.LeafAlloc)
		return nil
	})
	return n, err
}
