// Package upstream wires the gateway's upstream publisher
// (sortgw/gateway/upstream) to NATS JetStream: the site configuration's
// upstream section, an optional embedded nats-server (a leaf node on the
// gateway's PC), the stream created or checked at start, the JetStream
// sink, plans offered from the center through an Object Store bucket, and
// the `sortgw tail` subscriber. docs/upstream.md is the guide for the
// site's IT.
package upstream

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	gwup "sortgw/gateway/upstream"
)

// Config is the site configuration's `upstream:` section. Upstream is off
// unless nats.url or nats.embedded is set.
type Config struct {
	// Site names the site in subjects and message ids; with the
	// publisher's tuning (batch, cursor_every, alarm_records, alarm_age).
	gwup.Config `yaml:",inline"`
	NATS        NATS `yaml:"nats"`
}

// NATS says where to publish.
type NATS struct {
	// URL of an existing NATS server (a leaf node service on the PC, or
	// the hub). Either URL or Embedded.
	URL string `yaml:"url"`
	// CredsFile is an nkey/JWT credentials file; User and Password (or
	// PasswordFile) the alternative.
	CredsFile    string `yaml:"creds_file"`
	User         string `yaml:"user"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	TLS          TLS    `yaml:"tls"`
	// Embedded starts an in-process nats-server with JetStream.
	Embedded *Embedded `yaml:"embedded"`
	Stream   Stream    `yaml:"stream"`
	// Plans, when set, watches an Object Store bucket for plans.
	Plans *Plans `yaml:"plans"`
	// ConnectTimeout bounds one connection attempt (default 5s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// TLS are the client's TLS files (all optional; a CA alone verifies the
// server, a cert and key add a client certificate).
type TLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Stream is the JetStream stream the gateway publishes to; it is created
// at start if missing and checked if present: other limits are an error.
type Stream struct {
	// Name (default SORTGW).
	Name string `yaml:"name"`
	// MaxBytes and MaxAge bound the stream (defaults 1 GiB and 7 days):
	// past them the oldest messages are discarded.
	MaxBytes int64         `yaml:"max_bytes"`
	MaxAge   time.Duration `yaml:"max_age"`
	// Duplicates is the de-duplication window (default 2m).
	Duplicates time.Duration `yaml:"duplicates"`
}

// Embedded is an in-process nats-server: a leaf node on the gateway's PC.
type Embedded struct {
	// Listen is the client address (default 127.0.0.1:4222).
	Listen string `yaml:"listen"`
	// StoreDir holds JetStream's files. Required.
	StoreDir string `yaml:"store_dir"`
	// MaxStore caps JetStream's disk use (default: the server's).
	MaxStore int64 `yaml:"max_store"`
	// Domain is the JetStream domain, needed when the hub sources from
	// this leaf (default the site's name).
	Domain string `yaml:"domain"`
	// Hub, when set, is the leafnode remote to the regional hub.
	Hub *Hub `yaml:"hub"`
	// LeafListen accepts leaf nodes (a hub's role; tests and a small
	// center).
	LeafListen string `yaml:"leaf_listen"`
	// MQTTListen, when set, serves MQTT 3.1.1 from the same account.
	MQTTListen string `yaml:"mqtt_listen"`
}

// Hub is the leafnode remote.
type Hub struct {
	URL       string `yaml:"url"`
	CredsFile string `yaml:"creds_file"`
}

// Plans is the Object Store bucket holding plans for this site.
type Plans struct {
	// Bucket (default SORTGW_PLANS); keys <site>/<line>.
	Bucket string `yaml:"bucket"`
	// Results is the KV bucket for install results (default
	// SORTGW_PLAN_RESULTS); keys <site>.<line>.
	Results string `yaml:"results"`
}

// Enabled reports whether upstream is configured.
func (c *Config) Enabled() bool { return c.NATS.URL != "" || c.NATS.Embedded != nil }

// FieldError is a configuration error about one key of the section.
type FieldError struct {
	Field string // e.g. upstream.nats.url
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate fills defaults and checks the section; every error is a
// *FieldError naming its key.
func (c *Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: "upstream." + field, Err: fmt.Errorf(format, a...)})
	}
	if err := c.Config.Validate(); err != nil {
		bad("site", "%s", strings.TrimPrefix(err.Error(), "upstream: "))
	}
	n := &c.NATS
	switch {
	case n.URL != "" && n.Embedded != nil:
		bad("nats", "url and embedded are exclusive: connect to a server, or run one")
	case n.CredsFile != "" && (n.User != "" || n.Password != "" || n.PasswordFile != ""):
		bad("nats.creds_file", "creds file and user/password are exclusive")
	case n.Password != "" && n.PasswordFile != "":
		bad("nats.password_file", "password and password file are exclusive")
	}
	for field, f := range map[string]string{"nats.creds_file": n.CredsFile, "nats.password_file": n.PasswordFile,
		"nats.tls.ca_file": n.TLS.CAFile, "nats.tls.cert_file": n.TLS.CertFile, "nats.tls.key_file": n.TLS.KeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			bad(field, "%v", err)
		}
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		bad("nats.tls", "cert_file and key_file go together")
	}
	if n.ConnectTimeout == 0 {
		n.ConnectTimeout = 5 * time.Second
	}
	s := &n.Stream
	if s.Name == "" {
		s.Name = "SORTGW"
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = 1 << 30
	}
	if s.MaxAge == 0 {
		s.MaxAge = 7 * 24 * time.Hour
	}
	if s.Duplicates == 0 {
		s.Duplicates = 2 * time.Minute
	}
	if s.MaxBytes < 0 || s.MaxAge < 0 || s.Duplicates < 0 || n.ConnectTimeout < 0 {
		bad("nats.stream", "negative limit")
	}
	if e := n.Embedded; e != nil {
		if e.Listen == "" {
			e.Listen = "127.0.0.1:4222"
		}
		if e.Domain == "" {
			e.Domain = c.Site
		}
		if e.StoreDir == "" {
			bad("nats.embedded.store_dir", "required: JetStream keeps the stream there")
		}
		for field, a := range map[string]string{"listen": e.Listen, "leaf_listen": e.LeafListen, "mqtt_listen": e.MQTTListen} {
			if a == "" {
				continue
			}
			if _, _, err := hostPort(a); err != nil {
				bad("nats.embedded."+field, "%v", err)
			}
		}
		if e.Hub != nil && e.Hub.URL == "" {
			bad("nats.embedded.hub.url", "required when hub is set")
		}
	}
	if p := n.Plans; p != nil {
		if p.Bucket == "" {
			p.Bucket = "SORTGW_PLANS"
		}
		if p.Results == "" {
			p.Results = "SORTGW_PLAN_RESULTS"
		}
	}
	return errors.Join(errs...)
}

// hostPort splits an address; port 0 becomes the server's "random".
func hostPort(a string) (string, int, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("address %q: bad port", a)
	}
	if port == 0 {
		port = -1 // nats-server's RANDOM_PORT
	}
	return h, port, nil
}
