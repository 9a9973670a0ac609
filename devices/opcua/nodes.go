package opcua

import (
	"fmt"
	"strconv"

	"github.com/gopcua/opcua/ua"
)

// Client handles of the monitored items: the notification handler tells
// the values apart by these.
const (
	hPlcHeartbeat uint32 = iota + 1
	hPlcState
	hPlcAckSeq
	hPlcFaultCode
	hPlcChuteCount
	hPlcBootID
	hConfirmCount
	hChutesFull
	hChutesDisabled
	hCount // one past the last handle
)

// nodeSet holds every node id the link uses, built once per connection
// from the namespace index found by URI and the configured prefix.
type nodeSet struct {
	ns uint16

	hostHeartbeat, hostState, hostPlanVersion *ua.NodeID

	// plc is indexed by client handle (hPlcHeartbeat..hChutesDisabled).
	plc [hCount]*ua.NodeID

	divert  []slotNodes   // [k]: TrackingId, Chute, Reason, Seq
	confirm []confirmNode // [j]: Num, TrackingId, Chute, Result
}

type slotNodes struct{ tid, chute, reason, seq *ua.NodeID }

type confirmNode struct{ num, tid, chute, result *ua.NodeID }

func newNodeSet(ns uint16, prefix string, ring int) *nodeSet {
	id := func(s string) *ua.NodeID { return ua.NewStringNodeID(ns, prefix+"."+s) }
	n := &nodeSet{
		ns:              ns,
		hostHeartbeat:   id("Host.Heartbeat"),
		hostState:       id("Host.State"),
		hostPlanVersion: id("Host.PlanVersion"),
		divert:          make([]slotNodes, ring),
		confirm:         make([]confirmNode, ring),
	}
	n.plc[hPlcHeartbeat] = id("Plc.Heartbeat")
	n.plc[hPlcState] = id("Plc.State")
	n.plc[hPlcAckSeq] = id("Plc.AckSeq")
	n.plc[hPlcFaultCode] = id("Plc.FaultCode")
	n.plc[hPlcChuteCount] = id("Plc.ChuteCount")
	n.plc[hPlcBootID] = id("Plc.BootId")
	n.plc[hConfirmCount] = id("Confirm.Count")
	n.plc[hChutesFull] = id("Chutes.Full")
	n.plc[hChutesDisabled] = id("Chutes.Disabled")
	for k := range ring {
		ks := strconv.Itoa(k)
		n.divert[k] = slotNodes{
			tid:    id("Divert." + ks + ".TrackingId"),
			chute:  id("Divert." + ks + ".Chute"),
			reason: id("Divert." + ks + ".Reason"),
			seq:    id("Divert." + ks + ".Seq"),
		}
		n.confirm[k] = confirmNode{
			num:    id("Confirm." + ks + ".Num"),
			tid:    id("Confirm." + ks + ".TrackingId"),
			chute:  id("Confirm." + ks + ".Chute"),
			result: id("Confirm." + ks + ".Result"),
		}
	}
	return n
}

func writeValue(id *ua.NodeID, v any) *ua.WriteValue {
	return &ua.WriteValue{
		NodeID:      id,
		AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{
			EncodingMask: ua.DataValueValue,
			Value:        ua.MustVariant(v),
		},
	}
}

// divertRequest is the one WriteRequest of one command: exactly the four
// nodes of its slot, Seq last, because the PLC applies them in order and
// takes the command when it sees the new Seq.
func (n *nodeSet) divertRequest(seq uint16, tid uint32, chute, reason uint16) *ua.WriteRequest {
	s := &n.divert[int(seq)%len(n.divert)]
	return &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		writeValue(s.tid, tid),
		writeValue(s.chute, chute),
		writeValue(s.reason, reason),
		writeValue(s.seq, seq),
	}}
}

// heartbeatRequest writes the host block in one request.
func (n *nodeSet) heartbeatRequest(hb, state, plan uint16) *ua.WriteRequest {
	return &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		writeValue(n.hostHeartbeat, hb),
		writeValue(n.hostState, state),
		writeValue(n.hostPlanVersion, plan),
	}}
}

// readbackRequest reads what only the host writes: Host.Heartbeat, then
// each divert slot's Seq and TrackingId.
func (n *nodeSet) readbackRequest() *ua.ReadRequest {
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
	add := func(id *ua.NodeID) {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: id, AttributeID: ua.AttributeIDValue})
	}
	add(n.hostHeartbeat)
	for k := range n.divert {
		add(n.divert[k].seq)
		add(n.divert[k].tid)
	}
	return req
}

// plcReadRequest reads every monitored node, in client-handle order
// (index i holds handle i+1).
func (n *nodeSet) plcReadRequest() *ua.ReadRequest {
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
	for h := hPlcHeartbeat; h < hCount; h++ {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: n.plc[h], AttributeID: ua.AttributeIDValue})
	}
	return req
}

