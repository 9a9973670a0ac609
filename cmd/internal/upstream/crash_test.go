package upstream

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
	gwup "sortgw/gateway/upstream"
)

const (
	crashJournalEnv = "SORTGW_UPSTREAM_CRASH_JOURNAL"
	crashURLEnv     = "SORTGW_UPSTREAM_CRASH_URL"
)

// crashConfig publishes in small rounds and writes the cursor once, at
// the first round: a crash then re-publishes nearly everything it had
// sent, which the stream's de-duplication must absorb.
func crashConfig(url string) Config {
	return Config{
		Config: gwup.Config{Site: "s1", Batch: 50, CursorEvery: time.Hour},
		NATS:   NATS{URL: url},
	}
}

// TestHelperPublisher is the child of TestKill9MidPublish: with the
// environment set it publishes the journal to the URL until killed. It
// exits when its stdin closes, so it cannot outlive a failed test.
func TestHelperPublisher(t *testing.T) {
	path := os.Getenv(crashJournalEnv)
	if path == "" {
		return
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	j, err := journal.Open(journal.Config{Path: path}, zerolog.Nop())
	if err != nil {
		os.Exit(2)
	}
	go j.Run(context.Background())
	cfg := crashConfig(os.Getenv(crashURLEnv))
	if err := cfg.Validate(); err != nil {
		os.Exit(2)
	}
	r, err := New(cfg, j, zerolog.Nop())
	if err != nil {
		os.Exit(2)
	}
	r.Run(context.Background())
	select {}
}

// TestKill9MidPublish: the gateway is killed (SIGKILL) while it publishes;
// the next start publishes the rest from the journal's cursor: no gap,
// and no duplicate in the stream after de-duplication.
func TestKill9MidPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 of a child process: not in -short")
	}
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := journal.Open(journal.Config{Path: path}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	const n = 5000
	want := appendItems(t, j, "L1", 1, n)
	cancel()
	<-done
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	hub := startHub(t, Embedded{})
	_, js := jsOn(t, hub.ClientURL(), "")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPublisher$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashJournalEnv+"="+path, crashURLEnv+"="+hub.ClientURL())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	waitFor(t, 60*time.Second, "the child to publish a third", func() bool { return streamMsgs(js, "SORTGW") >= n/3 })
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	atKill := streamMsgs(js, "SORTGW")
	if atKill >= n {
		t.Fatalf("the child published all %d before the kill: nothing tested", n)
	}

	j2 := startJournal(t, path)
	r, _ := runner(t, crashConfig(hub.ClientURL()), j2)
	waitFor(t, 60*time.Second, "every outcome in the stream", func() bool {
		return r.Publisher().Stats().Backlog == 0 && streamMsgs(js, "SORTGW") >= n
	})
	checkExactlyOnce(t, readAll(t, js, "SORTGW"), want)
	// The restart re-sent what the dead process had sent past its cursor:
	// the stream's de-duplication, not luck, kept them single.
	if pub := r.Publisher().Stats().Published; pub <= uint64(n-atKill) {
		t.Fatalf("restart published %d, at most the %d not yet in the stream: nothing was re-published", pub, n-atKill)
	}
	t.Logf("stream held %d of %d at the kill; the restart published %d (the rest de-duplicated)", atKill, n, r.Publisher().Stats().Published)
}
