package hostif

import "testing"

// TestActive: the core has work for a prompt read (the links poll at
// FastPoll then) from a command's Enqueue until its terminal event, queued
// before any connection too; a late command ends it as a confirmation does.
func TestActive(t *testing.T) {
	s := newScript(t, Config{})
	check := func(step string, want bool) {
		t.Helper()
		if got := s.c.Active(); got != want {
			t.Fatalf("after %s: Active() = %v, want %v", step, got, want)
		}
	}
	check("new", false)
	for _, st := range []struct {
		line string
		want bool
	}{
		{"send 101 chute=5", true}, // queued, no connection yet
		{"conn", true},
		{"block boot=7 hb=1", true},
		{"write", true},          // written, not taken
		{"block ack=1", true},    // taken, confirmation due
		{"slot 1 101 1", true},   // not read yet
		{"block count=1", false}, // confirmed
		{"send 102 dl=10ms", true},
		{"notready test", true}, // held: it stays queued
		{"wait 20ms", false},    // late
	} {
		s.run(st.line)
		check(st.line, st.want)
	}
}
