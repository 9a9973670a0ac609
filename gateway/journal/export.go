package journal

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// exportHeader is the first row of every consolidation export file.
var exportHeader = []string{"seq", "time", "line", "kind", "container", "chute", "route", "tid", "codes", "dest", "result", "van", "count", "by", "cause"}

// isConsolidation reports whether r is part of the consolidation record.
func isConsolidation(r *Record) bool {
	switch r.Kind {
	case KindOutcome:
		return r.Container != ""
	case KindContainerClose, KindContainerLoad, KindVanDepart, KindContainerBook:
		return true
	}
	return false
}

// exportCell neutralises a cell a spreadsheet would run as a formula
// (OWASP CSV injection), as the gateway's manifest downloads do.
func exportCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// exportConsolidation appends the consolidation records among the index
// keys about to be deleted to ExportDir, a file per day (UTC), synced.
func (j *Journal) exportConsolidation(tx *bolt.Tx, keys [][]byte) error {
	recs := tx.Bucket(bucketRecords)
	files := map[string]*csv.Writer{}
	var open []*os.File
	defer func() {
		for _, f := range open {
			f.Close()
		}
	}()
	for _, k := range keys {
		v := recs.Get(seqKey(nil, seqFromIndexKey(k)))
		if v == nil {
			continue
		}
		switch kindOf(v) {
		case KindOutcome, KindContainerClose, KindContainerLoad, KindVanDepart, KindContainerBook:
		default:
			continue
		}
		var r Record
		if err := decodeRecord(v, &r); err != nil {
			return fmt.Errorf("export record %d: %w", seqFromIndexKey(k), err)
		}
		if !isConsolidation(&r) {
			continue
		}
		name := filepath.Join(j.cfg.ExportDir, "consolidation-"+r.Time.UTC().Format(time.DateOnly)+".csv")
		w := files[name]
		if w == nil {
			if err := os.MkdirAll(j.cfg.ExportDir, 0o755); err != nil {
				return fmt.Errorf("export consolidation: %w", err)
			}
			f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("export consolidation: %w", err)
			}
			open = append(open, f)
			w = csv.NewWriter(f)
			if st, err := f.Stat(); err == nil && st.Size() == 0 {
				_ = w.Write(exportHeader)
			}
			files[name] = w
		}
		van := ""
		if r.Kind == KindContainerLoad || r.Kind == KindVanDepart {
			van = r.Detail
		}
		row := []string{strconv.FormatUint(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), r.Line, r.Kind.String(), r.Container,
			strconv.Itoa(int(r.Chute)), r.Route, strconv.FormatUint(uint64(r.TID), 10), strings.Join(r.Codes, " "), r.Dest,
			strconv.Itoa(int(r.Result)), van, strconv.FormatUint(uint64(r.Count), 10), r.By, r.Cause}
		for i := range row {
			row[i] = exportCell(row[i])
		}
		if err := w.Write(row); err != nil {
			return fmt.Errorf("export consolidation: %w", err)
		}
	}
	for _, w := range files {
		w.Flush()
		if err := w.Error(); err != nil {
			return fmt.Errorf("export consolidation: %w", err)
		}
	}
	for _, f := range open {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("export consolidation: %w", err)
		}
	}
	return nil
}
