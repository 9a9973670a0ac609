package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"sortgw/sortplan"
	"sortgw/sortplan/zcta"
)

const planUsage = `usage:
  sortgw plan check FILE [-chutes N] [-strict]
      validate a plan; print every error and warning and a summary (exit 1 on errors)
  sortgw plan diff OLD NEW [-chutes N]
      list the destinations whose chutes or route change
  sortgw plan explain [-json] [-manifest F] [-chutes N] [-country 840] [-pattern RE]... [-unavailable 12,13] FILE CODE...
      show how the codes of one parcel are read and which row and chute decide it
      (write a GS separator in a CODE as <GS> or \x1d)
  sortgw plan gen [-chutes 256] [-seed N] [-center ZIP] [-name S] [-version N] [-o FILE]
      generate a realistic plan from the embedded ZIP list
  sortgw plan labels [-n 1000] [-seed N] [-plan FILE] [-o FILE] [-manifest FILE]
      generate sample labels (one parcel per line, codes separated by ;) and their manifest
`

func planCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, planUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "check":
		return planCheck(args, stdout, stderr)
	case "diff":
		return planDiff(args, stdout, stderr)
	case "explain":
		return planExplain(args, stdout, stderr)
	case "gen":
		return planGen(args, stdout, stderr)
	case "labels":
		return planLabels(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, planUsage)
		return 0
	}
	fmt.Fprintf(stderr, "sortgw plan: unknown subcommand %q\n%s", sub, planUsage)
	return 2
}

// parseArgs parses flags that may come before, between or after the
// positional arguments ("plan check FILE -chutes 256").
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sortgw plan "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, planUsage) }
	return fs
}

func printDiags(w io.Writer, diags []sortplan.Diagnostic) (errs, warns int) {
	for _, d := range diags {
		fmt.Fprintln(w, d.String())
		if d.Warning {
			warns++
		} else {
			errs++
		}
	}
	return errs, warns
}

func planCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	chutes := fs.Int("chutes", 0, "the sorter's chute count (0: the plan's chute_count row)")
	strict := fs.Bool("strict", false, "treat warnings as errors")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, "sortgw plan check: want one FILE\n", planUsage)
		return 2
	}
	p, diags, err := sortplan.LoadPlan(pos[0], *chutes)
	errs, warns := printDiags(stderr, diags)
	if err != nil {
		if errs == 0 {
			fmt.Fprintf(stderr, "sortgw plan check: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "%s: %d error(s), %d warning(s): plan rejected\n", pos[0], errs, warns)
		}
		return 1
	}
	t, err := sortplan.Compile(p, nil, sortplan.ResolverConfig{})
	if err != nil {
		fmt.Fprintf(stderr, "sortgw plan check: %v\n", err)
		return 1
	}
	s := t.Summary()
	fmt.Fprintf(stdout, "plan %q version %d from %s: OK\n", s.Name, s.Version, s.File)
	if !s.Effective.IsZero() {
		fmt.Fprintf(stdout, "  effective:        %s\n", s.Effective.Format("2006-01-02 15:04 MST"))
	}
	fmt.Fprintf(stdout, "  rules:            %d (%d exact, %d prefixes, %d exception rows)\n", s.Rules, s.Exact, s.Prefixes, len(s.Exceptions))
	fmt.Fprintf(stdout, "  chutes used:      %d of %d\n", s.ChutesUsed, s.ChuteCount)
	fmt.Fprintf(stdout, "  routes:           %d\n", s.Routes)
	printRoutes(stdout, p)
	fmt.Fprintf(stdout, "  exception chutes:")
	for _, name := range []string{"NOREAD", "UNKNOWN", "MULTIREAD", "RECIRC_LIMIT"} {
		fmt.Fprintf(stdout, " %s %s;", name, joinChutes(s.Exceptions[name]))
	}
	fmt.Fprintln(stdout)
	known := zcta.Codes()
	covered := 0
	for _, z := range known {
		if d := t.DecideKey(z, nil); d.Reason != sortplan.ReasonUnknown {
			covered++
		}
	}
	fmt.Fprintf(stdout, "  ZIP coverage:     %d of %d US ZIPs (2021 ZCTA) reach a rule; %d of 100000 five-digit keys\n", covered, len(known), s.ZIP5)
	fmt.Fprintf(stdout, "  warnings:         %d\n", warns)
	if *strict && warns > 0 {
		fmt.Fprintf(stderr, "%s: %d warning(s) with -strict: plan rejected\n", pos[0], warns)
		return 1
	}
	return 0
}

