package fieldbussim

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"
)

// newTestPLC runs a PLC core in commissioning mode (every TID is an item
// that reaches its decision point after 20 ms) until the test ends.
func newTestPLC(t *testing.T, chutes int) *PLC {
	t.Helper()
	clk := RealClock{}
	sched := newScheduler(clk)
	p := newPLC(plcConfig{
		Chutes: chutes, Cycle: time.Millisecond, Commissioning: true,
		CommissioningTravel: 20 * time.Millisecond, HeartbeatPeriod: 20 * time.Millisecond,
		HostWatchdog: time.Second,
	}, clk, sched, newTruth(clk.Now()), zerolog.New(zerolog.NewTestWriter(t)).With().Str("part", "plc").Logger())
	p.start()
	t.Cleanup(func() {
		p.stop()
		sched.close()
	})
	return p
}

// runOPCUA starts the OPC UA front on 127.0.0.1:0 until the test ends.
func runOPCUA(t *testing.T, cfg OPCUAConfig, p *PLC) *opcuaServer {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	o, err := newOPCUAServer(cfg, p, zerolog.New(zerolog.NewTestWriter(t)).With().Str("part", "opcua").Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Listen(); err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "opcua", o.Run)
	return o
}

// waitOrDump is edgeWait that, on time-out, logs the server's counters and
// the stacks of the OPC UA goroutines, to tell a stall from a slow machine.
func waitOrDump(t *testing.T, o *opcuaServer, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			for _, g := range strings.Split(string(buf), "\n\n") {
				if strings.Contains(g, "opcua") {
					t.Log(g)
				}
			}
			t.Fatalf("timed out after %v waiting for %s; stats %+v", d, what, o.Stats())
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

func connect(t *testing.T, endpoint string, opts ...opcua.Option) *opcua.Client {
	t.Helper()
	c, err := tryConnect(endpoint, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", endpoint, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func tryConnect(endpoint string, opts ...opcua.Option) (*opcua.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]opcua.Option{opcua.AutoReconnect(false), opcua.RequestTimeout(5 * time.Second)}, opts...)
	c, err := opcua.NewClient(endpoint, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sorterNode(ns uint16, name string) *ua.NodeID { return ua.NewStringNodeID(ns, "Sorter."+name) }

// divertWrite is one contract divert command: the slot's four nodes, Seq last.
func divertWrite(ns uint16, seq uint16, tid uint32, chute, reason uint16) *ua.WriteRequest {
	k := "Divert." + strconv.Itoa(int(seq)%RingSize) + "."
	wv := func(name string, v any) *ua.WriteValue {
		return &ua.WriteValue{NodeID: sorterNode(ns, k+name), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}}
	}
	return &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		wv("TrackingId", tid), wv("Chute", chute), wv("Reason", reason), wv("Seq", seq),
	}}
}

func writeValue(ns uint16, name string, v any) *ua.WriteValue {
	return &ua.WriteValue{NodeID: sorterNode(ns, name), AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}}
}

func readValues(t *testing.T, c *opcua.Client, ids ...*ua.NodeID) []*ua.DataValue {
	t.Helper()
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, id := range ids {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: id, AttributeID: ua.AttributeIDValue})
	}
	resp, err := c.Read(testCtx(t), req)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(resp.Results) != len(ids) {
		t.Fatalf("read: %d results for %d nodes", len(resp.Results), len(ids))
	}
	return resp.Results
}

// TestOPCUA runs the checks that can share one server (building a gopcua
// server parses its whole standard nodeset, seconds under -race), in an
// order that keeps each one's expectations: refusals before any command.
func TestOPCUA(t *testing.T) {
	p := newTestPLC(t, 40)
	o := runOPCUA(t, OPCUAConfig{}, p)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *PLC, *opcuaServer)
	}{
		{"read every node", testReadEveryNode},
		{"write refusals", testWriteRefusals},
		{"write divert reaches PLC", testWriteDivertReachesPLC},
		{"subscription notifications", testSubscriptionNotifications},
		{"subscription ids stay unique", testSubscriptionIDsUnique},
		{"drop connections", testDropConnections},
	} {
		if !t.Run(tc.name, func(t *testing.T) { tc.fn(t, p, o) }) {
			return
		}
	}
}

