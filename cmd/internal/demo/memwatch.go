package demo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"time"
)

// MemSample is one reading of the process's memory: the resident set the
// kernel counts (VmRSS, what the 64 MB goal is about) and the Go runtime's
// view of it, so that growth can be told apart as heap, the runtime's own
// or memory outside Go (bbolt's mmap pages are counted in RSS, not heap).
type MemSample struct {
	At        time.Duration `json:"at"`         // since the watch started
	RSS       uint64        `json:"rss"`        // VmRSS, bytes
	RSSFile   uint64        `json:"rss_file"`   // of which file-backed (the binary's pages, bbolt's mmap)
	HeapLive  uint64        `json:"heap_live"`  // bytes in live and not yet swept heap objects
	GoTotal   uint64        `json:"go_total"`   // all memory the Go runtime has mapped (released excluded)
	Goroutine int           `json:"goroutines"` // goroutine count
	Items     uint64        `json:"items"`      // items inducted so far
}

// MemVerdict sums a series up: its largest RSS and how fast RSS still grows
// over the second half (the first half is warm-up: tables filling to their
// bounds, the heap finding its size).
type MemVerdict struct {
	Samples        int     `json:"samples"`
	MaxRSS         uint64  `json:"max_rss"`
	SlopeMBPerHour float64 `json:"slope_mb_per_hour"` // least squares over the second half
}

func (v MemVerdict) String() string {
	return fmt.Sprintf("%d samples, max RSS %.1f MB, second-half slope %+.2f MB/hour",
		v.Samples, mb(v.MaxRSS), v.SlopeMBPerHour)
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// String is one line of the series, for a log or a terminal.
func (s MemSample) String() string {
	return fmt.Sprintf("t=%-7s rss=%6.1fMB (file %5.1fMB) heap=%6.1fMB go=%6.1fMB goroutines=%d items=%d",
		s.At.Round(time.Second), mb(s.RSS), mb(s.RSSFile), mb(s.HeapLive), mb(s.GoTotal), s.Goroutine, s.Items)
}

// Verdict sums up a series (see MemVerdict).
func Verdict(series []MemSample) MemVerdict {
	v := MemVerdict{Samples: len(series)}
	for _, s := range series {
		v.MaxRSS = max(v.MaxRSS, s.RSS)
	}
	half := series[len(series)/2:]
	if len(half) < 2 {
		return v
	}
	var sx, sy, sxx, sxy float64
	for _, s := range half {
		x, y := s.At.Hours(), mb(s.RSS)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(half))
	if d := n*sxx - sx*sx; d != 0 {
		v.SlopeMBPerHour = (n*sxy - sx*sy) / d
	}
	return v
}

// rss reads VmRSS and RssFile from /proc/self/status; 0 where there is
// none (not Linux).
func rss() (total, file uint64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(string(f[1]), 10, 64)
		switch string(f[0]) {
		case "VmRSS:":
			total = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return total, file
}

// readMem takes one sample; at is the time since the watch started.
func readMem(at time.Duration, items uint64) MemSample {
	ms := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(ms)
	val := func(i int) uint64 {
		if ms[i].Value.Kind() == metrics.KindUint64 {
			return ms[i].Value.Uint64()
		}
		return 0
	}
	r, rf := rss()
	return MemSample{At: at, RSS: r, RSSFile: rf, HeapLive: val(0), GoTotal: val(1) - val(2),
		Goroutine: runtime.NumGoroutine(), Items: items}
}

// WatchMemory samples the process's memory every `every` until ctx is done,
// calling sample with each reading (the first at once) and returning the
// series. With profileDir set it also writes a heap profile per sample
// (heap-000.pb.gz, ...; after a GC, so that two can be diffed with
// `go tool pprof -base`).
func (d *Demo) WatchMemory(ctx context.Context, every time.Duration, profileDir string, sample func(MemSample)) ([]MemSample, error) {
	if every <= 0 {
		return nil, fmt.Errorf("demo: memory sampling interval %v: want a positive duration", every)
	}
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return nil, fmt.Errorf("demo: heap profile folder: %w", err)
		}
	}
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var series []MemSample
	for i := 0; ; i++ {
		if profileDir != "" {
			if err := writeHeapProfile(filepath.Join(profileDir, fmt.Sprintf("heap-%03d.pb.gz", i))); err != nil {
				return series, err
			}
		}
		s := readMem(time.Since(start), d.sim.Inducted())
		series = append(series, s)
		if sample != nil {
			sample(s)
		}
		select {
		case <-ctx.Done():
			return series, nil
		case <-tick.C:
		}
	}
}

func writeHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("demo: heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("demo: heap profile %s: %w", path, err)
	}
	return f.Close()
}
