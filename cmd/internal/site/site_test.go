package site

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/cmd/internal/leakcheck"
)

// TestMain fails the run on any goroutine left, after nats-server's
// source-consumer waits have ended by themselves (leakcheck).
func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}

// wantLines returns the "# want: ..." substrings of a bad file, one per
// expected error.
func wantLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
			want = append(want, w)
		}
	}
	return want
}

// loadAndCheck is `sortgw check`: Load, then Check.
func loadAndCheck(path string) (*Config, error) {
	cfg, err := Load(path)
	if err != nil {
		return nil, err
	}
	return cfg, cfg.Check()
}

// errorList splits an error into its one-line problems.
func errorList(t *testing.T, err error) []string {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is not site.Errors: %v", err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatal("Errors does not wrap ErrInvalid")
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

func TestFiles(t *testing.T) {
	good, _ := filepath.Glob("testdata/*.good.yaml")
	bad, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(good) == 0 || len(bad) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range good {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := loadAndCheck(f); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, f := range bad {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLines(t, f)
			if len(want) == 0 {
				t.Fatal("bad file without # want lines")
			}
			_, err := loadAndCheck(f)
			if err == nil {
				t.Fatal("no error")
			}
			got := errorList(t, err)
			// Each want line matches a problem of its own, and there is
			// no problem nobody wanted.
			used := make([]bool, len(got))
			for _, w := range want {
				found := false
				for i, g := range got {
					if !used[i] && strings.Contains(g, w) {
						used[i], found = true, true
						break
					}
				}
				if !found {
					t.Errorf("no error contains %q", w)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d errors for %d want lines", len(got), len(want))
			}
			if t.Failed() {
				t.Logf("errors:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

// TestDefaults: zero values take the packages' defaults, and the site's
// derived values (names, no-read token, paths) are filled.
func TestDefaults(t *testing.T) {
	cfg, err := loadAndCheck("testdata/site.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Lines[0], cfg.Lines[1]
	if cfg.token != "s3cr3t-token-for-tests" {
		t.Errorf("token from file: %q", cfg.token)
	}
	if a.Budget != 450*time.Millisecond || b.Budget != 500*time.Millisecond {
		t.Errorf("budgets %v %v", a.Budget, b.Budget)
	}
	if a.RecircLimit != 3 || b.Chutes != 256 || b.Resolver.NoReadToken != "NoRead" {
		t.Errorf("line defaults: %+v", b.LineConfig)
	}
	if m := a.PLC.Modbus; m.Name != "A-plc" || m.DivertBase != 10 || m.WordOrder != "low-first" || m.Connections != 1 || m.Chutes != 256 {
		t.Errorf("modbus: %+v", m)
	}
	if o := b.PLC.OPCUA; o.Name != "B-plc" || o.Namespace != "urn:sortgw:sorter" || o.KeepAlive != 2*time.Second {
		t.Errorf("opcua: %+v", o)
	}
	if s := b.Scanners[1]; s.Name != "B-S2" || s.Peer != "10.2.0.22" || s.Separator != ";" || s.NoReadToken != "NoRead" {
		t.Errorf("scanner: %+v", s)
	}
	if a.Scanners[1].Separator != "|" {
		t.Errorf("separator %q", a.Scanners[1].Separator)
	}
	if cfg.Journal.MaxAge != 720*time.Hour || cfg.Gateway.DrainGrace != 15*time.Second || cfg.Journal.QueueSize != 65536 {
		t.Errorf("journal %+v drain %v", cfg.Journal, cfg.Gateway.DrainGrace)
	}
	if a.PlanFile != filepath.Join("testdata", "plan-small.csv") {
		t.Errorf("plan path not resolved against the site file: %s", a.PlanFile)
	}
	if len(cfg.Notes) == 0 || !strings.Contains(strings.Join(cfg.Notes, "\n"), "line A: plan SC-66204-256 version 1") {
		t.Errorf("notes: %q", cfg.Notes)
	}
}

// TestExample: the example in the docs is a valid site file; the only
// complaints are the site's own files, which do not exist here.
func TestExample(t *testing.T) {
	cfg, err := Load("../../../docs/examples/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Lines) != 2 || cfg.Lines[1].PLC.OPCUA == nil {
		t.Fatalf("example lines: %+v", cfg.Lines)
	}
	err = cfg.Check()
	if err == nil {
		t.Fatal("the example's /etc files exist on this machine?")
	}
	for _, e := range errorList(t, err) {
		if !strings.Contains(e, "/etc/sortgw/") && !strings.Contains(e, "/var/lib/sortgw") {
			t.Errorf("example: %s", e)
		}
	}
}

// TestCheckIsBuild: for every testdata file, Check refuses exactly when
// Build refuses, with the same errors. Build only adds the journal, put
// under t.TempDir; it neither dials nor listens.
func TestCheckIsBuild(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				return // a decode error: neither Check nor Build sees the file
			}
			if cfg.Journal.Path != "" {
				cfg.Journal.Path = filepath.Join(t.TempDir(), filepath.Base(cfg.Journal.Path))
			}
			checkErr := cfg.Check()
			s, buildErr := Build(cfg, zerolog.New(zerolog.NewTestWriter(t)))
			if s != nil {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if (checkErr == nil) != (buildErr == nil) {
				t.Fatalf("check: %v\nbuild: %v", checkErr, buildErr)
			}
			if checkErr != nil && checkErr.Error() != buildErr.Error() {
				t.Fatalf("different errors\ncheck: %v\nbuild: %v", checkErr, buildErr)
			}
		})
	}
}

// TestJournalPath: check refuses a journal path that cannot be opened;
// what it cannot see without opening the file (here, a file that is not
// a journal) is the one thing Build refuses beyond Check.
func TestJournalPath(t *testing.T) {
	cfg, err := Load("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "no-such-dir", "j.db"), dir} {
		cfg.Journal.Path = p
		if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "journal.path: journal") {
			t.Errorf("check %s: %v", p, err)
		}
	}
	cfg.Journal.Path = filepath.Join(dir, "j.db")
	if err := os.WriteFile(cfg.Journal.Path, []byte("not a bbolt file, long enough to be read as one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(cfg, zerolog.New(zerolog.NewTestWriter(t))); err == nil || !strings.Contains(err.Error(), "open journal") {
		t.Fatalf("build: %v", err)
	}
}

// TestEveryFieldTagged: every field of every Config the site file decodes
// into is a site setting or says `yaml:"-"`: a field added to a package's
// Config without a tag would be silently unreachable.
func TestEveryFieldTagged(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || ty == durationType || seen[ty] {
			return
		}
		seen[ty] = true
		for i := range ty.NumField() {
			f := ty.Field(i)
			if !f.IsExported() {
				continue
			}
			tag, ok := f.Tag.Lookup("yaml")
			if !ok {
				t.Errorf("%s.%s has no yaml tag", ty, f.Name)
			}
			if tag != "-" {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	if len(seen) < 9 {
		t.Fatalf("walked only %d types", len(seen))
	}
}

func TestSuggest(t *testing.T) {
	fs := fields(reflect.TypeFor[Line]())
	for _, tc := range []struct{ in, want string }{
		{"decision_budgt", "decision_budget"},
		{"budget", "decision_budget"},
		{"chute", "chutes"},
		{"scaners", "scanners"},
		{"recirc_limit", "recirculation_limit"},
		{"xyz", ""},
		{"color", ""},
	} {
		if got := suggest(tc.in, fs); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParse: no site file text makes the loader panic; every rejection is
// Errors with the file name in it.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("fuzz.yaml", data)
		var es Errors
		if err != nil && (!errors.As(err, &es) || !strings.Contains(err.Error(), "fuzz.yaml")) {
			t.Fatalf("error without the file name: %v", err)
		}
	})
}
