package sortplan

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"strconv"
	"strings"
)

// Manifest maps package ids (SSCC, carrier tracking numbers, TBA ids) to
// destination keys. It is read from a CSV "package_id,destination" and
// kept as one string arena plus an open-addressing hash over row offsets,
// so that a million rows cost about 50 bytes each and load in well under a
// second. A Manifest is immutable and safe for concurrent use.
type Manifest struct {
	name      string
	arena     string
	rows      []mrow
	slots     []uint64 // high 32 bits: hash tag; low 32: row index + 1 (0 = empty)
	mask      uint32
	seed      maphash.Seed
	dups      int
	conflicts int
}

type mrow struct {
	off     uint32 // id start in arena
	idLen   uint16
	destOff uint16 // dest start relative to off
	destLen uint16 // 0: the id is listed with two different destinations
}

const maxManifestErrors = 10

// ErrManifestTooLarge: a manifest file is over the size limit it was
// loaded with.
var ErrManifestTooLarge = errors.New("manifest too large")

// LoadManifest reads a manifest file.
func LoadManifest(path string) (*Manifest, error) {
	return LoadManifestLimit(path, 0)
}

// LoadManifestLimit reads a manifest file of at most maxBytes (0: no
// limit). A manifest takes about 2.5 times its size in memory while it
// is loaded next to the one in use, so a site caps it: a 200 MB file
// that a WMS export got wrong must be refused, not take the gateway's
// memory from 70 MB to 850 MB on a live reload.
func LoadManifestLimit(path string, maxBytes int64) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	if maxBytes > 0 {
		if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
			return nil, fmt.Errorf("manifest %s: %d bytes, over the limit of %d (max_manifest_bytes): %w", path, fi.Size(), maxBytes, ErrManifestTooLarge)
		}
	}
	var r io.Reader = f
	if maxBytes > 0 {
		r = io.LimitReader(f, maxBytes+1) // the file may grow while it is read
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	if maxBytes > 0 && int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("manifest %s: over the limit of %d bytes (max_manifest_bytes): %w", path, maxBytes, ErrManifestTooLarge)
	}
	return parseManifest(path, string(b))
}

// ParseManifest reads a manifest from r; name is used in error messages.
func ParseManifest(name string, r io.Reader) (*Manifest, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	return parseManifest(name, string(b))
}

func parseManifest(name, data string) (*Manifest, error) {
	if len(data) > 1<<32-1 {
		return nil, fmt.Errorf("manifest %s: larger than 4 GiB", name)
	}
	data = strings.TrimPrefix(data, "\ufeff")
	n := strings.Count(data, "\n") + 1
	size := 16
	for size < 2*n {
		size <<= 1
	}
	m := &Manifest{
		name:  name,
		arena: data,
		rows:  make([]mrow, 0, n),
		slots: make([]uint64, size),
		mask:  uint32(size - 1),
		seed:  maphash.MakeSeed(),
	}
	var errs []string
	nerr := 0
	bad := func(line int, col int, msg string) {
		nerr++
		if len(errs) < maxManifestErrors {
			errs = append(errs, fmt.Sprintf("%s:%d:%d: %s", name, line, col, msg))
		}
	}
	line := 0
	first := true
	// A manifest ends with END (or END,<rows>), so that one cut off
	// mid-copy is refused instead of sending the rest of the day's
	// parcels to the unknown chute.
	endLine, lastLine, rowsSeen := 0, 0, 0
	for pos := 0; pos < len(data); {
		line++
		end := strings.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += pos
		}
		ls, le := pos, end
		pos = end + 1
		if le > ls && data[le-1] == '\r' {
			le--
		}
		ls, le = trimSpan(data, ls, le)
		if ls == le || data[ls] == '#' {
			continue
		}
		l := data[ls:le]
		if first {
			first = false
			if strings.HasPrefix(strings.ToLower(l), "package_id") {
				continue
			}
		}
		if endLine > 0 {
			bad(line, 1, fmt.Sprintf("row after the END row (line %d): END must be the manifest's last row", endLine))
			continue
		}
		if id, count, _ := strings.Cut(l, ","); strings.EqualFold(strings.TrimSpace(id), "END") {
			endLine = line
			if count = strings.TrimSpace(count); count != "" {
				if n, err := strconv.Atoi(count); err != nil || n != rowsSeen {
					bad(line, len(id)+2, fmt.Sprintf("END row says %q rows, the file has %d: rows were lost or added (a partial copy?)", count, rowsSeen))
				}
			}
			continue
		}
		rowsSeen++
		lastLine = line
		c := strings.IndexByte(l, ',')
		if c < 0 {
			bad(line, 1, "want package_id,destination")
			continue
		}
		is, ie := trimSpan(data, ls, ls+c)
		ds := ls + c + 1
		de := le
		if c2 := strings.IndexByte(data[ds:le], ','); c2 >= 0 {
			de = ds + c2 // extra columns are ignored
		}
		ds, de = trimSpan(data, ds, de)
		switch {
		case is == ie:
			bad(line, 1, "empty package_id")
			continue
		case ds == de:
			bad(line, c+2, "empty destination")
			continue
		case ie-is > 1000 || de-ds > 1000:
			bad(line, 1, "field longer than 1000 bytes")
			continue
		case strings.IndexByte(data[is:ie], '"') >= 0 || strings.IndexByte(data[ds:de], '"') >= 0:
			bad(line, 1, "quotes are not allowed in a manifest")
			continue
		}
		m.insert(mrow{off: uint32(is), idLen: uint16(ie - is), destOff: uint16(ds - is), destLen: uint16(de - ds)})
	}
	if endLine == 0 {
		bad(max(lastLine, 1), 1, fmt.Sprintf("no END row after line %d: the file may be cut off (a partial copy?); a manifest ends with the row END,%d", lastLine, rowsSeen))
	}
	if nerr > 0 {
		more := ""
		if nerr > len(errs) {
			more = fmt.Sprintf("\n(%d more)", nerr-len(errs))
		}
		return nil, fmt.Errorf("manifest %s: %d bad rows:\n%s%s", name, nerr, strings.Join(errs, "\n"), more)
	}
	return m, nil
}

