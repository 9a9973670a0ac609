package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	// Aliased while bench and demo still declare a type site here.
	"sortgw/cmd/internal/sdnotify"
	"sortgw/cmd/internal/site"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// cmdRun is `sortgw run -config site.yaml`.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/sortgw/site.yaml", "site configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := site.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg.Gateway.Version = version
	log := newLogger(stderr, cfg.Log.Format, cfg.Log.Level)
	s, err := site.Build(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		log.Error().Str("config", *cfgPath).Msg("start failed: the site file, a plan or the journal is wrong (see above)")
		return 1
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				case <-runCtx.Done():
					return
				}
			case <-runCtx.Done():
				return
			}
		}
	}()

	// Under systemd (Type=notify): READY, WATCHDOG, RELOADING, STOPPING.
	notifier, err := sdnotify.New()
	if err != nil {
		log.Warn().Err(err).Msg("no systemd notifications")
	}
	defer notifier.Close()
	watchdog, err := sdnotify.WatchdogEvery()
	if err != nil {
		log.Warn().Err(err).Msg("systemd watchdog off")
	}
	s.SetNotifier(notifier, watchdog)

	start := time.Now()
	log.Info().Str("version", version).Str("config", *cfgPath).Msg("sortgw starting")
	if err := s.Run(runCtx, reload); err != nil {
		log.Error().Err(err).Msg("sortgw stopped with an error")
		return 1
	}
	log.Info().Dur("uptime_ms", time.Since(start)).Msg("sortgw stopped")
	return 0
}
