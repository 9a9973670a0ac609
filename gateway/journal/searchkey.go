package journal

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"sync"

	"sortgw/sortplan"
)

// The search index (bucket by-key) lets a technician find an item pass by
// what is printed on its label, not only by the exact scanner string (the
// by-code index) or the TID (by-tid):
//
//	by-key  span (4) kind (1) hash (8) seq (8) -> empty
//
// kind is keyStripped (the code in NormaliseCode's form), keyPackage (a
// package id ReadLabel found: UPS 1Z, IMpb, SSCC, TBA) or keyZIP (the ZIP5
// of the label's postal code or of the decided destination); hash is
// FNV-1a 64 of the normalised key. Hashing keeps every entry 17 bytes
// however long the code; a lookup re-derives the keys of each record it
// finds and drops the rare hash collision. Only records that start a row
// of the item list carry keys (a decision, or an outcome of a read that
// never became a pass).
//
// The keys are derived from the record alone, so deleteRecord removes
// exactly what writeBatch put, in the same transaction as the record.
// Should the derivation change between builds (the label reader learns a
// new shape), the fingerprint in meta no longer matches and Open rebuilds
// the bucket: an entry can never outlive its record for that reason.
const (
	keyStripped byte = 's'
	keyPackage  byte = 'p'
	keyZIP      byte = 'z'
	// keyException marks a row whose pass ended other than sorted, under
	// its row's seq (the decision's, though the outcome writes it), so
	// that "exceptions only" walks exceptions instead of every pass. It
	// goes with the row's first record.
	keyException byte = 'x'

	searchKeyLen = 4 + 1 + 8 + 8
)

var (
	bucketSearch   = []byte("by-key")
	keySearchPrint = []byte("search-index")
	// The fingerprint covers by-code too: both are rebuilt together.
	searchIndexFormat = "sortgw search index 3: by-code and by-key by span of 2^14 seqs"
)

// searchKey is one search key of a record, before hashing.
type searchKey struct {
	kind byte
	key  string
}

// NormaliseCode is the search form of a barcode: without its AIM
// symbology identifier (]C1, ]d2, ]Q3, …; repeated ones too), without GS
// (FNC1 as a separator) or the ␝ the status page shows for it, without
// blanks, hyphens and the parentheses of GS1's human-readable form, ASCII
// letters in upper case. So "]C1420902101234␝92…" and "(420)902101234(92)…"
// and "420 90210-1234 92…" have one form. It is idempotent.
func NormaliseCode(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0x1D, ' ', '\t', '\r', '\n', '-', '(', ')':
		default:
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			b = append(b, c)
		}
	}
	// Dropping bytes can join the pieces of a "␝"; removing one can join
	// another, so until none is left.
	for {
		i := strings.Index(string(b), "\u241d")
		if i < 0 {
			break
		}
		b = append(b[:i], b[i+3:]...)
	}
	for len(b) >= 3 && b[0] == ']' && isAlpha(b[1]) && isAlnum(b[2]) {
		b = b[3:]
	}
	return string(b)
}

func isAlpha(c byte) bool { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') }
func isAlnum(c byte) bool { return isAlpha(c) || (c >= '0' && c <= '9') }

// zip5 is the ZIP5 of a US postal code written as ZIP5, ZIP+4 or
// ZIP+4+2 digits (a hyphen allowed after the fifth), or "".
func zip5(v string) string {
	if len(v) == 10 && v[5] == '-' {
		v = v[:5] + v[6:]
	}
	switch len(v) {
	case 5, 9, 11:
	default:
		return ""
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return ""
		}
	}
	return v[:5]
}

// rowStart reports whether a record starts a row of the item list: a
// decision, or the outcome of a read that never became a pass.
func rowStart(r *Record) bool {
	return r.Kind == KindDecision || (r.Kind == KindOutcome && r.Pass == 0)
}

