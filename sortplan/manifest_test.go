package sortplan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManifest(t *testing.T) {
	src := "\ufeffpackage_id,destination\r\n" +
		"# comment\n" +
		"  1Z999AA10123456784 , 90210 \n" +
		"\n" +
		"TBA123456789012,276:10115,extra,columns\n" +
		"DUP1,30301\n" +
		"DUP1,30301\n" +
		"CONFLICT,30301\n" +
		"CONFLICT,30302\n" +
		"CONFLICT,30303\n" +
		"last,00501\n" +
		"END,8" // no trailing newline
	m, err := ParseManifest("m.csv", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id, dest string
		ok       bool
	}{
		{"1Z999AA10123456784", "90210", true},
		{"TBA123456789012", "276:10115", true},
		{"DUP1", "30301", true},
		{"CONFLICT", "", false},
		{"last", "00501", true},
		{"package_id", "", false},
		{"missing", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		d, ok := m.Lookup(tt.id)
		if d != tt.dest || ok != tt.ok {
			t.Errorf("Lookup(%q) = %q %v, want %q %v", tt.id, d, ok, tt.dest, tt.ok)
		}
	}
	if m.Len() != 5 || m.Duplicates() != 1 || m.Conflicts() != 1 || m.Name() != "m.csv" {
		t.Errorf("len %d dups %d conflicts %d", m.Len(), m.Duplicates(), m.Conflicts())
	}
	var nilM *Manifest
	if _, ok := nilM.Lookup("x"); ok || nilM.Len() != 0 {
		t.Error("nil manifest")
	}
}

func TestManifestErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no comma", "package_id,destination\nabc\n", "m.csv:2:1: want package_id,destination"},
		{"empty id", ",90210\n", "m.csv:1:1: empty package_id"},
		{"empty dest", "abc,\n", "m.csv:1:5: empty destination"},
		{"quotes", "\"abc\",90210\n", "quotes are not allowed"},
		{"many", strings.Repeat("x\n", 15) + "END\n", "15 bad rows"},
		{"no END", "package_id,destination\nabc,90210\n", "m.csv:2:1: no END row after line 2"},
		{"cut off", "package_id,destination\nabc,90210\nabd,902", "no END row"},
		{"END count", "abc,90210\nabd,90211\nEND,3\n", "m.csv:3:5: END row says \"3\" rows, the file has 2"},
		{"row after END", "abc,90210\nEND\nabd,90211\n", "m.csv:3:1: row after the END row (line 2)"},
	}
	for _, tt := range tests {
		_, err := ParseManifest("m.csv", strings.NewReader(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := LoadManifest(filepath.Join(t.TempDir(), "none.csv")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestLoadManifestFile(t *testing.T) {
	s := SampleLabels(SampleOptions{N: 500, Seed: 9})
	path := filepath.Join(t.TempDir(), "manifest.csv")
	if err := os.WriteFile(path, s.Manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range s.Labels {
		switch l.Kind {
		case "ups", "tba":
			n++
			if d, ok := m.Lookup(l.Codes[0]); !ok || d != l.Dest {
				t.Errorf("%s: %q %v, want %q", l.Kind, d, ok, l.Dest)
			}
		}
	}
	if n == 0 {
		t.Fatal("no manifest labels in the sample")
	}
}

// manifest1M writes n rows the way a WMS export looks.
func manifest1M(n int) string {
	var b strings.Builder
	b.Grow(n * 30)
	b.WriteString("package_id,destination\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "TBA%012d,%05d\n", i*7919, i%100000)
	}
	fmt.Fprintf(&b, "END,%d\n", n)
	return b.String()
}

func TestManifestLarge(t *testing.T) {
	src := manifest1M(200000)
	m, err := ParseManifest("big", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 200000 {
		t.Fatalf("len %d", m.Len())
	}
	for _, i := range []int{0, 1, 99999, 199999} {
		if d, ok := m.Lookup(fmt.Sprintf("TBA%012d", i*7919)); !ok || d != fmt.Sprintf("%05d", i%100000) {
			t.Errorf("row %d: %q %v", i, d, ok)
		}
	}
	// Memory: arena + rows + slots, per row.
	per := (len(m.arena) + 8*cap(m.rows) + 8*len(m.slots)) / m.Len()
	if per > 100 {
		t.Errorf("%d bytes per row", per)
	}
	t.Logf("%d bytes per row", per)
}

func TestLoadManifestLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.csv")
	src := manifest1M(1000)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifestLimit(path, int64(len(src))); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := LoadManifestLimit(path, int64(len(src))-1)
	if !errors.Is(err, ErrManifestTooLarge) || !strings.Contains(err.Error(), "max_manifest_bytes") {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := LoadManifestLimit(path, 0); err != nil {
		t.Fatalf("no limit: %v", err)
	}
}
