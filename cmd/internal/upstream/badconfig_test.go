package upstream

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	gwup "sortgw/gateway/upstream"
)

// TestBadUpstreamIsAnAlarmNotACrash: wrong credentials, a stream with
// other limits and an unreachable server each raise the upstream alarm
// with the cause; the runner keeps running and the journal keeps the
// records (the backlog grows), so sorting is not touched.
func TestBadUpstreamIsAnAlarmNotACrash(t *testing.T) {
	authSrv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), Username: "gw", Password: "right", NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	authSrv.Start()
	t.Cleanup(func() { StopServer(authSrv) })
	if !authSrv.ReadyForConnections(10 * time.Second) {
		t.Fatal("auth server not ready")
	}
	other := startHub(t, Embedded{})
	_, js := jsOn(t, other.ClientURL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SORTGW", Subjects: []string{"sortgw.s1.>"}, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		nats NATS
		want string
	}{
		{"wrong password", NATS{URL: authSrv.ClientURL(), User: "gw", Password: "wrong"}, "uthorization"},
		{"stream with other limits", NATS{URL: other.ClientURL()}, "max_age 1h0m0s, config 168h0m0s"},
		{"unreachable", NATS{URL: "nats://" + freeAddr(t), ConnectTimeout: 200 * time.Millisecond}, "nats "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := startJournal(t, filepath.Join(t.TempDir(), "j.db"))
			cfg := Config{Config: gwup.Config{Site: "s1", AlarmFailing: time.Millisecond, RetryMax: 50 * time.Millisecond}, NATS: c.nats}
			r, _ := runner(t, cfg, j)
			appendItems(t, j, "L1", 1, 10)
			// The alarm can come from the first failed connect, before the
			// publisher has looked at the journal; wait for both the alarm
			// and the backlog it reports to see the appended records.
			var alarm string
			var s gwup.Stats
			waitFor(t, 20*time.Second, "the upstream alarm with the records in the backlog", func() bool {
				alarm, s = r.Alarm(), r.Publisher().Stats()
				return strings.Contains(alarm, c.want) && s.Backlog > 0
			})
			t.Logf("alarm: %s", alarm)
			if s.Published != 0 {
				t.Fatalf("stats %+v: want the records kept in the journal, none published", s)
			}
		})
	}
}

// TestConfigErrors: the section's mistakes name their key.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"off", Config{}, nil},
		{"no site", Config{NATS: NATS{URL: "nats://h:4222"}}, []string{"upstream.site: site is required"}},
		{"bad site", Config{Config: gwup.Config{Site: "a.b"}, NATS: NATS{URL: "nats://h:4222"}}, []string{"upstream.site:", "one subject token"}},
		{"both", Config{Config: gwup.Config{Site: "s"}, NATS: NATS{URL: "nats://h", Embedded: &Embedded{StoreDir: "/tmp"}}}, []string{"upstream.nats: url and embedded are exclusive"}},
		{"no store", Config{Config: gwup.Config{Site: "s"}, NATS: NATS{Embedded: &Embedded{}}}, []string{"upstream.nats.embedded.store_dir: required"}},
		{"creds missing", Config{Config: gwup.Config{Site: "s"}, NATS: NATS{URL: "nats://h", CredsFile: "/nonexistent/x.creds"}}, []string{"upstream.nats.creds_file:", "no such file"}},
		{"creds and user", Config{Config: gwup.Config{Site: "s"}, NATS: NATS{URL: "nats://h", CredsFile: "/etc/hostname", User: "u"}}, []string{"exclusive"}},
		{"cert without key", Config{Config: gwup.Config{Site: "s"}, NATS: NATS{URL: "nats://h", TLS: TLS{CertFile: "/etc/hostname"}}}, []string{"upstream.nats.tls: cert_file and key_file go together"}},
		{"bad listen", Config{Config: gwup.Config{Site: "s"}, NATS: NATS{Embedded: &Embedded{StoreDir: "/tmp", Listen: "4222"}}}, []string{"upstream.nats.embedded.listen:"}},
		{"hub without url", Config{Config: gwup.Config{Site: "s"}, NATS: NATS{Embedded: &Embedded{StoreDir: "/tmp", Hub: &Hub{}}}}, []string{"upstream.nats.embedded.hub.url: required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