// appendSearchKeys appends the record's search keys, each once.
func appendSearchKeys(dst []searchKey, r *Record) []searchKey {
	if !rowStart(r) {
		return dst
	}
	start := len(dst)
	add := func(kind byte, key string) {
		if key == "" {
			return
		}
		for _, k := range dst[start:] {
			if k.kind == kind && k.key == key {
				return
			}
		}
		dst = append(dst, searchKey{kind, key})
	}
	for _, c := range r.Codes {
		if n := NormaliseCode(c); n != c {
			// A code already in its search form is found through by-code.
			add(keyStripped, n)
		}
		l := sortplan.ReadLabel(c)
		for _, id := range l.PackageIDs {
			add(keyPackage, NormaliseCode(id))
		}
		if l.Country == "" || l.Country == "840" {
			add(keyZIP, zip5(l.Postal))
		}
	}
	add(keyZIP, zip5(r.Dest))
	return dst
}

// hashKey is FNV-1a 64 over the kind and the key.
func hashKey(kind byte, key string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	h = (h ^ uint64(kind)) * prime
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	return h
}

// searchSuffix is what follows the span in a key's by-key entries: the
// kind and the hash.
func searchSuffix(b []byte, kind byte, key string) []byte {
	b = append(b, kind)
	return binary.BigEndian.AppendUint64(b, hashKey(kind, key))
}

// searchEntry is the by-key entry of sk in the record seq.
func searchEntry(b []byte, sk searchKey, seq uint64) []byte {
	return seqKey(searchSuffix(appendSpan(b, spanOf(seq)), sk.kind, sk.key), seq)
}

// exceptionKey is the exception entry of the row starting at seq.
func exceptionKey(b []byte, seq uint64) []byte {
	return searchEntry(b, searchKey{kind: keyException}, seq)
}

// exceptionTracker finds the exception entries of records read in seq
// order, as writeBatch does with the open bucket: an outcome other than
// sorted marks the last decision of its (line, TID, pass), or itself
// when it is a read that never became a pass.
type exceptionTracker struct {
	open map[passID]uint64 // seq of the last decision, 0 for an older opening kind
}

// observe takes the next record and calls mark for each entry it makes.
func (x *exceptionTracker) observe(r *Record, mark func(seq uint64)) {
	if x.open == nil {
		x.open = map[passID]uint64{}
	}
	if r.Kind == KindOutcome && r.Pass == 0 && !r.Outcome.Sorted() {
		mark(r.Seq)
	}
	if r.TID == 0 {
		return
	}
	id := passID{r.Line, r.TID, r.Pass}
	switch {
	case r.Kind.opens():
		x.open[id] = 0
		if r.Kind == KindDecision {
			x.open[id] = r.Seq
		}
	case r.Kind == KindOutcome:
		dec, ok := x.open[id]
		if !ok {
			return
		}
		delete(x.open, id)
		if dec != 0 && !r.Outcome.Sorted() {
			mark(dec)
		}
	}
}

// searchFingerprint names the key derivation of this build: the index
// format and the keys of sample labels covering every shape the label
// reader knows. Open rebuilds an index written under another one.
var searchFingerprint = sync.OnceValue(func() []byte {
	samples := []Record{
		{Kind: KindDecision, Dest: "902101234", Codes: []string{
			"]C1420902101234\x1d9205590123456789012345",
			"]C100006141410000000017\x1d42090210",
			"(420)90210(00)006141410000000017",
			"4209021092055901234567890123456",
			"]C01Z999AA10123456784", "1Z999AA10123456784", "]Q0TBA123456789012",
			"]d2421276101150", "]C142184090210", "9205590123456789012345",
			"001234567890123456789", " ]c1 abc-(def)\u241d", "plain",
		}},
		{Kind: KindOutcome, Dest: "90210-1234", Codes: []string{"]C1420902101234567"}},
	}
	h := sha256.New()
	h.Write([]byte(searchIndexFormat))
	for i := range samples {
		for _, k := range appendSearchKeys(nil, &samples[i]) {
			h.Write([]byte{0, k.kind})
			h.Write([]byte(k.key))
		}
	}
	return h.Sum(nil)[:16]
})
