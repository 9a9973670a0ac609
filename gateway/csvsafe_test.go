package gateway

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

// TestManifestCSVNeutralisesFormulas: label codes, destinations and
// routes that a spreadsheet would run as formulas are written as text.
func TestManifestCSVNeutralisesFormulas(t *testing.T) {
	hostile := []string{
		`=HYPERLINK("http://example.invalid/x","click")`,
		"+1+2",
		"-2+3",
		"@SUM(A1:A2)",
		"\t=1+1",
		"\r=1+1",
	}
	var ms []Manifest
	for i, h := range hostile {
		ms = append(ms, Manifest{Line: "L1", Container: "L1-C1-1", Chute: 1, Route: h, Opened: time.Unix(0, 0),
			Items: []ManifestItem{{TID: uint32(i + 1), Codes: []string{h}, Dest: h, Result: 1, At: time.Unix(0, 0)}}})
	}
	var buf bytes.Buffer
	if err := WriteManifestsCSV(&buf, ms); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(hostile)+1 {
		t.Fatalf("%d rows, want %d", len(rows), len(hostile)+1)
	}
	for i, row := range rows[1:] {
		for j, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("row %d column %s: %q would run as a formula", i+1, rows[0][j], cell)
			}
		}
		// The value itself is kept, after the quote.
		if got, want := row[3], "'"+hostile[i]; got != want {
			t.Errorf("row %d route %q, want %q", i+1, got, want)
		}
	}
}

func TestCSVCellLeavesPlainValues(t *testing.T) {
	for _, s := range []string{"", "90210", "]C142090210", "LH-286", "1Z999AA10123456784", "a=b"} {
		if got := csvCell(s); got != s {
			t.Errorf("csvCell(%q) = %q", s, got)
		}
	}
}
