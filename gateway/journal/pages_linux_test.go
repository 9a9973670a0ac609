package journal

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mappedRSS is the resident size of the process's mappings of path, from
// /proc/self/smaps (bytes).
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var in bool
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if strings.Contains(fs[0], "-") && len(fs) >= 5 {
			in = len(fs) >= 6 && fs[len(fs)-1] == path
			continue
		}
		if in && fs[0] == "Rss:" && len(fs) >= 2 {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			total += kb << 10
		}
	}
	return total
}

// fillAndRead commits n records and reads them all back through the
// mapping, as the upstream publisher does.
func fillAndRead(t *testing.T, j *Journal, n int) {
	t.Helper()
	for i := range n {
		if _, err := j.Append(benchRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, j)
	read := 0
	if err := j.Scan(0, []Kind{KindDecision}, func(*Record) error { read++; return nil }); err != nil {
		t.Fatal(err)
	}
	if read < n {
		t.Fatalf("read %d of %d records", read, n)
	}
}

// TestReleasePages: pages a reader touched stay mapped (counted in RSS)
// until releasePages drops them; the records read back intact after.
func TestReleasePages(t *testing.T) {
	cfg := testConfig(t)
	cfg.PageReleaseInterval = -1 // by hand only
	j := startJournal(t, cfg)
	fillAndRead(t, j, 20000)
	before := mappedRSS(t, cfg.Path)
	if before < 1<<20 {
		t.Fatalf("mapped RSS after reading %d bytes: want the pages read (over 1 MiB)", before)
	}
	if err := j.releasePages(); err != nil {
		t.Fatal(err)
	}
	after := mappedRSS(t, cfg.Path)
	if after > before/4 {
		t.Fatalf("mapped RSS %d bytes after release, %d before: want most pages dropped", after, before)
	}
	if got := j.Stats().PageReleases; got != 1 {
		t.Fatalf("page releases %d, want 1", got)
	}
	r, err := j.Get(777)
	if err != nil || r.TID != 777 {
		t.Fatalf("record 777 after release: %+v, %v", r, err)
	}
}

// TestReleasePagesInRun: Run releases the pages every PageReleaseInterval.
func TestReleasePagesInRun(t *testing.T) {
	cfg := testConfig(t)
	cfg.PageReleaseInterval = 5 * time.Millisecond
	j := startJournal(t, cfg)
	fillAndRead(t, j, 2000)
	deadline := time.Now().Add(testWait)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for j.Stats().PageReleases < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no page release within the test's wait")
		}
		<-tick.C
	}
}
