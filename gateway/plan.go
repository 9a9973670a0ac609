package gateway

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// PlanCause says who asked for a plan load. The journal's plan-installed
// and plan-refused records carry it (Record.Cause).
type PlanCause string

// Plan causes.
const (
	// PlanAtStart: the load before the line first runs.
	PlanAtStart PlanCause = "start"
	// PlanBySIGHUP: `systemctl reload` (Gateway.Reload).
	PlanBySIGHUP PlanCause = "sighup"
	// PlanByButton: the status page's Reload plan button or its API.
	PlanByButton PlanCause = "reload-button"
	// PlanByCall: InstallPlan or ReloadPlan called by code while the line
	// runs.
	PlanByCall PlanCause = "call"
)

// maxDetail bounds the text a journal record keeps (a plan with a
// thousand bad rows has a long error).
const maxDetail = 4096

func clip(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	n := maxDetail
	for n > 0 && !utf8.RuneStart(s[n]) {
		n-- // cut between runes, not inside one
	}
	return fmt.Sprintf("%s… (%d more bytes)", s[:n], len(s)-n)
}

// implicitCause is the cause of a load that did not name one: before the
// line first ran it is the start, afterwards a call.
func (l *Line) implicitCause() PlanCause {
	if l.ran.Load() {
		return PlanByCall
	}
	return PlanAtStart
}

// PlanInfo describes the active plan and the last reload attempt.
type PlanInfo struct {
	Name      string            `json:"name"`
	Version   uint64            `json:"version"`
	Effective time.Time         `json:"effective,omitzero"`
	LoadedAt  time.Time         `json:"loaded_at,omitzero"`
	LastAt    time.Time         `json:"last_reload_at,omitzero"`
	LastError string            `json:"last_reload_error,omitempty"`
	Diff      []sortplan.Change `json:"diff"`
}

// InstallPlan compiles p (with the optional manifest m) and swaps it in
// atomically. On any error the old plan stays active. It returns the
// changes against the previous plan. The journal records the install or
// the refusal, with the cause "start" before the line first ran and
// "call" afterwards.
func (l *Line) InstallPlan(p *sortplan.Plan, m *sortplan.Manifest) ([]sortplan.Change, error) {
	return l.installPlan(p, m, l.implicitCause())
}

func (l *Line) installPlan(p *sortplan.Plan, m *sortplan.Manifest, by PlanCause) ([]sortplan.Change, error) {
	t, err := sortplan.Compile(p, m, l.cfg.Resolver)
	if err != nil {
		return nil, l.reloadFailed(p, by, fmt.Errorf("line %s: compile plan %s: %w", l.cfg.Name, p.Name, err))
	}
	l.planMu.Lock()
	defer l.planMu.Unlock()
	if err := l.plans.Store(t); err != nil {
		if cur := l.plans.Load(); errors.Is(err, sortplan.ErrVersionNotNewer) && cur != nil && cur.Version() == t.Version() {
			// The same plan version again: a reload for the day's manifest.
			// It goes in only if the plan's rows are unchanged; a changed
			// plan must raise plan_version, so that every decision names
			// the rules it was made under.
			err = l.plans.ReplaceManifest(t)
			if err == nil {
				l.plan, l.lastDiff, l.lastErr, l.lastAt = p, nil, "", time.Now()
				l.log.Info().Str("plan", t.Name()).Uint64("version", t.Version()).Msg("plan unchanged; manifest reloaded")
				l.journalPlan(p, m, by, l.lastAt, "plan unchanged, manifest reloaded")
				return nil, nil
			}
		}
		err = fmt.Errorf("line %s: install plan %s version %d: %w", l.cfg.Name, p.Name, p.Version, err)
		l.lastErr, l.lastAt = err.Error(), time.Now()
		l.met.planReload(false, l.lastAt)
		l.journalRefused(p, by, l.lastAt, err)
		return nil, err
	}
	var diff []sortplan.Change
	if l.plan != nil {
		diff = sortplan.Diff(l.plan, p)
	}
	l.plan, l.planAt = p, time.Now()
	l.chuteRoutes.Store(chuteRoutes(p, l.cfg.Chutes))
	l.routes.Store(routeSpecs(p))
	l.lastDiff, l.lastErr, l.lastAt = diff, "", l.planAt
	l.plc.SetPlanVersion(uint16(t.Version()))
	if !l.draining.Load() && !l.held.Load() {
		l.plc.SetHostState(devices.HostReady)
	}
	l.met.planVersion.Set(float64(t.Version()))
	l.met.planReload(true, l.planAt)
	l.log.Info().Str("plan", t.Name()).Uint64("version", t.Version()).Int("changes", len(diff)).Msg("plan installed")
	l.journalPlan(p, m, by, l.planAt, fmt.Sprintf("%d destinations changed", len(diff)))
	return diff, nil
}

