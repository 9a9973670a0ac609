package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"sortgw/cmd/internal/site"
)

// ErrNoLine: the site file has no line of that name.
var ErrNoLine = errors.New("no such line")

// Line probes the PLC of the named line of a loaded site file, with the
// line's own link settings and chute count. The site need not pass
// `sortgw check` (a plan may not exist yet at commissioning); the link
// settings are validated here.
func Line(ctx context.Context, cfg *site.Config, name string, opt Options) (*Report, error) {
	var names []string
	for _, l := range cfg.Lines {
		names = append(names, l.Name)
		if l.Name != name {
			continue
		}
		opt.Line = name
		switch l.PLC.Protocol {
		case "modbus":
			if l.PLC.Modbus == nil {
				return nil, fmt.Errorf("line %s: protocol modbus needs plc.modbus", name)
			}
			mc := *l.PLC.Modbus
			mc.Chutes = l.Chutes
			if mc.Name == "" {
				mc.Name = name + "-plc"
			}
			return Modbus(ctx, mc, opt), nil
		case "opcua":
			if l.PLC.OPCUA == nil {
				return nil, fmt.Errorf("line %s: protocol opcua needs plc.opcua", name)
			}
			oc := *l.PLC.OPCUA
			oc.Chutes = l.Chutes
			if oc.Name == "" {
				oc.Name = name + "-plc"
			}
			return OPCUA(ctx, oc, opt), nil
		default:
			return nil, fmt.Errorf("line %s: plc protocol %q: want modbus or opcua", name, l.PLC.Protocol)
		}
	}
	return nil, fmt.Errorf("line %q: %w (the site has %s)", name, ErrNoLine, strings.Join(names, ", "))
}
