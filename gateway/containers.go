package gateway

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
)

// ManifestItem is one item booked into a container.
type ManifestItem struct {
	TID     uint32    `json:"tid"`
	Codes   []string  `json:"codes,omitempty"`
	Dest    string    `json:"dest,omitempty"`
	Result  uint16    `json:"result"`
	Version uint64    `json:"plan_version"`
	At      time.Time `json:"at"`
}

// Manifest is the content of one container: what went into one chute
// between two closes.
type Manifest struct {
	Line      string    `json:"line"`
	Container string    `json:"container"`
	Chute     uint16    `json:"chute"`
	Route     string    `json:"route,omitempty"`
	Opened    time.Time `json:"opened"`
	Closed    time.Time `json:"closed,omitzero"`
	Cause     string    `json:"cause,omitempty"` // technician, emptied, capacity, cut-off; empty while open
	// State is open, closed, loaded or departed; Van the van it was
	// loaded onto, by LoadedBy at Loaded; Departed when the van left.
	State    string         `json:"state"`
	Due      time.Time      `json:"due,omitzero"` // the departure it is for (routes with departures)
	Van      string         `json:"van,omitempty"`
	Loaded   time.Time      `json:"loaded,omitzero"`
	LoadedBy string         `json:"loaded_by,omitempty"`
	Departed time.Time      `json:"departed,omitzero"`
	Items    []ManifestItem `json:"items"`
}

// container is the open container of one chute.
type container struct {
	n      int // running number of the container at this chute
	opened time.Time
	route  string
	items  []ManifestItem
	due    time.Time // departure, fixed by the first parcel
}

// containerID names the n-th container of a chute.
func containerID(line string, chute uint16, n int) string {
	return line + "-C" + strconv.Itoa(int(chute)) + "-" + strconv.Itoa(n)
}

func (c *container) manifest(line string, chute uint16) Manifest {
	items := make([]ManifestItem, len(c.items))
	copy(items, c.items)
	return Manifest{
		Line: line, Container: containerID(line, chute, c.n), Chute: chute, Route: c.route,
		Opened: c.opened, Items: items, State: StateOpen, Due: c.due,
	}
}

// WriteManifestsCSV writes manifests as CSV, one row per item. Cells that
// a spreadsheet would read as a formula are neutralised (csvCell).
func WriteManifestsCSV(w io.Writer, ms []Manifest) error {
	cw := newCSVWriter(w)
	if err := cw.Write([]string{"line", "container", "chute", "route", "opened", "closed", "cause", "tid", "codes", "dest", "result", "plan_version", "at"}); err != nil {
		return err
	}
	for _, m := range ms {
		closed := ""
		if !m.Closed.IsZero() {
			closed = m.Closed.UTC().Format(time.RFC3339Nano)
		}
		head := []string{m.Line, m.Container, strconv.Itoa(int(m.Chute)), m.Route, m.Opened.UTC().Format(time.RFC3339Nano), closed, m.Cause}
		for _, it := range m.Items {
			row := append(head[:len(head):len(head)],
				strconv.FormatUint(uint64(it.TID), 10), strings.Join(it.Codes, " "), it.Dest,
				strconv.Itoa(int(it.Result)), strconv.FormatUint(it.Version, 10), it.At.UTC().Format(time.RFC3339Nano))
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	return cw.Flush()
}

// WriteManifestsJSON writes manifests as a JSON array.
func WriteManifestsJSON(w io.Writer, ms []Manifest) error {
	if ms == nil {
		ms = []Manifest{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ms)
}