// journalPlan records an installed plan.
func (l *Line) journalPlan(p *sortplan.Plan, m *sortplan.Manifest, by PlanCause, at time.Time, what string) {
	d := fmt.Sprintf("plan %q version %d from %s", p.Name, p.Version, p.File)
	if m != nil {
		d += fmt.Sprintf(", manifest %s (%d ids)", m.Name(), m.Len())
	}
	l.append(journal.Record{Time: at, Line: l.cfg.Name, Kind: journal.KindPlanInstalled, PlanVersion: p.Version,
		Count: uint32(len(p.Rules)), Detail: clip(d + "; " + what), Cause: string(by)})
}

// journalRefused records a plan load that failed; p is nil when the plan
// did not parse.
func (l *Line) journalRefused(p *sortplan.Plan, by PlanCause, at time.Time, err error) {
	r := journal.Record{Time: at, Line: l.cfg.Name, Kind: journal.KindPlanRefused, Detail: clip(err.Error()), Cause: string(by)}
	if p != nil {
		r.PlanVersion, r.Count = p.Version, uint32(len(p.Rules))
	}
	l.append(r)
}

// reloadFailed notes and journals a plan load that failed before the
// install (p is nil when the plan did not parse).
func (l *Line) reloadFailed(p *sortplan.Plan, by PlanCause, err error) error {
	l.planMu.Lock()
	l.lastErr, l.lastAt = err.Error(), time.Now()
	at := l.lastAt
	l.planMu.Unlock()
	l.met.planReload(false, at)
	l.journalRefused(p, by, at, err)
	return err
}

// ErrNoPlanFile: ReloadPlan on a line configured without a plan file.
var ErrNoPlanFile = errors.New("no plan file configured")

// ReloadPlan reads the plan and manifest files again, validates them in
// full and swaps the new plan in; on error the old plan stays. The
// journal records the cause "start" before the line first ran and "call"
// afterwards; ReloadPlanFor names the cause.
func (l *Line) ReloadPlan() ([]sortplan.Change, error) {
	return l.ReloadPlanFor(l.implicitCause())
}

// ReloadPlanFor is ReloadPlan on behalf of by, which the journal records.
func (l *Line) ReloadPlanFor(by PlanCause) ([]sortplan.Change, error) {
	if l.cfg.PlanFile == "" {
		return nil, l.reloadFailed(nil, by, fmt.Errorf("line %s: %w", l.cfg.Name, ErrNoPlanFile))
	}
	p, _, err := sortplan.LoadPlan(l.cfg.PlanFile, l.cfg.Chutes)
	if err != nil {
		return nil, l.reloadFailed(nil, by, fmt.Errorf("line %s: %w", l.cfg.Name, err))
	}
	var m *sortplan.Manifest
	if l.cfg.ManifestFile != "" {
		m, err = sortplan.LoadManifestLimit(l.cfg.ManifestFile, l.cfg.manifestLimit())
		if err != nil {
			return nil, l.reloadFailed(p, by, fmt.Errorf("line %s: %w", l.cfg.Name, err))
		}
	}
	return l.installPlan(p, m, by)
}

// PlanInfo returns the active plan's identity and the last reload result.
func (l *Line) PlanInfo() PlanInfo {
	l.planMu.Lock()
	defer l.planMu.Unlock()
	pi := PlanInfo{LoadedAt: l.planAt, LastAt: l.lastAt, LastError: l.lastErr, Diff: l.lastDiff}
	if l.plan != nil {
		pi.Name, pi.Version, pi.Effective = l.plan.Name, l.plan.Version, l.plan.Effective
	}
	return pi
}

// chuteRoutes names the route each chute feeds under plan p: the route of
// the first rule that has the chute as its primary, else as an alternate.
func chuteRoutes(p *sortplan.Plan, chutes int) *[]string {
	rs := make([]string, chutes+1)
	for pass := 0; pass < 2; pass++ {
		for _, r := range p.Rules {
			for i, c := range r.Chutes {
				if (pass == 0) != (i == 0) || int(c) > chutes || rs[c] != "" {
					continue
				}
				rs[c] = r.Route
			}
		}
	}
	return &rs
}
