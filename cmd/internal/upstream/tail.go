package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	gwup "sortgw/gateway/upstream"
)

// TailConfig is what `sortgw tail` watches.
type TailConfig struct {
	URL     string // NATS server (default nats://127.0.0.1:4222)
	Stream  string // default SORTGW
	Subject string // filter (default sortgw.>)
	// All prints the stream from its first message; otherwise only new
	// ones.
	All bool
	// Creds, User, Password: as the gateway's upstream.nats section.
	Creds, User, Password string
}

// Tail prints the stream's records to w as JSON lines (the message
// payload, docs/upstream.md) until ctx is done. A record seen before (a
// re-publish past the de-duplication window) is skipped, by seq per site.
func Tail(ctx context.Context, c TailConfig, w io.Writer) error {
	if c.URL == "" {
		c.URL = nats.DefaultURL
	}
	if c.Stream == "" {
		c.Stream = "SORTGW"
	}
	if c.Subject == "" {
		c.Subject = "sortgw.>"
	}
	opts := []nats.Option{nats.Name("sortgw tail"), nats.Timeout(5 * time.Second)}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return fmt.Errorf("tail: connect %s: %w", c.URL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	policy := jetstream.DeliverNewPolicy
	if c.All {
		policy = jetstream.DeliverAllPolicy
	}
	// The gateway creates the stream with its first publish: wait for it.
	var cons jetstream.Consumer
	for {
		cons, err = js.OrderedConsumer(ctx, c.Stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{c.Subject}, DeliverPolicy: policy})
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("tail: stream %s: %w", c.Stream, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	go func() { <-ctx.Done(); it.Stop() }()
	var seen gwup.Deduper
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("tail: %w", err)
		}
		e, err := gwup.Decode(m.Data())
		if err != nil {
			fmt.Fprintf(w, "{\"error\":%q,\"subject\":%q}\n", err.Error(), m.Subject())
			continue
		}
		if seen.Seen(&e) {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s\n", m.Data()); err != nil {
			return fmt.Errorf("tail: %w", err)
		}
	}
}
