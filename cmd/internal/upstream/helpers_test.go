package upstream

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
	gwup "sortgw/gateway/upstream"
)

// startJournal opens a journal in dir and runs its writer until the test
// ends.
func startJournal(t testing.TB, path string) *journal.Journal {
	t.Helper()
	j, err := journal.Open(journal.Config{Path: path, FlushInterval: time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		j.Close()
	})
	return j
}

// startHub starts a plain embedded server (the test's hub or a site's
// leaf service), stopped when the test ends.
func startHub(t testing.TB, e Embedded) *server.Server {
	t.Helper()
	if e.StoreDir == "" {
		e.StoreDir = t.TempDir()
	}
	if e.Listen == "" {
		e.Listen = "127.0.0.1:0"
	}
	s, err := StartServer(&e, "hub-"+filepath.Base(e.StoreDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { StopServer(s) })
	return s
}

// runner runs a Runner over j until the returned stop is called (or the
// test ends).
func runner(t testing.TB, cfg Config, j *journal.Journal) (*Runner, func()) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, j, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runner: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// appendItems appends n outcome records (and their decisions, which stay
// local) on line, tids from first, and returns the outcome seqs.
func appendItems(t testing.TB, j *journal.Journal, line string, first uint32, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		tid := first + uint32(i)
		if _, err := j.AppendWait(context.Background(), journal.Record{Kind: journal.KindDecision, Line: line, TID: tid, Pass: 1, Dest: "D"}); err != nil {
			t.Fatal(err)
		}
		seq, err := j.AppendWait(context.Background(), journal.Record{Kind: journal.KindOutcome, Line: line, TID: tid, Pass: 1, Outcome: journal.OutcomeDiverted, Chute: 3})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// waitFor polls cond every 20ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		<-tick.C
	}
	t.Logf("%s: after %s", what, time.Since(start).Round(time.Millisecond))
}

// jsOn connects a test client to url, closed at the end; domain "" is the
// server's own JetStream.
func jsOn(t testing.TB, url, domain string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var js jetstream.JetStream
	if domain != "" {
		js, err = jetstream.NewWithDomain(nc, domain)
	} else {
		js, err = jetstream.New(nc)
	}
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// streamMsgs returns the stream's message count (-1 if it cannot say).
func streamMsgs(js jetstream.JetStream, name string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return -1
	}
	info, err := st.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}

// readAll reads every message of the stream in order and decodes it.
func readAll(t testing.TB, js jetstream.JetStream, name string) []gwup.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := streamMsgs(js, name)
	c, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []gwup.Envelope
	for len(out) < n {
		batch, err := c.Fetch(min(n-len(out), 500), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			e, err := gwup.Decode(m.Data())
			if err != nil {
				t.Fatalf("message %s: %v", m.Subject(), err)
			}
			if want := gwup.MsgID(e.Site, e.Record.Seq); m.Headers().Get(jetstream.MsgIDHeader) != want {
				t.Fatalf("message id %q, want %q", m.Headers().Get(jetstream.MsgIDHeader), want)
			}
			if want := gwup.Subject(e.Site, &e.Record); m.Subject() != want {
				t.Fatalf("subject %q, want %q", m.Subject(), want)
			}
			out = append(out, e)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
		if got == 0 {
			t.Fatalf("read %d of %d messages", len(out), n)
		}
	}
	return out
}

// checkExactlyOnce: the envelopes hold exactly the outcome seqs want,
// once each, in journal order.
func checkExactlyOnce(t testing.TB, got []gwup.Envelope, want []uint64) {
	t.Helper()
	var outs []uint64
	for _, e := range got {
		if e.Record.Kind == journal.KindOutcome {
			outs = append(outs, e.Record.Seq)
		}
		if e.Record.Kind == journal.KindDecision || e.Record.Kind == journal.KindUpstreamCursor {
			t.Fatalf("record %d of kind %s published", e.Record.Seq, e.Record.Kind)
		}
	}
	if len(outs) != len(want) {
		t.Fatalf("%d outcomes upstream, want %d", len(outs), len(want))
	}
	for i := range want {
		if outs[i] != want[i] {
			t.Fatalf("outcome %d upstream is seq %d, want %d (lost, duplicated or reordered)", i, outs[i], want[i])
		}
	}
}

func embeddedConfig(t testing.TB, site string) Config {
	return Config{
		Config: gwup.Config{Site: site, AlarmFailing: time.Millisecond},
		NATS:   NATS{Embedded: &Embedded{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}},
	}
}
