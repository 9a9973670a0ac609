package site

import (
	"github.com/rs/zerolog"

	"sortgw/cmd/internal/upstream"
	"sortgw/gateway"
	"sortgw/gateway/journal"
)

// checkUpstream validates the upstream section, each error at its key.
func (c *Config) checkUpstream(add func(*Error)) {
	err := c.Upstream.Validate()
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		if fe, ok := e.(*upstream.FieldError); ok {
			add(c.at(fe.Field, "%v", fe.Err))
		} else {
			add(c.at("upstream", "%v", e))
		}
	}
}

// buildUpstream makes the upstream runner when the section enables it and
// there is a journal (not at check), hands it to the gateway and registers
// its metrics. Nothing dials or listens before Run.
func (c *Config) buildUpstream(j *journal.Journal, lines []*gateway.Line, m *gateway.Metrics, gcfg *gateway.Config, log zerolog.Logger) (*upstream.Runner, *Error) {
	if j == nil || !c.Upstream.Enabled() {
		return nil, nil
	}
	up, err := upstream.New(c.Upstream, j, log)
	if err != nil {
		return nil, c.at("upstream", "%v", err)
	}
	gcfg.Upstream = up
	m.Registry.MustRegister(up.Collectors()...)
	pls := make([]upstream.PlanLine, len(lines))
	for i, l := range lines {
		pls[i] = l
	}
	up.SetLines(pls)
	return up, nil
}
