package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sortgw/gateway/operators"
)

func TestOperatorAdd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "operators")
	run := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := operatorMain(args, strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := run("2468\n", "add", "-file", file, "-name", "alice", "-role", "technician")
	if code != 0 || out != "added alice (technician) in "+file+"\n" {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	code, out, _ = run("13579", "add", "-file", file, "-name", "alice", "-role", "lead")
	if code != 0 || !strings.HasPrefix(out, "replaced alice (lead)") {
		t.Fatalf("replace: %d %q", code, out)
	}
	set, err := operators.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	op, ok := set.Verify("alice", "13579")
	if !ok || op.Role != operators.Lead || op.Hash.Iterations != operators.DefaultIterations {
		t.Fatalf("account %+v %v: want lead at the default iterations", op, ok)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi.Mode(), err)
	}
	before, _ := os.ReadFile(file)
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		msg         string
	}{
		{"short PIN", "123\n", []string{"add", "-file", file, "-name", "bob", "-role", "viewer"}, 1, "PIN: a PIN is 4 to 32 digits"},
		{"no PIN", "", []string{"add", "-file", file, "-name", "bob", "-role", "viewer"}, 1, "PIN"},
		{"bad role", "1234\n", []string{"add", "-file", file, "-name", "bob", "-role", "boss"}, 2, `unknown role "boss"`},
		{"no name", "1234\n", []string{"add", "-file", file, "-role", "lead"}, 2, "required"},
		{"no subcommand", "", nil, 2, "usage: sortgw operator add"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := run(tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.msg) {
				t.Fatalf("exit %d, stderr %q: want %d and %q", code, errs, tc.code, tc.msg)
			}
		})
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Error("a refused add changed the file")
	}
	if code, out, _ := run("", "-h"); code != 0 || !strings.Contains(out, "usage: sortgw operator add") {
		t.Errorf("-h: %d %q", code, out)
	}
}