func testReadEveryNode(t *testing.T, p *PLC, o *opcuaServer) {
	c := connect(t, o.Endpoint())
	ns, err := c.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatalf("FindNamespace: %v", err)
	}
	if ns == 0 {
		t.Fatalf("namespace index 0")
	}
	var ids []*ua.NodeID
	for _, v := range o.vars {
		ids = append(ids, ua.NewStringNodeID(ns, v.name))
	}
	if len(ids) != 3+4*RingSize+4*RingSize+1+6+2 {
		t.Fatalf("%d variables in the address space", len(ids))
	}
	res := readValues(t, c, ids...)
	snap := p.Snapshot()
	for i, v := range o.vars {
		dv := res[i]
		if dv.Status != ua.StatusOK {
			t.Fatalf("%s: status %v", v.name, dv.Status)
		}
		switch v.typ {
		case uaUint16:
			if _, ok := dv.Value.Value().(uint16); !ok {
				t.Fatalf("%s: %T, want uint16", v.name, dv.Value.Value())
			}
		case uaUint32:
			if _, ok := dv.Value.Value().(uint32); !ok {
				t.Fatalf("%s: %T, want uint32", v.name, dv.Value.Value())
			}
		case uaBoolArray:
			b, ok := dv.Value.Value().([]bool)
			if !ok || len(b) != 40 {
				t.Fatalf("%s: %T len %d, want []bool of 40", v.name, dv.Value.Value(), len(b))
			}
		}
	}
	byName := map[string]any{}
	for i, v := range o.vars {
		byName[v.name] = res[i].Value.Value()
	}
	if byName["Sorter.Plc.ChuteCount"] != uint16(40) || byName["Sorter.Plc.BootId"] != snap.BootID ||
		byName["Sorter.Plc.FaultCode"] != uint16(1) || byName["Sorter.Confirm.Count"] != uint16(0) {
		t.Fatalf("power-on values: %v", byName)
	}

	// Metadata a client browses with: data types and access levels.
	attrs, err := c.Read(testCtx(t), &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: sorterNode(ns, "Divert.3.TrackingId"), AttributeID: ua.AttributeIDDataType},
		{NodeID: sorterNode(ns, "Divert.3.Seq"), AttributeID: ua.AttributeIDAccessLevel},
		{NodeID: sorterNode(ns, "Plc.AckSeq"), AttributeID: ua.AttributeIDAccessLevel},
		{NodeID: sorterNode(ns, "Nope"), AttributeID: ua.AttributeIDValue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := attrs.Results[0].Value.NodeID(); got == nil || got.IntID() != 7 {
		t.Fatalf("TrackingId DataType %v, want i=7 (UInt32)", attrs.Results[0].Value)
	}
	if got := attrs.Results[1].Value.Value(); got != byte(3) {
		t.Fatalf("Seq AccessLevel %v, want 3 (read|write)", got)
	}
	if got := attrs.Results[2].Value.Value(); got != byte(1) {
		t.Fatalf("AckSeq AccessLevel %v, want 1 (read)", got)
	}
	if attrs.Results[3].Status != ua.StatusBadNodeIDUnknown {
		t.Fatalf("unknown node: %v", attrs.Results[3].Status)
	}
}

