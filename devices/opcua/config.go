package opcua

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"sortgw/devices"
)

// Security modes of Config.Security.
const (
	SecurityNone           = "None"
	SecuritySign           = "Sign"
	SecuritySignAndEncrypt = "SignAndEncrypt"
)

// PolicyBasic256Sha256 is the only policy offered for Sign and
// SignAndEncrypt: the older ones are deprecated by the OPC Foundation.
const PolicyBasic256Sha256 = "Basic256Sha256"

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid opcua link config")

// Config configures one OPC UA link to a sorter PLC. Every node name and
// the namespace URI are defaults from the contract, not constants. A zero
// field takes its default in Validate.
type Config struct {
	// Name identifies the PLC in logs and on the status page.
	Name string `yaml:"name"`
	// Endpoint is the server's "opc.tcp://host:port[/path]".
	Endpoint string `yaml:"endpoint"`
	// Namespace is the URI of the sorter's namespace (default
	// "urn:sortgw:sorter"); its index is looked up in the server's
	// NamespaceArray on every connect, never assumed.
	Namespace string `yaml:"namespace"`
	// NodePrefix is the first part of every string node id (default
	// "Sorter": "Sorter.Plc.AckSeq", "Sorter.Divert.3.Seq", ...).
	NodePrefix string `yaml:"node_prefix"`
	// Ring is the number of divert slots and of confirmation slots
	// (default 16). It must be a power of two so that slot = seq mod Ring
	// stays contiguous when the uint16 sequence number wraps 65535 -> 0.
	Ring int `yaml:"ring"`

	// Security is "None" (default), "Sign" or "SignAndEncrypt".
	Security string `yaml:"security"`
	// Policy is the security policy for Sign and SignAndEncrypt (default
	// and only choice "Basic256Sha256").
	Policy string `yaml:"policy"`
	// CertFile and KeyFile hold the client's certificate and RSA private
	// key (PEM or DER; PKCS#1 or PKCS#8 keys). Required unless None.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// TrustedServerCerts lists files with the server certificates the link
	// accepts (PEM, possibly several per file, or DER). Required unless
	// None. The certificate the server presents must be byte-identical to
	// one of them and within its validity period.
	TrustedServerCerts []string `yaml:"trusted_server_certs"`

	// PublishInterval is the subscription's publishing interval and the
	// monitored items' sampling interval (default 10ms). Keep
	// PublishInterval x confirmation rate under Ring.
	PublishInterval time.Duration `yaml:"publish_interval"`
	// KeepAlive is how often the server sends a keep-alive when nothing
	// changes (default 1s; MaxKeepAliveCount = KeepAlive/PublishInterval).
	KeepAlive time.Duration `yaml:"keep_alive"`
	// StaleAfter: no data notification for this long makes the link probe
	// the server with a Read; a subscription that missed a change the
	// probe sees is declared dead (default max(25 x PublishInterval,
	// 250ms)).
	StaleAfter time.Duration `yaml:"stale_after"`
	// DeadAfter: a subscription whose values a probe read saw change, and
	// that published nothing for this long, is dead: the link reconnects
	// (default max(1s, 4 x StaleAfter)). Between StaleAfter and DeadAfter
	// the link is not up (commands wait) but keeps its session: a busy
	// server publishing late is not worth a new session.
	DeadAfter time.Duration `yaml:"dead_after"`
	// Timeout bounds the dial and every request the link makes (default
	// 1s). It also bounds how long Run takes to return after ctx is done:
	// one timeout, or four while a connect handshake is out (a handshake
	// is let finish, see session).
	Timeout time.Duration `yaml:"timeout"`
	// Heartbeat is the interval of Host.Heartbeat writes (default 100ms).
	Heartbeat time.Duration `yaml:"heartbeat"`
	// PLCWatchdog: Plc.Heartbeat unchanged this long makes the link
	// LinkSyncing: commands wait (default 1s).
	PLCWatchdog time.Duration `yaml:"plc_watchdog"`
	// SecondHostHold: evidence that another host writes this PLC's host
	// nodes holds commands until there has been none for this long
	// (default 5s). See docs/plc-interface.md.
	SecondHostHold time.Duration `yaml:"second_host_hold"`
	// BackoffMin and BackoffMax bound the reconnect back-off (defaults
	// 100ms and 2s). The first retry comes within BackoffMin; each later
	// one doubles, with jitter, up to BackoffMax.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// QueueSize bounds the commands waiting for a ring slot (default 1024).
	QueueSize int `yaml:"queue_size"`
	// EventBuffer is the capacity of the Events channel (default 4096).
	EventBuffer int `yaml:"event_buffer"`
	// Chutes is the sorter's chute count N (default 256, at most 2048):
	// Send refuses a command for a chute above it, as the Modbus link does.
	// A site sets it from the line's chutes, not in the plc block.
	Chutes int `yaml:"-"`
	// MaxUnconfirmed bounds the commands remembered while waiting for
	// their confirmation (default 65536, at least 2 x Ring); beyond it the
	// oldest taken one is reported lost (devices/hostif).
	MaxUnconfirmed int `yaml:"max_unconfirmed"`
	// MaxInFlight is how many divert WriteRequests may be out at once
	// (default 8, at most Ring-1: the ring's window). They leave in ring
	// order; 1 writes one command at a time.
	MaxInFlight int `yaml:"max_in_flight"`
	// ConfirmPoll: while commands wait for their confirmation, Count and
	// the confirmation slots are also read this often, not only when a
	// notification of Count arrives (default 5ms; at most the publishing
	// interval). A notification is up to a publishing interval old when it
	// arrives, and at 1,000 confirmations/s the ring of 16 turns over in
	// 16 ms.
	ConfirmPoll time.Duration `yaml:"confirm_poll"`
}

