package gateway

import (
	"errors"
	"fmt"
	"time"

	"sortgw/devices"
	"sortgw/sortplan"
)

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
// changes against the previous plan.
func (l *Line) InstallPlan(p *sortplan.Plan, m *sortplan.Manifest) ([]sortplan.Change, error) {
	t, err := sortplan.Compile(p, m, l.cfg.Resolver)
	if err != nil {
		return nil, l.reloadFailed(fmt.Errorf("line %s: compile plan %s: %w", l.cfg.Name, p.Name, err))
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
				return nil, nil
			}
		}
		l.lastErr, l.lastAt = err.Error(), time.Now()
		return nil, fmt.Errorf("line %s: install plan %s version %d: %w", l.cfg.Name, p.Name, p.Version, err)
	}
	var diff []sortplan.Change
	if l.plan != nil {
		diff = sortplan.Diff(l.plan, p)
	}
	l.plan, l.planAt = p, time.Now()
	l.chuteRoutes.Store(chuteRoutes(p, l.cfg.Chutes))
	l.lastDiff, l.lastErr, l.lastAt = diff, "", l.planAt
	l.plc.SetPlanVersion(uint16(t.Version()))
	if !l.draining.Load() {
		l.plc.SetHostState(devices.HostReady)
	}
	l.met.planVersion.Set(float64(t.Version()))
	l.log.Info().Str("plan", t.Name()).Uint64("version", t.Version()).Int("changes", len(diff)).Msg("plan installed")
	return diff, nil
}

func (l *Line) reloadFailed(err error) error {
	l.planMu.Lock()
	l.lastErr, l.lastAt = err.Error(), time.Now()
	l.planMu.Unlock()
	return err
}

// ErrNoPlanFile: ReloadPlan on a line configured without a plan file.
var ErrNoPlanFile = errors.New("no plan file configured")

// ReloadPlan reads the plan and manifest files again, validates them in
// full and swaps the new plan in; on error the old plan stays.
func (l *Line) ReloadPlan() ([]sortplan.Change, error) {
	if l.cfg.PlanFile == "" {
		return nil, l.reloadFailed(fmt.Errorf("line %s: %w", l.cfg.Name, ErrNoPlanFile))
	}
	p, _, err := sortplan.LoadPlan(l.cfg.PlanFile, l.cfg.Chutes)
	if err != nil {
		return nil, l.reloadFailed(fmt.Errorf("line %s: %w", l.cfg.Name, err))
	}
	var m *sortplan.Manifest
	if l.cfg.ManifestFile != "" {
		m, err = sortplan.LoadManifest(l.cfg.ManifestFile)
		if err != nil {
			return nil, l.reloadFailed(fmt.Errorf("line %s: %w", l.cfg.Name, err))
		}
	}
	return l.InstallPlan(p, m)
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
