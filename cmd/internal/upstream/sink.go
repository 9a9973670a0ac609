package upstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	gwup "sortgw/gateway/upstream"
)

// ErrStreamMismatch: the stream exists with other limits than the
// configuration's. A person must act: change the config or the stream.
var ErrStreamMismatch = errors.New("stream limits differ from the configuration")

// Connect dials NATS with the section's credentials and TLS. It does not
// fail when the server is unreachable: the connection keeps retrying in
// the background (RetryOnFailedConnect), so that a gateway starts and
// sorts with its WAN or its NATS service down. onErr hears every
// connection error (wrong credentials included). extra options come last
// (the embedded server's in-process connection).
func Connect(n *NATS, url, name string, onErr func(error), extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(n.ConnectTimeout),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectBufSize(-1), // the journal is the buffer: no second one in memory
	}
	if n.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	}
	if n.User != "" {
		pw := n.Password
		if n.PasswordFile != "" {
			b, err := os.ReadFile(n.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("nats password file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		opts = append(opts, nats.UserInfo(n.User, pw))
	}
	if n.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(n.TLS.CAFile))
	}
	if n.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(n.TLS.CertFile, n.TLS.KeyFile))
	}
	if onErr != nil {
		opts = append(opts,
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { onErr(err) }),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					onErr(err)
				}
			}),
			// Each failed (re)connect attempt: wrong credentials show
			// here while RetryOnFailedConnect keeps trying.
			nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					onErr(err)
				}
			}),
			nats.ConnectHandler(func(*nats.Conn) { onErr(nil) }),
			nats.ReconnectHandler(func(*nats.Conn) { onErr(nil) }))
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect %s: %w", url, err)
	}
	return nc, nil
}

// StreamConfig is the stream the section asks for: every subject of the
// site, file storage, limits as configured.
func StreamConfig(c *Config) jetstream.StreamConfig {
	s := c.NATS.Stream
	return jetstream.StreamConfig{
		Name:       s.Name,
		Subjects:   []string{"sortgw." + c.Site + ".>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxBytes:   s.MaxBytes,
		MaxAge:     s.MaxAge,
		Duplicates: s.Duplicates,
	}
}

// EnsureStream creates the stream, or checks an existing one has the
// configured subjects and limits (ErrStreamMismatch otherwise).
func EnsureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("create stream %s: %w", want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", want.Name, err)
	}
	got := st.CachedInfo().Config
	var diffs []string
	if got.MaxBytes != want.MaxBytes {
		diffs = append(diffs, fmt.Sprintf("max_bytes %d, config %d", got.MaxBytes, want.MaxBytes))
	}
	if got.MaxAge != want.MaxAge {
		diffs = append(diffs, fmt.Sprintf("max_age %s, config %s", got.MaxAge, want.MaxAge))
	}
	if got.Duplicates != want.Duplicates {
		diffs = append(diffs, fmt.Sprintf("duplicates %s, config %s", got.Duplicates, want.Duplicates))
	}
	if got.Storage != want.Storage {
		diffs = append(diffs, fmt.Sprintf("storage %s, config %s", got.Storage, want.Storage))
	}
	if !covers(got.Subjects, want.Subjects[0]) {
		diffs = append(diffs, fmt.Sprintf("subjects %v do not include %s", got.Subjects, want.Subjects[0]))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("stream %s: %s: %w", want.Name, strings.Join(diffs, "; "), ErrStreamMismatch)
	}
	return nil
}

func covers(subjects []string, s string) bool {
	for _, x := range subjects {
		if x == s || x == ">" || x == "sortgw.>" {
			return true
		}
	}
	return false
}

// Sink publishes to a JetStream stream with Nats-Msg-Id. It implements
// gateway/upstream.Sink.
//
// A round goes one of two ways:
//   - acknowledged: every message asynchronously with a reply subject (up
//     to MaxPending in flight), each acknowledgement awaited in order;
//   - counted, once the stream's last sequence after the previous round
//     is known: all messages but the last without a reply subject, the
//     last acknowledged. The stream stores a connection's messages in
//     order, so if the last one's stream sequence is the previous last
//     plus the round's count (and it is no duplicate), every message of
//     the round was stored. Anything else (a message refused or dropped,
//     a duplicate, another writer, a stream recreated) sends the round
//     again acknowledged, where the server's de-duplication absorbs what
//     was stored. The server then makes one acknowledgement per round
//     instead of one per message: less CPU and garbage for the sorting
//     process that runs it (issue 13).
type Sink struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	stream jetstream.StreamConfig
	expect jetstream.PublishOpt // WithExpectStream, made once

	// connErr, when set, gives the connection's last error for the
	// error a round returns while disconnected.
	connErr func() error

	mu      sync.Mutex
	ensured bool

	// last is the stream's last sequence after this sink's previous
	// round, when that round ended with a message stored (not a
	// duplicate); 0: unknown. Only Publish uses it (one caller at a
	// time: the publisher's Run).
	last uint64
	// Rounds sent counted and confirmed, and counted rounds sent again
	// acknowledged.
	counted, recounted atomic.Uint64
}

