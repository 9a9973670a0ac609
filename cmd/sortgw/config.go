package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a site's gateway configuration (one YAML file).
type Config struct {
	HTTP    HTTPConfig    `yaml:"http"`
	Journal JournalConfig `yaml:"journal"`
	Log     LogConfig     `yaml:"log"`
	// DrainGrace is how long SIGTERM waits for outstanding commands.
	DrainGrace time.Duration `yaml:"drain_grace"`
	Lines      []LineConfig  `yaml:"lines"`

	file string
	pos  map[string]yaml.Node // path -> node, for error positions
}

// HTTPConfig is the status page and API listener.
type HTTPConfig struct {
	Listen string `yaml:"listen"`
	// Token is the bearer token for actions; TokenFile names a file that
	// holds it (preferred: keeps the secret out of the config).
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// JournalConfig is the audit journal.
type JournalConfig struct {
	Path      string        `yaml:"path"`
	Retention time.Duration `yaml:"retention"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json (default) or console
}

// LineConfig is one sorter line.
type LineConfig struct {
	Name               string         `yaml:"name"`
	Plan               string         `yaml:"plan"`
	Manifest           string         `yaml:"manifest"`
	Chutes             int            `yaml:"chutes"`
	RecirculationLimit int            `yaml:"recirculation_limit"`
	DecisionBudget     time.Duration  `yaml:"decision_budget"`
	ConfirmTimeout     time.Duration  `yaml:"confirm_timeout"`
	ContainerCapacity  int            `yaml:"container_capacity"`
	Resolver           ResolverConfig `yaml:"resolver"`
	PLC                PLCConfig      `yaml:"plc"`
	Scanners           []ScannerCfg   `yaml:"scanners"`
}

// ResolverConfig says how codes become destinations.
type ResolverConfig struct {
	CountryCode string   `yaml:"country_code"`
	Patterns    []string `yaml:"patterns"`
	NoReadToken string   `yaml:"noread_token"`
	// RequireSymbologyID reads only codes with a GS1 symbology identifier
	// (]C1, ]d2, ]Q3) as GS1; set it where scanners also read EAN-8.
	RequireSymbologyID bool `yaml:"require_symbology_id"`
}

// PLCConfig selects and configures the PLC link.
type PLCConfig struct {
	Name     string        `yaml:"name"`
	Protocol string        `yaml:"protocol"` // modbus | opcua
	Modbus   *ModbusConfig `yaml:"modbus"`
	OPCUA    *OPCUAConfig  `yaml:"opcua"`
}

// ModbusConfig mirrors devices/modbus.Config; zero values take its defaults.
type ModbusConfig struct {
	Addr        string        `yaml:"addr"`
	UnitID      int           `yaml:"unit_id"`
	HostBase    int           `yaml:"host_base"`
	DivertBase  int           `yaml:"divert_base"`
	PLCBase     int           `yaml:"plc_base"`
	Ring        int           `yaml:"ring"`
	WordOrder   string        `yaml:"word_order"`
	Poll        time.Duration `yaml:"poll"`
	Heartbeat   time.Duration `yaml:"heartbeat"`
	Timeout     time.Duration `yaml:"timeout"`
	PLCWatchdog time.Duration `yaml:"plc_watchdog"`
	BackoffMin  time.Duration `yaml:"backoff_min"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
	QueueSize   int           `yaml:"queue_size"`
	// Connections: 2 (default) keeps divert writes off the polling
	// connection; 1 for PLCs that accept a single client.
	Connections int `yaml:"connections"`
}

// OPCUAConfig mirrors devices/opcua.Config.
type OPCUAConfig struct {
	Endpoint           string        `yaml:"endpoint"`
	Namespace          string        `yaml:"namespace"`
	NodePrefix         string        `yaml:"node_prefix"`
	Ring               int           `yaml:"ring"`
	Security           string        `yaml:"security"`
	Policy             string        `yaml:"policy"`
	CertFile           string        `yaml:"cert_file"`
	KeyFile            string        `yaml:"key_file"`
	TrustedServerCerts []string      `yaml:"trusted_server_certs"`
	PublishInterval    time.Duration `yaml:"publish_interval"`
	Timeout            time.Duration `yaml:"timeout"`
	BackoffMin         time.Duration `yaml:"backoff_min"`
	BackoffMax         time.Duration `yaml:"backoff_max"`
	QueueSize          int           `yaml:"queue_size"`
}

// ScannerCfg mirrors devices/scanner.Config.
type ScannerCfg struct {
	Name             string        `yaml:"name"`
	Addr             string        `yaml:"addr"`
	Mode             string        `yaml:"mode"`    // client (default) | server
	Framing          string        `yaml:"framing"` // stx (default) | crlf
	MaxFrame         int           `yaml:"max_frame"`
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
	NoReadToken      string        `yaml:"noread_token"`
	HeartbeatToken   string        `yaml:"heartbeat_token"`
	Separator        string        `yaml:"separator"`
	BackoffMin       time.Duration `yaml:"backoff_min"`
	BackoffMax       time.Duration `yaml:"backoff_max"`
	// Peer (server mode): the scanner's IP, when several scanners share one
	// listen address.
	Peer string `yaml:"peer"`
}

// ErrConfig marks configuration errors (exit status 1 from check).
var ErrConfig = errors.New("invalid configuration")

// ConfigError is one problem in a config file, with its position.
type ConfigError struct {
	File      string
	Line, Col int
	Path      string // e.g. lines[0].plc.modbus.addr
	Msg       string
}

func (e ConfigError) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos += ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col)
	}
	if e.Path != "" {
		return pos + ": " + e.Path + ": " + e.Msg
	}
	return pos + ": " + e.Msg
}

