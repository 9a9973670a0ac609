package sortplan

import (
	"fmt"
	"sort"
)

// CodeExplanation says what one code told the resolver.
type CodeExplanation struct {
	Code      string `json:"code"`
	NoRead    bool   `json:"noread,omitempty"`
	Read      string `json:"read,omitempty"` // how the destination was read
	Dest      string `json:"dest,omitempty"`
	PackageID string `json:"package_id,omitempty"`
	Problem   string `json:"problem,omitempty"` // why the code gave no destination
}

// Explanation is the whole story of one decision, for `sortgw plan
// explain` and the status page. Building it allocates; Decide does not.
type Explanation struct {
	Plan     string            `json:"plan"`
	Version  uint64            `json:"version"`
	Codes    []CodeExplanation `json:"codes"`
	Outcome  string            `json:"outcome"`
	Dest     string            `json:"dest,omitempty"`
	Rule     string            `json:"rule"` // pattern of the plan row used
	RuleFile string            `json:"rule_file"`
	RuleLine int               `json:"rule_line"`
	Chutes   []uint16          `json:"chutes"`
	Chute    uint16            `json:"chute"`
	Reason   Reason            `json:"reason"`
	ReasonS  string            `json:"reason_name"`
	Route    string            `json:"route,omitempty"`
}

// Explain decides like Decide and says why, code by code.
func (t *Table) Explain(codes []string, avail *Availability) Explanation {
	e := Explanation{Plan: t.name, Version: t.version}
	var found []string
	for _, c := range codes {
		ce := CodeExplanation{Code: c}
		if c == "" || c == t.noRead {
			ce.NoRead = true
			e.Codes = append(e.Codes, ce)
			continue
		}
		r := t.resolve(c)
		ce.PackageID = r.id
		if r.ok {
			ce.Dest = Decision{Dest: r.dest.key, Country: r.dest.cc}.DestKey()
			ce.Read = r.src.String()
			if r.src == srcPattern {
				ce.Read = fmt.Sprintf("configured pattern %d", r.pattern+1)
			}
			found = append(found, ce.Dest)
		} else {
			ce.Problem = t.problem(r, c)
		}
		e.Codes = append(e.Codes, ce)
	}
	d := t.Decide(codes, avail)
	e.Dest = d.DestKey()
	switch d.Reason {
	case ReasonNoRead:
		e.Outcome = "no code read"
	case ReasonMultiRead:
		e.Outcome = fmt.Sprintf("codes disagree on the destination: %v", found)
	case ReasonUnknown:
		if d.Dest == "" {
			e.Outcome = "no destination in any code"
		} else {
			e.Outcome = fmt.Sprintf("no plan row for destination %s", e.Dest)
		}
	default:
		e.Outcome = fmt.Sprintf("destination %s", e.Dest)
	}
	for i := range t.rules {
		if int(t.rules[i].line) == d.Line {
			r := t.rules[i]
			e.Rule = t.plan.Rules[i].Pattern
			e.Chutes = append([]uint16{}, t.chutes(&r)...)
			break
		}
	}
	e.RuleFile, e.RuleLine = t.plan.File, d.Line
	e.Chute, e.Reason, e.ReasonS, e.Route = d.Chute, d.Reason, d.Reason.String(), d.Route
	return e
}

func (t *Table) problem(r resolution, code string) string {
	switch r.fail {
	case failGS1:
		ai := ""
		if r.ai != "" {
			ai = " in AI " + r.ai
		}
		if r.gs1 == gs1UnknownAI && r.pos < len(code) {
			// Quote what stands where an AI should: the 2 to 4 digits that
			// match no AI of the GS1 table (docs/labels.md).
			e := r.pos
			for e < len(code) && e < r.pos+4 && code[e] != ')' && code[e] != gs {
				e++
			}
			ai = fmt.Sprintf(" %q", code[r.pos:e])
		}
		return fmt.Sprintf("GS1 syntax: %s%s at byte %d: strict reading gives no destination", r.gs1, ai, r.pos)
	case failUPSCheck:
		return "UPS 1Z number with a bad check digit"
	case failIMpbCheck:
		return "USPS IMpb number with a bad check digit"
	case failUPSFormat:
		return fmt.Sprintf("UPS 1Z number of %d characters: must be 18 (1Z, 15 characters, check digit)", len(r.id))
	case failTBAFormat:
		return fmt.Sprintf("TBA id with %d digits: must be TBA and 12 digits", len(r.id)-3)
	case failNoManifest:
		return fmt.Sprintf("%s needs a manifest and none is loaded", r.src)
	case failNotInManifest:
		return fmt.Sprintf("package id %s not in the manifest (%s)", r.id, r.src)
	}
	return "no destination in this code (no AI 420/421/403, no package id in the manifest, no pattern matched)"
}

// Change is one destination whose chutes or route differ between two plans.
type Change struct {
	Dest      string   `json:"dest"` // pattern as written, e.g. 90210, 902*, NOREAD
	OldChutes []uint16 `json:"old_chutes"`
	NewChutes []uint16 `json:"new_chutes"`
	OldRoute  string   `json:"old_route"`
	NewRoute  string   `json:"new_route"`
	OldLine   int      `json:"old_line"` // 0: the old plan reaches it through UNKNOWN or no row
	NewLine   int      `json:"new_line"`
}

// Diff lists the patterns of either plan whose effective chutes or route
// change: a pattern missing from one plan is compared with what that plan
// would do with it (its longest shorter prefix, or UNKNOWN).
func Diff(old, new *Plan) []Change {
	oi, ni := newPlanIndex(old), newPlanIndex(new)
	pats := map[string]Rule{}
	for _, r := range old.Rules {
		pats[r.Pattern] = r
	}
	for _, r := range new.Rules {
		pats[r.Pattern] = r
	}
	keys := make([]string, 0, len(pats))
	for k := range pats {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := pats[keys[i]], pats[keys[j]]
		ea, eb := a.Kind >= RuleNoRead, b.Kind >= RuleNoRead
		if ea != eb {
			return ea
		}
		return keys[i] < keys[j]
	})
	var out []Change
	for _, k := range keys {
		r := pats[k]
		o := effective(old, oi, r)
		n := effective(new, ni, r)
		if equalChutes(ruleChutes(o), ruleChutes(n)) && ruleRoute(o) == ruleRoute(n) {
			continue
		}
		out = append(out, Change{Dest: k, OldChutes: ruleChutes(o), NewChutes: ruleChutes(n),
			OldRoute: ruleRoute(o), NewRoute: ruleRoute(n), OldLine: ruleLine(o), NewLine: ruleLine(n)})
	}
	return out
}

func effective(p *Plan, ix *planIndex, r Rule) *Rule {
	switch r.Kind {
	case RuleExact:
		return p.lookupRule(ix, r.Key)
	case RulePrefix:
		if i, ok := ix.prefix[r.Key]; ok {
			return &p.Rules[i]
		}
		if i := ix.match(r.Key, true); i >= 0 {
			return &p.Rules[i]
		}
		return p.Exception(RuleUnknown)
	default:
		return p.Exception(r.Kind)
	}
}

func ruleChutes(r *Rule) []uint16 {
	if r == nil {
		return nil
	}
	return r.Chutes
}

func ruleRoute(r *Rule) string {
	if r == nil {
		return ""
	}
	return r.Route
}

func ruleLine(r *Rule) int {
	if r == nil {
		return 0
	}
	return r.Line
}
