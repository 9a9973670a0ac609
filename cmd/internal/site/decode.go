package site

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder fills Go values from a yaml.Node tree by their yaml tags. It
// exists, instead of yaml.Decode, for three things a site file needs:
// errors at the key a person edits, in their words ("needs a unit"), and a
// map from every key path to its node, so that later checks can point at
// the key they concern. The device packages stay free of yaml code.
type decoder struct {
	file string
	errs Errors
	keys map[string]*yaml.Node     // "lines[0].plc.modbus.addr" -> its key node
	vals map[*yaml.Node]*yaml.Node // key node -> value node
}

var durationType = reflect.TypeFor[time.Duration]()

// field is one settable key of a struct, inline structs flattened.
type field struct {
	key   string
	index []int
}

// fields lists the yaml keys of struct type t in declaration order. A
// field without a yaml tag is not settable; TestEveryFieldTagged fails
// for it, so that every field of a Config is either a site setting or
// marked `yaml:"-"` with a reason.
func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("yaml")
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case !ok || name == "-":
		case opts == "inline":
			for _, sub := range fields(f.Type) {
				out = append(out, field{sub.key, append([]int{i}, sub.index...)})
			}
		default:
			out = append(out, field{name, []int{i}})
		}
	}
	return out
}

func (d *decoder) errAt(n *yaml.Node, path, format string, a ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, a...)})
}

// keyName is the last element of a path, the word a person typed.
func keyName(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		path = path[i+1:]
	}
	return path
}

// decode fills v from n. at is the node errors point to: the key for a
// mapping entry, the item for a sequence entry.
func (d *decoder) decode(n, at *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // key given without a value: keep the zero value (the default)
	}
	switch {
	case v.Type() == durationType:
		d.duration(n, at, path, v)
		return
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, at, path, v.Elem())
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, at, path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errAt(at, path, "%s wants a list (- item lines or [a, b])", keyName(path))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			d.keys[p], d.vals[item] = item, item
			d.decode(item, item, p, s.Index(i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errAt(at, path, "%s wants a single value, not a %s", keyName(path), kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errAt(at, path, "%s %q: want true or false", keyName(path), n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errAt(at, path, "%s %q: want a whole number", keyName(path), n.Value)
			return
		}
		if v.OverflowInt(i) {
			d.errAt(at, path, "%s %d is too large", keyName(path), i)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(n.Value, 10, 64)
		if n.Kind != yaml.ScalarNode || err != nil || v.OverflowUint(u) {
			max := uint64(1)<<v.Type().Bits() - 1
			d.errAt(at, path, "%s %q: want a whole number in 0..%d", keyName(path), n.Value, max)
			return
		}
		v.SetUint(u)
	default:
		panic(fmt.Sprintf("site: cannot decode into %s (%s)", v.Type(), path))
	}
}

// mapping fills struct v from mapping n, refusing unknown and repeated keys.
func (d *decoder) mapping(n, at *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		what := keyName(path)
		if what == "" {
			what = "a site file"
		}
		d.errAt(at, path, "%s wants keys (name: value), not a %s", what, kindName(n))
		return
	}
	fs := fields(v.Type())
	byKey := make(map[string]field, len(fs))
	for _, f := range fs {
		byKey[f.key] = f
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if first := seen[k.Value]; first != nil {
			d.errAt(k, p, "%s given twice (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		f, ok := byKey[k.Value]
		if !ok {
			msg := "unknown key " + strconv.Quote(k.Value)
			if s := suggest(k.Value, fs); s != "" {
				msg += ": did you mean " + s + "?"
			}
			d.errAt(k, p, "%s", msg)
			continue
		}
		d.keys[p], d.vals[k] = k, val
		d.decode(val, k, p, v.FieldByIndex(f.index))
	}
}

// duration reads "40s", "250ms", "1h30m". A bare number is refused: a
// site file that says "confirm_timeout: 40" means seconds to one reader
// and milliseconds to another.
func (d *decoder) duration(n, at *yaml.Node, path string, v reflect.Value) {
	key := keyName(path)
	if n.Kind != yaml.ScalarNode {
		d.errAt(at, path, "%s wants a duration such as 40s, not a %s", key, kindName(n))
		return
	}
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
		if f == 0 {
			return // 0: the default
		}
		d.errAt(at, path, "%s needs a unit, e.g. %ss", key, n.Value)
		return
	}
	t, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errAt(at, path, "%s %q is not a duration: write a number and a unit (ms, s, m, h), e.g. 40s", key, n.Value)
		return
	}
	v.SetInt(int64(t))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "block of keys"
	case yaml.SequenceNode:
		return "list"
	default:
		return "single value"
	}
}

// suggest returns the known key closest to an unknown one, if it is close
// enough to be a typo.
func suggest(key string, fs []field) string {
	if s, ok := renamed[key]; ok {
		return s
	}
	best, bestD := "", len(key)/3+2
	for _, f := range fs {
		d := editDistance(key, f.key)
		if len(key) >= 4 && strings.Contains(f.key, key) {
			d = 1 // "budget" for decision_budget
		}
		if d < bestD {
			best, bestD = f.key, d
		}
	}
	return best
}

// renamed maps keys of earlier site files to where they live now.
var renamed = map[string]string{
	"http":                "gateway",
	"retention":           "max_age",
	"drain_grace":         "gateway.drain_grace",
	"recirc_limit":        "recirculation_limit",
	"budget":              "decision_budget",
	"plan_file":           "plan",
	"manifest_file":       "manifest",
	"heartbeat_interval":  "heartbeat",
	"trusted_server_cert": "trusted_server_certs",
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
