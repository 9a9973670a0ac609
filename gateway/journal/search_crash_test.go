package journal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const searchCrashEnv = "SORTGW_JOURNAL_SEARCH_CRASH_DB"

// TestHelperSearchProcess is the child of TestSearchIndexKill9: with the
// environment variable set it appends item passes with labels of every
// kind from eight goroutines while retention prunes the oldest (a small
// MaxBytes, pruned every few milliseconds), and prints "seq tid" for each
// decision once it is durable. It exits when its stdin closes.
func TestHelperSearchProcess(t *testing.T) {
	path := os.Getenv(searchCrashEnv)
	if path == "" {
		return
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	j, err := Open(Config{Path: path, MaxBytes: 128 << 10, PruneInterval: 2 * time.Millisecond, PruneBatch: 50}, zerolog.Nop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	go j.Run(ctx)
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				tid := uint32(w*10_000_000 + i + 1)
				o := OutcomeDiverted
				switch i % 3 {
				case 1:
					o = OutcomeRecirculatedFull // an exception
				case 2:
					o = OutcomeNone // left open
				}
				rs := passRecords("L", tid, 1, time.Now(), o)
				var seqs []uint64
				for _, r := range rs {
					seq, err := j.AppendWait(ctx, r)
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(2)
					}
					seqs = append(seqs, seq)
				}
				if err := j.WaitDurable(ctx, seqs[len(seqs)-1]); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d\n", seqs[0], tid)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestSearchIndexKill9: a writer killed (SIGKILL) while it appends and
// prunes leaves the search index consistent with the records: every
// index entry points at a record that has that key, every record has all
// its entries, every durable decision still in the journal is found by
// its package id, its ZIP and its TID, and one pruned is found by none.
func TestSearchIndexKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a writer process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSearchProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), searchCrashEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	durable := map[uint64]uint32{}
	sc := bufio.NewScanner(stdout)
	parse := func(line string) {
		f := strings.Fields(line + " x")
		seq, err1 := strconv.ParseUint(f[0], 10, 64)
		tid, err2 := strconv.ParseUint(f[1], 10, 32)
		if len(f) != 3 || err1 != nil || err2 != nil {
			t.Errorf("child printed %q", line)
			return
		}
		durable[seq] = uint32(tid)
	}
	// Enough passes that retention has pruned some before the kill.
	for len(durable) < 1500 && sc.Scan() {
		parse(sc.Text())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		parse(sc.Text())
	}
	cmd.Wait()
	if len(durable) < 1500 {
		t.Fatalf("child printed only %d passes; stderr: %s", len(durable), stderr.String())
	}

	j := openJournal(t, Config{Path: path, MaxBytes: -1})
	defer j.Close()
	checkIndexes(t, j)
	kept, pruned := 0, 0
	for seq, tid := range durable {
		_, err := j.Get(seq)
		gone := errors.Is(err, ErrNotFound)
		if err != nil && !gone {
			t.Fatal(err)
		}
		l := labelFor(tid)
		for _, q := range []string{l.id, l.code, fmt.Sprint(tid)} {
			p := mustItems(t, j, ItemQuery{Q: q, Limit: 1000})
			found := false
			for _, r := range p.Passes {
				found = found || r.Seq == seq
			}
			if found == gone {
				t.Fatalf("decision %d (tid %d, pruned %v): found by %q %v", seq, tid, gone, q, found)
			}
		}
		if gone {
			pruned++
		} else {
			kept++
		}
	}
	if pruned == 0 || kept == 0 {
		t.Fatalf("%d durable passes kept, %d pruned: the test wants both", kept, pruned)
	}
	t.Logf("%d durable passes checked: %d kept and found, %d pruned and not found; %d lost at restart",
		len(durable), kept, pruned, j.LostAtRestart())
}
