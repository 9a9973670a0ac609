package upstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
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
// connection error (wrong credentials included).
func Connect(n *NATS, url, name string, onErr func(error)) (*nats.Conn, error) {
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

// Sink publishes to a JetStream stream: messages go out asynchronously
// (up to MaxPending in flight), with Nats-Msg-Id, and a round waits for
// every acknowledgement. It implements gateway/upstream.Sink.
type Sink struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	stream jetstream.StreamConfig

	// connErr, when set, gives the connection's last error for the
	// error a round returns while disconnected.
	connErr func() error

	mu      sync.Mutex
	ensured bool
}

// NewSink makes a sink on nc for the section's stream.
func NewSink(nc *nats.Conn, c *Config) (*Sink, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Sink{js: js, nc: nc, stream: StreamConfig(c)}, nil
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
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	var sendErr error
	for i := range msgs {
		m := &nats.Msg{Subject: msgs[i].Subject, Data: msgs[i].Data, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, msgs[i].ID)
		f, err := s.js.PublishMsgAsync(m, jetstream.WithExpectStream(s.stream.Name))
		if err != nil {
			sendErr = fmt.Errorf("publish %s: %w", msgs[i].ID, err)
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
		case <-f.Ok():
			acked++
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
