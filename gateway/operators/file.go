package operators

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Add puts the account name with role and pin into the file at path,
// replacing the account of that name (any case) or appending it; the
// other lines, comments included, stay as they are. A missing file is
// created. The file is written to a temporary file in its directory,
// synced and renamed over the old one, mode 0600: a crash leaves the old
// file or the new one, never half of one. It refuses a file that does
// not parse (fix it first) and a weak PIN. replaced says whether the
// account existed. rnd is the salt's source (nil: crypto/rand).
func Add(path, name string, role Role, pin string, iterations int, rnd io.Reader) (replaced bool, err error) {
	if err := CheckName(name); err != nil {
		return false, fmt.Errorf("name: %w", err)
	}
	if role == RoleNone || role > Lead {
		return false, fmt.Errorf("role: want technician, lead or viewer")
	}
	if err := CheckPIN(pin); err != nil {
		return false, fmt.Errorf("PIN: %w", err)
	}
	data, err := readFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data = []byte("# sortgw technician accounts: name:role:hash (sortgw operator add)\n")
	case err != nil:
		return false, err
	}
	set, err := Parse(path, data)
	if err != nil {
		return false, fmt.Errorf("%w\n(fix the file before adding to it)", err)
	}
	h, err := NewHash(pin, iterations, rnd)
	if err != nil {
		return false, err
	}
	entry := name + ":" + role.String() + ":" + h.String()
	lines := strings.Split(string(data), "\n")
	if old, ok := set.Lookup(name); ok {
		lines[old.Line-1] = entry
		replaced = true
	} else {
		if n := len(lines); n > 0 && lines[n-1] == "" {
			lines = lines[:n-1]
		}
		lines = append(lines, entry, "")
	}
	out := []byte(strings.Join(lines, "\n"))
	if _, err := Parse(path, out); err != nil {
		return false, fmt.Errorf("the new file would not parse (not written): %w", err)
	}
	return replaced, writeAtomic(path, out)
}

// writeAtomic replaces path with data, mode 0600.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	// The rename is durable once the directory is.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
