package opcua

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{Name: "s1", Endpoint: "opc.tcp://127.0.0.1:4840"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "urn:sortgw:sorter" || c.NodePrefix != "Sorter" || c.Ring != 16 || c.Security != "None" ||
		c.PublishInterval != 10*time.Millisecond || c.Heartbeat != 100*time.Millisecond || c.PLCWatchdog != time.Second ||
		c.BackoffMin != 100*time.Millisecond || c.BackoffMax != 2*time.Second || c.StaleAfter != 250*time.Millisecond ||
		c.MaxInFlight != 8 || c.ConfirmPoll != 5*time.Millisecond {
		t.Fatalf("defaults %+v", c)
	}
}

// TestConfigSmallRing: the defaults fit a small ring and a fast
// publishing interval.
func TestConfigSmallRing(t *testing.T) {
	c := Config{Name: "s1", Endpoint: "opc.tcp://127.0.0.1:4840", Ring: 4, PublishInterval: 2 * time.Millisecond}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MaxInFlight != 3 || c.ConfirmPoll != 2*time.Millisecond {
		t.Fatalf("max in flight %d, confirm poll %s", c.MaxInFlight, c.ConfirmPoll)
	}
}

func TestConfigBad(t *testing.T) {
	good := func() Config { return Config{Name: "s1", Endpoint: "opc.tcp://127.0.0.1:4840"} }
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name is empty"},
		{"http endpoint", func(c *Config) { c.Endpoint = "http://x:1" }, "want opc.tcp://host:port"},
		{"ring not power of two", func(c *Config) { c.Ring = 12 }, "ring 12"},
		{"unknown security", func(c *Config) { c.Security = "Encrypt" }, `security "Encrypt"`},
		{"sign without files", func(c *Config) { c.Security = SecuritySign }, "needs cert file and key file"},
		{"sign without trust", func(c *Config) { c.Security = SecuritySignAndEncrypt; c.CertFile, c.KeyFile = "a", "b" }, "trusted server certificate"},
		{"old policy", func(c *Config) {
			c.Security, c.Policy, c.CertFile, c.KeyFile, c.TrustedServerCerts = SecuritySign, "Basic128Rsa15", "a", "b", []string{"c"}
		}, "only Basic256Sha256"},
		{"backoff inverted", func(c *Config) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond }, "backoff max"},
		{"keepalive short", func(c *Config) { c.KeepAlive = time.Millisecond }, "keep-alive"},
		{"in flight beyond the window", func(c *Config) { c.MaxInFlight = 16 }, "max in flight 16: want 1..15"},
		{"in flight beyond a small ring", func(c *Config) { c.Ring, c.MaxInFlight = 4, 4 }, "max in flight 4: want 1..3"},
		{"in flight negative", func(c *Config) { c.MaxInFlight = -1 }, "max in flight -1"},
		{"confirm poll short", func(c *Config) { c.ConfirmPoll = time.Microsecond }, "confirm poll 1µs"},
		{"confirm poll beyond publishing", func(c *Config) { c.ConfirmPoll = 20 * time.Millisecond }, "confirm poll 20ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mod(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSendChecksConfiguredChutes: Send refuses a chute above the
// configured count, as the Modbus link does (both ask the core).
func TestSendChecksConfiguredChutes(t *testing.T) {
	l, err := New(Config{Name: "p", Endpoint: "opc.tcp://127.0.0.1:1", Chutes: 100, QueueSize: 2}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, tc := range []struct {
		cmd  devices.Command
		want error
	}{
		{devices.Command{TID: 1, Chute: 101}, devices.ErrBadCommand},
		{devices.Command{TID: 0, Chute: 1}, devices.ErrBadCommand},
		{devices.Command{TID: 1, Chute: 100}, nil},
		{devices.Command{TID: 2, Chute: 0}, nil},
		{devices.Command{TID: 3, Chute: 1}, devices.ErrQueueFull},
	} {
		if err := l.Send(ctx, tc.cmd); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("send %+v: %v, want %v", tc.cmd, err, tc.want)
		}
	}
}
