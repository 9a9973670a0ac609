package site

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
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

// build makes every part. j nil: a check, no journal. It goes on past
// errors so that one run of check reports them all.
func (c *Config) build(log zerolog.Logger, j *journal.Journal) (*Site, error) {
	c.Notes = nil
	var errs Errors
	add := func(e *Error) { errs = append(errs, e) }

	c.checkGateway(add)
	if err := c.Journal.Validate(); err != nil {
		errs = append(errs, c.deviceErr("journal", reflect.TypeFor[journal.Config](), err, errors.New("journal config"))...)
	} else if e := c.checkJournalPath(); e != nil {
		add(e)
	}
	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		add(c.at("log.level", "unknown level %q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "json"
	case "json", "console":
	default:
		add(c.at("log.format", "unknown format %q: want json or console", c.Log.Format))
	}
	if len(c.Lines) == 0 {
		add(c.at("lines", "at least one line is required"))
	}

	m := gateway.NewMetrics()
	var lines []*gateway.Line
	names := map[string]string{}
	for i := range c.Lines {
		p := "lines[" + strconv.Itoa(i) + "]"
		l := &c.Lines[i]
		if first, dup := names[l.Name]; dup {
			add(c.at(p+".name", "duplicate line name %q (first at %s)", l.Name, first))
			continue
		}
		names[l.Name] = p
		if line := c.buildLine(p, l, log, j, m, add); line != nil {
			lines = append(lines, line)
		}
	}
	c.checkListeners(add)
	c.checkUpstream(add)
	if len(errs) > 0 {
		return nil, errs
	}
	gcfg := c.Gateway.Config
	gcfg.Token = c.token
	gcfg.Operators = c.ops
	var search gateway.Searcher
	if j != nil {
		gcfg.Journal, search = j, j
	}
	up, e := c.buildUpstream(j, lines, m, &gcfg, log)
	if e != nil {
		return nil, Errors{e}
	}
	gw, err := gateway.New(gcfg, lines, search, m, log.With().Str("part", "http").Logger())
	if err != nil {
		return nil, Errors{c.at("gateway", "%v", err)}
	}
	return &Site{gw: gw, j: j, up: up, log: log}, nil
}

// checkJournalPath refuses, short of opening it, a journal that Open
// would refuse for its path: a missing directory (systemd's StateDirectory
// makes it before ExecStartPre) or a directory in the file's place.
func (c *Config) checkJournalPath() *Error {
	p := c.Journal.Path
	if fi, err := os.Stat(filepath.Dir(p)); err != nil || !fi.IsDir() {
		return c.at("journal.path", "journal directory %s does not exist", filepath.Dir(p))
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return c.at("journal.path", "journal file %s is a directory", p)
	}
	return nil
}

// checkListeners refuses two listeners on one port, the status page's and
// the server-mode scanners' of every line: one of them could never bind
// (Run fails, or that scanner retries forever). Scanners of one line may share a listen address
// (by peer); the scanner source checks those.
func (c *Config) checkListeners(add func(*Error)) {
	type listener struct{ path, host, line string }
	byPort := map[string][]listener{}
	note := func(path, addr, line string) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "0" {
			return // a bad address has its own error; port 0 never clashes
		}
		wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
		for _, o := range byPort[port] {
			if (o.line == "" || o.line != line) && (host == o.host || wild(host) || wild(o.host)) {
				add(c.at(path, "%s is also bound at %s: two listeners on port %s", addr, o.path, port))
				return
			}
		}
		byPort[port] = append(byPort[port], listener{path, host, line})
	}
	note("gateway.listen", c.Gateway.Listen, "")
	for i, l := range c.Lines {
		for k, s := range l.Scanners {
			if s.Mode == scanner.ModeServer {
				note(fmt.Sprintf("lines[%d].scanners[%d].addr", i, k), s.Addr, l.Name)
			}
		}
	}
}

// tokenMin is the shortest bearer token accepted: a token is typed in
// once and kept, so there is no reason for a guessable one.
const tokenMin = 16

