package probe

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"sortgw/devices/opcua"
)

// uaNode is one node of the contract's address space and the Go type its
// value reads as.
type uaNode struct {
	name     string
	typ      reflect.Type
	writable bool
}

// contractNodes lists every node of docs/plc-interface.md for a ring.
func contractNodes(ring int) []uaNode {
	u16, u32, bools := reflect.TypeFor[uint16](), reflect.TypeFor[uint32](), reflect.TypeFor[[]bool]()
	ns := []uaNode{{"Host.Heartbeat", u16, true}, {"Host.State", u16, true}, {"Host.PlanVersion", u16, true}}
	for k := 0; k < ring; k++ {
		p := fmt.Sprintf("Divert.%d.", k)
		ns = append(ns, uaNode{p + "TrackingId", u32, true}, uaNode{p + "Chute", u16, true}, uaNode{p + "Reason", u16, true}, uaNode{p + "Seq", u16, true})
	}
	for _, n := range []string{"Heartbeat", "State", "AckSeq", "FaultCode", "ChuteCount", "BootId"} {
		ns = append(ns, uaNode{"Plc." + n, u16, false})
	}
	ns = append(ns, uaNode{"Confirm.Count", u16, false})
	for j := 0; j < ring; j++ {
		p := fmt.Sprintf("Confirm.%d.", j)
		ns = append(ns, uaNode{p + "Num", u16, false}, uaNode{p + "TrackingId", u32, false}, uaNode{p + "Chute", u16, false}, uaNode{p + "Result", u16, false})
	}
	return append(ns, uaNode{"Chutes.Full", bools, false}, uaNode{"Chutes.Disabled", bools, false})
}

// OPCUA probes a PLC over OPC UA with a line's link settings (cfg with
// the line's chutes set).
func OPCUA(ctx context.Context, cfg opcua.Config, opt Options) *Report {
	opt.defaults()
	r := &Report{Line: opt.Line, Protocol: "opcua", Addr: cfg.Endpoint, Started: time.Now()}
	defer func() { r.Took = time.Since(r.Started) }()
	c, err := opcua.DialProbe(ctx, cfg)
	if err != nil {
		r.fail(CheckConnect, "OPC UA session with the PLC", err.Error(),
			"check the endpoint URL, the security mode and policy, and that each side trusts the other's certificate")
		return r
	}
	defer c.Close(ctx)
	if cfg.Namespace == "" {
		cfg.Namespace = opcua.DefaultNamespace
	}
	if cfg.NodePrefix == "" {
		cfg.NodePrefix = opcua.DefaultNodePrefix
	}
	if cfg.Ring == 0 {
		cfg.Ring = opcua.DefaultRing
	}
	if cfg.Chutes == 0 {
		cfg.Chutes = opcua.DefaultChutes
	}
	r.pass(CheckConnect, "OPC UA session with the PLC", cfg.Endpoint)
	p := &uaProbe{r: r, c: c, cfg: cfg, opt: opt}
	p.run(ctx)
	return r
}

type uaProbe struct {
	r   *Report
	c   *opcua.ProbeClient
	cfg opcua.Config
	opt Options
	ns  uint16
}