func testWriteDivertReachesPLC(t *testing.T, p *PLC, o *opcuaServer) {
	c := connect(t, o.Endpoint())
	ns, err := c.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Write(testCtx(t), &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		writeValue(ns, "Host.Heartbeat", uint16(1)),
		writeValue(ns, "Host.State", uint16(1)),
		writeValue(ns, "Host.PlanVersion", uint16(77)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Results {
		if r != ua.StatusOK {
			t.Fatalf("host write %d: %v", i, r)
		}
	}
	waitFor(t, "FAULT_CODE 0 after the host heartbeat", 5*time.Second, func() bool { return p.Snapshot().FaultCode == 0 })

	resp, err = c.Write(testCtx(t), divertWrite(ns, 1, 4242, 5, 0))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Results {
		if r != ua.StatusOK {
			t.Fatalf("divert write node %d: %v", i, r)
		}
	}
	waitFor(t, "ACK_SEQ 1", 5*time.Second, func() bool { return p.Snapshot().AckSeq == 1 })
	snap := p.Snapshot()
	if got := snap.Divert[1]; got != (DivertSlot{Seq: 1, TID: 4242, Chute: 5, Reason: 0}) {
		t.Fatalf("divert slot 1 = %+v", got)
	}
	if snap.HostState != 1 || snap.PlanVersion != 77 {
		t.Fatalf("host block %d %d", snap.HostState, snap.PlanVersion)
	}
	waitFor(t, "confirmation 1", 5*time.Second, func() bool { return p.Snapshot().ConfirmCount == 1 })
	// The confirmation is served over OPC UA too: slot 1, then Count.
	res := readValues(t, c, sorterNode(ns, "Confirm.1.Num"), sorterNode(ns, "Confirm.1.TrackingId"),
		sorterNode(ns, "Confirm.1.Chute"), sorterNode(ns, "Confirm.1.Result"), sorterNode(ns, "Confirm.Count"),
		sorterNode(ns, "Plc.AckSeq"), sorterNode(ns, "Divert.1.Seq"))
	if res[0].Value.Value() != uint16(1) || res[1].Value.Value() != uint32(4242) || res[2].Value.Value() != uint16(5) ||
		res[3].Value.Value() != uint16(ResultDiverted) || res[4].Value.Value() != uint16(1) ||
		res[5].Value.Value() != uint16(1) || res[6].Value.Value() != uint16(1) {
		t.Fatalf("confirmation over OPC UA: %v %v %v %v count %v ack %v seq %v", res[0].Value, res[1].Value, res[2].Value,
			res[3].Value, res[4].Value, res[5].Value, res[6].Value)
	}
	if st := o.Stats(); st.DivertCommands != 1 || st.NonConformingDiverts != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func testWriteRefusals(t *testing.T, p *PLC, o *opcuaServer) {
	c := connect(t, o.Endpoint())
	ns, err := c.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	mismatchTID := divertWrite(ns, 1, 9, 2, 0)
	mismatchTID.NodesToWrite[0].Value.Value = ua.MustVariant(uint16(9)) // UInt16 where UInt32 is due
	tests := []struct {
		name string
		req  *ua.WriteRequest
		want []ua.StatusCode
	}{
		{"Int32 into Seq", &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{writeValue(ns, "Divert.0.Seq", int32(1))}},
			[]ua.StatusCode{ua.StatusBadTypeMismatch}},
		{"UInt32 into Chute", &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{writeValue(ns, "Divert.0.Chute", uint32(1))}},
			[]ua.StatusCode{ua.StatusBadTypeMismatch}},
		{"string into heartbeat", &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{writeValue(ns, "Host.Heartbeat", "1")}},
			[]ua.StatusCode{ua.StatusBadTypeMismatch}},
		{"array into heartbeat", &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{writeValue(ns, "Host.Heartbeat", []uint16{1})}},
			[]ua.StatusCode{ua.StatusBadTypeMismatch}},
		{"PLC block is read-only", &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{writeValue(ns, "Plc.AckSeq", uint16(3))}},
			[]ua.StatusCode{ua.StatusBadNotWritable}},
		{"unknown node", &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{writeValue(ns, "Divert.16.Seq", uint16(3))}},
			[]ua.StatusCode{ua.StatusBadNodeIDUnknown}},
		{"bad TrackingId type refuses the command", mismatchTID,
			[]ua.StatusCode{ua.StatusBadTypeMismatch, ua.StatusOK, ua.StatusOK, ua.StatusBadInvalidState}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Write(testCtx(t), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Results) != len(tc.want) {
				t.Fatalf("results %v, want %v", resp.Results, tc.want)
			}
			for i := range tc.want {
				if resp.Results[i] != tc.want[i] {
					t.Fatalf("results %v, want %v", resp.Results, tc.want)
				}
			}
		})
	}
	if snap := p.Snapshot(); snap.Divert[1].Seq != 0 || snap.Divert[0].Seq != 0 || snap.AckSeq != 0 {
		t.Fatalf("a refused command reached the PLC: %+v ack %d", snap.Divert, snap.AckSeq)
	}
	if st := o.Stats(); st.TypeMismatches != 5 || st.DivertCommands != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// collect gathers data-change notifications by node name.