func (c *Config) checkGateway(add func(*Error)) {
	g := &c.Gateway
	if g.Token != "" && g.TokenFile != "" {
		add(c.at("gateway.token_file", "set token or token_file, not both"))
	}
	if g.TokenFile != "" {
		b, err := os.ReadFile(g.TokenFile)
		switch {
		case err != nil:
			add(c.at("gateway.token_file", "read token: %v", err))
		case strings.TrimSpace(string(b)) == "":
			add(c.at("gateway.token_file", "token file %s is empty", g.TokenFile))
		default:
			c.token = strings.TrimSpace(string(b))
		}
	} else {
		c.token = g.Token
	}
	if c.token != "" && len(c.token) < tokenMin {
		add(c.at("gateway.token", "token too short (%d characters): use at least %d", len(c.token), tokenMin))
	}
	if g.Token == "" && g.TokenFile == "" && g.OperatorsFile == "" {
		c.Notes = append(c.Notes, c.file+": warning: no gateway token: the status page is read-only")
	}
	c.checkOperators(add)
	var se *gateway.ShiftError
	if err := g.Validate(); errors.As(err, &se) {
		// A bad shift: at its own key, with the file's line.
		add(c.at(fmt.Sprintf("gateway.shifts[%d].%s", se.Index, se.Field), "%s", se.Msg))
	} else if err != nil {
		for _, e := range c.deviceErr("gateway", reflect.TypeFor[Gateway](), err, errors.New("gateway")) {
			add(e)
		}
	}
	// What the listen in Gateway.Run would refuse, short of binding.
	if _, port, err := net.SplitHostPort(g.Listen); err != nil {
		add(c.at("gateway.listen", "listen address %q: want host:port", g.Listen))
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		add(c.at("gateway.listen", "listen address %q: port %q is not a number in 0..65535", g.Listen, port))
	}
}

var lineName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// buildLine makes one line's PLC link, scanner source and gateway.Line and
// installs its plan. It returns nil after adding errors.
func (c *Config) buildLine(p string, l *Line, log zerolog.Logger, j *journal.Journal, m *gateway.Metrics, add func(*Error)) *gateway.Line {
	nerr := 0
	fail := func(e *Error) { add(e); nerr++ }
	failAll := func(es []*Error) {
		for _, e := range es {
			fail(e)
		}
	}
	if !lineName.MatchString(l.Name) {
		// The name is a metric label, a URL path element and a log field.
		fail(c.at(p+".name", "line name %q: want 1-32 letters, digits, _ or -", l.Name))
	}
	if err := l.LineConfig.Validate(); err != nil {
		failAll(c.deviceErr(p, reflect.TypeFor[Line](), err, errors.New("line "+l.Name)))
	}
	c.siteLimits(p, &l.LineConfig, fail)
	if err := l.Resolver.Validate(); err != nil {
		failAll(c.deviceErr(p+".resolver", reflect.TypeFor[sortplan.ResolverConfig](), err, errors.New("resolver")))
	}
	if l.PlanFile == "" {
		fail(c.at(p+".plan", "plan file is required"))
	}
	// The identity fields are attached here, once: a device's own log
	// lines add only what the device alone knows.
	llog := log.With().Str("line", l.Name).Logger()
	plc := c.buildPLC(p+".plc", l, llog, fail, failAll)
	src := c.buildScanners(p, l, llog, fail, failAll)
	if nerr > 0 {
		return nil
	}
	var jr gateway.Journal
	if j != nil {
		jr = j
	}
	line, err := gateway.NewLine(l.LineConfig, plc, src, jr, m, log)
	if err != nil {
		failAll(c.deviceErr(p, reflect.TypeFor[Line](), err, errors.New("line "+l.Name)))
		return nil
	}
	if !c.installPlan(p, l, line, fail) {
		return nil
	}
	return line
}

// siteLimits are bounds a site file must keep that the gateway package
// leaves open (its tests run with tiny budgets).
func (c *Config) siteLimits(p string, l *gateway.LineConfig, fail func(*Error)) {
	if l.Budget != 0 && (l.Budget < 10*time.Millisecond || l.Budget > 10*time.Second) {
		fail(c.at(p+".decision_budget", "decision budget %v out of range 10ms..10s", l.Budget))
	}
	if l.ConfirmTimeout != 0 && l.ConfirmTimeout < time.Second {
		fail(c.at(p+".confirm_timeout", "confirm timeout %v below 1s", l.ConfirmTimeout))
	}
	if l.RecircLimit > 100 {
		fail(c.at(p+".recirculation_limit", "recirculation limit %d out of range 1..100", l.RecircLimit))
	}
	if l.ContainerCapacity < 0 {
		fail(c.at(p+".container_capacity", "container capacity %d is negative", l.ContainerCapacity))
	}
}

