package sortplan

import (
	"strings"
	"testing"
)

// FuzzParseManifest feeds arbitrary manifest files to the reader: no
// panic; an error names the file and a line; and every well-formed row of
// a file that parsed resolves to its destination (or to nothing, when the
// file lists the id twice with different destinations).
func FuzzParseManifest(f *testing.F) {
	f.Add("package_id,destination\n1Z2203480342495730,90210\nTBA123456789012,10001\nEND,2\n")
	f.Add("\ufeffpackage_id,destination\r\n106141411234567897,276:10115\r\nEND\r\n")
	f.Add("# comment\n\nTBA000000000001, 30303 ,extra\nEND\n")
	f.Add("TBA1,90210\nTBA1,10001\nEND,2\n")
	f.Add("TBA1,90210\nTBA1,100")
	f.Add("no comma here\n,90210\nTBA2,\n")
	f.Add(string(SampleLabels(SampleOptions{N: 20, Seed: 3}).Manifest))
	f.Fuzz(func(t *testing.T, data string) {
		m, err := ParseManifest("m.csv", strings.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "manifest m.csv") && !strings.Contains(err.Error(), "m.csv:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		dests := map[string]map[string]bool{}
		for _, ln := range strings.Split(strings.TrimPrefix(data, "\ufeff"), "\n") {
			ln = strings.Trim(strings.TrimSuffix(ln, "\r"), " \t") // the reader trims blanks and tabs only
			if ln == "" || ln[0] == '#' || strings.HasPrefix(strings.ToLower(ln), "package_id") {
				continue
			}
			id, rest, ok := strings.Cut(ln, ",")
			dest, _, _ := strings.Cut(rest, ",")
			id, dest = strings.Trim(id, " \t"), strings.Trim(dest, " \t")
			if !ok || id == "" || dest == "" || strings.ContainsAny(id+dest, " \t\"") {
				continue
			}
			if dests[id] == nil {
				dests[id] = map[string]bool{}
			}
			dests[id][dest] = true
		}
		for id, ds := range dests {
			got, found := m.Lookup(id)
			if len(ds) == 1 && found && !ds[got] {
				t.Fatalf("Lookup(%q) = %q, file says %v", id, got, ds)
			}
			if len(ds) > 1 && found {
				t.Fatalf("Lookup(%q) = %q, but the file lists it with %d destinations", id, got, len(ds))
			}
		}
		if m.Len() < 0 {
			t.Fatal("negative length")
		}
	})
}
