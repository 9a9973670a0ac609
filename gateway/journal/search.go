package journal

import (
	"bytes"
	"cmp"
	"encoding/binary"
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

// source is one index walked for a query: entries prefix+seq in bucket
// (span+prefix+seq when spanned), whose records pass check (nil: any
// row-start record).
type source struct {
	bucket  []byte
	prefix  []byte
	spanned bool
	check   func(r *Record) bool
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
		return []source{{bucket: bucketSearch, prefix: searchSuffix(nil, keyException, ""), spanned: true}}
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
		out = append(out, source{bucket: bucketCode, prefix: codeSuffix(nil, code), spanned: true,
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
		out = append(out, source{bucket: bucketSearch, prefix: searchSuffix(nil, k.kind, k.key), spanned: true,
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
	before := q.Before
	if before == 0 {
		before = ^uint64(0)
	}
	found, scanned := 0, 0
	// Walking the records themselves, an outcome comes before (below)
	// its decision: keep it for the decision instead of seeking it again.
	var outcomes map[passID]Record
	if src.prefix == nil {
		outcomes = map[passID]Record{}
	}
	var floor uint64
	var err error
	// step takes one entry (v: the record when walking the records
	// bucket); false stops the walk, floor and err say why.
	step := func(seq uint64, v []byte) bool {
		if scanned++; scanned > j.itemScanCap() || found > q.Limit {
			floor = seq + 1
			return false
		}
		var r Record
		if src.prefix == nil { // the records bucket itself
			if kd := kindOf(v); kd != KindDecision && kd != KindOutcome {
				return true
			}
			if err = decodeRecord(v, &r); err != nil {
				err = fmt.Errorf("record %d: %w", seq, err)
				return false
			}
			if r.Kind == KindOutcome && r.Pass != 0 {
				outcomes[passID{r.Line, r.TID, r.Pass}] = r
				return true
			}
		} else {
			var ok bool
			if r, ok, err = getRecord(recs, seq); err != nil {
				return false
			} else if !ok {
				return true // dangling; should not happen, never fatal
			}
		}
		if !rowStart(&r) || (q.Line != "" && r.Line != q.Line) || (src.check != nil && !src.check(&r)) {
			return true
		}
		if _, dup := rows[seq]; dup {
			found++
			return true
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
			if p, err = joinPass(tx, recs, r); err != nil {
				return false
			}
		}
		if q.Exceptions && !p.Exception() {
			return true
		}
		rows[seq] = p
		found++
		return true
	}
	c := tx.Bucket(src.bucket).Cursor()
	if src.spanned {
		spanFloor := spanWalk(c, src.prefix, before, spanScanCap, step)
		if err != nil {
			return 0, err
		}
		return max(floor, spanFloor), nil
	}
	if !walkBack(c, src.prefix, before, step) {
		return floor, err
	}
	return 0, nil
}

// walkBack walks the entries prefix+seq with seq below before, newest
// first, calling yield for each; it reports false when yield stopped it.
func walkBack(c *bolt.Cursor, prefix []byte, before uint64, yield func(seq uint64, v []byte) bool) bool {
	want := len(prefix) + 8
	k, v := c.Seek(seqKey(bytes.Clone(prefix), before))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil; k, v = c.Prev() {
		if len(k) != want || !bytes.HasPrefix(k, prefix) {
			if bytes.Compare(k, prefix) < 0 {
				return true
			}
			continue // a longer key with the same leading bytes
		}
		if !yield(seqFromIndexKey(k), v) {
			return false
		}
	}
	return true
}

// spanScanCap bounds the spans one lookup seeks for one page (a 1 GiB
// journal holds about 500). A variable for the tests.
var spanScanCap = 4096

// spanWalk walks the entries span+suffix+seq of a spanned index (by-code,
// by-key) with seq below before, newest first, one seek a span, and
// calls yield for each until it returns false. It returns 0 when it
// walked every span or yield stopped it, else, having looked at spanCap
// spans, the first seq of the oldest one it walked: every entry from
// there to before has been yielded.
func spanWalk(c *bolt.Cursor, suffix []byte, before uint64, spanCap int, yield func(seq uint64, v []byte) bool) uint64 {
	fk, _ := c.First()
	lk, _ := c.Last()
	if len(fk) < 4 || len(lk) < 4 || before == 0 {
		return 0
	}
	lo, hi := binary.BigEndian.Uint32(fk), binary.BigEndian.Uint32(lk)
	hi = min(hi, spanOf(before-1))
	prefix := make([]byte, 0, 4+len(suffix))
	for s, n := hi, 0; s >= lo; s-- {
		if n++; n > spanCap {
			return spanStart(s + 1)
		}
		prefix = append(appendSpan(prefix[:0], s), suffix...)
		if !walkBack(c, prefix, before, yield) {
			return 0
		}
		if s == 0 {
			break
		}
	}
	return 0
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

// rebuildChunk is about the most records ensureSearchIndex reads for one
// write transaction. A variable for the tests.
var rebuildChunk = 50_000

// ensureSearchIndex builds the search index (by-key) and the code index
// (by-code) of a journal written before they existed, or under another
// key derivation or layout (searchFingerprint). It walks the records in
// seq order in read transactions of about 50,000 records, ending each on
// a span's edge, and writes that chunk's entries sorted in one write
// transaction: the entries lead with their span, so each chunk appends
// to the end of both trees, and memory holds one chunk's entries. A crash
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
	err := j.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Delete(keySearchPrint); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketSearch, bucketCode} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("build search index: %w", err)
	}
	var (
		exc            exceptionTracker
		after          []byte
		records, nkeys int
		keys           []searchKey
		searchKeys     [][searchKeyLen]byte
		codeArena      []byte
		codeEnds       []int
	)
	mark := func(seq uint64) {
		var e [searchKeyLen]byte
		exceptionKey(e[:0], seq)
		searchKeys = append(searchKeys, e)
	}
	for done := false; !done; {
		searchKeys, codeArena, codeEnds = searchKeys[:0], codeArena[:0], codeEnds[:0]
		err := j.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRecords).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for n := 0; k != nil; k, v = c.Next() {
				seq := binary.BigEndian.Uint64(k)
				if n >= rebuildChunk && spanOf(seq) != spanOf(binary.BigEndian.Uint64(after)) {
					break // on a span's edge
				}
				n++
				records++
				after = append(after[:0], k...)
				var r Record
				if err := decodeRecord(v, &r); err != nil {
					continue // unreadable: queries skip it anyway
				}
				for _, code := range r.Codes {
					codeArena = codeKey(codeArena, code, r.Seq)
					codeEnds = append(codeEnds, len(codeArena))
				}
				keys = appendSearchKeys(keys[:0], &r)
				for _, sk := range keys {
					var e [searchKeyLen]byte
					searchEntry(e[:0], sk, r.Seq)
					searchKeys = append(searchKeys, e)
				}
				exc.observe(&r, mark)
			}
			done = k == nil
			return nil
		})
		if err != nil {
			return fmt.Errorf("build search index: %w", err)
		}
		codeKeys := make([][]byte, len(codeEnds))
		from := 0
		for i, end := range codeEnds {
			codeKeys[i], from = codeArena[from:end], end
		}
		slices.SortFunc(codeKeys, bytes.Compare)
		slices.SortFunc(searchKeys, func(a, b [searchKeyLen]byte) int { return bytes.Compare(a[:], b[:]) })
		searchKeys = slices.Compact(searchKeys) // a decision marked by two outcomes
		codeKeys = slices.CompactFunc(codeKeys, bytes.Equal)
		nkeys += len(searchKeys) + len(codeKeys)
		err = j.db.Update(func(tx *bolt.Tx) error {
			search, codes := tx.Bucket(bucketSearch), tx.Bucket(bucketCode)
			search.FillPercent, codes.FillPercent = 0.9, 0.9 // mostly appended in key order
			for i := range searchKeys {
				if err := search.Put(searchKeys[i][:], nil); err != nil {
					return err
				}
			}
			for _, k := range codeKeys {
				if err := codes.Put(k, nil); err != nil {
					return err
				}
			}
			if done {
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
	ev.Int("records", records).Int("keys", nkeys).Dur("took", time.Since(start)).
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
