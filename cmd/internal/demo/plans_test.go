package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"sortgw/cmd/internal/upstream"
	"sortgw/sortplan"
)

// TestPlansFromTheCenter: a plan put in the object store for the demo's
// line installs; a bad plan is refused with its file:line:col errors in
// the results KV and the running plan stays; an older version is refused.
func TestPlansFromTheCenter(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	d, err := New(Config{HTTP: "127.0.0.1:0", Rate: 20, Chutes: 16, Seed: 3, Token: "t", Dir: t.TempDir()},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, func(string) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	url, _ := strings.CutPrefix(d.Tail(), "sortgw tail -nats ")
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()
	// The gateway creates the buckets when it starts watching.
	var obs jetstream.ObjectStore
	var kv jetstream.KeyValue
	waitFor(t, "the plan buckets", 20*time.Second, func() bool {
		obs, err = js.ObjectStore(tctx, "SORTGW_PLANS")
		if err != nil {
			return false
		}
		kv, err = js.KeyValue(tctx, "SORTGW_PLAN_RESULTS")
		return err == nil
	})
	plan, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: 16, Seed: 9, Name: "CENTER"})
	if err != nil {
		t.Fatal(err)
	}
	withVersion := func(v string) []byte {
		return bytes.Replace(plan, []byte("plan_version,1\n"), []byte("plan_version,"+v+"\n"), 1)
	}
	offer := func(data []byte) upstream.PlanResult {
		t.Helper()
		info, err := obs.PutBytes(tctx, "demo/L1", data)
		if err != nil {
			t.Fatal(err)
		}
		var res upstream.PlanResult
		waitFor(t, "the plan result", 20*time.Second, func() bool {
			e, err := kv.Get(tctx, "demo.L1")
			if err != nil {
				return false
			}
			if err := json.Unmarshal(e.Value(), &res); err != nil {
				t.Fatal(err)
			}
			return res.NUID == info.NUID
		})
		return res
	}

	if res := offer(withVersion("7")); res.Result != "installed" || d.line.PlanInfo().Version != 7 {
		t.Fatalf("good plan: %+v, line at version %d", res, d.line.PlanInfo().Version)
	}
	bad := bytes.Replace(withVersion("8"), []byte("NOREAD,13|14"), []byte("NOREAD,13|99"), 1)
	res := offer(bad)
	if res.Result != "refused" || !strings.Contains(res.Error, "nats-object:demo/L1:") || d.line.PlanInfo().Version != 7 {
		t.Fatalf("bad plan: %+v, line at version %d", res, d.line.PlanInfo().Version)
	}
	t.Logf("bad plan refused: %s", res.Error)
	// The plan-refused alarm reads the line's last reload error.
	if e := d.line.PlanInfo().LastError; !strings.Contains(e, "chute 99 out of range") {
		t.Fatalf("line's last plan error %q: the plan-refused alarm would not say why", e)
	}
	if res := offer(withVersion("3")); res.Result != "refused" || !strings.Contains(res.Error, "version") || d.line.PlanInfo().Version != 7 {
		t.Fatalf("older plan: %+v, line at version %d", res, d.line.PlanInfo().Version)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
