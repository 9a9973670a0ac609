package main

import (
	"io"
	"log"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
)

// logTimeFormat stamps every line to the millisecond: a sorter moves an
// item 2-3 cm per millisecond, and seconds cannot order a divert's events.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

var setLogGlobals sync.Once

// newLogger makes the process logger: JSON for sites (journald, ELK),
// console for people. Console output is coloured only on a terminal.
// Durations logged with .Dur are float milliseconds; their keys end in _ms.
func newLogger(w io.Writer, format, level string) zerolog.Logger {
	setLogGlobals.Do(func() {
		zerolog.TimeFieldFormat = logTimeFormat
		zerolog.DurationFieldUnit = time.Millisecond
		zerolog.DurationFieldInteger = false
	})
	lv, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lv = zerolog.InfoLevel
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(lv).With().Timestamp().Logger()
}

// isTerminal reports whether w is a terminal (colour is for people only;
// journald, pipes and files get plain text). A character device is taken
// for one, which keeps go-isatty out of the direct dependencies.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// simLogger is newLogger for the commands that run the emulated sorter in
// process (demo, bench): gopcua's server prints through the standard
// library's global logger, which a binary may redirect and a library may
// not; its lines go into this logger at debug level, not raw to stderr.
func simLogger(w io.Writer, level string) zerolog.Logger {
	l := newLogger(w, "console", level)
	log.SetFlags(0)
	log.SetOutput(fieldbussim.LibraryLogWriter(l.With().Str("part", "opcua-server").Logger()))
	return l
}
