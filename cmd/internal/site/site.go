// Package site is a sort center's gateway configuration: one YAML file
// that names the lines, their PLC links, scanners, plans and manifests, the
// status page and the journal. It loads the file, checks it and builds
// everything `sortgw run` runs.
//
// The file decodes straight into the packages' own Config structs
// (modbus.Config, opcua.Config, scanner.Config, gateway.LineConfig, ...)
// by their yaml tags; defaults come from their Validate methods. Check is
// Build without the journal: it constructs every link, scanner source,
// line and the gateway, parses every plan and manifest and installs them,
// but dials, listens and opens nothing. So `check` refuses exactly what
// `run` refuses, save for what only opening the journal shows (a file that
// is not a journal, another process's lock).
//
// Use: Load, then Check (sortgw check) or Build and Run (sortgw run).
// Errors are Errors: every problem at once, each at file:line:col of the
// key concerned, or of the plan cell.
package site

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"sortgw/cmd/internal/sdnotify"
	"sortgw/cmd/internal/upstream"
	"sortgw/devices/modbus"
	"sortgw/devices/opcua"
	"sortgw/devices/scanner"
	"sortgw/gateway"
	"sortgw/gateway/journal"
	"sortgw/gateway/operators"
)

// Config is a site file, decoded. Zero values take the owning package's
// default when the site is checked or built.
type Config struct {
	Gateway Gateway        `yaml:"gateway"`
	Journal journal.Config `yaml:"journal"`
	Log     Log            `yaml:"log"`
	Lines   []Line         `yaml:"lines"`
	// Upstream publishes the journal to NATS JetStream (off by default;
	// docs/upstream.md).
	Upstream upstream.Config `yaml:"upstream"`

	// Notes are what the last Check or Build has to say besides errors:
	// plan warnings, and one line per plan loaded.
	Notes []string `yaml:"-"`

	file  string
	token string         // from Gateway.Token or Gateway.TokenFile
	ops   *operators.Set // from Gateway.OperatorsFile
	root  *yaml.Node
	keys  map[string]*yaml.Node
	vals  map[*yaml.Node]*yaml.Node
}

// Gateway is the status page and the gateway's stop. Version is not a
// key: the command sets it to the build's version before Build.
type Gateway struct {
	gateway.Config `yaml:",inline"`
	// TokenFile names a file that holds the bearer token for actions: it
	// keeps the secret out of the site file. Set Token or TokenFile.
	TokenFile string `yaml:"token_file"`
}

// Log selects the process log. The logger itself is the command's.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default; journald, ELK) or console (people).
	Format string `yaml:"format"`
}

// Line is one sorter line: the gateway's line settings and its devices.
type Line struct {
	gateway.LineConfig `yaml:",inline"`
	PLC                PLC              `yaml:"plc"`
	Scanners           []scanner.Config `yaml:"scanners"`
}

// PLC selects the line's PLC link; exactly the protocol's block is set.
type PLC struct {
	// Protocol is modbus or opcua.
	Protocol string         `yaml:"protocol"`
	Modbus   *modbus.Config `yaml:"modbus"`
	OPCUA    *opcua.Config  `yaml:"opcua"`
}

// Load reads and decodes a site file. Unknown keys, values of the wrong
// kind and durations without a unit are errors here, each at its key;
// everything else is Check's. Relative paths in the file are taken
// relative to the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read site file: %w", err)
	}
	return Parse(path, data)
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Parse decodes a site file held in memory; name is used in errors and to
// resolve relative paths.
func Parse(name string, data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		e := &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if g := yamlLine.FindStringSubmatch(e.Msg); g != nil {
			e.Line, _ = strconv.Atoi(g[1])
			e.Col, e.Msg = 1, g[2]
		}
		return nil, Errors{e}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: name, Msg: "empty site file"}}
	}
	d := &decoder{file: name, keys: map[string]*yaml.Node{}, vals: map[*yaml.Node]*yaml.Node{}}
	c := &Config{file: name, root: doc.Content[0]}
	d.mapping(c.root, c.root, "", reflect.ValueOf(c).Elem())
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	c.keys, c.vals = d.keys, d.vals
	c.resolvePaths()
	return c, nil
}

// File is the site file's name as given to Load.
func (c *Config) File() string { return c.file }

func (c *Config) rel(p *string) {
	if *p != "" && !filepath.IsAbs(*p) {
		*p = filepath.Join(filepath.Dir(c.file), *p)
	}
}

