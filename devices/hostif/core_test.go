package hostif

import (
	"fmt"
	"testing"
)

// step is one input line and the output it must give.
type step struct{ in, want string }

// upSteps connects and applies the first block (BOOT_ID 7).
var upSteps = []step{
	{"conn", ""},
	{"block boot=7 hb=1", "sync:first"},
	{"state up", ""},
}

func steps(groups ...[]step) []step {
	var out []step
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// TestCore is the one table of the interface rules; both links run on
// this core, so every case holds for Modbus and OPC UA alike.
func TestCore(t *testing.T) {
	ring4 := Config{Ring: 4}
	cases := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"one command: written, taken, confirmed", Config{}, steps(upSteps, []step{
			{"send 101 chute=5", ""},
			{"write", "put101@1/1 w101@1"},
			{"slot 1 101 1", ""},
			{"block ack=1 count=1", "t101@1 c101#1r1"},
			{"write", "none"},
		})},
		{"seq wraps 65535 to 0 without skipping 0", Config{}, []step{
			{"conn", ""},
			{"block boot=7 ack=65534", "sync:first"},
			{"send 1", ""}, {"send 2", ""}, {"send 3", ""},
			{"write", "put1@65535/15 w1@65535"},
			{"write", "put2@0/0 w2@0"},
			{"write", "put3@1/1 w3@1"},
			{"block ack=0", "t1@65535 t2@0"},
		}},
		{"confirmation numbers wrap 65535 to 0", Config{}, []step{
			{"conn", ""},
			{"block boot=7 count=65535", "sync:first"},
			{"send 1", ""}, {"write", "put1@1/1 w1@1"},
			{"slot 0 1 8", ""},
			{"block ack=1 count=0", "t1@1 c1#0r8"},
		}},
		{"window: never ring or more past ACK_SEQ", ring4, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""}, {"send 3", ""}, {"send 4", ""},
			{"write", "put1@1/1 w1@1"},
			{"write", "put2@2/2 w2@2"},
			{"write", "put3@3/3 w3@3"},
			{"write", "none"},
			{"block ack=1", "t1@1"},
			{"write", "put4@4/0 w4@4"},
		})},
		{"ACK_SEQ 65535 at the first connect: the first command is SEQ 0", Config{}, []step{
			{"conn", ""},
			{"block boot=7 ack=65535 count=65535", "sync:first"},
			{"send 1", ""},
			{"write", "put1@0/0 w1@0"},
		}},
		{"ACK_SEQ across the wrap takes in order", Config{}, []step{
			{"conn", ""},
			{"block boot=7 ack=65530", "sync:first"},
			{"send 1", ""}, {"send 2", ""}, {"send 3", ""}, {"send 4", ""}, {"send 5", ""}, {"send 6", ""}, {"send 7", ""},
			{"write", "put1@65531/11 w1@65531"}, {"write", "put2@65532/12 w2@65532"}, {"write", "put3@65533/13 w3@65533"},
			{"write", "put4@65534/14 w4@65534"}, {"write", "put5@65535/15 w5@65535"}, {"write", "put6@0/0 w6@0"},
			{"write", "put7@1/1 w7@1"},
			{"block ack=0", "t1@65531 t2@65532 t3@65533 t4@65534 t5@65535 t6@0"},
			// Beyond SEQ 1, the last written: every unconfirmed command is lost.
			{"block ack=2", "lost1@65531 lost2@65532 lost3@65533 lost4@65534 lost5@65535 lost6@0 lost7@1 err:mismatch"},
		}},
		{"seventeen between two reads, every slot stale: all missed", Config{}, steps(upSteps, []step{
			{"block count=17", "missed17"},
		})},
		{"a write reply after a cold restart changes nothing", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write hold", "put1@1/1"},
			{"block boot=10", "lost1@1 sync:cold"},
			{"done ok", ""},
			{"send 2", ""},
			{"write", "put2@1/1 w2@1"},
		})},
		{"deadline passed before a write: late, never written, no seq", Config{}, []step{
			{"send 1 dl=100ms", ""},
			{"wait 100ms", ""}, // a command may be written at its deadline
			{"wait 1ms", "late1"},
			{"conn", ""},
			{"block boot=7 hb=1", "sync:first"},
			{"send 2", ""},
			{"write", "put2@1/1 w2@1"},
		}},
		{"deadline while held by a fault", Config{}, steps(upSteps, []step{
			{"block fault=1", ""},
			{"send 1 dl=50ms", ""},
			{"write", "none"},
			{"wait 60ms", "late1"},
			{"block fault=0 hb=2", ""},
			{"write", "none"},
		})},
		{"failed write: rewritten in place, written once", Config{}, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""},
			{"write fail", "put1@1/1"},
			{"write", "reput1@1/1 w1@1"},
			{"write", "put2@2/2 w2@2"},
		})},
		{"ack overtakes its in-flight write: taken after written", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write hold", "put1@1/1"},
			{"block ack=1", ""},
			{"done ok", "w1@1 t1@1"},
		})},
		{"confirmation overtakes its in-flight write", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write hold", "put1@1/1"},
			{"slot 1 1 1", ""},
			{"block ack=1 count=1", ""},
			{"done ok", "w1@1 t1@1 c1#1r1"},
		})},
		{"confirmation before ACK_SEQ: proof of taking", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write", "put1@1/1 w1@1"},
			{"slot 1 1 7", ""},
			{"block count=1", "t1@1 c1#1r7"},
			{"block ack=1", ""},
		})},
		{"failed write the plc took anyway", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write hold", "put1@1/1"},
			{"block ack=1", ""},
			{"done fail", "w1@1 t1@1"},
			{"write", "none"},
		})},
		{"ack beyond the last seq written: mismatch, follow as cold", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write", "put1@1/1 w1@1"},
			{"block ack=5", "lost1@1 err:mismatch"},
			{"send 2", ""},
			{"write", "put2@6/6 w2@6"},
		})},
		{"warm reconnect: untaken rewritten in place, in order", Config{}, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""}, {"send 3", ""},
			{"write", "put1@1/1 w1@1"}, {"write", "put2@2/2 w2@2"}, {"write", "put3@3/3 w3@3"},
			{"block ack=1", "t1@1"},
			{"disc", ""},
			{"write", "none"},
			{"conn", ""},
			{"block", "sync:warm"},
			{"write", "reput2@2/2"},
			{"write", "reput3@3/3"},
			{"write", "none"},
			{"block ack=3", "t2@2 t3@3"},
		})},
		{"warm reconnect follows ACK_SEQ first", Config{}, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""},
			{"write", "put1@1/1 w1@1"}, {"write", "put2@2/2 w2@2"},
			{"disc", ""}, {"conn", ""},
			{"block ack=2", "t1@1 t2@2 sync:warm"},
			{"write", "none"},
		})},
		{"warm reconnect with a write still out: rewritten after it", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write hold", "put1@1/1"},
			{"disc", ""}, {"conn", ""},
			{"block", "sync:warm"},
			{"write", "none"},
			{"done ok", "w1@1"},
			{"write", "reput1@1/1"},
		})},
		{"cold reconnect: every unconfirmed command lost, follow the plc", Config{}, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""}, {"send 3", ""},
			{"write", "put1@1/1 w1@1"}, {"write", "put2@2/2 w2@2"}, {"write", "put3@3/3 w3@3"},
			{"slot 1 1 1", ""},
			{"block ack=2 count=1", "t1@1 t2@2 c1#1r1"},
			{"disc", ""}, {"conn", ""},
			{"block boot=9 ack=0 count=0", "lost2@2 lost3@3 sync:cold"},
			{"send 4", ""},
			{"write", "put4@1/1 w4@1"},
		})},
		{"new BOOT_ID on a live connection is a cold restart", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write", "put1@1/1 w1@1"},
			{"block boot=8 ack=40 count=30", "lost1@1 sync:cold"},
			{"send 2", ""},
			{"write", "put2@41/9 w2@41"},
		})},
		{"a confirmation waiting for its write survives a cold restart", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write hold", "put1@1/1"},
			{"slot 1 1 1", ""},
			{"block count=1", ""},
			{"block boot=9", "w1@1 t1@1 c1#1r1 sync:cold"},
			{"done ok", ""},
		})},
		{"fault codes 1..99 hold, 0 and 100+ do not", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"block fault=1", ""}, {"state syncing", ""}, {"write", "none"},
			{"block fault=99", ""}, {"write", "none"},
			{"block fault=100", ""}, {"state up", ""},
			{"write", "put1@1/1 w1@1"},
			{"block fault=0", ""}, {"state up", ""},
		})},
		{"power-on fault 1 at connect: nothing written until 0", Config{}, []step{
			{"send 1", ""},
			{"conn", ""},
			{"block boot=7 fault=1", "sync:first"},
			{"state syncing", ""},
			{"write", "none"},
			{"block fault=0", ""},
			{"write", "put1@1/1 w1@1"},
		}},
		{"stalled PLC heartbeat holds, a change releases", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"wait 999ms", ""}, {"state up", ""},
			{"wait 1ms", ""}, {"state syncing", ""},
			{"write", "none"},
			{"block hb=2", ""}, {"state up", ""},
			{"write", "put1@1/1 w1@1"},
		})},
		{"a new connection gives the watchdog a full period", Config{}, steps(upSteps, []step{
			{"wait 5s", ""}, {"state syncing", ""},
			{"disc", ""}, {"conn", ""},
			{"block", "sync:warm"}, {"state up", ""},
		})},
		{"transport not ready holds", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"notready subscription silent", ""}, {"state syncing", ""},
			{"write", "none"},
			{"ready", ""},
			{"write", "put1@1/1 w1@1"},
		})},
		{"link state walk", Config{}, []step{
			{"state down", ""}, {"dial", ""}, {"state connecting", ""},
			{"conn", ""}, {"state syncing", ""},
			{"block boot=3", "sync:first"}, {"state up", ""},
			{"disc", ""}, {"state down", ""},
			{"close", ""}, {"state closed", ""},
		}},
		{"count moved past the ring: missed, oldest taken closed", ring4, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""}, {"send 3", ""},
			{"write", "put1@1/1 w1@1"}, {"write", "put2@2/2 w2@2"}, {"write", "put3@3/3 w3@3"},
			{"block ack=3", "t1@1 t2@2 t3@3"},
			{"send 4", ""}, {"send 5", ""},
			{"write", "put4@4/0 w4@4"}, {"write", "put5@5/1 w5@5"},
			{"block ack=5", "t4@4 t5@5"},
			{"slot 2 2 1", ""}, {"slot 3 3 1", ""}, {"slot 4 4 1", ""}, {"slot 5 5 1", ""},
			{"block count=5", "missed1 c2#2r1 c3#3r1 c4#4r1 c5#5r1"},
			// tid 1 was closed by the missed accounting: a cold restart
			// does not report it again.
			{"block boot=9 ack=0 count=0", "sync:cold"},
		})},
		{"stale and torn slots are missed", Config{}, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""}, {"send 3", ""},
			{"write", "put1@1/1 w1@1"}, {"write", "put2@2/2 w2@2"}, {"write", "put3@3/3 w3@3"},
			{"block ack=3", "t1@1 t2@2 t3@3"},
			{"slot 17 77 1", ""}, // slot 1 already overwritten by NUM 17
			{"slot 2 2 1 torn", ""},
			{"slot 3 3 4", ""},
			{"block count=3", "missed2 c3#3r4"},
		})},
		{"count going backwards: mismatch, followed, nothing lost", Config{}, steps(upSteps, []step{
			{"send 1", ""}, {"write", "put1@1/1 w1@1"},
			{"slot 1 9 1", ""}, {"slot 2 1 1", ""},
			{"block ack=1 count=2", "t1@1 c9#1r1 c1#2r1"},
			{"block count=1", "err:mismatch"},
			{"slot 2 5 1", ""},
			{"block count=2", "c5#2r1"},
		})},
		{"an unread slot ends the range until it is read", Config{}, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""},
			{"write", "put1@1/1 w1@1"}, {"write", "put2@2/2 w2@2"},
			{"slot 1 1 1", ""}, {"slot 2 2 1 unread", ""},
			{"block ack=2 count=2", "t1@1 t2@2 c1#1r1"},
			{"slot 2 2 3", ""},
			{"block", "c2#2r3"},
		})},
		{"same TID twice: the confirmation goes to the taken one", Config{}, steps(upSteps, []step{
			{"send 5", ""}, {"send 5 chute=2", ""},
			{"write", "put5@1/1 w5@1"}, {"write hold", "put5@2/2"},
			{"block ack=1", "t5@1"},
			{"slot 1 5 3", ""},
			{"block count=1", "c5#1r3"},
			{"done ok", "w5@2"},
		})},
		{"send refuses bad commands and a full queue", Config{Chutes: 100, QueueSize: 2}, []step{
			{"send 0", "refused:bad"},
			{"send 1 chute=101", "refused:bad"},
			{"send 1 chute=100", ""},
			{"send 2 chute=0", ""},
			{"send 3", "refused:full"},
		}},
		{"close: queued late, unconfirmed lost, then refused", Config{}, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""},
			{"write", "put1@1/1 w1@1"},
			{"close", "late2 lost1@1"},
			{"send 3", "refused:closed"},
			{"close", ""},
		})},
		{"reconnects: every attempt after the first, failed or not", Config{}, []step{
			{"reconnects 0", ""},
			{"dial", ""}, {"disc", ""}, {"reconnects 0", ""},
			{"dial", ""}, {"reconnects 1", ""},
			{"conn", ""}, {"reconnects 1", ""},
			{"disc", ""}, {"conn", ""}, {"reconnects 2", ""},
		}},
		{"max unconfirmed: the oldest taken is reported lost", Config{Ring: 4, MaxUnconfirmed: 8}, steps(upSteps, unconfirmedSteps(9))},
		{"second host: the heartbeat moved twice by another writer holds commands", Config{}, steps(upSteps, []step{
			{"readback hb=5 wrote=5", ""},
			{"readback hb=9 wrote=6", "foreign"},
			{"state up", ""}, // one piece is not enough (a cold restart zeroes it once)
			{"wait 100ms", ""},
			{"readback hb=12 wrote=7", "foreign"},
			{"state syncing", ""},
			{"send 1", ""},
			{"write", "none"},
			{"wait 4s", ""},
			{"readback hb=8 wrote=8", ""},
			{"state syncing", ""},
			{"wait 1s", ""}, // 5 s without evidence
			{"block hb=2", ""},
			{"state up", ""},
			{"write", "put1@1/1 w1@1"},
		})},
		{"second host: two pieces further apart than the hold are not enough", Config{}, steps(upSteps, []step{
			{"readback hb=9 wrote=6", "foreign"},
			{"wait 5s", ""},
			{"block hb=2", ""},
			{"readback hb=9 wrote=6", "foreign"},
			{"state up", ""},
		})},
		{"second host: a divert slot ahead of ACK_SEQ this host never gave out", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write", "put1@1/1 w1@1"},
			{"readback 1=1:1 2=0:0", ""}, // its own command
			{"readback 2=2:99", "foreign"},
			{"readback 2=2:99", "foreign"},
			{"state syncing", ""},
		})},
		{"second host: its own command under another TID in its slot", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write", "put1@1/1 w1@1"},
			{"readback 1=1:77", "foreign"},
		})},
		{"second host: no evidence from slots being written, to rewrite, or taken", Config{}, steps(upSteps, []step{
			{"send 1", ""}, {"send 2", ""}, {"send 3", ""},
			{"write hold", "put1@1/1"},
			{"readback 1=1:50", ""}, // the write is out: the slot may hold anything
			{"done fail", ""},
			{"readback 1=1:50", ""}, // to be rewritten in place
			{"write", "reput1@1/1 w1@1"},
			{"write", "put2@2/2 w2@2"},
			{"block ack=2", "t1@1 t2@2"},
			{"readback 1=1:50 2=2:51", ""}, // taken: behind ACK_SEQ
			{"disc", ""}, {"conn", ""},
			{"write", "none"},
			{"block ack=2", "sync:warm"},
			{"readback 3=3:52", "foreign"}, // ahead, never given out
		})},
		{"second host: no evidence from a written command's slot while it is to be rewritten", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write", "put1@1/1 w1@1"},
			{"disc", ""}, {"conn", ""},
			{"block ack=0", "sync:warm"},
			{"readback 1=1:66", ""}, // a warm restart may have lost the slot
			{"write hold", "reput1@1/1"},
			{"readback 1=1:66", ""}, // the rewrite is out
			{"done ok", ""},
			{"readback 1=1:66", "foreign"},
		})},
		{"second host: ACK_SEQ past the commands written, twice", Config{}, steps(upSteps, []step{
			{"send 1", ""},
			{"write", "put1@1/1 w1@1"},
			{"block ack=3", "lost1@1 err:mismatch"},
			{"state up", ""},
			{"block ack=4", "err:mismatch"},
			{"state syncing", ""},
			{"send 2", ""},
			{"write", "none"},
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, tc.cfg)
			for i, st := range tc.steps {
				if got := s.run(st.in); got != st.want {
					t.Fatalf("step %d %q: got %q, want %q", i, st.in, got, st.want)
				}
			}
		})
	}
}

// unconfirmedSteps writes n commands, each taken and never confirmed;
// with MaxUnconfirmed 8 the ninth makes room by reporting the first lost.
func unconfirmedSteps(n int) []step {
	var out []step
	for i := 1; i <= n; i++ {
		want := fmt.Sprintf("put%d@%d/%d w%d@%d", i, i, i%4, i, i)
		if i == 9 {
			want = "lost1@1 " + want
		}
		out = append(out,
			step{fmt.Sprintf("send %d", i), ""},
			step{"write", want},
			step{fmt.Sprintf("block ack=%d", i), fmt.Sprintf("t%d@%d", i, i)},
		)
	}
	return out
}
