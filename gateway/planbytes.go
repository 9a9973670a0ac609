package gateway

import (
	"bytes"
	"fmt"

	"sortgw/sortplan"
)

// PlanByUpstream: a plan offered from the center through the upstream
// bus (cmd/internal/upstream watches an Object Store bucket).
const PlanByUpstream PlanCause = "upstream"

// InstallPlanBytes validates a plan given as bytes (name, e.g. the object
// it came from, is what errors and the journal call it) exactly as a
// SIGHUP reload validates the plan file, with the line's manifest file
// read again, and installs it under the same version rules. On any error
// the running plan stays, the refusal is journaled and the plan-refused
// alarm rises, as for a reload.
func (l *Line) InstallPlanBytes(name string, data []byte, by PlanCause) ([]sortplan.Change, error) {
	p, _, err := sortplan.ParsePlan(name, bytes.NewReader(data), l.cfg.Chutes)
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