// ConfigErrors is every problem found in one file.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (es ConfigErrors) Unwrap() error { return ErrConfig }

// LoadConfig reads, defaults and validates a config file. Relative paths in
// it are taken relative to the file's directory.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, data)
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// ParseConfig parses a config held in memory; name is used in errors and
// to resolve relative paths.
func ParseConfig(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(name, err)
	}
	cfg := &Config{file: name, pos: map[string]yaml.Node{}}
	if len(root.Content) == 0 {
		return nil, ConfigErrors{{File: name, Msg: "empty config"}}
	}
	indexNodes(root.Content[0], "", cfg.pos)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, yamlErrors(name, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// yamlErrors turns yaml's "line N: msg" texts into positioned errors.
func yamlErrors(name string, err error) error {
	var te *yaml.TypeError
	var out ConfigErrors
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if g := yamlLineRE.FindStringSubmatch(m); g != nil {
			n, _ := strconv.Atoi(g[1])
			out = append(out, ConfigError{File: name, Line: n, Col: 1, Msg: g[2]})
			continue
		}
		out = append(out, ConfigError{File: name, Msg: m})
	}
	return out
}

// indexNodes records the node of every mapping key and sequence entry
// under its dotted path.
func indexNodes(n *yaml.Node, path string, out map[string]yaml.Node) {
	out[path] = *n
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if path != "" {
				p = path + "." + k
			}
			// Point at the key: that is the line a person edits.
			v := *n.Content[i+1]
			v.Line, v.Column = n.Content[i].Line, n.Content[i].Column
			indexNodes(n.Content[i+1], p, out)
			out[p] = v
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			indexNodes(c, path+"["+strconv.Itoa(i)+"]", out)
		}
	}
}

// errAt makes an error positioned at path, or at its closest present parent.
func (c *Config) errAt(path, format string, a ...any) ConfigError {
	e := ConfigError{File: c.file, Path: path, Msg: fmt.Sprintf(format, a...)}
	for p := path; ; {
		if n, ok := c.pos[p]; ok && n.Line > 0 {
			e.Line, e.Col = n.Line, n.Column
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return e
}

func (c *Config) rel(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.file), p)
}