func joinChutes(c []uint16) string {
	if len(c) == 0 {
		return "-"
	}
	s := make([]string, len(c))
	for i, v := range c {
		s[i] = strconv.Itoa(int(v))
	}
	return strings.Join(s, "|")
}

func planDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("diff", stderr)
	chutes := fs.Int("chutes", 0, "the sorter's chute count (0: each plan's chute_count row)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fmt.Fprint(stderr, "sortgw plan diff: want OLD and NEW\n", planUsage)
		return 2
	}
	var plans [2]*sortplan.Plan
	for i, f := range pos {
		p, diags, err := sortplan.LoadPlan(f, *chutes)
		if err != nil {
			printDiags(stderr, diags)
			fmt.Fprintf(stderr, "sortgw plan diff: %s is not a valid plan\n", f)
			return 1
		}
		plans[i] = p
	}
	old, nw := plans[0], plans[1]
	fmt.Fprintf(stdout, "%s version %d -> %s version %d\n", old.Name, old.Version, nw.Name, nw.Version)
	if nw.Version <= old.Version {
		fmt.Fprintf(stdout, "note: the new version is not higher; the gateway refuses to load it over version %d\n", old.Version)
	}
	changes := sortplan.Diff(old, nw)
	for _, c := range changes {
		fmt.Fprintf(stdout, "%-12s %s %s -> %s %s\n", c.Dest, joinChutes(c.OldChutes), routeOrDash(c.OldRoute),
			joinChutes(c.NewChutes), routeOrDash(c.NewRoute))
	}
	fmt.Fprintf(stdout, "%d destination(s) change\n", len(changes))
	printRouteDiff(stdout, old, nw)
	return 0
}

