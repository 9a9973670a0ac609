package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sortgw/gateway/journal"
)

// Trainer injects faults into an emulated sorter, for practice: the
// status page's training panel switches them. Only the demo wires one
// (over the emulator, in cmd/internal/demo); production leaves
// Config.Training nil and the panel and its API are absent.
type Trainer interface {
	// Faults lists the faults the trainer offers, in the order to show.
	Faults() []TrainingFault
	// Set switches fault id on or off; chute names the chute of the faults
	// that take one (chute-full), 0 otherwise. An unknown id wraps
	// ErrNoTrainingFault.
	Set(id string, on bool, chute int) error
}

// TrainingFault is one fault of the training panel.
type TrainingFault struct {
	ID     string `json:"id"`
	Label  string `json:"label"`
	Help   string `json:"help"`
	Active bool   `json:"active"`
}

// Training fault ids the demo's trainer offers.
const (
	TrainEStop       = "estop"
	TrainSorterFault = "sorter-fault"
	TrainPLCDrop     = "plc-drop"
	TrainScannerOff  = "scanner-off"
	TrainChuteFull   = "chute-full"
)

// ErrNoTrainingFault: Trainer.Set with an id the trainer does not offer.
var ErrNoTrainingFault = errors.New("no such training fault")

// TrainingList answers GET /api/training.
type TrainingList struct {
	Enabled bool            `json:"enabled"`
	Faults  []TrainingFault `json:"faults"`
}

// TrainingRequest is the body of POST /api/training/{id}.
type TrainingRequest struct {
	On    bool `json:"on"`
	Chute int  `json:"chute,omitempty"`
}

// newTrainingGauge registers sortgw_training_faults_active on reg (or
// finds the one a previous gateway on the same metrics registered).
func newTrainingGauge(reg *prometheus.Registry) (prometheus.Gauge, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sortgw_training_faults_active",
		Help: "Training faults switched on in the emulated sorter (demo only; absent in production)."})
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if eg, ok := are.ExistingCollector.(prometheus.Gauge); ok {
				return eg, nil
			}
		}
		return nil, err
	}
	return g, nil
}

func (g *Gateway) trainingFaults() []TrainingFault {
	fs := g.cfg.Training.Faults()
	if fs == nil {
		fs = []TrainingFault{}
	}
	n := 0
	for _, f := range fs {
		if f.Active {
			n++
		}
	}
	g.trainingActive.Set(float64(n))
	return fs
}

func (g *Gateway) handleTraining(w http.ResponseWriter, r *http.Request) {
	if g.cfg.Training == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no training panel: the sorter is not emulated"})
		return
	}
	writeJSON(w, http.StatusOK, TrainingList{Enabled: true, Faults: g.trainingFaults()})
}

// handleTrainingSet switches a training fault. Each switch is logged and
// journaled as a gateway-wide alarm record (Alarm "training/<id>", Cause
// raised or cleared), so the journal shows what was practised when, next
// to the alarms it caused.
func (g *Gateway) handleTrainingSet(w http.ResponseWriter, r *http.Request) {
	if g.cfg.Training == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no training panel: the sorter is not emulated"})
		return
	}
	id := r.PathValue("id")
	var req TrainingRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{`body must be JSON {"on":true|false,"chute":n}: ` + err.Error()})
		return
	}
	if err := g.cfg.Training.Set(id, req.On, req.Chute); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrNoTrainingFault) {
			code = http.StatusNotFound
		}
		writeJSON(w, code, apiError{err.Error()})
		return
	}
	what, cause := "on", alarmRaised
	if !req.On {
		what, cause = "off", alarmCleared
	}
	detail := "training fault " + id + " " + what
	if req.Chute != 0 {
		detail += " (chute " + strconv.Itoa(req.Chute) + ")"
	}
	g.log.Warn().Str("training_fault", id).Bool("on", req.On).Int("chute", req.Chute).Str("remote", r.RemoteAddr).Msg("training fault switched")
	if g.cfg.Journal != nil {
		if _, err := g.cfg.Journal.Append(journal.Record{Time: time.Now(), Kind: journal.KindAlarm, Alarm: "training/" + id,
			Severity: SevInfo, Detail: detail, Cause: cause, By: "training panel"}); err != nil {
			g.log.Error().Err(err).Str("training_fault", id).Msg("journal training fault")
		}
	}
	writeJSON(w, http.StatusOK, TrainingList{Enabled: true, Faults: g.trainingFaults()})
}
