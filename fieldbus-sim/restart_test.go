package fieldbussim

import (
	"testing"
	"time"
)

// TestWarmRestartLosesDivert: with the option, a warm restart loses the
// slots the PLC has not consumed (they never become ACK_SEQ+1 again until
// the host rewrites them); without it, they survive.
func TestWarmRestartLosesDivert(t *testing.T) {
	for _, lose := range []bool{false, true} {
		s := startSim(t, Config{PLCCycle: time.Hour, Conveyor: ConveyorConfig{CommissioningTravel: time.Hour}})
		p := s.PLC()
		p.SetWarmRestartLosesDivert(lose)
		for seq := uint16(1); seq <= 3; seq++ {
			if err := p.WriteDivert(int(seq), 100+uint32(seq), 1, 0, seq); err != nil {
				t.Fatal(err)
			}
		}
		s.WarmRestart()
		snap := p.Snapshot()
		for seq := 1; seq <= 3; seq++ {
			got := snap.Divert[seq]
			switch {
			case lose && (got.Seq != snap.AckSeq || got.TID != 0):
				t.Errorf("losing: slot %d holds %+v after the restart, want SEQ %d (consumed)", seq, got, snap.AckSeq)
			case !lose && (got.Seq != uint16(seq) || got.TID != 100+uint32(seq)):
				t.Errorf("keeping: slot %d holds %+v after the restart", seq, got)
			}
		}
		if snap.AckSeq != 0 {
			t.Errorf("ack_seq %d: the slots were consumed before the restart", snap.AckSeq)
		}
	}
}