type collector struct {
	mu     sync.Mutex
	values map[uint32][]any
}

func (cl *collector) run(ch <-chan *opcua.PublishNotificationData, done chan<- struct{}) {
	defer close(done)
	for msg := range ch {
		dc, ok := msg.Value.(*ua.DataChangeNotification)
		if !ok {
			continue
		}
		cl.mu.Lock()
		for _, it := range dc.MonitoredItems {
			if it.Value != nil && it.Value.Value != nil {
				cl.values[it.ClientHandle] = append(cl.values[it.ClientHandle], it.Value.Value.Value())
			}
		}
		cl.mu.Unlock()
	}
}

func (cl *collector) seen(handle uint32, v any) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, x := range cl.values[handle] {
		if x == v {
			return true
		}
	}
	return false
}

func (cl *collector) distinct(handle uint32) int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	m := map[any]bool{}
	for _, x := range cl.values[handle] {
		m[x] = true
	}
	return len(m)
}

func subscribe(t *testing.T, c *opcua.Client, ns uint16, names ...string) *collector {
	t.Helper()
	ch := make(chan *opcua.PublishNotificationData, 256)
	sub, err := c.Subscribe(testCtx(t), &opcua.SubscriptionParameters{Interval: 10 * time.Millisecond}, ch)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if sub.RevisedPublishingInterval != 10*time.Millisecond {
		t.Fatalf("revised publishing interval %v", sub.RevisedPublishingInterval)
	}
	var items []*ua.MonitoredItemCreateRequest
	for i, n := range names {
		req := opcua.NewMonitoredItemCreateRequestWithDefaults(sorterNode(ns, n), ua.AttributeIDValue, uint32(i))
		req.RequestedParameters.SamplingInterval = 10
		items = append(items, req)
	}
	res, err := sub.Monitor(testCtx(t), ua.TimestampsToReturnBoth, items...)
	if err != nil {
		t.Fatalf("monitor: %v", err)
	}
	for i, r := range res.Results {
		if r.StatusCode != ua.StatusOK {
			t.Fatalf("monitor %s: %v", names[i], r.StatusCode)
		}
	}
	cl := &collector{values: map[uint32][]any{}}
	done := make(chan struct{})
	go cl.run(ch, done)
	t.Cleanup(func() {
		sub.Cancel(context.Background())
		c.Close(context.Background())
		close(ch)
		<-done
	})
	return cl
}

