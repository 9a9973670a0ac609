package probe

import (
	"strings"
	"sync"
	"testing"
	"time"

	"sortgw/devices/opcua"
	fieldbussim "sortgw/fieldbus-sim"
)

// TestOPCUAProbe: the well-behaved emulator passes, also with its
// namespace at another index; a namespace URI that differs, a frozen
// heartbeat and FAULT_CODE 0 at power-on each fail their check.
func TestOPCUAProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an OPC UA server per case")
	}
	cases := []struct {
		name       string
		ua         fieldbussim.OPCUAConfig
		quirks     fieldbussim.Quirks
		fail, hint string
		evidence   string // for a passing namespace check
		divert     bool
	}{
		{name: "contract PLC", evidence: "at ns="},
		{name: "namespace after the vendor's", quirks: fieldbussim.Quirks{ExtraNamespaces: 2}, evidence: "not 1: the gateway looks it up by URI"},
		{name: "namespace URI differs", ua: fieldbussim.OPCUAConfig{Namespace: "urn:vendor:plc1"}, quirks: fieldbussim.Quirks{ExtraNamespaces: 2},
			fail: CheckNamespace, hint: `namespace index wrong: the nodes are in ns=3, whose URI is "urn:vendor:plc1": set namespace: "urn:vendor:plc1"`},
		{name: "contract PLC, divert test", evidence: "at ns=", divert: true},
		{name: "NUM from 0", quirks: fieldbussim.Quirks{NumFromZero: true}, divert: true, fail: CheckConfirmNum, hint: "numbered from 0"},
		{name: "old result codes", quirks: fieldbussim.Quirks{OldResults: true}, divert: true, fail: CheckChute0, hint: "older contract version"},
		{name: "frozen heartbeat", quirks: fieldbussim.Quirks{FrozenHeartbeat: true}, fail: CheckPLCHeartbeat, hint: "heartbeat not moving"},
		{name: "FAULT_CODE 0 at power-on", quirks: fieldbussim.Quirks{FaultZeroAtPowerOn: true}, fail: CheckFaultNoHost, hint: "power on with FAULT_CODE 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.ua.Addr = "127.0.0.1:0"
			s := startSim(t, fieldbussim.Config{OPCUA: c.ua, Quirks: c.quirks})
			opt := Options{Line: "A", Sample: 700 * time.Millisecond, ConfirmWait: 5 * time.Second}
			if c.divert {
				opt.DivertChute = 3
				s.PLC().SetSorterState(fieldbussim.StateMaintenance)
				var once sync.Once
				opt.Progress = func(string) { once.Do(func() { s.PLC().SetSorterState(fieldbussim.StateRunning) }) }
			}
			rep := OPCUA(testCtx(t), opcua.Config{Endpoint: s.OPCUAEndpoint(), Chutes: testChutes, Timeout: 5 * time.Second}, opt)
			var text strings.Builder
			_ = rep.WriteText(&text)
			t.Log(text.String())
			if c.fail == "" {
				for _, ch := range rep.Checks {
					if ch.Status != Pass {
						t.Errorf("%s: %s (%s; %s)", ch.ID, ch.Status, ch.Evidence, ch.Hint)
					}
				}
				if c.divert && rep.Get(CheckHostWatchdog).Status != Pass {
					t.Error("the divert test did not run")
				}
				if ev := rep.Get(CheckNamespace).Evidence; !strings.Contains(ev, c.evidence) {
					t.Errorf("namespace evidence %q, want %q", ev, c.evidence)
				}
				return
			}
			ch := rep.Get(c.fail)
			if ch.Status != Fail || !strings.Contains(ch.Hint, c.hint) {
				t.Errorf("check %s: %s, hint %q; want fail with %q", c.fail, ch.Status, ch.Hint, c.hint)
			}
		})
	}
}
