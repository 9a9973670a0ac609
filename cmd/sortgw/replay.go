package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"sortgw/cmd/internal/replay"
	"sortgw/devices"
	"sortgw/sortplan"
)

// cmdReplay is `sortgw replay -journal FILE|DIR -plan NEW.csv`: it
// re-decides the journal's passes against the candidate plan and prints
// what would change (text, -json, and -html for a page with charts).
// Exit status 0 on success, 1 on an error reading the journal or plan,
// 2 on a usage error.
func cmdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jpath := fs.String("journal", "", "journal file, or the folder holding journal.db (read-only; copy a live gateway's file first)")
	planPath := fs.String("plan", "", "candidate plan file (CSV)")
	line := fs.String("line", "", "replay only this line's passes (default every line)")
	fromS := fs.String("from", "", "first time to replay, RFC 3339 (default the journal's first)")
	toS := fs.String("to", "", "end of the range, RFC 3339, exclusive (default the journal's end)")
	unavail := fs.String("unavailable", "", "chutes to take out, e.g. 12,13 (as a technician would disable them)")
	container := fs.Int("container-size", 0, "items per container for the route counts (default the mean of the containers closed in the range, else 100)")
	chutes := fs.Int("chutes", 0, "the sorter's chute count, if the plan has no chute_count row")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	htmlOut := fs.String("html", "", "also write a self-contained HTML report with charts to this file")
	top := fs.Int("top", 20, "chute changes listed in the text output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *jpath == "" || *planPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: sortgw replay -journal FILE|DIR -plan NEW.csv [-from T] [-to T] [-unavailable 12,13] [-json] [-html report.html]")
		return 2
	}
	from, err1 := parseTime(*fromS)
	to, err2 := parseTime(*toS)
	out, err3 := parseChutes(*unavail)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			fmt.Fprintln(stderr, "replay:", err)
			return 2
		}
	}
	plan, diags, err := sortplan.LoadPlan(*planPath, *chutes)
	for _, d := range diags {
		fmt.Fprintln(stderr, d)
	}
	if err == nil && plan.ChuteCount > devices.MaxChutes {
		err = fmt.Errorf("%s: %d chutes, at most %d", *planPath, plan.ChuteCount, devices.MaxChutes)
	}
	var tab *sortplan.Table
	if err == nil {
		tab, err = sortplan.Compile(plan, nil, sortplan.ResolverConfig{})
	}
	if err != nil {
		fmt.Fprintln(stderr, "replay:", err)
		return 1
	}
	r := replay.New(tab, out)
	scanned, err := replay.FromJournal(ctx, *jpath, *line, from, to, r)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	size := *container
	if size <= 0 {
		size = scanned.MeanContainer()
	}
	if size <= 0 {
		size = 100
	}
	res := r.Result(size)
	if *htmlOut != "" {
		if err := writeFile(*htmlOut, res.WriteHTML); err != nil {
			fmt.Fprintln(stderr, "replay:", err)
			return 1
		}
	}
	if *asJSON {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout, *top)
	}
	if err != nil {
		fmt.Fprintln(stderr, "replay:", err)
		return 1
	}
	return 0
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("time %q: want RFC 3339, e.g. 2026-12-01T06:00:00Z", s)
	}
	return t, nil
}

func parseChutes(s string) ([]uint16, error) {
	var out []uint16
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 || n > devices.MaxChutes {
			return nil, fmt.Errorf("unavailable chute %q: want 1..%d", f, devices.MaxChutes)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