func testSubscriptionNotifications(t *testing.T, p *PLC, o *opcuaServer) {
	c := connect(t, o.Endpoint())
	ns, err := c.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	cl := subscribe(t, c, ns, "Plc.Heartbeat", "Plc.AckSeq", "Confirm.Count", "Confirm.2.TrackingId")
	waitFor(t, "PLC heartbeat notifications", 10*time.Second, func() bool { return cl.distinct(0) >= 3 })
	resp, err := c.Write(testCtx(t), divertWrite(ns, 2, 31337, 3, 0))
	if err != nil || resp.Results[3] != ua.StatusOK {
		t.Fatalf("divert write: %v %v", err, resp)
	}
	waitFor(t, "AckSeq notification", 10*time.Second, func() bool { return cl.seen(1, uint16(2)) })
	waitFor(t, "Confirm.Count notification", 10*time.Second, func() bool { return cl.seen(2, uint16(2)) })
	if !cl.seen(3, uint32(31337)) {
		t.Fatalf("Count notified before the confirmation slot's TrackingId")
	}
}

func TestOPCUARestartDropsSessions(t *testing.T) {
	p := newTestPLC(t, 16)
	var silent net.Conn
	// Registered before runOPCUA, so it runs after Run has returned: a TCP
	// client that never says Hello is cut at shutdown, not waited for.
	t.Cleanup(func() {
		if silent == nil {
			return
		}
		silent.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := silent.Read(make([]byte, 1)); err == nil {
			t.Error("silent connection still open after Run returned")
		}
		silent.Close()
	})
	o := runOPCUA(t, OPCUAConfig{}, p)
	endpoint := o.Endpoint()
	silent, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "opc.tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "silent connection accepted", 10*time.Second, func() bool {
		o.mu.RLock()
		defer o.mu.RUnlock()
		return len(o.pending) == 1
	})
	c := connect(t, endpoint)
	ns, err := c.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	readValues(t, c, sorterNode(ns, "Plc.BootId"))
	o.Restart()
	waitFor(t, "old session to fail", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: sorterNode(ns, "Plc.BootId"), AttributeID: ua.AttributeIDValue}}})
		return err != nil
	})
	if o.Endpoint() != endpoint {
		t.Fatalf("endpoint moved: %s -> %s", endpoint, o.Endpoint())
	}
	var c2 *opcua.Client
	waitFor(t, "reconnect after restart", 30*time.Second, func() bool {
		var err error
		c2, err = tryConnect(endpoint)
		return err == nil
	})
	defer c2.Close(context.Background())
	ns2, err := c2.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	res := readValues(t, c2, sorterNode(ns2, "Plc.ChuteCount"))
	if res[0].Value.Value() != uint16(16) {
		t.Fatalf("after restart: %v", res[0].Value)
	}
	cl := subscribe(t, c2, ns2, "Plc.Heartbeat")
	waitOrDump(t, o, "notifications after restart", 30*time.Second, func() bool { return cl.distinct(0) >= 2 })
	if st := o.Stats(); st.Restarts != 1 || st.Sessions < 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOPCUASecureChannels(t *testing.T) {
	keys := makeTestKeys(t)
	for _, tc := range []struct {
		security    string
		mode, other ua.MessageSecurityMode
	}{
		{SecuritySignAndEncrypt, ua.MessageSecurityModeSignAndEncrypt, ua.MessageSecurityModeSign},
		{SecuritySign, ua.MessageSecurityModeSign, ua.MessageSecurityModeSignAndEncrypt},
	} {
		t.Run(tc.security, func(t *testing.T) { testSecureChannel(t, keys, tc.security, tc.mode, tc.other) })
	}
}

// testKeys are generated once: RSA 2048 key generation takes seconds under -race.
type testKeys struct {
	cliCert, untrusted       []byte
	cliKey, untrustedKey     *rsa.PrivateKey
	cliFile, srvCert, srvKey string
}