func trimSpan(s string, a, b int) (int, int) {
	for a < b && (s[a] == ' ' || s[a] == '\t') {
		a++
	}
	for b > a && (s[b-1] == ' ' || s[b-1] == '\t') {
		b--
	}
	return a, b
}

func (m *Manifest) id(r mrow) string { return m.arena[r.off : r.off+uint32(r.idLen)] }
func (m *Manifest) dest(r mrow) string {
	s := r.off + uint32(r.destOff)
	return m.arena[s : s+uint32(r.destLen)]
}

func (m *Manifest) insert(r mrow) {
	id := m.id(r)
	hash := maphash.String(m.seed, id)
	tag := hash &^ 0xFFFFFFFF
	h := uint32(hash) & m.mask
	for {
		s := m.slots[h]
		if s == 0 {
			m.rows = append(m.rows, r)
			m.slots[h] = tag | uint64(len(m.rows))
			return
		}
		if s&^0xFFFFFFFF == tag {
			old := &m.rows[uint32(s)-1]
			if m.id(*old) == id {
				if old.destLen != 0 && m.dest(*old) == m.dest(r) {
					m.dups++
				} else if old.destLen != 0 {
					old.destLen = 0
					m.conflicts++
				}
				return
			}
		}
		h = (h + 1) & m.mask
	}
}

// Lookup returns the destination of a package id. An id listed twice with
// different destinations has none: guessing would risk a mis-sort.
func (m *Manifest) Lookup(id string) (string, bool) {
	if m == nil || len(m.rows) == 0 {
		return "", false
	}
	hash := maphash.String(m.seed, id)
	tag := hash &^ 0xFFFFFFFF
	h := uint32(hash) & m.mask
	for {
		s := m.slots[h]
		if s == 0 {
			return "", false
		}
		if s&^0xFFFFFFFF == tag {
			r := m.rows[uint32(s)-1]
			if m.id(r) == id {
				if r.destLen == 0 {
					return "", false
				}
				return m.dest(r), true
			}
		}
		h = (h + 1) & m.mask
	}
}

// Len returns the number of distinct package ids.
func (m *Manifest) Len() int {
	if m == nil {
		return 0
	}
	return len(m.rows)
}

// Conflicts returns how many ids were listed with two different
// destinations (they resolve to nothing); Duplicates how many rows
// repeated an id with the same destination.
func (m *Manifest) Conflicts() int { return m.conflicts }

// Duplicates returns how many rows repeated an id with the same destination.
func (m *Manifest) Duplicates() int { return m.dups }

// Name returns the file name the manifest was read from.
func (m *Manifest) Name() string { return m.name }

// errNoManifest is used by Explain when a package id needs a manifest.
var errNoManifest = errors.New("no manifest loaded")
