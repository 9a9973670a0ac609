// Package operators holds the technician accounts of the status page: a
// text file of name:role:hash lines, the PIN hash (PBKDF2-SHA256) and its
// constant-time check, and the atomic rewrite that adds or replaces an
// account. It does no HTTP and keeps no sessions; package gateway does.
//
// The file, one account a line, '#' starts a comment line:
//
//	# name:role:pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>
//	alice:technician:pbkdf2-sha256$600000$3q2+7w...$Xb4...
package operators

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Role is what an account may do. Higher roles may do everything lower
// ones may.
type Role uint8

// Roles, lowest first.
const (
	// RoleNone is no role: nothing is allowed.
	RoleNone Role = iota
	// Viewer sees the page but acts on nothing.
	Viewer
	// Technician enables and disables chutes and acknowledges and
	// shelves alarms.
	Technician
	// Lead also reloads the plan and closes, loads and dispatches
	// containers.
	Lead
)

var roleNames = [...]string{RoleNone: "none", Viewer: "viewer", Technician: "technician", Lead: "lead"}

// String names the role as the file, the JSON and the journal write it.
func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// ParseRole is the inverse of String for the three account roles.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "technician":
		return Technician, nil
	case "lead":
		return Lead, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q: want technician, lead or viewer", s)
}

// MarshalText makes a Role a string in JSON.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Hashing parameters.
const (
	// DefaultIterations is what new hashes get (OWASP's 2023 figure for
	// PBKDF2-HMAC-SHA256). A PIN has few digits: the iterations are what
	// makes a stolen file slow to try.
	DefaultIterations = 600_000
	// MinIterations and MaxIterations bound what a file may say: below,
	// the hash is no protection; above, one login pins a core for
	// seconds.
	MinIterations = 1_000
	MaxIterations = 10_000_000
	// SaltBytes is the salt length of new hashes.
	SaltBytes = 16
	hashBytes = sha256.Size
	scheme    = "pbkdf2-sha256"
)

// PIN limits: digits only, so that a numeric keypad can enter it.
const (
	MinPINDigits = 4
	MaxPINDigits = 32
)

// ErrWeakPIN: a PIN that is not 4 to 32 digits.
var ErrWeakPIN = fmt.Errorf("a PIN is %d to %d digits", MinPINDigits, MaxPINDigits)

// CheckPIN refuses a PIN that is not all digits or has fewer than
// MinPINDigits.
func CheckPIN(pin string) error {
	if len(pin) < MinPINDigits || len(pin) > MaxPINDigits {
		return ErrWeakPIN
	}
	for i := 0; i < len(pin); i++ {
		if pin[i] < '0' || pin[i] > '9' {
			return ErrWeakPIN
		}
	}
	return nil
}

// Hash is one PIN hash: PBKDF2-HMAC-SHA256 of the PIN with Salt,
// Iterations times, 32 bytes.
type Hash struct {
	Iterations int
	Salt       []byte
	Sum        []byte
}

var b64 = base64.RawStdEncoding

// String encodes the hash as the file holds it.
func (h Hash) String() string {
	return scheme + "$" + strconv.Itoa(h.Iterations) + "$" + b64.EncodeToString(h.Salt) + "$" + b64.EncodeToString(h.Sum)
}

// NewHash hashes pin with a fresh salt from rnd (crypto/rand when nil).
func NewHash(pin string, iterations int, rnd io.Reader) (Hash, error) {
	if iterations < MinIterations || iterations > MaxIterations {
		return Hash{}, fmt.Errorf("iterations %d: want %d..%d", iterations, MinIterations, MaxIterations)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	salt := make([]byte, SaltBytes)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return Hash{}, fmt.Errorf("salt: %w", err)
	}
	sum, err := derive(pin, salt, iterations)
	if err != nil {
		return Hash{}, err
	}
	return Hash{Iterations: iterations, Salt: salt, Sum: sum}, nil
}

func derive(pin string, salt []byte, iter int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, pin, salt, iter, hashBytes)
}

// Verify reports whether pin hashes to h; the comparison takes the same
// time wherever the first difference is.
func (h Hash) Verify(pin string) bool {
	sum, err := derive(pin, h.Salt, h.Iterations)
	if err != nil {
		return false
	}
	return hmac.Equal(sum, h.Sum)
}

