package loadtest

import (
	"path/filepath"

	"sortgw/cmd/internal/upstream"
	"sortgw/gateway"
	"sortgw/gateway/journal"
	gwup "sortgw/gateway/upstream"
)

// upstream wires the publisher of the journal to an embedded NATS
// JetStream server (loopback, port chosen by the OS, store in dir), as a
// site with upstream.nats.embedded runs it.
func (s *scenario) upstream(dir string, j *journal.Journal, gcfg *gateway.Config) error {
	cfg := upstream.Config{Config: gwup.Config{Site: "bench"}, NATS: upstream.NATS{
		Embedded: &upstream.Embedded{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")}}}
	if err := cfg.Validate(); err != nil {
		return err
	}
	up, err := upstream.New(cfg, tallyOutbox{j, s.tally}, s.log)
	if err != nil {
		return err
	}
	s.metrics.Registry.MustRegister(up.Collectors()...)
	gcfg.Upstream = up
	return nil
}

// tallyOutbox is the journal as the publisher sees it, its cursor records
// counted by the tally like every other append (the ground truth checks
// that the journal holds nothing the tally did not see).
type tallyOutbox struct {
	*journal.Journal
	tally *tallyJournal
}

func (o tallyOutbox) Append(rec journal.Record) (uint64, error) { return o.tally.Append(rec) }
