package loadtest

import (
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
)

// Profiles names the files of the whole-run profiles (empty: not taken).
// The heap profile is Config.MemProfile: it is taken at the end of a
// window, not of the run.
type Profiles struct {
	CPU, Mutex, Trace string
}

// Start starts the profiles. stop ends them and writes the mutex profile;
// it returns the first error. On error nothing is left running.
func (p Profiles) Start() (stop func() error, err error) {
	var stops []func() error
	stopAll := func() error {
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	if p.CPU != "" {
		f, err := os.Create(p.CPU)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		stops = append(stops, func() error { pprof.StopCPUProfile(); return f.Close() })
	}
	if p.Mutex != "" {
		runtime.SetMutexProfileFraction(5)
		stops = append(stops, func() error {
			defer runtime.SetMutexProfileFraction(0)
			return writeProfile("mutex", p.Mutex)
		})
	}
	if p.Trace != "" {
		f, err := os.Create(p.Trace)
		if err != nil {
			return nil, errors.Join(err, stopAll())
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return nil, errors.Join(err, stopAll())
		}
		stops = append(stops, func() error { trace.Stop(); return f.Close() })
	}
	return stopAll, nil
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// CPUModel is the first "model name" of /proc/cpuinfo, for the report's
// header line.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "cpu unknown"
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(ln, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "cpu unknown"
}
