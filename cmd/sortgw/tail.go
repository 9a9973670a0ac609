package main

// `sortgw tail`: flags into upstream.TailConfig; the subscriber is
// cmd/internal/upstream.

import (
	"context"
	"flag"
	"fmt"
	"io"

	"sortgw/cmd/internal/upstream"
)

// cmdTail is `sortgw tail`: print the upstream stream's records as JSON
// lines until interrupted. Exit 1 when it cannot subscribe; 2 for bad
// flags.
func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c upstream.TailConfig
	fs.StringVar(&c.URL, "nats", "nats://127.0.0.1:4222", "NATS server URL")
	fs.StringVar(&c.Stream, "stream", "SORTGW", "JetStream stream")
	fs.StringVar(&c.Subject, "subject", "sortgw.>", "subject filter, e.g. sortgw.north1.L1.outcome")
	fs.BoolVar(&c.All, "all", false, "print the stream from its first record, not only new ones")
	fs.StringVar(&c.Creds, "creds", "", "NATS credentials file")
	fs.StringVar(&c.User, "user", "", "NATS user")
	fs.StringVar(&c.Password, "password", "", "NATS password")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := upstream.Tail(ctx, c, stdout); err != nil {
		fmt.Fprintln(stderr, "sortgw tail:", err)
		return 1
	}
	return 0
}