// Defaults.
const (
	DefaultNamespace       = "urn:sortgw:sorter"
	DefaultNodePrefix      = "Sorter"
	DefaultRing            = 16
	DefaultPublishInterval = 10 * time.Millisecond
	DefaultKeepAlive       = time.Second
	DefaultTimeout         = time.Second
	DefaultHeartbeat       = 100 * time.Millisecond
	DefaultPLCWatchdog     = time.Second
	DefaultBackoffMin      = 100 * time.Millisecond
	DefaultBackoffMax      = 2 * time.Second
	DefaultQueueSize       = 1024
	DefaultEventBuffer     = 4096
	DefaultChutes          = 256
	DefaultMaxUnconfirmed  = 1 << 16
	DefaultMaxInFlight     = 8
	DefaultConfirmPoll     = 5 * time.Millisecond
)

// Validate fills defaults and checks the whole config; the error lists
// every problem found.
func (c *Config) Validate() error {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.NodePrefix == "" {
		c.NodePrefix = DefaultNodePrefix
	}
	if c.Ring == 0 {
		c.Ring = DefaultRing
	}
	if c.Security == "" {
		c.Security = SecurityNone
	}
	if c.Policy == "" {
		c.Policy = PolicyBasic256Sha256
	}
	if c.PublishInterval == 0 {
		c.PublishInterval = DefaultPublishInterval
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = max(25*c.PublishInterval, 250*time.Millisecond)
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = max(time.Second, 4*c.StaleAfter)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.PLCWatchdog == 0 {
		c.PLCWatchdog = DefaultPLCWatchdog
	}
	if c.SecondHostHold == 0 {
		c.SecondHostHold = 5 * time.Second
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = DefaultEventBuffer
	}
	if c.Chutes == 0 {
		c.Chutes = DefaultChutes
	}
	if c.MaxUnconfirmed == 0 {
		c.MaxUnconfirmed = DefaultMaxUnconfirmed
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = min(DefaultMaxInFlight, max(1, c.Ring-1))
	}
	if c.ConfirmPoll == 0 {
		c.ConfirmPoll = min(DefaultConfirmPoll, c.PublishInterval)
	}

	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if c.Name == "" {
		bad("name is empty")
	}
	if u, err := url.Parse(c.Endpoint); err != nil || u.Scheme != "opc.tcp" || u.Host == "" {
		bad("endpoint %q: want opc.tcp://host:port", c.Endpoint)
	} else if p := u.Port(); p != "" && !devices.ValidPort(p) {
		bad("endpoint %q: port %q: want a number in 1..65535", c.Endpoint, p)
	}
	if strings.ContainsAny(c.NodePrefix, ";") {
		bad("node prefix %q contains ';'", c.NodePrefix)
	}
	if c.Ring < 2 || c.Ring > 1024 || c.Ring&(c.Ring-1) != 0 {
		bad("ring %d: want a power of two in 2..1024", c.Ring)
	}
	switch c.Security {
	case SecurityNone:
	case SecuritySign, SecuritySignAndEncrypt:
		if c.Policy != PolicyBasic256Sha256 {
			bad("policy %q: only %s is supported", c.Policy, PolicyBasic256Sha256)
		}
		if c.CertFile == "" || c.KeyFile == "" {
			bad("security %s needs cert file and key file", c.Security)
		}
		if len(c.TrustedServerCerts) == 0 {
			bad("security %s needs at least one trusted server certificate", c.Security)
		}
	default:
		bad("security %q: want None, Sign or SignAndEncrypt", c.Security)
	}
	if c.PublishInterval < time.Millisecond {
		bad("publish interval %s: want at least 1ms", c.PublishInterval)
	}
	if c.KeepAlive < c.PublishInterval {
		bad("keep-alive %s shorter than the publish interval %s", c.KeepAlive, c.PublishInterval)
	}
	if c.StaleAfter < 2*c.PublishInterval {
		bad("stale-after %s: want at least twice the publish interval", c.StaleAfter)
	}
	if c.DeadAfter < c.StaleAfter {
		bad("dead-after %s shorter than stale-after %s", c.DeadAfter, c.StaleAfter)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", c.Timeout}, {"heartbeat", c.Heartbeat}, {"plc watchdog", c.PLCWatchdog}, {"second host hold", c.SecondHostHold}, {"backoff min", c.BackoffMin}, {"backoff max", c.BackoffMax}} {
		if d.v < 0 {
			bad("%s %s is negative", d.name, d.v)
		}
	}
	if c.BackoffMax < c.BackoffMin {
		bad("backoff max %s below backoff min %s", c.BackoffMax, c.BackoffMin)
	}
	if c.QueueSize < 1 {
		bad("queue size %d: want at least 1", c.QueueSize)
	}
	if c.EventBuffer < 1 {
		bad("event buffer %d: want at least 1", c.EventBuffer)
	}
	if c.Chutes < 1 || c.Chutes > devices.MaxChutes {
		bad("chutes %d: want 1..%d", c.Chutes, devices.MaxChutes)
	}
	if c.MaxUnconfirmed < 2*c.Ring {
		bad("max unconfirmed %d: want at least twice the ring", c.MaxUnconfirmed)
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > max(1, c.Ring-1) {
		bad("max in flight %d: want 1..%d (the ring's window)", c.MaxInFlight, max(1, c.Ring-1))
	}
	if c.ConfirmPoll < time.Millisecond || c.ConfirmPoll > c.PublishInterval {
		bad("confirm poll %s: want 1ms..the publish interval %s", c.ConfirmPoll, c.PublishInterval)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidConfig, c.Name, strings.Join(errs, "; "))
	}
	return nil
}