func makeTestKeys(t *testing.T) testKeys {
	t.Helper()
	dir := t.TempDir()
	var k testKeys
	var err error
	if k.cliCert, k.cliKey, err = GenerateCert(CertOptions{ApplicationURI: "urn:sortgw:test-client"}); err != nil {
		t.Fatal(err)
	}
	if k.cliFile, _, err = WriteCertFiles(dir, "client", k.cliCert, k.cliKey); err != nil {
		t.Fatal(err)
	}
	if k.untrusted, k.untrustedKey, err = GenerateCert(CertOptions{ApplicationURI: "urn:sortgw:test-client"}); err != nil {
		t.Fatal(err)
	}
	srv, srvKey, err := GenerateCert(CertOptions{ApplicationURI: "urn:sortgw:fieldbus-sim"})
	if err != nil {
		t.Fatal(err)
	}
	if k.srvCert, k.srvKey, err = WriteCertFiles(dir, "server", srv, srvKey); err != nil {
		t.Fatal(err)
	}
	return k
}

// testSecureChannel: a trusted client on Basic256Sha256 in the offered mode
// writes a divert and reads it back; the other mode, a None channel and an
// untrusted certificate are refused.
func testSecureChannel(t *testing.T, k testKeys, security string, mode, other ua.MessageSecurityMode) {
	cliCert, cliKey := k.cliCert, k.cliKey
	p := newTestPLC(t, 16)
	o := runOPCUA(t, OPCUAConfig{Security: security, OnlySecure: true, TrustedClientCerts: []string{k.cliFile},
		CertFile: k.srvCert, KeyFile: k.srvKey}, p)

	eps, err := opcua.GetEndpoints(testCtx(t), o.Endpoint())
	if err != nil {
		t.Fatalf("GetEndpoints: %v", err)
	}
	if len(eps) != 1 || eps[0].SecurityMode != mode {
		t.Fatalf("endpoints %v", eps)
	}
	ep, err := opcua.SelectEndpoint(eps, ua.SecurityPolicyURIBasic256Sha256, mode)
	if err != nil {
		t.Fatal(err)
	}
	secure := func(cert []byte, key *rsa.PrivateKey) []opcua.Option {
		return []opcua.Option{
			opcua.SecurityPolicy(ua.SecurityPolicyURIBasic256Sha256),
			opcua.SecurityMode(mode),
			opcua.Certificate(cert), opcua.PrivateKey(key),
			opcua.RemoteCertificate(ep.ServerCertificate),
			opcua.ApplicationURI("urn:sortgw:test-client"),
			opcua.AuthAnonymous(), opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous),
		}
	}
	c := connect(t, o.Endpoint(), secure(cliCert, cliKey)...)
	ns, err := c.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Write(testCtx(t), divertWrite(ns, 1, 555, 2, 0))
	if err != nil || resp.Results[3] != ua.StatusOK {
		t.Fatalf("secure divert write: %v %v", err, resp)
	}
	waitFor(t, "ACK_SEQ 1", 5*time.Second, func() bool { return p.Snapshot().AckSeq == 1 })
	res := readValues(t, c, sorterNode(ns, "Divert.1.TrackingId"))
	if res[0].Value.Value() != uint32(555) {
		t.Fatalf("secure read %v", res[0].Value)
	}

	// A trusted client asking for the mode this server does not offer gets
	// no channel.
	wrong := secure(cliCert, cliKey)
	wrong = append(wrong[:1:1], append([]opcua.Option{opcua.SecurityMode(other)}, wrong[2:6]...)...)
	if c, err := tryConnect(o.Endpoint(), wrong...); err == nil {
		c.Close(context.Background())
		t.Fatalf("%v channel on a %v-only server", other, mode)
	}
	// A None channel gets no session on an only-secure server.
	if c, err := tryConnect(o.Endpoint(), opcua.SecurityMode(ua.MessageSecurityModeNone)); err == nil {
		c.Close(context.Background())
		t.Fatal("session on a None channel of an only-secure server")
	}
	// Nor does a secured client whose certificate is not trusted.
	c3, err := tryConnect(o.Endpoint(), secure(k.untrusted, k.untrustedKey)...)
	if err == nil {
		c3.Close(context.Background())
		t.Fatal("session for an untrusted client certificate")
	}
	if !errors.Is(err, ua.StatusBadCertificateUntrusted) {
		t.Logf("untrusted client refused with %v", err)
	}
	if st := o.Stats(); st.Refused < 2 {
		t.Fatalf("stats %+v", st)
	}
}

