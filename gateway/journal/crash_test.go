package journal

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

const crashEnv = "SORTGW_JOURNAL_CRASH_DB"

// TestHelperProcess is the child of TestProcessKill9: with the environment
// variable set it appends item records from several goroutines and prints
// "seq kind tid" for each record once WaitDurable has returned for it. It
// never stops on its own; it exits when its stdin closes (the parent is
// gone) so it cannot outlive a failed test. Without the variable it does
// nothing.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		return
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	j, err := Open(Config{Path: path}, zerolog.Nop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	go j.Run(ctx)
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				tid := uint32(w*10_000_000 + i + 1)
				rs := itemRecords("L", tid, 1, fmt.Sprint("C", tid), t0)
				// Odd items stop at the command: they are open for good.
				if i%2 == 1 {
					rs = rs[:3]
				}
				seqs := make([]uint64, len(rs))
				for k, r := range rs {
					seq, err := j.AppendWait(ctx, r)
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(2)
					}
					seqs[k] = seq
				}
				if err := j.WaitDurable(ctx, seqs[len(seqs)-1]); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				for k, r := range rs {
					fmt.Fprintf(out, "%d %s %d\n", seqs[k], r.Kind, tid)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestProcessKill9: a record whose WaitDurable returned survives SIGKILL
// of the process, and the items the dead process left open are closed as
// lost-at-restart when the journal is reopened.
//
// What it does not show: power loss. After kill -9 the kernel still holds
// the dead process's writes in its page cache and writes them out, so a
// journal that never called fsync passes this test too. That commits are
// synced is asserted separately (TestCommitSyncSettings); that the disk
// keeps what was synced is up to the filesystem and the hardware.
func TestProcessKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
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
	type printed struct {
		kind string
		tid  uint32
	}
	durable := map[uint64]printed{}
	sc := bufio.NewScanner(stdout)
	parse := func(line string) {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Errorf("child printed %q", line)
			return
		}
		seq, err1 := strconv.ParseUint(f[0], 10, 64)
		tid, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			t.Errorf("child printed %q", line)
			return
		}
		durable[seq] = printed{f[1], uint32(tid)}
	}
	// Kill mid-load, as soon as enough records are known durable.
	for len(durable) < 500 && sc.Scan() {
		parse(sc.Text())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	// Lines already in the pipe were printed before the kill: durable too.
	for sc.Scan() {
		parse(sc.Text())
	}
	cmd.Wait()
	if len(durable) < 500 {
		t.Fatalf("child printed only %d records; stderr: %s", len(durable), stderr.String())
	}

	j := openJournal(t, Config{Path: path})
	defer j.Close()
	for seq, p := range durable {
		r, err := j.Get(seq)
		if err != nil {
			t.Fatalf("durable record %d lost: %v", seq, err)
		}
		if r.Kind.String() != p.kind || r.TID != p.tid {
			t.Fatalf("record %d is %s tid %d, child wrote %s tid %d", seq, r.Kind, r.TID, p.kind, p.tid)
		}
	}
	lost := j.LostAtRestart()
	if lost < 1 {
		t.Fatalf("no item closed as lost-at-restart")
	}
	// Every item pass in the journal has exactly one outcome now.
	recs, err := j.Recent(0)
	if err != nil {
		t.Fatal(err)
	}
	type item struct {
		line string
		tid  uint32
		pass uint16
	}
	opened := map[item]bool{}
	outcomes := map[item]int{}
	lostRecs := 0
	for _, r := range recs {
		it := item{r.Line, r.TID, r.Pass}
		switch {
		case r.Kind.opens():
			opened[it] = true
		case r.Kind == KindOutcome:
			outcomes[it]++
			if r.Outcome == OutcomeLostAtRestart {
				lostRecs++
			}
		}
	}
	if len(recs) == j.cfg.QueryLimit {
		t.Fatalf("journal holds more than %d records; the check would be partial", len(recs))
	}
	for it := range opened {
		if outcomes[it] != 1 {
			t.Fatalf("item %+v has %d outcomes", it, outcomes[it])
		}
	}
	if lostRecs != lost {
		t.Fatalf("%d lost-at-restart records, LostAtRestart %d", lostRecs, lost)
	}
	// The odd items the child printed never got an outcome of their own.
	for _, p := range durable {
		if p.kind != "duplicate" || (p.tid-1)%2 != 1 {
			continue
		}
		rs, err := j.ByTID(p.tid)
		if err != nil {
			t.Fatal(err)
		}
		if last := rs[len(rs)-1]; last.Outcome != OutcomeLostAtRestart {
			t.Fatalf("open item tid %d ends with %+v", p.tid, last)
		}
	}
	if items, _ := j.OpenItems(); len(items) != 0 {
		t.Fatalf("%d items still open", len(items))
	}
	t.Logf("%d durable records checked, %d records in the journal, %d items lost at restart", len(durable), len(recs), lost)
}