// resolvePaths makes every file name in the site file absolute or relative
// to the working directory, once, at load.
func (c *Config) resolvePaths() {
	c.rel(&c.Gateway.TokenFile)
	c.rel(&c.Gateway.OperatorsFile)
	c.rel(&c.Journal.Path)
	for i := range c.Lines {
		l := &c.Lines[i]
		c.rel(&l.PlanFile)
		c.rel(&l.ManifestFile)
		if o := l.PLC.OPCUA; o != nil {
			c.rel(&o.CertFile)
			c.rel(&o.KeyFile)
			for j := range o.TrustedServerCerts {
				c.rel(&o.TrustedServerCerts[j])
			}
		}
	}
}

// Check builds the whole site as Build does, with no journal, and throws
// it away: it dials, listens and opens nothing. It returns Errors, every
// problem found, each at its key or plan cell.
func (c *Config) Check() error {
	_, err := c.build(zerolog.Nop(), nil)
	return err
}

// Site is a built site: the gateway with its lines, links, scanners and
// journal, nothing running yet.
type Site struct {
	gw  *gateway.Gateway
	j   *journal.Journal
	up  *upstream.Runner // nil: upstream off
	log zerolog.Logger

	notifier      *sdnotify.Notifier // nil: no systemd notifications
	watchdogEvery time.Duration
}

// Build checks cfg, opens the journal and builds the site. The journal is
// the only thing Check does not do; nothing dials or listens before Run.
func Build(cfg *Config, log zerolog.Logger) (*Site, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	j, err := journal.Open(cfg.Journal, log.With().Str("part", "journal").Logger())
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if n := j.LostAtRestart(); n > 0 {
		log.Warn().Int("items", n).Msg("items open at the last stop recorded as lost at restart")
	}
	s, err := cfg.build(log, j)
	if err != nil {
		_ = j.Close()
		return nil, err
	}
	return s, nil
}

// Gateway is the site's gateway (lines, status page, address).
func (s *Site) Gateway() *gateway.Gateway { return s.gw }

// Upstream is the site's upstream runner, nil when upstream is off.
func (s *Site) Upstream() *upstream.Runner { return s.up }

// Close releases a site that will not Run: it closes the journal. Run
// closes it itself, last.
func (s *Site) Close() error { return s.j.Close() }

// Run runs the site until ctx is done or a part fails, reloading every
// line's plan and manifest on each receive from reload. The gateway owns
// the stop order: lines drain, then HTTP, then the journal, closed last.
// With SetNotifier it tells systemd how it goes (see there).
func (s *Site) Run(ctx context.Context, reload <-chan struct{}) error {
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.gw.Run(ctx) }()

	started := s.gw.Started()
	var poll, watchdog <-chan time.Time // readiness poll, then watchdog pings
	var stopping <-chan struct{} = ctx.Done()
	ready, wedged := false, ""
	if s.notifier.Enabled() {
		t := time.NewTicker(readyPoll)
		defer t.Stop()
		poll = t.C
		if s.watchdogEvery > 0 {
			w := time.NewTicker(s.watchdogEvery)
			defer w.Stop()
			watchdog = w.C
		}
	}
	for {
		select {
		case <-started:
			started = nil
		case <-poll:
			if !ready && started == nil && s.linesRunning(start) {
				ready, poll = true, nil
				s.notify(sdnotify.Ready + "\nSTATUS=sorting")
			}
		case now := <-watchdog:
			// Only a live site pings: a wedged line loop stops the pings
			// and systemd restarts the gateway after WatchdogSec.
			// Before READY=1, TimeoutStartSec watches the start instead.
			if !ready {
				continue
			}
			if ok, line := s.alive(now); ok {
				wedged = ""
				s.notify(sdnotify.Watchdog)
			} else if wedged != line {
				wedged = line
				s.log.Error().Str("line", line).Msg("line loop not publishing: watchdog pings withheld")
			}
		case <-reload:
			began := time.Now()
			s.notify(sdnotify.ReloadingState())
			if err := s.gw.Reload(); err != nil {
				s.log.Error().Err(err).Msg("plan reload failed; old plan kept")
			} else {
				s.log.Info().Int64("took_ms", time.Since(began).Milliseconds()).Msg("plans reloaded")
			}
			s.notify(sdnotify.Ready)
		case <-stopping:
			stopping = nil
			s.notify(sdnotify.Stopping + "\nSTATUS=draining")
		case err := <-done:
			if stopping != nil {
				// A part failed: the gateway stopped by itself.
				s.notify(sdnotify.Stopping)
			}
			return err
		}
	}
}
