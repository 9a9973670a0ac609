package site

import (
	"fmt"
	"net"

	"sortgw/devices/scanner"
)

// ProbeListeners binds, and at once releases, every address the site will
// listen on: the status page and the server-mode scanners. Check does not
// (it does no I/O), so that it can run beside a live gateway; `sortgw
// check` calls this too, because a port another program holds is what
// keeps a site from running, and the unit's ExecStartPre is the place to
// say so. Each error is at its key.
func (c *Config) ProbeListeners() error {
	var errs Errors
	probe := func(path, addr, what string) {
		if addr == "" {
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			errs = append(errs, c.at(path, "%s cannot listen on %s: %v (another program holds it; if it is this gateway, run check with -bind=false)", what, addr, err))
			return
		}
		_ = ln.Close()
	}
	probe("gateway.listen", c.Gateway.Listen, "the status page")
	seen := map[string]bool{}
	for i, l := range c.Lines {
		for k, s := range l.Scanners {
			if s.Mode != scanner.ModeServer || seen[s.Addr] {
				continue
			}
			seen[s.Addr] = true
			probe(fmt.Sprintf("lines[%d].scanners[%d].addr", i, k), s.Addr, "scanner "+s.Name)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}