func testDropConnections(t *testing.T, p *PLC, o *opcuaServer) {
	c := connect(t, o.Endpoint())
	ns, err := c.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	res := readValues(t, c, ua.NewNumericNodeID(0, 11705)) // Server_ServerCapabilities_OperationLimits_MaxNodesPerRead
	if res[0].Value.Value() != uint32(maxNodesPerRead) {
		t.Fatalf("MaxNodesPerRead %v", res[0].Value)
	}
	if n := o.DropConnections(); n != 1 {
		t.Fatalf("dropped %d connections, want 1", n)
	}
	waitFor(t, "client to notice", 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: sorterNode(ns, "Plc.BootId"), AttributeID: ua.AttributeIDValue}}})
		return err != nil
	})
	c2 := connect(t, o.Endpoint())
	if _, err := c2.FindNamespace(testCtx(t), "urn:sortgw:sorter"); err != nil {
		t.Fatalf("reconnect: %v", err)
	}
}

// BenchmarkOPCUADivertWrite measures one contract divert command (one
// WriteRequest of the slot's four nodes, Seq last) over a None channel on
// loopback, the PLC core taking it.
func BenchmarkOPCUADivertWrite(b *testing.B) {
	clk := RealClock{}
	sched := newScheduler(clk)
	p := newPLC(plcConfig{Chutes: 256, Cycle: time.Millisecond, ImmediateScan: true, Commissioning: true,
		CommissioningTravel: time.Millisecond, HeartbeatPeriod: 100 * time.Millisecond, HostWatchdog: time.Hour},
		clk, sched, newTruth(clk.Now()), zerolog.Nop())
	p.start()
	defer func() { p.stop(); sched.close() }()
	o, err := newOPCUAServer(OPCUAConfig{Addr: "127.0.0.1:0"}, p, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	if err := o.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := tryConnect(o.Endpoint())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	ns, err := c.FindNamespace(context.Background(), "urn:sortgw:sorter")
	if err != nil {
		b.Fatal(err)
	}
	seq := uint16(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		resp, err := c.Write(context.Background(), divertWrite(ns, seq, uint32(seq)+1, 3, 0))
		if err != nil || resp.Results[3] != ua.StatusOK {
			b.Fatalf("write: %v %v", err, resp)
		}
	}
}

func TestOPCUAConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     OPCUAConfig
		wantErr string
	}{
		{"defaults", OPCUAConfig{}, ""},
		{"bad security", OPCUAConfig{Security: "Basic256"}, "security"},
		{"only-secure without security", OPCUAConfig{OnlySecure: true}, "only-secure"},
		{"cert without key", OPCUAConfig{Security: SecuritySign, CertFile: "a.pem"}, "go together"},
		{"publishing interval", OPCUAConfig{MinPublishingInterval: time.Microsecond}, "publishing interval"},
		{"addr", OPCUAConfig{Addr: "4840"}, "addr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.cfg.Namespace != "urn:sortgw:sorter" || tc.cfg.NodePrefix != "Sorter" || tc.cfg.Security != SecurityNone {
					t.Fatalf("defaults %+v", tc.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrOPCUAConfig) {
				t.Fatalf("error %v, want ErrOPCUAConfig containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestOPCUASniffPolicy checks the proxy's reading of the wire: a Hello is
// answered with gopcua's Acknowledge and the OPN header's policy URI decides
// the route. The bytes are built by hand.
func TestOPCUASniffPolicy(t *testing.T) {
	hel := func() []byte {
		// "HELF", size, then version, buffer sizes, max message, max chunks, url
		url := "opc.tcp://127.0.0.1:4840"
		body := []byte{0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		body = binary.LittleEndian.AppendUint32(body, uint32(len(url)))
		body = append(body, url...)
		b := append([]byte("HELF"), binary.LittleEndian.AppendUint32(nil, uint32(8+len(body)))...)
		return append(b, body...)
	}
	opn := func(policy string) []byte {
		b := append([]byte("OPNF"), 0xff, 0, 0, 0) // size: not read by the sniffer
		b = append(b, 0, 0, 0, 0)                  // secure channel id
		b = binary.LittleEndian.AppendUint32(b, uint32(len(policy)))
		return append(b, policy...)
	}
	for _, tc := range []struct {
		policy  string
		secured bool
	}{
		{ua.SecurityPolicyURINone, false},
		{ua.SecurityPolicyURIBasic256Sha256, true},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			type result struct {
				hello, opn []byte
				secured    bool
				err        error
			}
			res := make(chan result, 1)
			go func() {
				h, o, s, err := sniffPolicy(server)
				res <- result{h, o, s, err}
			}()
			if _, err := client.Write(hel()); err != nil {
				t.Fatal(err)
			}
			want, err := ackMessage()
			if err != nil {
				t.Fatal(err)
			}
			if got := readExactly(t, client, len(want)); !bytes.Equal(got, want) || string(got[:4]) != "ACKF" {
				t.Fatalf("acknowledge % x, want % x", got, want)
			}
			if _, err := client.Write(opn(tc.policy)); err != nil {
				t.Fatal(err)
			}
			r := <-res
			if r.err != nil || r.secured != tc.secured || !bytes.Equal(r.hello, hel()) || !bytes.Equal(r.opn, opn(tc.policy)) {
				t.Fatalf("sniff: secured %v err %v, hello %q opn %q", r.secured, r.err, r.hello, r.opn)
			}
		})
	}
}

// testSubscriptionIDsUnique: gopcua numbers subscriptions len(map)+1; after
// one is deleted a new one must not take a live one's id (and kill it).
func testSubscriptionIDsUnique(t *testing.T, p *PLC, o *opcuaServer) {
	newSub := func(c *opcua.Client) (*opcua.Subscription, chan *opcua.PublishNotificationData) {
		ch := make(chan *opcua.PublishNotificationData, 64)
		sub, err := c.Subscribe(testCtx(t), &opcua.SubscriptionParameters{Interval: 10 * time.Millisecond}, ch)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		return sub, ch
	}
	a, b, c := connect(t, o.Endpoint()), connect(t, o.Endpoint()), connect(t, o.Endpoint())
	subA, _ := newSub(a)
	subB, chB := newSub(b)
	if err := subA.Cancel(testCtx(t)); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	waitFor(t, "subscription deleted", 10*time.Second, func() bool { return !liveSubscription(o.inst.srv.SubscriptionService, subA.SubscriptionID) })
	subC, _ := newSub(c)
	if subC.SubscriptionID == subB.SubscriptionID || subC.SubscriptionID == subA.SubscriptionID {
		t.Fatalf("subscription ids A %d B %d C %d", subA.SubscriptionID, subB.SubscriptionID, subC.SubscriptionID)
	}
	ns, err := b.FindNamespace(testCtx(t), "urn:sortgw:sorter")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := subB.Monitor(testCtx(t), ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(sorterNode(ns, "Plc.Heartbeat"), ua.AttributeIDValue, 1)); err != nil {
		t.Fatalf("monitor on B: %v", err)
	}
	deadline := time.After(10 * time.Second)
	for got := 0; got < 2; {
		select {
		case msg := <-chB:
			if _, ok := msg.Value.(*ua.DataChangeNotification); ok {
				got++
			}
		case <-deadline:
			t.Fatal("subscription B stopped receiving after C was created")
		}
	}
	subB.Cancel(testCtx(t))
	subC.Cancel(testCtx(t))
}
