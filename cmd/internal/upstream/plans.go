package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"sortgw/gateway"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// PlanLine is a line that takes plans from the center
// (*gateway.Line).
type PlanLine interface {
	Name() string
	InstallPlanBytes(name string, data []byte, by gateway.PlanCause) ([]sortplan.Change, error)
}

// SetLines names the lines plans may be offered for; call before Run.
func (r *Runner) SetLines(lines []PlanLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = map[string]PlanLine{}
	for _, l := range lines {
		r.lines[l.Name()] = l
	}
}

// PlanResult is the value the gateway puts in the results KV bucket under
// <site>.<line> after each plan offered (docs/upstream.md).
type PlanResult struct {
	Site   string `json:"site"`
	Line   string `json:"line"`
	Object string `json:"object"` // the object's name, <site>/<line>
	NUID   string `json:"nuid"`   // the object's revision
	// Result is "installed" or "refused".
	Result string `json:"result"`
	// Error is the refusal, with file:line:col for a plan that does not
	// validate.
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// watchPlans watches the plans bucket until ctx is done, re-watching
// after a failure (the connection lost, the bucket missing).
func (r *Runner) watchPlans(ctx context.Context) {
	wait := time.Second
	seen := map[string]string{} // line -> NUID handled
	for {
		err := r.watchPlansOnce(ctx, seen)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn().Err(err).Dur("retry_in", wait).Msg("plans bucket not watched")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (r *Runner) watchPlansOnce(ctx context.Context, seen map[string]string) error {
	r.mu.Lock()
	s := r.sink
	r.mu.Unlock()
	if s == nil {
		return errors.New("not connected")
	}
	p := r.cfg.NATS.Plans
	obs, err := s.js.ObjectStore(ctx, p.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		obs, err = s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: p.Bucket,
			Description: "sortgw plans by <site>/<line>", Storage: jetstream.FileStorage})
	}
	if err != nil {
		return fmt.Errorf("object store %s: %w", p.Bucket, err)
	}
	kv, err := s.js.KeyValue(ctx, p.Results)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: p.Results,
			Description: "sortgw plan results by <site>.<line>", Storage: jetstream.FileStorage, History: 10})
	}
	if err != nil {
		return fmt.Errorf("key-value bucket %s: %w", p.Results, err)
	}
	w, err := obs.Watch(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", p.Bucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case info, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch %s closed", p.Bucket)
			}
			if info == nil || info.Deleted {
				continue // nil: the current objects were all delivered
			}
			r.offer(ctx, obs, kv, info, seen)
		}
	}
}

// offer installs or refuses one object and reports the result.
func (r *Runner) offer(ctx context.Context, obs jetstream.ObjectStore, kv jetstream.KeyValue, info *jetstream.ObjectInfo, seen map[string]string) {
	site := r.cfg.Site
	r.mu.Lock()
	var line PlanLine
	for name, l := range r.lines {
		if info.Name == site+"/"+name {
			line = l
		}
	}
	r.mu.Unlock()
	if line == nil || seen[line.Name()] == info.NUID {
		return // another site's or line's plan, or handled
	}
	seen[line.Name()] = info.NUID
	res := PlanResult{Site: site, Line: line.Name(), Object: info.Name, NUID: info.NUID, Result: "installed", At: time.Now().UTC()}
	data, err := obs.GetBytes(ctx, info.Name)
	if err == nil {
		_, err = line.InstallPlanBytes(p0(info.Name), data, gateway.PlanByUpstream)
	}
	if err != nil {
		res.Result, res.Error = "refused", err.Error()
	}
	b, _ := json.Marshal(res)
	if _, err := kv.Put(ctx, site+"."+line.Name(), b); err != nil {
		r.log.Warn().Err(err).Str("line", line.Name()).Msg("plan result not put in the results bucket")
	}
	if _, err := r.out.Append(journal.Record{Kind: journal.KindUpstreamResult, Line: line.Name(),
		Detail: info.Name + " " + info.NUID + ": " + res.Error, Cause: res.Result}); err != nil {
		r.log.Warn().Err(err).Msg("plan result not journaled")
	}
	r.log.Info().Str("line", line.Name()).Str("object", info.Name).Str("result", res.Result).Str("error", res.Error).Msg("plan offered from upstream")
}

// p0 is the name a plan from the bucket goes by in errors and the
// journal: nats-object:<name>.
func p0(name string) string { return "nats-object:" + name }