func (p *uaProbe) run(ctx context.Context) {
	r := p.r
	if !p.namespace(ctx) {
		return
	}
	nodes := contractNodes(p.cfg.Ring)
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.name
	}
	infos, err := p.c.ReadNodes(ctx, p.ns, names)
	if err != nil {
		r.fail(CheckNodes, "every contract node exists with its data type", err.Error(), "the server refused the read")
		return
	}
	var missing, badType, access []string
	vals := map[string]any{}
	for i, in := range infos {
		n := nodes[i]
		switch {
		case in.Err != nil:
			missing = append(missing, fmt.Sprintf("%s (%v)", p.c.NodeID(p.ns, n.name), in.Err))
			continue
		case reflect.TypeOf(in.Value) != n.typ:
			badType = append(badType, fmt.Sprintf("%s is %T, want %v", n.name, in.Value, n.typ))
		}
		vals[n.name] = in.Value
		if !in.Readable || in.Writable != n.writable && n.writable {
			access = append(access, fmt.Sprintf("%s read %v write %v", n.name, in.Readable, in.Writable))
		}
	}
	const nodesTitle = "every contract node exists with its data type"
	switch {
	case len(missing) > 0:
		r.fail(CheckNodes, nodesTitle, fmt.Sprintf("%d of %d missing, e.g. %s", len(missing), len(nodes), strings.Join(first(missing, 3), "; ")),
			fmt.Sprintf("node ids are %q + \".\" + name (node_prefix %q) in the namespace of %q; check the PLC's node names and the ring depth (%d)", p.cfg.NodePrefix, p.cfg.NodePrefix, p.cfg.Namespace, p.cfg.Ring))
		return
	case len(badType) > 0:
		r.fail(CheckNodes, nodesTitle, strings.Join(first(badType, 5), "; "),
			"data types: UInt16 everywhere, UInt32 for TrackingId, Boolean arrays for Chutes.Full and Chutes.Disabled")
		return
	default:
		r.pass(CheckNodes, nodesTitle, fmt.Sprintf("%d nodes", len(nodes)))
	}
	if len(access) > 0 {
		r.fail(CheckAccess, "host and divert nodes writable, all readable", strings.Join(first(access, 5), "; "),
			"grant CurrentWrite on Host.* and Divert.* to the gateway's user, CurrentRead on all")
	} else {
		r.pass(CheckAccess, "host and divert nodes writable, all readable", "")
	}
	u := func(n string) uint16 { v, _ := vals["Plc."+n].(uint16); return v }
	chutes := int(u("ChuteCount"))
	if chutes != p.cfg.Chutes {
		r.fail(CheckChuteCount, "CHUTE_COUNT matches the line", fmt.Sprintf("Plc.ChuteCount %d, the site says %d", chutes, p.cfg.Chutes),
			"set the line's chutes to the sorter's real count, or correct the PLC's configuration")
	} else {
		r.pass(CheckChuteCount, "CHUTE_COUNT matches the line", fmt.Sprint(chutes))
	}
	judgeBlock(r, u("State"), u("FaultCode"), u("BootId"), p.c.NodeID(p.ns, "Plc.BootId"))
	full, _ := vals["Chutes.Full"].([]bool)
	dis, _ := vals["Chutes.Disabled"].([]bool)
	if len(full) != chutes || len(dis) != chutes {
		r.fail(CheckChuteBits, "chute arrays are CHUTE_COUNT long", fmt.Sprintf("Full %d, Disabled %d, CHUTE_COUNT %d", len(full), len(dis), chutes),
			"Chutes.Full and Chutes.Disabled hold one Boolean per chute, index 0 = chute 1")
	} else {
		r.pass(CheckChuteBits, "chute arrays are CHUTE_COUNT long", fmt.Sprint(chutes))
	}

	sub, err := p.c.ProbeSubscribe(ctx, p.ns, "Plc.Heartbeat", 10*time.Millisecond, 300*time.Millisecond)
	const subTitle = "a subscription at 10 ms is accepted"
	switch {
	case err != nil:
		r.fail(CheckSubscription, subTitle, err.Error(), "the gateway subscribes to the PLC nodes with monitored items; the server must allow it")
	case sub.Publishing > 10*time.Millisecond || sub.Sampling > 10*time.Millisecond:
		r.fail(CheckSubscription, subTitle, fmt.Sprintf("revised to publishing %v, sampling %v", sub.Publishing, sub.Sampling),
			"the server revised the intervals up: allow 10 ms on these nodes (the confirmation ring needs interval x rate < 16)")
	case sub.Notifications == 0:
		r.fail(CheckSubscription, subTitle, "no data change notification", "the subscription publishes nothing")
	default:
		r.pass(CheckSubscription, subTitle, fmt.Sprintf("publishing %v, sampling %v, %d notifications", sub.Publishing, sub.Sampling, sub.Notifications))
	}

	beats, hostMoved, err := p.sample(ctx)
	if err != nil {
		r.fail(CheckPLCHeartbeat, "PLC_HEARTBEAT moves every 100 ms", err.Error(), "the session dropped while sampling")
		return
	}
	judgeHeartbeat(r, beats, p.opt.Sample)
	if hostMoved {
		r.notRun(CheckFaultNoHost, "FAULT_CODE 1 while no host heartbeat runs", "another host writes Host.Heartbeat (a gateway running?): stop it and probe again")
		r.notRun(CheckFaultClears, "FAULT_CODE 1 clears once the host heartbeat runs", "another host is running")
		return
	}
	f, err := p.read(ctx, "Plc.FaultCode")
	if err != nil {
		r.fail(CheckFaultNoHost, "FAULT_CODE 1 while no host heartbeat runs", err.Error(), "the session dropped")
		return
	}
	judgeFaultNoHost(r, f, p.opt.Sample)
	hb := startHeartbeat(ctx, func(ctx context.Context, v uint16) error { return p.c.WriteUint16(ctx, p.ns, "Host.Heartbeat", v) }, nil)
	defer hb.stop()
	if err := waitFault(ctx, p, 0, p.opt.Watchdog); err != nil {
		r.fail(CheckFaultClears, "FAULT_CODE 1 clears once the host heartbeat runs", err.Error()+hb.errText(),
			"the PLC does not see the heartbeat written to "+p.c.NodeID(p.ns, "Host.Heartbeat"))
		return
	}
	r.pass(CheckFaultClears, "FAULT_CODE 1 clears once the host heartbeat runs", "FAULT_CODE 0")
	if p.opt.DivertChute != 0 {
		divertTest(ctx, r, p.opt, &uaDivert{p: p, hb: hb})
	}
}

