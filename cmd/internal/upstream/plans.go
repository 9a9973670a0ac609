package upstream

import "context"

// watchPlans watches the plans bucket (plans.go).
func (r *Runner) watchPlans(ctx context.Context) { <-ctx.Done() }
