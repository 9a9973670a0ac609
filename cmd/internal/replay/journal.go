package replay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sortgw/gateway/journal"
)

// Scanned says what a journal scan found besides the passes.
type Scanned struct {
	Passes uint64 `json:"passes"`
	// Containers closed in the range and the items they held: their mean
	// is the container size the route counts assume unless one is given.
	Containers     uint64 `json:"containers"`
	ContainerItems uint64 `json:"container_items"`
}

// MeanContainer is the mean items per closed container, 0 if none closed.
func (s Scanned) MeanContainer() int {
	if s.Containers == 0 {
		return 0
	}
	return int((s.ContainerItems + s.Containers/2) / s.Containers)
}

// JournalPath accepts a journal file or the folder holding journal.db
// (what `sortgw demo -dir` leaves behind).
func JournalPath(p string) string {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return filepath.Join(p, "journal.db")
	}
	return p
}

// FromJournal feeds every decision record of line ("" = every line) in
// [from, to) to r, reading the journal read-only.
func FromJournal(ctx context.Context, path, line string, from, to time.Time, r *Replayer) (Scanned, error) {
	var s Scanned
	var p Pass
	err := journal.ScanFile(ctx, JournalPath(path), from, to, 2*time.Second, func(rec *journal.Record) error {
		if line != "" && rec.Line != line {
			return nil
		}
		switch rec.Kind {
		case journal.KindDecision:
			p = Pass{Time: rec.Time, Dest: rec.Dest, NoRead: rec.NoRead, Reason: rec.Reason, Chute: rec.Chute, Route: rec.Route}
			r.Add(&p)
			s.Passes++
		case journal.KindContainerClose:
			s.Containers++
			s.ContainerItems += uint64(rec.Count)
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("replay: %w", err)
	}
	return s, nil
}