// namespace finds the sorter's namespace by URI; if it is not there, it
// looks for the sorter's nodes in every namespace for the hint.
func (p *uaProbe) namespace(ctx context.Context) bool {
	const title = "the sorter namespace is found by its URI"
	arr, err := p.c.Namespaces(ctx)
	if err != nil {
		p.r.fail(CheckNamespace, title, err.Error(), "the server does not give its NamespaceArray")
		return false
	}
	for i, u := range arr {
		if u == p.cfg.Namespace {
			p.ns = uint16(i)
			ev := fmt.Sprintf("%q at ns=%d", u, i)
			if i != 1 {
				ev += " (not 1: the gateway looks it up by URI at every connect, as it must)"
			}
			p.r.pass(CheckNamespace, title, ev)
			return true
		}
	}
	for i := 1; i < len(arr); i++ {
		in, err := p.c.ReadNodes(ctx, uint16(i), []string{"Plc.Heartbeat"})
		if err == nil && in[0].Err == nil {
			p.r.fail(CheckNamespace, title, fmt.Sprintf("%q not in the NamespaceArray %q; the sorter's nodes are at ns=%d", p.cfg.Namespace, arr, i),
				fmt.Sprintf("namespace index wrong: the nodes are in ns=%d, whose URI is %q: set namespace: %q (never hard-code ns=%d: the index may change when the PLC's project changes)", i, arr[i], arr[i], i))
			return false
		}
	}
	p.r.fail(CheckNamespace, title, fmt.Sprintf("%q not in the NamespaceArray %q", p.cfg.Namespace, arr),
		fmt.Sprintf("no namespace holds %s: check namespace and node_prefix against the PLC's address space", p.cfg.NodePrefix+".Plc.Heartbeat"))
	return false
}

func (p *uaProbe) read(ctx context.Context, name string) (uint16, error) {
	in, err := p.c.ReadNodes(ctx, p.ns, []string{name})
	if err != nil {
		return 0, err
	}
	if in[0].Err != nil {
		return 0, fmt.Errorf("%s: %w", name, in[0].Err)
	}
	v, ok := in[0].Value.(uint16)
	if !ok {
		return 0, fmt.Errorf("%s is %T", name, in[0].Value)
	}
	return v, nil
}

func (p *uaProbe) sample(ctx context.Context) (beats []uint16, hostMoved bool, err error) {
	h0, err := p.read(ctx, "Host.Heartbeat")
	if err != nil {
		return nil, false, err
	}
	end := time.Now().Add(p.opt.Sample)
	for {
		v, err := p.read(ctx, "Plc.Heartbeat")
		if err != nil {
			return beats, false, err
		}
		beats = append(beats, v)
		if time.Now().After(end) {
			break
		}
		if err := pause(ctx, 20*time.Millisecond); err != nil {
			return beats, false, err
		}
	}
	h1, err := p.read(ctx, "Host.Heartbeat")
	return beats, err == nil && h1 != h0, err
}

func (p *uaProbe) fault(ctx context.Context) (uint16, error) { return p.read(ctx, "Plc.FaultCode") }

// uaDivert is the divert test's OPC UA side.
type uaDivert struct {
	p     *uaProbe
	hb    *hbWriter
	names []string
}

func (d *uaDivert) fault(ctx context.Context) (uint16, error) { return d.p.fault(ctx) }
func (d *uaDivert) pauseHeartbeat(on bool)                    { d.hb.pause(on) }
func (d *uaDivert) ringHint() string {
	return fmt.Sprintf("the Divert.<k> nodes (ring %d, Seq written last)", d.p.cfg.Ring)
}

func (d *uaDivert) writeDivert(ctx context.Context, seq uint16, tid uint32, chute, reason uint16) error {
	return d.p.c.WriteDivert(ctx, d.p.ns, seq, tid, chute, reason)
}

// view reads the state, the counters and the whole confirmation ring in
// one ReadRequest.
func (d *uaDivert) view(ctx context.Context) (ringView, error) {
	ring := d.p.cfg.Ring
	if d.names == nil {
		d.names = []string{"Plc.State", "Plc.AckSeq", "Confirm.Count", "Plc.ChuteCount"}
		for j := 0; j < ring; j++ {
			pre := fmt.Sprintf("Confirm.%d.", j)
			d.names = append(d.names, pre+"Num", pre+"TrackingId", pre+"Chute", pre+"Result")
		}
	}
	in, err := d.p.c.ReadNodes(ctx, d.p.ns, d.names)
	if err != nil {
		return ringView{}, err
	}
	var bad error
	u16 := func(i int) uint16 {
		v, ok := in[i].Value.(uint16)
		if !ok && bad == nil {
			bad = fmt.Errorf("%s: %v (%T)", in[i].Name, in[i].Err, in[i].Value)
		}
		return v
	}
	v := ringView{state: u16(0), ack: u16(1), count: u16(2), chutes: u16(3), slots: make([]confSlot, ring)}
	for j := range v.slots {
		o := 4 + 4*j
		tid, _ := in[o+1].Value.(uint32)
		v.slots[j] = confSlot{num: u16(o), tid: tid, chute: u16(o + 2), result: u16(o + 3)}
	}
	return v, bad
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
