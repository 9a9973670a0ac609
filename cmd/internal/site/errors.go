package site

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every Errors: the site file, or a plan or
// manifest it names, is wrong (as opposed to a journal that cannot open).
var ErrInvalid = errors.New("invalid site configuration")

// Error is one problem, at the position a person edits: the offending key
// in the site file, or the cell in a plan file.
type Error struct {
	File      string
	Line, Col int    // 1-based; 0 when the problem concerns the whole file
	Path      string // key path, e.g. lines[0].plc.modbus.addr; empty in plan files
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found, in file order per check.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (es Errors) Unwrap() error { return ErrInvalid }

// at makes an error at path, positioned at its key or, if the key is not in
// the file (a default is wrong), at its closest parent that is, else at
// the file as a whole.
func (c *Config) at(path, format string, a ...any) *Error {
	e := &Error{File: c.file, Path: path, Msg: fmt.Sprintf(format, a...)}
	for p := path; p != ""; {
		if n := c.keys[p]; n != nil {
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

// phrases maps words that device packages use in their messages to the
// key they concern, where the words are not simply the key's own.
var phrases = map[string]string{
	"host block":          "host_base",
	"divert ring":         "divert_base",
	"plc block":           "plc_base",
	"client certificate":  "cert_file",
	"key file":            "key_file",
	"trusted server":      "trusted_server_certs",
	"recirculation limit": "recirculation_limit",
	"decision budget":     "decision_budget",
}

// keyFor finds the key of block (whose Go type is t) that one of a
// package's Validate messages concerns: a key whose words ("word order",
// "max frame", "keep-alive") appear in the message, else a key whose value
// (a file name, an address) does. Keys the file sets win over keys it
// leaves to their default, then the one named first: the subject of the
// sentence. It returns "" when nothing fits.
func (c *Config) keyFor(block string, t reflect.Type, msg string) string {
	lower := strings.ToLower(msg)
	best, bestSet, bestPos, bestLen := "", false, len(lower)+1, 0
	try := func(key, phrase string) {
		loc := regexp.MustCompile(`\b` + regexp.QuoteMeta(phrase) + `\b`).FindStringIndex(lower)
		if loc == nil {
			return
		}
		set := c.keys[block+"."+key] != nil
		switch {
		case set != bestSet:
			if !set {
				return
			}
		case loc[0] > bestPos, loc[0] == bestPos && len(phrase) <= bestLen:
			return
		}
		best, bestSet, bestPos, bestLen = key, set, loc[0], len(phrase)
	}
	fs := fields(t)
	for _, f := range fs {
		for _, sep := range []string{" ", "-", "_", ""} {
			try(f.key, strings.ReplaceAll(f.key, "_", sep))
		}
	}
	for phrase, key := range phrases {
		for _, f := range fs {
			if f.key == key {
				try(key, phrase)
			}
		}
	}
	if best != "" {
		return best
	}
	for _, f := range fs {
		if f.key == "name" {
			continue // names appear in every message
		}
		for p, n := range c.values(block + "." + f.key) {
			if len(n.Value) >= 3 && strings.Contains(msg, n.Value) {
				return p[len(block)+1:]
			}
		}
	}
	return ""
}

// values returns the scalar value nodes at path: one for a key, one per
// item for a list.
func (c *Config) values(path string) map[string]*yaml.Node {
	k := c.keys[path]
	if k == nil {
		return nil
	}
	out := map[string]*yaml.Node{}
	if v := c.vals[k]; v != nil {
		switch v.Kind {
		case yaml.ScalarNode:
			out[path] = v
		case yaml.SequenceNode:
			for i, item := range v.Content {
				if item.Kind == yaml.ScalarNode {
					out[path+"["+strconv.Itoa(i)+"]"] = item
				}
			}
		}
	}
	return out
}

// quotedName is the `"name": ` that package messages start with.
var quotedName = regexp.MustCompile(`^((?:plc |scanner |line )?"[^"]*":? )`)

// deviceErr places a package's Validate or New error at the key of block
// it concerns, without the package's generic prefix. A message that lists
// several problems ("a; b") becomes one error per problem, each at its key.
func (c *Config) deviceErr(block string, t reflect.Type, err error, prefix error) []*Error {
	msg := err.Error()
	if prefix != nil {
		msg = strings.TrimPrefix(msg, prefix.Error()+": ")
		msg = strings.TrimPrefix(msg, prefix.Error()+" ")
	}
	name := quotedName.FindString(msg)
	var out []*Error
	for _, m := range strings.Split(msg[len(name):], "; ") {
		at := block
		if k := c.keyFor(block, t, m); k != "" {
			at = block + "." + k
		}
		out = append(out, c.at(at, "%s%s", name, m))
	}
	return out
}
