// Command fieldbus-sim runs the emulated sorter on its own: a sorter PLC on
// Modbus TCP and OPC UA, barcode scanners that send telegrams for the items
// it inducts, and an HTTP control endpoint to inject faults and read the
// ground truth. It is for commissioning a gateway, demos and benchmarks.
//
//	fieldbus-sim -rate 10 -chutes 256
//	fieldbus-sim -commissioning              # rate 0: any commanded TID is an item
//	fieldbus-sim -rate 10 -fc16-by-register -word-order low-first   # a harder PLC
//	curl -X POST 'http://127.0.0.1:8081/fault/chute-full?chute=5&on=true'
//	curl -X POST 'http://127.0.0.1:8081/fault/mute?on=true'
//	curl http://127.0.0.1:8081/report
//
// Without -commissioning the PLC refuses (result 7) every TID its conveyor
// did not induct, as a real one does; the options that make the PLC harder
// are listed in the fieldbussim package documentation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/sortplan/zcta"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "fieldbus-sim:", err)
		os.Exit(1)
	}
}

type options struct {
	cfg      fieldbussim.Config
	control  string
	logLevel string
	check    bool
	// faults at start
	full, disabled string
	estop          bool
	modbusExc      int
	modbusExcN     int
	delayReply     time.Duration
	stallHB        time.Duration
}