// Validate fills defaults and checks every field, reporting all problems.
func (c *Config) Validate() error {
	var errs ConfigErrors
	add := func(path, format string, a ...any) { errs = append(errs, c.errAt(path, format, a...)) }

	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		add("http.listen", "bad listen address %q: want host:port", c.HTTP.Listen)
	}
	if c.HTTP.Token != "" && c.HTTP.TokenFile != "" {
		add("http.token_file", "set token or token_file, not both")
	}
	if c.HTTP.TokenFile != "" {
		c.HTTP.TokenFile = c.rel(c.HTTP.TokenFile)
		b, err := os.ReadFile(c.HTTP.TokenFile)
		switch {
		case err != nil:
			add("http.token_file", "read token: %v", err)
		case strings.TrimSpace(string(b)) == "":
			add("http.token_file", "token file %s is empty", c.HTTP.TokenFile)
		default:
			c.HTTP.Token = strings.TrimSpace(string(b))
		}
	}
	if c.HTTP.Token != "" && len(c.HTTP.Token) < 16 {
		add("http.token", "token too short (%d characters): use at least 16", len(c.HTTP.Token))
	}
	if c.Journal.Path == "" {
		add("journal.path", "journal path is required")
	}
	c.Journal.Path = c.rel(c.Journal.Path)
	if c.Journal.Retention == 0 {
		c.Journal.Retention = 30 * 24 * time.Hour
	}
	if c.Journal.Retention < time.Hour {
		add("journal.retention", "retention %v below 1h", c.Journal.Retention)
	}
	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "unknown level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "json"
	case "json", "console":
	default:
		add("log.format", "unknown format %q: want json or console", c.Log.Format)
	}
	if c.DrainGrace == 0 {
		c.DrainGrace = 10 * time.Second
	}
	if c.DrainGrace < 0 {
		add("drain_grace", "negative drain grace %v", c.DrainGrace)
	}
	if len(c.Lines) == 0 {
		add("lines", "at least one line is required")
	}
	names := map[string]bool{}
	for i := range c.Lines {
		c.Lines[i].validate(c, "lines["+strconv.Itoa(i)+"]", names, add)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

var lineNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

func (l *LineConfig) validate(c *Config, p string, names map[string]bool, add func(path, format string, a ...any)) {
	if !lineNameRE.MatchString(l.Name) {
		add(p+".name", "line name %q: want 1-32 letters, digits, _ or -", l.Name)
	} else if names[l.Name] {
		add(p+".name", "duplicate line name %q", l.Name)
	}
	names[l.Name] = true
	if l.Plan == "" {
		add(p+".plan", "plan file is required")
	}
	l.Plan, l.Manifest = c.rel(l.Plan), c.rel(l.Manifest)
	if l.Chutes == 0 {
		l.Chutes = 256
	}
	if l.Chutes < 1 || l.Chutes > 2048 {
		add(p+".chutes", "chutes %d out of range 1..2048", l.Chutes)
	}
	if l.RecirculationLimit == 0 {
		l.RecirculationLimit = 3
	}
	if l.RecirculationLimit < 0 || l.RecirculationLimit > 100 {
		add(p+".recirculation_limit", "recirculation limit %d out of range 1..100", l.RecirculationLimit)
	}
	if l.DecisionBudget == 0 {
		l.DecisionBudget = 500 * time.Millisecond
	}
	if l.DecisionBudget < 10*time.Millisecond || l.DecisionBudget > 10*time.Second {
		add(p+".decision_budget", "decision budget %v out of range 10ms..10s", l.DecisionBudget)
	}
	if l.ConfirmTimeout == 0 {
		l.ConfirmTimeout = 2 * time.Minute
	}
	if l.ConfirmTimeout < time.Second {
		add(p+".confirm_timeout", "confirm timeout %v below 1s", l.ConfirmTimeout)
	}
	if l.ContainerCapacity < 0 {
		add(p+".container_capacity", "negative container capacity")
	}
	if l.Resolver.CountryCode == "" {
		l.Resolver.CountryCode = "840"
	}
	if len(l.Resolver.CountryCode) != 3 || strings.Trim(l.Resolver.CountryCode, "0123456789") != "" {
		add(p+".resolver.country_code", "country code %q: want 3 digits (ISO 3166 numeric)", l.Resolver.CountryCode)
	}
	for j, pat := range l.Resolver.Patterns {
		re, err := regexp.Compile(pat)
		pp := p + ".resolver.patterns[" + strconv.Itoa(j) + "]"
		if err != nil {
			add(pp, "bad pattern: %v", err)
		} else if re.SubexpIndex("dest") < 0 {
			add(pp, "pattern %q has no (?P<dest>...) group", pat)
		}
	}
	if l.Resolver.NoReadToken == "" {
		l.Resolver.NoReadToken = "NoRead"
	}
	l.PLC.validate(c, p+".plc", l, add)
	if len(l.Scanners) == 0 {
		add(p+".scanners", "at least one scanner is required")
	}
	snames := map[string]bool{}
	for j := range l.Scanners {
		s := &l.Scanners[j]
		sp := p + ".scanners[" + strconv.Itoa(j) + "]"
		if s.Name == "" {
			s.Name = l.Name + "-S" + strconv.Itoa(j+1)
		}
		if snames[s.Name] {
			add(sp+".name", "duplicate scanner name %q", s.Name)
		}
		snames[s.Name] = true
		if s.Addr == "" {
			add(sp+".addr", "scanner address is required")
		} else if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			add(sp+".addr", "bad address %q: want host:port", s.Addr)
		}
		switch s.Mode {
		case "", "client", "server":
		default:
			add(sp+".mode", "unknown mode %q: want client or server", s.Mode)
		}
		switch s.Framing {
		case "", "stx", "crlf":
		default:
			add(sp+".framing", "unknown framing %q: want stx or crlf", s.Framing)
		}
		if s.MaxFrame < 0 {
			add(sp+".max_frame", "negative max frame")
		}
		if s.NoReadToken == "" {
			s.NoReadToken = l.Resolver.NoReadToken
		}
	}
}

