package gateway

import (
	"encoding/csv"
	"io"
)

// csvWriter writes CSV that a spreadsheet opens as text, never as a
// formula. Label codes, destinations and routes come from parcels and
// plans, so a code like =HYPERLINK("http://…") is input, not trusted.
// Every cell that begins with =, +, -, @, a tab or a carriage return is
// prefixed with a single quote, as OWASP's CSV injection rule says; the
// quote is visible in the cell, which is the point (the value was not
// what it seemed).
type csvWriter struct {
	w   *csv.Writer
	row []string
}

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: csv.NewWriter(w)} }

// Write writes one row, neutralising cells that a spreadsheet would run.
func (c *csvWriter) Write(cells []string) error {
	c.row = c.row[:0]
	for _, s := range cells {
		c.row = append(c.row, csvCell(s))
	}
	return c.w.Write(c.row)
}

// Flush flushes the writer and returns its first error.
func (c *csvWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// csvCell neutralises one cell.
func csvCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
