package site

import (
	"time"

	"sortgw/cmd/internal/sdnotify"
)

// snapshotStale is how old a line's snapshot may be while the site still
// counts as alive for the watchdog. A line's loop publishes every 250 ms
// while it runs; a loop wedged for this long stops the pings, and systemd
// restarts the gateway once WatchdogSec passes without one.
const snapshotStale = 5 * time.Second

// readyPoll is how often Run looks whether every line runs, until it does.
const readyPoll = 50 * time.Millisecond

// SetNotifier makes Run report to systemd (sd_notify): READY=1 once the
// status page listens and every line runs, RELOADING=1 and READY=1 around
// each reload, STOPPING=1 when the drain starts, and, with watchdogEvery
// above 0, WATCHDOG=1 at that interval while every line's loop is alive.
// Call it before Run.
func (s *Site) SetNotifier(n *sdnotify.Notifier, watchdogEvery time.Duration) {
	s.notifier, s.watchdogEvery = n, watchdogEvery
}

func (s *Site) notify(state string) {
	if err := s.notifier.Notify(state); err != nil {
		s.log.Warn().Err(err).Msg("systemd notification failed")
	}
}

// linesRunning reports whether every line's loop has published since
// start: the lines take reads.
func (s *Site) linesRunning(start time.Time) bool {
	for _, l := range s.gw.Lines() {
		if snap := l.Snapshot(); snap == nil || snap.At.Before(start) {
			return false
		}
	}
	return true
}

// alive reports whether every line's loop published within snapshotStale,
// and names the first line that did not.
func (s *Site) alive(now time.Time) (bool, string) {
	for _, l := range s.gw.Lines() {
		if snap := l.Snapshot(); snap == nil || now.Sub(snap.At) > snapshotStale {
			return false, l.Name()
		}
	}
	return true, ""
}