func (pc *PLCConfig) validate(c *Config, p string, l *LineConfig, add func(path, format string, a ...any)) {
	if pc.Name == "" {
		pc.Name = l.Name + "-plc"
	}
	switch pc.Protocol {
	case "modbus":
		if pc.Modbus == nil {
			add(p+".modbus", "protocol modbus needs a modbus section")
			return
		}
		if pc.OPCUA != nil {
			add(p+".opcua", "opcua section given but protocol is modbus")
		}
		m := pc.Modbus
		if m.Addr == "" {
			add(p+".modbus.addr", "PLC address is required")
		} else if _, _, err := net.SplitHostPort(m.Addr); err != nil {
			add(p+".modbus.addr", "bad address %q: want host:port (Modbus TCP, usually port 502)", m.Addr)
		}
		if m.UnitID < 0 || m.UnitID > 247 {
			add(p+".modbus.unit_id", "unit id %d out of range 1..247", m.UnitID)
		}
		for _, f := range []struct {
			name string
			v    int
		}{{"host_base", m.HostBase}, {"divert_base", m.DivertBase}, {"plc_base", m.PLCBase}} {
			if f.v < 0 || f.v > 65535 {
				add(p+".modbus."+f.name, "register address %d out of range 0..65535", f.v)
			}
		}
		switch m.WordOrder {
		case "", "high-first", "low-first":
		default:
			add(p+".modbus.word_order", "unknown word order %q: want high-first or low-first", m.WordOrder)
		}
		if l.Chutes > 256 && m.PLCBase == 0 {
			add(p+".modbus.plc_base", "%d chutes do not fit the default map: set plc_base (and divert_base) for the larger blocks", l.Chutes)
		}
		if err := checkModbus(pc.Name, l.Chutes, m); err != nil {
			add(p+".modbus", "%v", err)
		}
	case "opcua":
		if pc.OPCUA == nil {
			add(p+".opcua", "protocol opcua needs an opcua section")
			return
		}
		if pc.Modbus != nil {
			add(p+".modbus", "modbus section given but protocol is opcua")
		}
		o := pc.OPCUA
		if !strings.HasPrefix(o.Endpoint, "opc.tcp://") {
			add(p+".opcua.endpoint", "endpoint %q: want opc.tcp://host:port", o.Endpoint)
		}
		switch o.Security {
		case "", "None", "Sign", "SignAndEncrypt":
		default:
			add(p+".opcua.security", "unknown security mode %q: want None, Sign or SignAndEncrypt", o.Security)
		}
		if o.Security == "Sign" || o.Security == "SignAndEncrypt" {
			if o.CertFile == "" || o.KeyFile == "" {
				add(p+".opcua.cert_file", "security %s needs cert_file and key_file", o.Security)
			}
			if len(o.TrustedServerCerts) == 0 {
				add(p+".opcua.trusted_server_certs", "security %s needs trusted_server_certs", o.Security)
			}
		}
		o.CertFile, o.KeyFile = c.rel(o.CertFile), c.rel(o.KeyFile)
		for i := range o.TrustedServerCerts {
			o.TrustedServerCerts[i] = c.rel(o.TrustedServerCerts[i])
		}
		if err := checkOPCUA(pc.Name, o); err != nil {
			add(p+".opcua", "%v", err)
		}
	case "":
		add(p+".protocol", "protocol is required: modbus or opcua")
	default:
		add(p+".protocol", "unknown protocol %q: want modbus or opcua", pc.Protocol)
	}
}
