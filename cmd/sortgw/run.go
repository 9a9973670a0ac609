package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/modbus"
	"sortgw/devices/opcua"
	"sortgw/devices/scanner"
	"sortgw/gateway"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// modbusConfig converts the YAML section to the link's Config.
func modbusConfig(name string, chutes int, m *ModbusConfig) modbus.Config {
	return modbus.Config{
		Name: name, Addr: m.Addr, UnitID: byte(m.UnitID), HostBase: uint16(m.HostBase), DivertBase: uint16(m.DivertBase),
		PLCBase: uint16(m.PLCBase), Ring: m.Ring, Chutes: chutes, WordOrder: m.WordOrder, Poll: m.Poll, Heartbeat: m.Heartbeat,
		Timeout: m.Timeout, PLCWatchdog: m.PLCWatchdog, BackoffMin: m.BackoffMin, BackoffMax: m.BackoffMax, QueueSize: m.QueueSize,
		Connections: m.Connections,
	}
}

func opcuaConfig(name string, o *OPCUAConfig) opcua.Config {
	return opcua.Config{
		Name: name, Endpoint: o.Endpoint, Namespace: o.Namespace, NodePrefix: o.NodePrefix, Ring: o.Ring, Security: o.Security,
		Policy: o.Policy, CertFile: o.CertFile, KeyFile: o.KeyFile, TrustedServerCerts: o.TrustedServerCerts,
		PublishInterval: o.PublishInterval, Timeout: o.Timeout, BackoffMin: o.BackoffMin, BackoffMax: o.BackoffMax, QueueSize: o.QueueSize,
	}
}

func scannerConfig(s *ScannerCfg) scanner.Config {
	return scanner.Config{
		Name: s.Name, Addr: s.Addr, Mode: s.Mode, Framing: s.Framing, MaxFrame: s.MaxFrame, HeartbeatTimeout: s.HeartbeatTimeout,
		NoReadToken: s.NoReadToken, HeartbeatToken: s.HeartbeatToken, Separator: s.Separator, BackoffMin: s.BackoffMin,
		BackoffMax: s.BackoffMax, Peer: s.Peer,
	}
}

// checkModbus runs the link's own validation so that check catches what
// the link would refuse at start.
func checkModbus(name string, chutes int, m *ModbusConfig) error {
	c := modbusConfig(name, chutes, m)
	return c.Validate()
}

func checkOPCUA(name string, o *OPCUAConfig) error {
	c := opcuaConfig(name, o)
	return c.Validate()
}

func resolverConfig(r ResolverConfig) sortplan.ResolverConfig {
	return sortplan.ResolverConfig{CountryCode: r.CountryCode, Patterns: r.Patterns, NoReadToken: r.NoReadToken, RequireSymbologyID: r.RequireSymbologyID}
}

// newPLC makes the configured PLC link.
func newPLC(l *LineConfig, log zerolog.Logger) (devices.PLCLink, error) {
	switch l.PLC.Protocol {
	case "opcua":
		return opcua.New(opcuaConfig(l.PLC.Name, l.PLC.OPCUA), log)
	default:
		return modbus.New(modbusConfig(l.PLC.Name, l.Chutes, l.PLC.Modbus), log)
	}
}

// newLogger makes the process logger: JSON for sites, console for people.
func newLogger(w io.Writer, format, level string) zerolog.Logger {
	lv, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lv = zerolog.InfoLevel
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(lv).With().Timestamp().Logger()
}

// site is a configured gateway with everything it runs.
type site struct {
	gw      *gateway.Gateway
	journal *journal.Journal
	log     zerolog.Logger
}

// buildSite opens the journal, makes the device links and lines, loads the
// plans and makes the gateway. Nothing runs yet.
func buildSite(cfg *Config, log zerolog.Logger) (*site, error) {
	j, err := journal.Open(journal.Config{Path: cfg.Journal.Path, MaxAge: cfg.Journal.Retention}, log.With().Str("part", "journal").Logger())
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if n := j.LostAtRestart(); n > 0 {
		log.Warn().Int("items", n).Msg("items open at the last stop recorded as lost at restart")
	}
	m := gateway.NewMetrics()
	var lines []*gateway.Line
	fail := func(err error) (*site, error) {
		_ = j.Close()
		return nil, err
	}
	for i := range cfg.Lines {
		lc := &cfg.Lines[i]
		llog := log.With().Str("line", lc.Name).Logger()
		plc, err := newPLC(lc, llog.With().Str("plc", lc.PLC.Name).Logger())
		if err != nil {
			return fail(fmt.Errorf("line %s: %w", lc.Name, err))
		}
		var scs []scanner.Config
		for k := range lc.Scanners {
			scs = append(scs, scannerConfig(&lc.Scanners[k]))
		}
		src, err := scanner.New(scs, llog.With().Str("part", "scanners").Logger())
		if err != nil {
			return fail(fmt.Errorf("line %s: %w", lc.Name, err))
		}
		line, err := gateway.NewLine(gateway.LineConfig{
			Name: lc.Name, Chutes: lc.Chutes, RecircLimit: lc.RecirculationLimit, Budget: lc.DecisionBudget,
			ConfirmTimeout: lc.ConfirmTimeout, ContainerCapacity: lc.ContainerCapacity, PlanFile: lc.Plan,
			ManifestFile: lc.Manifest, Resolver: resolverConfig(lc.Resolver),
		}, plc, src, j, m, log)
		if err != nil {
			return fail(err)
		}
		if _, err := line.ReloadPlan(); err != nil {
			// Start degraded rather than not at all: items go round with
			// reason 7 until a good plan is loaded (SIGHUP).
			log.Error().Err(err).Str("line", lc.Name).Msg("no plan loaded; line runs degraded")
		}
		lines = append(lines, line)
	}
	gw, err := gateway.New(gateway.Config{Listen: cfg.HTTP.Listen, Token: cfg.HTTP.Token, DrainGrace: cfg.DrainGrace, Version: version, Journal: j},
		lines, j, m, log.With().Str("part", "http").Logger())
	if err != nil {
		return fail(err)
	}
	return &site{gw: gw, journal: j, log: log}, nil
}

// run runs the site until ctx is done, reloading plans on hup. The
// gateway owns the stop order (lines drain, then HTTP, then the journal,
// which it closes last).
func (s *site) run(ctx context.Context, hup <-chan os.Signal) error {
	done := make(chan error, 1)
	go func() { done <- s.gw.Run(ctx) }()
	for {
		select {
		case <-hup:
			if rerr := s.gw.Reload(); rerr != nil {
				s.log.Error().Err(rerr).Msg("plan reload failed; old plan kept")
			} else {
				s.log.Info().Msg("plans reloaded")
			}
		case err := <-done:
			return err
		}
	}
}

// cmdRun is `sortgw run -config site.yaml`.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/sortgw/site.yaml", "site configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := newLogger(stderr, cfg.Log.Format, cfg.Log.Level)
	s, err := buildSite(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("start failed")
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	start := time.Now()
	log.Info().Str("version", version).Str("config", *cfgPath).Msg("sortgw starting")
	if err := s.run(ctx, hup); err != nil {
		log.Error().Err(err).Msg("sortgw stopped with an error")
		return 1
	}
	log.Info().Dur("uptime", time.Since(start)).Msg("sortgw stopped")
	return 0
}
