package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"sortgw/cmd/internal/site"
	"sortgw/gateway"
)

// cmdReload is `sortgw reload -config site.yaml`: it asks the running
// gateway to reload every line's plan (POST /api/reload with the site's
// token) and fails, printing the refusal's file:line:col errors, when a
// plan is refused. systemd's ExecReload runs it, so `systemctl reload`
// fails too, where a SIGHUP could only log.
func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/sortgw/site.yaml", "site configuration file (for the listen address and the token)")
	addr := fs.String("addr", "", "the gateway's HTTP address (default: from gateway.listen, a wildcard host as loopback)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sortgw reload: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := site.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	token, err := actionToken(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sortgw reload: %v\n", err)
		return 1
	}
	if *addr == "" {
		if *addr, err = dialAddr(cfg.Gateway.Listen); err != nil {
			fmt.Fprintf(stderr, "sortgw reload: %v\n", err)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, code, err := postReload(ctx, *addr, token)
	if err != nil {
		fmt.Fprintf(stderr, "sortgw reload: %v\n", err)
		return 1
	}
	switch {
	case code == http.StatusOK && res.Error == "":
		for _, l := range res.Lines {
			fmt.Fprintf(stdout, "active plan %q version %d\n", l.Name, l.Version)
		}
		return 0
	case code == http.StatusUnprocessableEntity:
		fmt.Fprintf(stderr, "sortgw reload: plan refused; the old plan stays active on the line(s) concerned:\n%s\n", res.Error)
	default:
		fmt.Fprintf(stderr, "sortgw reload: the gateway answered %d %s: %s\n", code, http.StatusText(code), res.Error)
	}
	return 1
}

// actionToken is the bearer token the site file configures.
func actionToken(cfg *site.Config) (string, error) {
	g := cfg.Gateway
	if g.TokenFile != "" {
		b, err := os.ReadFile(g.TokenFile)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("token file %s is empty", g.TokenFile)
	}
	if g.Token == "" {
		return "", fmt.Errorf("no gateway.token or gateway.token_file in the site file: the gateway takes no actions, reload with SIGHUP (kill -HUP)")
	}
	return g.Token, nil
}

// dialAddr turns a listen address into one to dial: a wildcard or empty
// host is this machine's loopback.
func dialAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("gateway.listen %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

// postReload asks the gateway at addr to reload every line's plan.
func postReload(ctx context.Context, addr, token string) (gateway.ReloadResult, int, error) {
	var res gateway.ReloadResult
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/reload", http.NoBody)
	if err != nil {
		return res, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return res, 0, fmt.Errorf("read the answer: %w", err)
	}
	// The API's other errors ({"error": ...}) land in res.Error too.
	if err := json.Unmarshal(body, &res); err != nil {
		return res, 0, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return res, resp.StatusCode, nil
}