func (c *Config) buildPLC(p string, l *Line, llog zerolog.Logger, fail func(*Error), failAll func([]*Error)) devices.PLCLink {
	pc := &l.PLC
	want := map[string]bool{"modbus": pc.Modbus != nil, "opcua": pc.OPCUA != nil}
	switch pc.Protocol {
	case "modbus", "opcua":
		if !want[pc.Protocol] {
			fail(c.at(p+".protocol", "protocol %s needs its block: plc.%s", pc.Protocol, pc.Protocol))
			return nil
		}
		for other, set := range want {
			if set && other != pc.Protocol {
				fail(c.at(p+"."+other, "%s block given but protocol is %s", other, pc.Protocol))
			}
		}
	case "":
		fail(c.at(p+".protocol", "protocol is required: modbus or opcua"))
		return nil
	default:
		fail(c.at(p+".protocol", "unknown protocol %q: want modbus or opcua", pc.Protocol))
		return nil
	}
	defName := l.Name + "-plc"
	if pc.Protocol == "modbus" {
		mc, bp := pc.Modbus, p+".modbus"
		if mc.Name == "" {
			mc.Name = defName
		}
		mc.Chutes = l.Chutes // the line's chute count sizes the PLC's blocks
		if mc.Addr != "" {
			if _, _, err := net.SplitHostPort(mc.Addr); err != nil {
				fail(c.at(bp+".addr", "PLC address %q: want host:port (Modbus TCP, usually port 502)", mc.Addr))
				return nil
			}
		}
		link, err := modbus.New(*mc, llog.With().Str("plc", mc.Name).Logger())
		if err != nil {
			failAll(c.deviceErr(bp, reflect.TypeFor[modbus.Config](), err, modbus.ErrInvalidConfig))
			return nil
		}
		*mc = link.Config() // defaults filled, for the caller to see
		return link
	}
	oc, bp := pc.OPCUA, p+".opcua"
	oc.Chutes = l.Chutes // Send refuses chutes above the line's count
	if oc.Name == "" {
		oc.Name = defName
	}
	link, err := opcua.New(*oc, llog.With().Str("plc", oc.Name).Logger())
	if err != nil {
		failAll(c.deviceErr(bp, reflect.TypeFor[opcua.Config](), err, opcua.ErrInvalidConfig))
		return nil
	}
	*oc = link.Config()
	return link
}

func (c *Config) buildScanners(p string, l *Line, llog zerolog.Logger, fail func(*Error), failAll func([]*Error)) devices.ScannerSource {
	if len(l.Scanners) == 0 {
		fail(c.at(p+".scanners", "at least one scanner is required"))
		return nil
	}
	ok := true
	for k := range l.Scanners {
		s, sp := &l.Scanners[k], p+".scanners["+strconv.Itoa(k)+"]"
		if s.Name == "" {
			s.Name = l.Name + "-S" + strconv.Itoa(k+1)
		}
		if s.NoReadToken == "" {
			// The line's resolver and its scanners must agree on the
			// no-read code; one setting serves both.
			s.NoReadToken = l.Resolver.NoReadToken
		}
		if err := s.Validate(); err != nil {
			failAll(c.deviceErr(sp, reflect.TypeFor[scanner.Config](), err, scanner.ErrConfig))
			ok = false
		}
	}
	if !ok {
		return nil
	}
	// scanner.New attaches "scanner" to each scanner's logger itself.
	src, err := scanner.New(l.Scanners, llog.With().Str("part", "scanners").Logger())
	if err != nil {
		// An error across scanners names them: place it at the last named,
		// the one that clashes with an earlier one.
		block, at := p+".scanners", -1
		for k, s := range l.Scanners {
			if strings.Contains(err.Error(), strconv.Quote(s.Name)) {
				at = k
			}
		}
		if at >= 0 {
			block += "[" + strconv.Itoa(at) + "]"
		}
		failAll(c.deviceErr(block, reflect.TypeFor[scanner.Config](), err, scanner.ErrConfig))
		return nil
	}
	return src
}

// installPlan loads the line's plan and manifest as a reload would and
// installs them; a plan problem is reported at its cell, a missing file
// where the site file names it.
func (c *Config) installPlan(p string, l *Line, line *gateway.Line, fail func(*Error)) bool {
	plan, diags, err := sortplan.LoadPlan(l.PlanFile, l.Chutes)
	for _, d := range diags {
		if d.Warning {
			c.Notes = append(c.Notes, d.String())
			continue
		}
		fail(&Error{File: d.File, Line: d.Line, Col: d.Col, Msg: d.Msg})
	}
	if err != nil {
		if len(diags) == 0 {
			fail(c.at(p+".plan", "%s", fileErr("plan", l.PlanFile, err)))
		}
		return false
	}
	var man *sortplan.Manifest
	if l.ManifestFile != "" {
		if man, err = sortplan.LoadManifestLimit(l.ManifestFile, max(l.MaxManifestBytes, 0)); err != nil {
			fail(c.at(p+".manifest", "%s", fileErr("manifest", l.ManifestFile, err)))
			return false
		}
	}
	if _, err := line.InstallPlan(plan, man); err != nil {
		fail(c.at(p+".plan", "%v", err))
		return false
	}
	c.Notes = append(c.Notes, fmt.Sprintf("line %s: plan %s version %d, %d rules: ok", l.Name, plan.Name, plan.Version, len(plan.Rules)))
	return true
}

// fileErr says what is wrong with a named file in plain words.
func fileErr(what, name string, err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("%s file %s does not exist", what, name)
	case errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("%s file %s: permission denied", what, name)
	}
	return err.Error()
}
