package gateway

import (
	"context"
	"errors"
	"sync"
)

// errSibling is the cancel cause a run group gives its parts when one of
// them failed: they stop because a sibling did, not on their own.
var errSibling = errors.New("a sibling part failed")

// runGroup runs parts that live and die together: the first part to fail
// cancels the group's context, so its siblings stop too. A line whose PLC
// link's Run fails must not keep taking reads it can never divert.
//
// A part that returns nil (or an error after the group was cancelled) is
// a normal stop and does not cancel the others.
type runGroup struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	first error // the first part's failure: the cause of the stop
}

// newRunGroup makes a group whose parts run on a child of parent.
func newRunGroup(parent context.Context) *runGroup {
	ctx, cancel := context.WithCancelCause(parent)
	return &runGroup{ctx: ctx, cancel: cancel}
}

// Go runs part on the group's context.
func (g *runGroup) Go(part func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := part(g.ctx)
		if err == nil || g.ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return
		}
		g.fail(err)
	}()
}

// fail records err as the group's failure (if it is the first) and stops
// every part.
func (g *runGroup) fail(err error) {
	g.mu.Lock()
	if g.first == nil {
		g.first = err
	}
	g.mu.Unlock()
	g.cancel(errSibling)
}

// Failed is closed when the group stops, by failure or by its parent.
func (g *runGroup) Failed() <-chan struct{} { return g.ctx.Done() }

// Stop cancels every part without recording a failure.
func (g *runGroup) Stop() { g.cancel(context.Canceled) }

// Wait waits for every part and returns the first failure, if any.
func (g *runGroup) Wait() error {
	g.wg.Wait()
	g.cancel(context.Canceled)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first
}

// Err returns the first failure so far without waiting.
func (g *runGroup) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first
}