func routeOrDash(r string) string {
	if r == "" {
		return "-"
	}
	return "(" + r + ")"
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// unescapeCode lets a shell user write the GS separator.
func unescapeCode(s string) string {
	r := strings.NewReplacer(`\x1d`, "\x1d", `\x1D`, "\x1d", "<GS>", "\x1d", "{GS}", "\x1d")
	return r.Replace(s)
}

func planExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("explain", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	manifest := fs.String("manifest", "", "manifest CSV (package_id,destination)")
	chutes := fs.Int("chutes", 0, "the sorter's chute count (0: the plan's chute_count row)")
	country := fs.String("country", "840", "the site's ISO 3166 numeric country code")
	unavail := fs.String("unavailable", "", "comma-separated chutes to treat as full or disabled")
	var pats multiFlag
	fs.Var(&pats, "pattern", "regexp with a (?P<dest>...) group (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) < 1 {
		fmt.Fprint(stderr, "sortgw plan explain: want FILE and CODEs\n", planUsage)
		return 2
	}
	p, diags, err := sortplan.LoadPlan(pos[0], *chutes)
	if err != nil {
		printDiags(stderr, diags)
		fmt.Fprintf(stderr, "sortgw plan explain: %s is not a valid plan\n", pos[0])
		return 1
	}
	var m *sortplan.Manifest
	if *manifest != "" {
		if m, err = sortplan.LoadManifest(*manifest); err != nil {
			fmt.Fprintf(stderr, "sortgw plan explain: %v\n", err)
			return 1
		}
	}
	t, err := sortplan.Compile(p, m, sortplan.ResolverConfig{CountryCode: *country, Patterns: pats})
	if err != nil {
		fmt.Fprintf(stderr, "sortgw plan explain: %v\n", err)
		return 1
	}
	var avail sortplan.Availability
	if *unavail != "" {
		for _, f := range strings.Split(*unavail, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > sortplan.MaxChutes {
				fmt.Fprintf(stderr, "sortgw plan explain: -unavailable %q: want chute numbers\n", f)
				return 2
			}
			avail.Set(uint16(n), true)
		}
	}
	codes := make([]string, 0, len(pos)-1)
	for _, c := range pos[1:] {
		codes = append(codes, unescapeCode(c))
	}
	e := t.Explain(codes, &avail)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(e); err != nil {
			fmt.Fprintf(stderr, "sortgw plan explain: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "plan %q version %d\n", e.Plan, e.Version)
	for i, c := range e.Codes {
		shown := strings.ReplaceAll(c.Code, "\x1d", "<GS>")
		switch {
		case c.NoRead:
			fmt.Fprintf(stdout, "code %d %q: no-read\n", i+1, shown)
		case c.Dest != "":
			fmt.Fprintf(stdout, "code %d %q: destination %s (%s)\n", i+1, shown, c.Dest, c.Read)
		default:
			fmt.Fprintf(stdout, "code %d %q: no destination: %s\n", i+1, shown, c.Problem)
		}
	}
	fmt.Fprintf(stdout, "outcome: %s\n", e.Outcome)
	fmt.Fprintf(stdout, "row:     %s at %s:%d, chutes %s", e.Rule, e.RuleFile, e.RuleLine, joinChutes(e.Chutes))
	if e.Route != "" {
		fmt.Fprintf(stdout, ", route %s", e.Route)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "decision: chute %d, reason %d (%s)\n", e.Chute, e.Reason, e.ReasonS)
	return 0
}

func writeOut(path string, stdout io.Writer, data []byte) error {
	if path == "" || path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	return sortplan.WriteFileAtomic(path, data, 0o644)
}

func planGen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("gen", stderr)
	var o sortplan.GenerateOptions
	fs.IntVar(&o.Chutes, "chutes", 256, "sorter chute count")
	fs.Int64Var(&o.Seed, "seed", 1, "seed: picks the sort center and the linehaul lanes")
	fs.StringVar(&o.Center, "center", "", "ZIP5 of the sort center (default: picked by -seed)")
	fs.StringVar(&o.Name, "name", "", "plan_name")
	fs.Uint64Var(&o.Version, "version", 1, "plan_version")
	fs.IntVar(&o.ZIPsPerRoute, "zips-per-route", 8, "local ZIPs per delivery route")
	out := fs.String("o", "", "output file (default stdout)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fmt.Fprint(stderr, "sortgw plan gen: no positional arguments\n", planUsage)
		return 2
	}
	b, err := sortplan.Generate(o)
	if err != nil {
		fmt.Fprintf(stderr, "sortgw plan gen: %v\n", err)
		return 1
	}
	if err := writeOut(*out, stdout, b); err != nil {
		fmt.Fprintf(stderr, "sortgw plan gen: %v\n", err)
		return 1
	}
	return 0
}

func planLabels(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("labels", stderr)
	n := fs.Int("n", 1000, "number of parcels")
	seed := fs.Int64("seed", 1, "seed")
	planFile := fs.String("plan", "", "address labels to the ZIPs this plan has exact rows for (default: every US ZIP)")
	out := fs.String("o", "", "labels file (default stdout)")
	man := fs.String("manifest", "", "write the manifest CSV here")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fmt.Fprint(stderr, "sortgw plan labels: no positional arguments\n", planUsage)
		return 2
	}
	opts := sortplan.SampleOptions{N: *n, Seed: *seed}
	if *planFile != "" {
		p, diags, err := sortplan.LoadPlan(*planFile, 0)
		if err != nil {
			printDiags(stderr, diags)
			return 1
		}
		for _, r := range p.Rules {
			if r.Kind == sortplan.RuleExact && len(r.Key) == 5 {
				opts.Destinations = append(opts.Destinations, r.Key)
			}
		}
		sort.Strings(opts.Destinations)
		if len(opts.Destinations) == 0 {
			fmt.Fprintf(stderr, "sortgw plan labels: %s has no 5-digit exact rows\n", *planFile)
			return 1
		}
	}
	s := sortplan.SampleLabels(opts)
	var b strings.Builder
	w := bufio.NewWriter(&b)
	for _, l := range s.Labels {
		fmt.Fprintln(w, strings.Join(l.Codes, ";"))
	}
	if err := errors.Join(w.Flush(), writeOut(*out, stdout, []byte(b.String()))); err != nil {
		fmt.Fprintf(stderr, "sortgw plan labels: %v\n", err)
		return 1
	}
	if *man != "" {
		if err := sortplan.WriteFileAtomic(*man, s.Manifest, 0o644); err != nil {
			fmt.Fprintf(stderr, "sortgw plan labels: %v\n", err)
			return 1
		}
	}
	return 0
}