func parse(args []string) (*options, error) {
	o := &options{}
	c := &o.cfg
	fs := flag.NewFlagSet("fieldbus-sim", flag.ContinueOnError)
	fs.StringVar(&c.Modbus.Addr, "modbus", "127.0.0.1:5020", "Modbus TCP listen address (empty: off)")
	unit := fs.Uint("unit", 1, "Modbus unit id")
	hostBase := fs.Uint("host-base", 0, "Modbus address of HOST_HEARTBEAT")
	divertBase := fs.Uint("divert-base", 10, "Modbus address of divert slot 0")
	plcBase := fs.Uint("plc-base", 100, "Modbus address of PLC_HEARTBEAT")
	fs.StringVar(&c.OPCUA.Addr, "opcua", "127.0.0.1:4840", "OPC UA listen address (empty: off)")
	fs.StringVar(&c.OPCUA.Security, "security", "None", "OPC UA security: None, Sign or SignAndEncrypt (Basic256Sha256)")
	fs.BoolVar(&c.OPCUA.OnlySecure, "only-secure", false, "OPC UA: do not offer security None")
	fs.StringVar(&c.OPCUA.CertFile, "cert", "", "OPC UA server certificate (empty: self-signed)")
	fs.StringVar(&c.OPCUA.KeyFile, "key", "", "OPC UA server key")
	fs.StringVar(&c.OPCUA.CertDir, "cert-dir", "", "write a generated OPC UA certificate here")
	fs.StringVar(&c.OPCUA.Namespace, "namespace", "urn:sortgw:sorter", "OPC UA namespace URI of the sorter's nodes")
	scanner := fs.String("scanner", "127.0.0.1:2001", "scanner listen address(es), comma-separated; scanner i+1 takes the next port when only one is given")
	dialOut := fs.String("scanner-dial", "", "scanners dial these gateway addresses instead of listening (comma-separated)")
	fs.IntVar(&c.Scanners.Count, "scanners", 1, "number of scanners")
	fs.StringVar(&c.Scanners.Framing, "framing", "stx", "scanner framing: stx or crlf")
	fs.IntVar(&c.Chutes, "chutes", 256, "CHUTE_COUNT")
	fs.Float64Var(&c.Conveyor.Rate, "rate", 0, "induction rate, items/s (0: nothing inducted; with -commissioning every commanded TID is an item)")
	fs.Int64Var(&c.Seed, "seed", 1, "seed for induction, labels and losses")
	fs.Float64Var(&c.Conveyor.BeltSpeed, "speed", 2.5, "belt speed, m/s")
	fs.Float64Var(&c.Conveyor.ScannerToFirstChute, "scanner-to-chute", 3, "distance scanner to chute 1's decision point, m")
	fs.Float64Var(&c.Conveyor.ChutePitch, "pitch", 1.2, "distance between chutes, m")
	fs.IntVar(&c.Conveyor.ContainerCapacity, "capacity", 60, "items per container before the chute reads full (-1: never)")
	fs.DurationVar(&c.Conveyor.EmptyAfter, "empty-after", 2*time.Minute, "time to swap a full container")
	fs.Float64Var(&c.Conveyor.LostRate, "lost", 0, "chance per pass that an item is lost")
	fs.DurationVar(&c.Conveyor.CommissioningTravel, "travel", 200*time.Millisecond, "commissioning mode: command to decision point")
	fs.Float64Var(&c.Labels.NoReadRate, "noread", 0.02, "no-read rate")
	fs.Float64Var(&c.Labels.MultiReadRate, "multiread", 0.01, "multi-read rate")
	fs.Float64Var(&c.Labels.ConflictRate, "conflict", 0.2, "share of multi-reads that conflict")
	fs.Float64Var(&c.Labels.GarbageRate, "garbage", 0.005, "unreadable label rate")
	zips := fs.Bool("zips", true, "draw destinations from the embedded ZIP list (false: a small built-in set)")
	fs.DurationVar(&c.PLCCycle, "cycle", 5*time.Millisecond, "PLC scan cycle")
	fs.BoolVar(&c.ImmediateScan, "immediate-scan", false, "take commands off the ring as they are written (benchmarks)")
	fs.DurationVar(&c.HostWatchdog, "host-watchdog", time.Second, "FAULT_CODE 1 after the host heartbeat stands this long")
	commissioning := fs.Bool("commissioning", false, "commissioning mode at -rate 0: every commanded TID is an item of its own (default: TIDs the conveyor did not induct are refused with result 7)")
	fs.StringVar(&c.Modbus.WordOrder, "word-order", fieldbussim.WordOrderHighFirst, "Modbus order of a TID's two registers: high-first or low-first")
	fs.BoolVar(&c.Modbus.RegisterByRegister, "fc16-by-register", false, "Modbus: apply a function-16 write register by register, a PLC scan between (a scan can see a half-written divert slot)")
	fs.BoolVar(&c.Modbus.SilentWrongUnit, "silent-unit", false, "Modbus: leave requests for another unit id unanswered instead of exception 0B")
	fs.BoolVar(&c.Modbus.Mute, "mute", false, "Modbus: accept connections, never answer a request")
	fs.BoolVar(&c.Modbus.NeverAccept, "never-accept", false, "Modbus: a listener that completes no TCP connection (dials hang; Linux)")
	fs.StringVar(&o.control, "control", "127.0.0.1:8081", "HTTP control endpoint (empty: off)")
	fs.StringVar(&o.logLevel, "log", "info", "log level: debug, info, warn, error")
	fs.BoolVar(&o.check, "t", false, "check the flags and exit")
	fs.StringVar(&o.full, "full", "", "chutes full at start (comma-separated)")
	fs.StringVar(&o.disabled, "disabled", "", "chutes disabled at start (comma-separated)")
	fs.BoolVar(&o.estop, "estop", false, "start in emergency stop")
	fs.IntVar(&o.modbusExc, "modbus-exception", 0, "answer the first -modbus-exception-n requests with this exception code")
	fs.IntVar(&o.modbusExcN, "modbus-exception-n", 1, "how many requests -modbus-exception answers")
	fs.DurationVar(&o.delayReply, "delay-reply", 0, "delay the first Modbus reply by this much")
	fs.DurationVar(&o.stallHB, "stall-heartbeat", 0, "keep PLC_HEARTBEAT still for this long at start")
	quirks := fs.String("quirks", "", "commission against a PLC's mistakes, comma-separated: num-from-zero, old-results, fault-zero-at-power-on, frozen-heartbeat, shift-plc-block[=N], extra-namespaces[=N]")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *unit < 1 || *unit > 247 {
		return nil, fmt.Errorf("-unit %d: want 1..247", *unit)
	}
	for _, b := range []*uint{hostBase, divertBase, plcBase} {
		if *b > 65535 {
			return nil, fmt.Errorf("modbus base %d: want 0..65535", *b)
		}
	}
	c.StrictTIDs = !*commissioning
	var err error
	if c.Quirks, err = fieldbussim.ParseQuirks(*quirks); err != nil {
		return nil, fmt.Errorf("-quirks: %w", err)
	}
	c.Modbus.UnitID = byte(*unit)
	c.Modbus.HostBase, c.Modbus.DivertBase, c.Modbus.PLCBase = uint16(*hostBase), uint16(*divertBase), uint16(*plcBase)
	if *dialOut != "" {
		c.Scanners.DialOut = splitList(*dialOut)
	} else if *scanner != "" {
		addrs := splitList(*scanner)
		if len(addrs) == 1 && c.Scanners.Count > 1 {
			addrs = consecutivePorts(addrs[0], c.Scanners.Count)
		}
		c.Scanners.Addrs = addrs
	}
	if *zips {
		c.Labels.Destinations = zcta.Codes()
	}
	if o.modbusExc != 0 && !fieldbussim.SupportedException(byte(o.modbusExc)) {
		return nil, fmt.Errorf("-modbus-exception %d: want one of 1..6, 8, 10, 11", o.modbusExc)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// consecutivePorts turns host:2001 into host:2001, host:2002, ...
func consecutivePorts(addr string, n int) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []string{addr}
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil || p == 0 {
		out := make([]string, n)
		for i := range out {
			out[i] = addr
		}
		return out
	}
	out := make([]string, n)
	for i := range out {
		out[i] = net.JoinHostPort(host, fmt.Sprint(p+i))
	}
	return out
}

func parseChutes(s string) ([]uint16, error) {
	var out []uint16
	for _, p := range splitList(s) {
		var n uint16
		if _, err := fmt.Sscan(p, &n); err != nil || n == 0 {
			return nil, fmt.Errorf("chute %q: want a number 1..65535", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	full, err := parseChutes(o.full)
	if err != nil {
		return fmt.Errorf("-full: %w", err)
	}
	disabled, err := parseChutes(o.disabled)
	if err != nil {
		return fmt.Errorf("-disabled: %w", err)
	}
	if o.check {
		fmt.Println("fieldbus-sim: configuration ok")
		return nil
	}
	lvl, err := zerolog.ParseLevel(o.logLevel)
	if err != nil {
		return fmt.Errorf("-log %q: %w", o.logLevel, err)
	}
	// Timestamps to the millisecond (zerolog's default is whole seconds);
	// colour only on a terminal, so a redirected log holds no escape codes.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	fi, _ := os.Stderr.Stat()
	tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000", NoColor: !tty}).
		Level(lvl).With().Timestamp().Logger()
	// The OPC UA server library prints through the standard logger.
	stdlog.SetFlags(0)
	stdlog.SetOutput(fieldbussim.LibraryLogWriter(log.With().Str("lib", "gopcua").Logger()))

	sim, err := fieldbussim.New(o.cfg, log)
	if err != nil {
		return err
	}
	for _, n := range full {
		if err := sim.PLC().SetChuteFull(n, true); err != nil {
			return fmt.Errorf("-full: %w", err)
		}
	}
	for _, n := range disabled {
		if err := sim.PLC().SetChuteDisabled(n, true); err != nil {
			return fmt.Errorf("-disabled: %w", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sim.Run(ctx); err != nil {
			errc <- err
		}
		cancel()
	}()
	select {
	case <-sim.Ready():
	case <-ctx.Done():
		wg.Wait()
		close(errc)
		return <-errc
	}

	if o.estop {
		sim.EmergencyStop(true)
	}
	if o.modbusExc != 0 {
		sim.InjectModbusException(byte(o.modbusExc), o.modbusExcN)
	}
	if o.delayReply > 0 {
		sim.DelayNextReply(o.delayReply)
	}
	if o.stallHB > 0 {
		sim.StallPLCHeartbeat(o.stallHB)
	}

	if o.control != "" {
		ln, err := net.Listen("tcp", o.control)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("control listen %s: %w", o.control, err)
		}
		srv := &http.Server{Handler: sim.ControlHandler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("control: %w", err)
				cancel()
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		}()
		o.control = ln.Addr().String()
	}

	fmt.Printf("fieldbus-sim running: %d chutes, rate %g items/s", o.cfg.Chutes, o.cfg.Conveyor.Rate)
	switch {
	case o.cfg.Conveyor.Rate == 0 && !o.cfg.StrictTIDs:
		fmt.Print(" (commissioning mode)")
	case o.cfg.Conveyor.Rate == 0:
		fmt.Print(" (nothing inducted: every command is refused with result 7; -commissioning takes any TID)")
	}
	fmt.Println()
	if a := sim.ModbusAddr(); a != "" {
		fmt.Printf("  modbus   %s unit %d\n", a, o.cfg.Modbus.UnitID)
	}
	if e := sim.OPCUAEndpoint(); e != "" {
		fmt.Printf("  opcua    %s (%s)\n", e, o.cfg.OPCUA.Security)
	}
	for i, a := range sim.ScannerAddrs() {
		fmt.Printf("  scanner%d %s\n", i+1, a)
	}
	if o.control != "" {
		fmt.Printf("  control  http://%s/\n", o.control)
	}

	wg.Wait()
	close(errc)
	return <-errc
}
