package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test of the package leaks a goroutine (the
// package's only TestMain). The bench's own tests are in
// cmd/internal/loadtest.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestBenchFlags: bad flags of bench and demo are refused with a message
// and a non-zero exit code, before anything runs.
func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad rate", []string{"-rate", "fast"}, `-rate "fast"`},
		{"zero rate", []string{"-rate", "0"}, `-rate "0"`},
		{"bad protocol", []string{"-protocol", "s7", "-skip-decide", "-duration", "1ms"}, `protocol "s7"`},
		{"unknown flag", []string{"-rates", "5"}, "flag provided but not defined: -rates"},
		{"bad upstream", []string{"-upstream=maybe"}, "want true, false or both"},
		{"stray argument", []string{"-skip-decide", "fast"}, `unexpected argument "fast"`},
		{"stray argument after -upstream both", []string{"-upstream", "both", "-rate", "fast"}, `-rate "fast"`},
		{"chaos on the direct feed", []string{"-chaos", "-feed", "direct", "-skip-decide"}, "chaos needs the conveyor feed"},
		{"demo: bad protocol", []string{"demo", "-protocol", "s7", "-http", "127.0.0.1:0"}, `protocol "s7"`},
		{"demo: negative memory limit", []string{"demo", "-memory-limit-mib", "-1", "-http", "127.0.0.1:0"}, "-memory-limit-mib: want 0 or more"},
		{"demo: truth limit below its floor", []string{"demo", "-truth-limit", "5", "-http", "127.0.0.1:0"}, "truth limit 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := tc.args
			if args[0] != "demo" {
				args = append([]string{"bench"}, args...)
			}
			code := dispatch(context.Background(), args, &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("code %d, stderr %q, want it to contain %q", code, stderr.String(), tc.want)
			}
		})
	}
}
