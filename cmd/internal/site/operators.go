package site

import (
	"errors"
	"os"

	"sortgw/gateway/operators"
)

// checkOperators reads the technicians' accounts file named by
// gateway.operators_file. Every bad line is an error at the key, with the
// accounts file's own file:line: field, so `sortgw check` and a refused
// start say which account to fix.
func (c *Config) checkOperators(add func(*Error)) {
	c.ops = nil
	path := c.Gateway.OperatorsFile
	if path == "" {
		return
	}
	set, err := operators.Load(path)
	var es operators.Errors
	switch {
	case errors.As(err, &es):
		for _, e := range es {
			add(c.at("gateway.operators_file", "%v", e))
		}
		return
	case err != nil:
		add(c.at("gateway.operators_file", "read operators file: %v", err))
		return
	}
	c.ops = set
	if set.Len() == 0 {
		c.Notes = append(c.Notes, c.file+": warning: operators file "+path+" holds no account: nobody can log in (sortgw operator add)")
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o007 != 0 {
		c.Notes = append(c.Notes, c.file+": warning: operators file "+path+" is readable by every user: chmod 600 (a PIN hash can be tried offline)")
	}
}