// NewSink makes a sink on nc for the section's stream.
func NewSink(nc *nats.Conn, c *Config) (*Sink, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	st := StreamConfig(c)
	return &Sink{js: js, nc: nc, stream: st, expect: jetstream.WithExpectStream(st.Name)}, nil
}

func (s *Sink) notConnected() error {
	if s.connErr != nil {
		if err := s.connErr(); err != nil {
			return fmt.Errorf("nats %s: %w", s.nc.Status(), err)
		}
	}
	if err := s.nc.LastError(); err != nil {
		return fmt.Errorf("nats %s: %w", s.nc.Status(), err)
	}
	return fmt.Errorf("nats %s: not connected", s.nc.Status())
}

// Publish implements gateway/upstream.Sink.
func (s *Sink) Publish(ctx context.Context, msgs []gwup.Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	if !s.nc.IsConnected() {
		return 0, s.notConnected()
	}
	s.mu.Lock()
	ensured := s.ensured
	s.mu.Unlock()
	if !ensured {
		if err := EnsureStream(ctx, s.js, s.stream); err != nil {
			return 0, err
		}
		s.mu.Lock()
		s.ensured = true
		s.mu.Unlock()
	}
	// The round's messages and header values in a few allocations: the
	// client holds each message until its acknowledgement (and for a
	// retry), so they are fresh every round, never reused.
	nm := make([]nats.Msg, len(msgs))
	ids := make([]string, 2*len(msgs))
	for i := range msgs {
		ids[2*i], ids[2*i+1] = msgs[i].ID, s.stream.Name
		m := &nm[i]
		m.Subject, m.Data = msgs[i].Subject, msgs[i].Data
		m.Header = nats.Header{jetstream.MsgIDHeader: ids[2*i : 2*i+1 : 2*i+1]}
	}
	if s.last > 0 && len(msgs) > 1 {
		ok, err := s.publishCounted(ctx, nm, ids)
		if err != nil {
			s.last = 0
			return 0, err // nothing known stored: the publisher retries the round
		}
		if ok {
			s.counted.Add(1)
			return len(msgs), nil
		}
		s.recounted.Add(1)
		for i := range nm { // the counted round set the header on the last one
			delete(nm[i].Header, jetstream.ExpectedStreamHeader)
		}
	}
	return s.publishAcked(ctx, nm)
}

// publishCounted sends the round without replies but for the last
// message and reports whether the stream stored every message.
func (s *Sink) publishCounted(ctx context.Context, nm []nats.Msg, ids []string) (bool, error) {
	n := len(nm)
	for i := range nm[:n-1] {
		// With no reply nobody hears a refusal: the count below does.
		nm[i].Header[jetstream.ExpectedStreamHeader] = ids[2*i+1 : 2*i+2 : 2*i+2]
		if err := s.nc.PublishMsg(&nm[i]); err != nil {
			return false, fmt.Errorf("publish %s: %w", ids[2*i], err)
		}
	}
	ack, err := s.js.PublishMsg(ctx, &nm[n-1], s.expect)
	if err != nil {
		s.mu.Lock()
		s.ensured = false
		s.mu.Unlock()
		return false, fmt.Errorf("publish %s: %w", ids[2*(n-1)], err)
	}
	want := s.last + uint64(n)
	if ack.Duplicate || ack.Stream != s.stream.Name || ack.Sequence != want {
		return false, nil
	}
	s.last = ack.Sequence
	return true, nil
}

// publishAcked sends the round with a reply subject per message and
// waits for the acknowledgements in order.
func (s *Sink) publishAcked(ctx context.Context, nm []nats.Msg) (int, error) {
	s.last = 0
	futs := make([]jetstream.PubAckFuture, 0, len(nm))
	var sendErr error
	for i := range nm {
		f, err := s.js.PublishMsgAsync(&nm[i], s.expect)
		if err != nil {
			sendErr = fmt.Errorf("publish %s: %w", nm[i].Header.Get(jetstream.MsgIDHeader), err)
			break
		}
		futs = append(futs, f)
	}
	// Acknowledgements in order: the leading run of acks is what the
	// cursor may pass. A later ack after a failure still counts for
	// nothing here; its re-publish is a duplicate the window absorbs.
	acked := 0
	for _, f := range futs {
		select {
		case ack := <-f.Ok():
			acked++
			if acked == len(nm) && !ack.Duplicate && ack.Stream == s.stream.Name {
				s.last = ack.Sequence
			}
			continue
		case err := <-f.Err():
			// Check the stream again next round: it may have been deleted
			// or changed under us (recreated then, or a mismatch shown).
			s.mu.Lock()
			s.ensured = false
			s.mu.Unlock()
			return acked, fmt.Errorf("publish %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
		case <-ctx.Done():
			return acked, ctx.Err()
		}
	}
	return acked, sendErr
}
