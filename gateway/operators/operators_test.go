package operators

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testIter keeps the tests fast; the default is measured by the benchmark.
const testIter = MinIterations

func mustHash(t testing.TB, pin string) string {
	t.Helper()
	h, err := NewHash(pin, testIter, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// TestDeriveVector: PBKDF2-HMAC-SHA256 against RFC 7914 section 11's
// vector (P "passwd", S "salt", c 1), first 32 bytes.
func TestDeriveVector(t *testing.T) {
	got, err := derive("passwd", []byte("salt"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"; hex.EncodeToString(got) != want {
		t.Fatalf("derive = %x, want %s", got, want)
	}
}

func TestHashVerify(t *testing.T) {
	h, err := NewHash("4711", testIter, nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseHash(h.String())
	if err != nil {
		t.Fatalf("ParseHash(%q): %v", h, err)
	}
	if !back.Verify("4711") {
		t.Error("right PIN refused")
	}
	for _, wrong := range []string{"4712", "471", "47110", "", "4711 "} {
		if back.Verify(wrong) {
			t.Errorf("wrong PIN %q accepted", wrong)
		}
	}
	h2, _ := NewHash("4711", testIter, nil)
	if bytes.Equal(h.Salt, h2.Salt) || bytes.Equal(h.Sum, h2.Sum) {
		t.Error("two hashes of one PIN share salt or sum")
	}
	if _, err := NewHash("4711", MinIterations-1, nil); err == nil {
		t.Error("weak iteration count accepted")
	}
}

func TestCheckPIN(t *testing.T) {
	for pin, ok := range map[string]bool{"1234": true, "00000000": true, "123": false, "": false, "12a4": false,
		"1234 ": false, "１２３４": false, strings.Repeat("1", 33): false} {
		if err := CheckPIN(pin); (err == nil) != ok {
			t.Errorf("CheckPIN(%q) = %v", pin, err)
		}
	}
}

func TestParseAndVerify(t *testing.T) {
	file := "# accounts\n\nalice:technician:" + mustHash(t, "1234") + "\r\n  Bob:lead:" + mustHash(t, "98765") + "\n# end\n"
	s, err := Parse("ops", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 {
		t.Fatalf("%d accounts", s.Len())
	}
	tests := []struct {
		name, pin string
		ok        bool
		role      Role
	}{
		{"alice", "1234", true, Technician},
		{"ALICE", "1234", true, Technician}, // names ignore case
		{"bob", "98765", true, Lead},
		{"alice", "4321", false, RoleNone}, // wrong PIN
		{"alice", "98765", false, RoleNone},
		{"carol", "1234", false, RoleNone}, // unknown name
		{"", "", false, RoleNone},
	}
	for _, tc := range tests {
		op, ok := s.Verify(tc.name, tc.pin)
		if ok != tc.ok || op.Role != tc.role {
			t.Errorf("Verify(%q, %q) = %v %v, want %v %v", tc.name, tc.pin, op.Role, ok, tc.role, tc.ok)
		}
	}
	if op, _ := s.Lookup("bob"); op.Name != "Bob" || op.Line != 4 {
		t.Errorf("Lookup(bob) = %+v: want the name as written, line 4", op)
	}
}

// TestParseBadLines: every bad line is reported, at file:line: field.
func TestParseBadLines(t *testing.T) {
	good := mustHash(t, "1234")
	tests := []struct {
		name, line, want string
	}{
		{"two fields", "carol:technician", "ops:2: line: want name:role:hash, found 2 fields"},
		{"four fields", "carol:technician:" + good + ":x", "ops:2: line: want name:role:hash, found 4 fields"},
		{"unknown role", "carol:boss:" + good, `ops:2: role: unknown role "boss": want technician, lead or viewer`},
		{"empty name", ":lead:" + good, "ops:2: name: want 1 to 32 letters"},
		{"name with space", "al ice:lead:" + good, `ops:2: name: "al ice"`},
		{"name too long", strings.Repeat("a", 33) + ":lead:" + good, "ops:2: name: want 1 to 32"},
		{"duplicate", "ALICE:lead:" + good, `ops:2: name: "ALICE" given twice (first at line 1)`},
		{"plain PIN", "bob:lead:1234", "ops:2: hash: want pbkdf2-sha256$"},
		{"other scheme", "bob:lead:bcrypt$10$abc$def", "ops:2: hash: want pbkdf2-sha256$"},
		{"few iterations", "bob:lead:pbkdf2-sha256$999$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "ops:2: hash: iterations \"999\""},
		{"huge iterations", "bob:lead:pbkdf2-sha256$99999999999$c2FsdHNhbHQ$" + strings.Repeat("A", 43), "ops:2: hash: iterations"},
		{"bad salt", "bob:lead:pbkdf2-sha256$1000$!!$" + strings.Repeat("A", 43), "ops:2: hash: salt"},
		{"short sum", "bob:lead:pbkdf2-sha256$1000$c2FsdHNhbHQ$AAAA", "ops:2: hash: hash: want 32 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("ops", []byte("alice:technician:"+good+"\n"+tc.line+"\n"))
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %v, want Errors", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %q, want prefix %q", err, tc.want)
			}
		})
	}
	// Several bad lines: each reported.
	_, err := Parse("ops", []byte("a:boss:x\nb:lead\n"))
	if es, _ := err.(Errors); len(es) != 3 {
		t.Fatalf("want 3 errors (role, hash, fields), got %v", err)
	}
}

func TestAdd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "operators")
	if replaced, err := Add(path, "alice", Technician, "1234", testIter, nil); err != nil || replaced {
		t.Fatalf("add to a new file: %v %v", replaced, err)
	}
	if _, err := Add(path, "bob", Viewer, "5555", testIter, nil); err != nil {
		t.Fatal(err)
	}
	// A comment added by hand survives; alice is replaced in place.
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(b, "# night shift\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if replaced, err := Add(path, "Alice", Lead, "999999", testIter, nil); err != nil || !replaced {
		t.Fatalf("replace: %v %v", replaced, err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if op, ok := s.Verify("alice", "999999"); !ok || op.Role != Lead || op.Line != 2 || op.Name != "Alice" {
		t.Errorf("replaced account: %+v %v", op, ok)
	}
	if _, ok := s.Verify("alice", "1234"); ok {
		t.Error("old PIN still valid")
	}
	if _, ok := s.Verify("bob", "5555"); !ok {
		t.Error("bob lost")
	}
	b, _ = os.ReadFile(path)
	if !strings.Contains(string(b), "# night shift") || !strings.HasPrefix(string(b), "# sortgw") {
		t.Errorf("comments lost:\n%s", b)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v, want 0600", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}

	for _, tc := range []struct {
		name, user, pin string
		role            Role
	}{
		{"short PIN", "carol", "123", Technician},
		{"letters in PIN", "carol", "12ab", Technician},
		{"bad name", "car:ol", "1234", Technician},
		{"no role", "carol", "1234", RoleNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Add(path, tc.user, tc.role, tc.pin, testIter, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, b) {
		t.Error("a refused add changed the file")
	}
	// A broken file is not edited.
	broken := filepath.Join(t.TempDir(), "broken")
	if err := os.WriteFile(broken, []byte("x:boss:y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Add(broken, "carol", Technician, "1234", testIter, nil); err == nil || !strings.Contains(err.Error(), "broken:1: role") {
		t.Errorf("add to a broken file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("alice:technician:" + mustHash(f, "1234") + "\n# c\n\nbob:lead:pbkdf2-sha256$1000$c2FsdHNhbHQ$AAAA\n"))
	f.Add([]byte("a:b:c:d\n::\n:::"))
	f.Add([]byte("x:viewer:pbkdf2-sha256$1000$$\r\n"))
	f.Add([]byte("\xff:lead:pbkdf2-sha256$1000$c2FsdHNhbHQ$" + strings.Repeat("A", 43)))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz", data)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error not Errors: %v", err)
			}
			for _, e := range es {
				if e.Line < 1 || e.Field == "" {
					t.Fatalf("error without line or field: %+v", e)
				}
			}
			return
		}
		for _, op := range s.Operators() {
			if CheckName(op.Name) != nil || op.Role == RoleNone || len(op.Hash.Sum) != hashBytes {
				t.Fatalf("parsed a bad account: %+v", op)
			}
			// Re-encoding gives a line that parses to the same account.
			again, err := Parse("again", []byte(op.Name+":"+op.Role.String()+":"+op.Hash.String()))
			if err != nil {
				t.Fatalf("re-encoded account does not parse: %v", err)
			}
			if a, _ := again.Lookup(op.Name); a.Hash.String() != op.Hash.String() {
				t.Fatalf("round trip: %v != %v", a.Hash, op.Hash)
			}
		}
	})
}

// BenchmarkVerifyDefault: the cost of one login check at the default
// iteration count (what a wrong PIN and an unknown name cost the server).
func BenchmarkVerifyDefault(b *testing.B) {
	h, err := NewHash("1234", DefaultIterations, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		h.Verify("1234")
	}
}