// ParseHash decodes a hash field.
func ParseHash(s string) (Hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 || parts[0] != scheme {
		return Hash{}, fmt.Errorf("want %s$<iterations>$<salt base64>$<hash base64>", scheme)
	}
	it, err := strconv.Atoi(parts[1])
	if err != nil || it < MinIterations || it > MaxIterations {
		return Hash{}, fmt.Errorf("iterations %q: want a number in %d..%d", parts[1], MinIterations, MaxIterations)
	}
	salt, err := b64.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return Hash{}, fmt.Errorf("salt: want 8 to 64 bytes of base64")
	}
	sum, err := b64.DecodeString(strings.TrimRight(parts[3], "="))
	if err != nil || len(sum) != hashBytes {
		return Hash{}, fmt.Errorf("hash: want %d bytes of base64", hashBytes)
	}
	return Hash{Iterations: it, Salt: salt, Sum: sum}, nil
}

// Operator is one account.
type Operator struct {
	Name string
	Role Role
	Hash Hash
	// Line is the account's line in its file (1-based).
	Line int
}

// CheckName refuses names the file, the journal or the page cannot hold:
// 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or
// digit.
func CheckName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > 32 || !utf8.ValidString(name) {
		return errors.New("want 1 to 32 letters, digits, '.', '_' or '-'")
	}
	for i, r := range name {
		ok := unicode.IsLetter(r) || unicode.IsDigit(r) || (i > 0 && (r == '.' || r == '_' || r == '-'))
		if !ok {
			return fmt.Errorf("%q: want 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
		}
	}
	return nil
}

// Error is one bad line of an operators file.
type Error struct {
	File  string
	Line  int
	Field string // name, role, hash or line (the whole line)
	Msg   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// Errors are every bad line of a file.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Set is a parsed operators file. Names are unique regardless of case;
// Lookup ignores case.
type Set struct {
	File string
	ops  []Operator
	by   map[string]int // lower-cased name -> index in ops
	// dummy is verified against for unknown names, so that an unknown
	// name costs as much time as a wrong PIN.
	dummy Hash
}

// MaxFileBytes bounds an operators file.
const MaxFileBytes = 1 << 20

// Parse reads an operators file held in memory; name is used in errors.
// It returns every bad line at once (Errors).
func Parse(name string, data []byte) (*Set, error) {
	s := &Set{File: name, by: map[string]int{}}
	if len(data) > MaxFileBytes {
		return nil, Errors{{File: name, Line: 1, Field: "line", Msg: fmt.Sprintf("file larger than %d bytes", MaxFileBytes)}}
	}
	var errs Errors
	bad := func(line int, field, format string, a ...any) {
		errs = append(errs, &Error{File: name, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		n := i + 1
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 {
			bad(n, "line", "want name:role:hash, found %d fields", len(f))
			continue
		}
		op := Operator{Name: strings.TrimSpace(f[0]), Line: n}
		ok := true
		if err := CheckName(op.Name); err != nil {
			bad(n, "name", "%v", err)
			ok = false
		} else if first, dup := s.by[strings.ToLower(op.Name)]; dup {
			bad(n, "name", "%q given twice (first at line %d)", op.Name, s.ops[first].Line)
			ok = false
		}
		r, err := ParseRole(strings.TrimSpace(f[1]))
		if err != nil {
			bad(n, "role", "%v", err)
			ok = false
		}
		op.Role = r
		h, err := ParseHash(strings.TrimSpace(f[2]))
		if err != nil {
			bad(n, "hash", "%v", err)
			ok = false
		}
		op.Hash = h
		if ok {
			s.by[strings.ToLower(op.Name)] = len(s.ops)
			s.ops = append(s.ops, op)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	s.dummy = Hash{Iterations: DefaultIterations, Salt: make([]byte, SaltBytes), Sum: make([]byte, hashBytes)}
	if len(s.ops) > 0 {
		s.dummy.Iterations = 0
		for _, op := range s.ops {
			s.dummy.Iterations = max(s.dummy.Iterations, op.Hash.Iterations)
		}
	}
	return s, nil
}

// Load reads and parses an operators file.
func Load(path string) (*Set, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// Len is the number of accounts.
func (s *Set) Len() int { return len(s.ops) }

// Operators returns the accounts in file order.
func (s *Set) Operators() []Operator { return append([]Operator(nil), s.ops...) }

// Lookup finds an account by name, ignoring case.
func (s *Set) Lookup(name string) (Operator, bool) {
	i, ok := s.by[strings.ToLower(name)]
	if !ok {
		return Operator{}, false
	}
	return s.ops[i], true
}

// Verify checks name and pin. An unknown name costs one hash too, so
// that the time taken does not tell which names exist.
func (s *Set) Verify(name, pin string) (Operator, bool) {
	op, ok := s.Lookup(name)
	if !ok {
		s.dummy.Verify(pin)
		return Operator{}, false
	}
	if !op.Hash.Verify(pin) {
		return Operator{}, false
	}
	return op, true
}
