package main

import (
	"context"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"sortgw/gateway"
	"sortgw/gateway/journal"
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

// site is a gateway the bench and the demo wire by hand.
// TODO(loadtest): goes with bench and demo into cmd/internal/loadtest.
type site struct {
	gw      *gateway.Gateway
	journal *journal.Journal
	log     zerolog.Logger
}

// run runs the gateway until ctx is done, reloading plans on hup.
func (s *site) run(ctx context.Context, hup <-chan os.Signal) error {
	done := make(chan error, 1)
	go func() { done <- s.gw.Run(ctx) }()
	for {
		select {
		case <-hup:
			if err := s.gw.Reload(); err != nil {
				s.log.Error().Err(err).Msg("plan reload failed; old plan kept")
			}
		case err := <-done:
			return err
		}
	}
}
