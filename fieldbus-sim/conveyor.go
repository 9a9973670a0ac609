package fieldbussim

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// ConveyorConfig describes the loop sorter.
type ConveyorConfig struct {
	// Rate is the induction rate in items/s; 0 inducts nothing and puts the
	// PLC in commissioning mode (every commanded TID is an item).
	Rate float64
	// CommissioningTravel is how long a commissioning item takes from its
	// command to its decision point (default 200ms).
	CommissioningTravel time.Duration
}

func (c *ConveyorConfig) validate(chutes int) error {
	if c.Rate < 0 {
		return fmt.Errorf("conveyor: rate %v: negative", c.Rate)
	}
	if c.CommissioningTravel == 0 {
		c.CommissioningTravel = defaultCommissioningRun
	}
	return nil
}

type conveyor struct{}

func newConveyor(cfg ConveyorConfig, chutes int, seed int64, p *PLC, sched *scheduler, log zerolog.Logger) *conveyor {
	return &conveyor{}
}
func (c *conveyor) start()                       {}
func (c *conveyor) stop()                        {}
func (c *conveyor) setRate(float64)              {}
func (c *conveyor) onBeltLocked(tid uint32) bool { return false }