// confirmReadRequest reads, in one request: Confirm.Count; the slots of
// confirmations first .. first+n-1 (Num, TrackingId, Chute, Result); each
// of those slots' Num again; then Plc.AckSeq and Plc.BootId. A server
// answers a Read node by node and need not take one snapshot for all of
// them, so the read is a seqlock: Count first (every slot read after it is
// at least as new), and a slot whose two Nums differ was overwritten while
// it was read and is not used. BootId last: a cold restart before or during
// the read shows there, and the read is then left to the subscription.
func (n *nodeSet) confirmReadRequest(first uint16, count int) *ua.ReadRequest {
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
	add := func(id *ua.NodeID) {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: id, AttributeID: ua.AttributeIDValue})
	}
	add(n.plc[hConfirmCount])
	slot := func(i int) *confirmNode { return &n.confirm[int(first+uint16(i))%len(n.confirm)] }
	for i := range count {
		c := slot(i)
		add(c.num)
		add(c.tid)
		add(c.chute)
		add(c.result)
	}
	for i := range count {
		add(slot(i).num)
	}
	add(n.plc[hPlcAckSeq])
	add(n.plc[hPlcBootID])
	return req
}

// monitorRequests are the monitored items of the subscription.
func (n *nodeSet) monitorRequests(interval float64) []*ua.MonitoredItemCreateRequest {
	var reqs []*ua.MonitoredItemCreateRequest
	for h := hPlcHeartbeat; h < hCount; h++ {
		reqs = append(reqs, &ua.MonitoredItemCreateRequest{
			ItemToMonitor:  &ua.ReadValueID{NodeID: n.plc[h], AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}},
			MonitoringMode: ua.MonitoringModeReporting,
			RequestedParameters: &ua.MonitoringParameters{
				ClientHandle:     h,
				SamplingInterval: interval,
				QueueSize:        1,
				DiscardOldest:    true,
			},
		})
	}
	return reqs
}

// errValueType: a node held a value of another type than the contract
// says.
type errValueType struct {
	node *ua.NodeID
	want string
	got  any
}

func (e *errValueType) Error() string {
	return fmt.Sprintf("node %s: want %s, got %T", e.node, e.want, e.got)
}

// dataValue checks a DataValue's status and returns its value.
func dataValue(id *ua.NodeID, dv *ua.DataValue) (any, error) {
	if dv == nil {
		return nil, fmt.Errorf("node %s: no value", id)
	}
	if dv.EncodingMask&ua.DataValueStatusCode != 0 && dv.Status != ua.StatusOK {
		return nil, fmt.Errorf("node %s: %w", id, dv.Status)
	}
	if dv.Value == nil {
		return nil, fmt.Errorf("node %s: empty value", id)
	}
	return dv.Value.Value(), nil
}

func u16(id *ua.NodeID, dv *ua.DataValue) (uint16, error) {
	v, err := dataValue(id, dv)
	if err != nil {
		return 0, err
	}
	x, ok := v.(uint16)
	if !ok {
		return 0, &errValueType{id, "UInt16", v}
	}
	return x, nil
}

func u32(id *ua.NodeID, dv *ua.DataValue) (uint32, error) {
	v, err := dataValue(id, dv)
	if err != nil {
		return 0, err
	}
	x, ok := v.(uint32)
	if !ok {
		return 0, &errValueType{id, "UInt32", v}
	}
	return x, nil
}

func bools(id *ua.NodeID, dv *ua.DataValue) ([]bool, error) {
	v, err := dataValue(id, dv)
	if err != nil {
		return nil, err
	}
	x, ok := v.([]bool)
	if !ok {
		return nil, &errValueType{id, "Boolean[]", v}
	}
	return x, nil
}

// writeStatus checks a WriteResponse: every per-node status must be Good,
// and there must be one per node written. A divert is done when the device
// says so.
func writeStatus(req *ua.WriteRequest, res *ua.WriteResponse) error {
	if res == nil {
		return fmt.Errorf("write: no response")
	}
	if res.ResponseHeader != nil && res.ResponseHeader.ServiceResult != ua.StatusOK {
		return fmt.Errorf("write: service result: %w", res.ResponseHeader.ServiceResult)
	}
	if len(res.Results) != len(req.NodesToWrite) {
		return fmt.Errorf("write: %d results for %d nodes: %w", len(res.Results), len(req.NodesToWrite), ErrBadStatus)
	}
	for i, st := range res.Results {
		if st != ua.StatusOK {
			return fmt.Errorf("write %s: %w: %w", req.NodesToWrite[i].NodeID, ErrBadStatus, st)
		}
	}
	return nil
}

// readResults checks a ReadResponse's shape.
func readResults(req *ua.ReadRequest, res *ua.ReadResponse) error {
	if res == nil {
		return fmt.Errorf("read: no response")
	}
	if res.ResponseHeader != nil && res.ResponseHeader.ServiceResult != ua.StatusOK {
		return fmt.Errorf("read: service result: %w", res.ResponseHeader.ServiceResult)
	}
	if len(res.Results) != len(req.NodesToRead) {
		return fmt.Errorf("read: %d results for %d nodes: %w", len(res.Results), len(req.NodesToRead), ErrBadStatus)
	}
	return nil
}
