package opcua

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// One emulated sorter serves the tests that leave it as they found it:
// building a gopcua server parses the standard nodeset, seconds under
// -race.
type sharedInstance struct {
	once sync.Once
	opts simOpts
	sim  *testSim
	stop func()
	err  error
}

func (s *sharedInstance) get(t testing.TB) *testSim {
	t.Helper()
	s.once.Do(func() {
		if s.opts.security != "" {
			if s.opts.certDir, s.err = os.MkdirTemp("", "opcua-link-test"); s.err != nil {
				return
			}
		}
		s.sim, s.stop, s.err = launchSim(s.opts)
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.sim
}

var (
	// shared offers None and Basic256Sha256 SignAndEncrypt; its
	// certificate is in opts.certDir. Items travel 1s.
	shared = &sharedInstance{opts: simOpts{security: "SignAndEncrypt", travel: time.Second}}
	// slow: items travel an hour, so commands stay unconfirmed (restarts).
	slow = &sharedInstance{opts: simOpts{travel: time.Hour}}
)

func sharedSim(t testing.TB) *testSim { return shared.get(t) }
func slowSim(t testing.TB) *testSim   { return slow.get(t) }

func startSim(t testing.TB, o simOpts) *testSim {
	t.Helper()
	s, stop, err := launchSim(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

// TestMain checks that no goroutine outlives the tests. gopcua ends a
// client's secure channel dispatcher only once its socket read returns
// after Close; goleak's retries wait for that (no goroutine is ignored).
func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []*sharedInstance{shared, slow} {
		if s.stop != nil {
			s.stop()
		}
		if s.opts.certDir != "" {
			os.RemoveAll(s.opts.certDir)
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
