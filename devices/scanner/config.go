package scanner

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Connection modes (Config.Mode).
const (
	// ModeClient: the scanner is a TCP server and the gateway dials it.
	ModeClient = "client"
	// ModeServer: the gateway listens and the scanner connects out to it.
	ModeServer = "server"
)

// Framing names (Config.Framing).
const (
	// FramingSTX: STX (0x02) payload ETX (0x03).
	FramingSTX = "stx"
	// FramingCRLF: payload followed by CR LF.
	FramingCRLF = "crlf"
)

// Defaults from the scanner section of the host interface contract.
const (
	DefaultPort             = "2001"
	DefaultMaxFrame         = 4096
	DefaultHeartbeatTimeout = 3 * time.Second
	DefaultNoReadToken      = "NoRead"
	DefaultHeartbeatToken   = "HB"
	DefaultSeparator        = ";"
	DefaultBackoffMin       = 200 * time.Millisecond
	DefaultBackoffMax       = 2 * time.Second
	DefaultReadBuffer       = 32 << 10
)

// ErrConfig is wrapped by every configuration error, so callers can tell a
// bad configuration from a failing device.
var ErrConfig = errors.New("scanner config")

// Config describes one scanner. The zero values of every field but Name and
// (in client mode) Addr mean "the contract's default"; Validate fills them.
type Config struct {
	// Name identifies the scanner in logs, reads and the status page.
	Name string `yaml:"name"`
	// Addr is the scanner's host:port in client mode (the port defaults to
	// 2001 if left out) and the address the gateway listens on in server
	// mode (default ":2001"). In server mode several scanners may share one
	// listen address if each sets Peer.
	Addr string `yaml:"addr"`
	// Mode is "client" (default: dial the scanner) or "server" (listen;
	// the scanner connects out).
	Mode string `yaml:"mode"`
	// Peer is required in server mode and not allowed in client mode: the
	// scanner's IP address, or several separated by commas (a scanner with
	// two network ports, a spare unit). A connection to the listen address
	// from any other IP is refused and counted, so that no other host can
	// take the scanner's place or inject reads. Scanners sharing a listen
	// address must have disjoint peers. Listen addresses with port 0 are
	// never shared: each gets its own port.
	Peer string `yaml:"peer"`
	// Framing is "stx" (default) or "crlf".
	Framing string `yaml:"framing"`
	// MaxFrame is the largest payload in bytes (default 4096); a longer
	// frame is dropped up to the next frame start and counted.
	MaxFrame int `yaml:"max_frame"`
	// HeartbeatTimeout: a scanner not heard from (no read, no heartbeat)
	// for this long is shown offline, and in client mode its connection is
	// closed and redialled (default 3s).
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
	// NoReadToken is the code a scanner sends when it read nothing
	// (default "NoRead").
	NoReadToken string `yaml:"noread_token"`
	// HeartbeatToken is the whole payload of a heartbeat (default "HB").
	HeartbeatToken string `yaml:"heartbeat_token"`
	// Separator splits the TID and the codes (default ";").
	Separator string `yaml:"separator"`
	// BackoffMin and BackoffMax bound the client-mode redial delay, and in
	// server mode the delay between attempts to bind a listen address that
	// cannot be bound (a listener shared by several scanners takes the
	// smallest of their bounds). The delay doubles per failed attempt with
	// jitter (defaults 200ms and 2s); the first retry comes within
	// BackoffMin.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// ReadBuffer is the size of the socket read buffer (default 32 KiB).
	ReadBuffer int `yaml:"read_buffer"`
}

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: scanner without a name", ErrConfig)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: scanner %q: %s", ErrConfig, c.Name, fmt.Sprintf(format, args...))
	}
	switch c.Mode {
	case "":
		c.Mode = ModeClient
	case ModeClient, ModeServer:
	default:
		return bad("mode %q: want %q or %q", c.Mode, ModeClient, ModeServer)
	}
	switch c.Mode {
	case ModeClient:
		if c.Addr == "" {
			return bad("client mode needs the scanner's address (host:port)")
		}
		if c.Peer != "" {
			return bad("peer is for server mode only")
		}
	case ModeServer:
		if c.Addr == "" {
			c.Addr = ":" + DefaultPort
		}
		if strings.TrimSpace(c.Peer) == "" {
			return bad("server mode needs peer: the scanner's IP address")
		}
		if _, err := parsePeers(c.Peer); err != nil {
			return bad("%v", err)
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		if c.Mode == ModeClient && !strings.Contains(c.Addr, ":") {
			c.Addr = net.JoinHostPort(c.Addr, DefaultPort)
		} else {
			return bad("address %q: %v", c.Addr, err)
		}
	}
	// A port net cannot use would only fail at run time, so check (and
	// `sortgw check`) catch it here. Port 0 (any free port) suits a
	// listener only.
	_, port, _ := net.SplitHostPort(c.Addr)
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 && c.Mode == ModeClient {
		return bad("address %q: port %q: want a number in 1..65535", c.Addr, port)
	}
	switch strings.ToLower(c.Framing) {
	case "":
		c.Framing = FramingSTX
	case FramingSTX, FramingCRLF:
		c.Framing = strings.ToLower(c.Framing)
	default:
		return bad("framing %q: want %q or %q", c.Framing, FramingSTX, FramingCRLF)
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.MaxFrame < 16 || c.MaxFrame > 1<<20 {
		return bad("max frame %d out of range 16..1048576", c.MaxFrame)
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.HeartbeatTimeout < 0 {
		return bad("negative heartbeat timeout %v", c.HeartbeatTimeout)
	}
	if c.NoReadToken == "" {
		c.NoReadToken = DefaultNoReadToken
	}
	if c.HeartbeatToken == "" {
		c.HeartbeatToken = DefaultHeartbeatToken
	}
	if c.Separator == "" {
		c.Separator = DefaultSeparator
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin {
		return bad("back-off %v..%v: want 0 < min <= max", c.BackoffMin, c.BackoffMax)
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = DefaultReadBuffer
	}
	if c.ReadBuffer < 512 {
		return bad("read buffer %d below 512 bytes", c.ReadBuffer)
	}
	if err := c.parseConfig().check(); err != nil {
		return bad("%v", err)
	}
	for _, t := range []struct{ what, v string }{{"no-read token", c.NoReadToken}, {"heartbeat token", c.HeartbeatToken}} {
		if strings.ContainsAny(t.v, "\x02\x03\r\n") {
			return bad("%s %q holds a framing byte", t.what, t.v)
		}
	}
	return nil
}

// parsePeers reads Config.Peer: IP addresses separated by commas.
func parsePeers(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("peer %q is not an IP address", f)
		}
		out = append(out, canonical(a))
	}
	return out, nil
}

// canonical makes addresses comparable however they arrived: an IPv4
// peer on a dual-stack listener shows up as ::ffff:a.b.c.d, and a
// link-local one with the interface as zone.
func canonical(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func (c *Config) parseConfig() ParseConfig {
	return ParseConfig{Separator: c.Separator, NoReadToken: c.NoReadToken, HeartbeatToken: c.HeartbeatToken}
}

func (c *Config) framing() Framing {
	if c.Framing == FramingCRLF {
		return CRLF
	}
	return STX
}
