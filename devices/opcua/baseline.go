package opcua

// The raw transport baseline of `sortgw bench`: bare gopcua WriteRequests
// on the same nodes as the link, without its session handling, ring or
// subscription, so that the link's latencies read as a ratio of the
// transport's own round trip on whatever machine the bench runs.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// Values of the idle slot write: any TID and a chute that exists on every
// sorter; what matters is Seq 0.
const (
	baselineTID   uint32 = 40000
	baselineChute uint16 = 1
)

// RawClient is one bare gopcua session to a PLC, on a link Config's
// namespace and node prefix, security None only. It is for measurements:
// no reconnect, no subscription, no view of the interface's state.
type RawClient struct {
	c        *opcua.Client
	slot     *ua.WriteRequest
	spare    *ua.WriteRequest
	hostNode *ua.NodeID
}

// DialRaw connects to cfg.Endpoint and looks up cfg.Namespace's index.
// cfg takes the link's defaults (Validate); cfg.Timeout bounds the dial
// and each request.
func DialRaw(ctx context.Context, cfg Config) (*RawClient, error) {
	if cfg.Name == "" {
		cfg.Name = "raw"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Security != SecurityNone {
		return nil, fmt.Errorf("%w: raw client %s: security %s: only %s is supported", ErrInvalidConfig, cfg.Endpoint, cfg.Security, SecurityNone)
	}
	c, err := opcua.NewClient(cfg.Endpoint, opcua.AutoReconnect(false),
		opcua.SecurityPolicy(ua.SecurityPolicyURINone), opcua.SecurityMode(ua.MessageSecurityModeNone),
		opcua.DialTimeout(cfg.Timeout), opcua.RequestTimeout(cfg.Timeout))
	if err != nil {
		return nil, fmt.Errorf("opcua raw client %s: %w", cfg.Endpoint, err)
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("opcua raw client %s: %w", cfg.Endpoint, err)
	}
	ns, err := c.FindNamespace(ctx, cfg.Namespace)
	if err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("opcua raw client %s: namespace %q: %w", cfg.Endpoint, cfg.Namespace, err)
	}
	// The link's node names (nodes.go): "<prefix>.Divert.<k>.<field>" and
	// "<prefix>.Host.State".
	id := func(s string) *ua.NodeID { return ua.NewStringNodeID(ns, cfg.NodePrefix+"."+s) }
	slotReq := func(k int) *ua.WriteRequest {
		slot := "Divert." + strconv.Itoa(k) + "."
		return &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
			rawValue(id(slot+"TrackingId"), baselineTID),
			rawValue(id(slot+"Chute"), baselineChute),
			rawValue(id(slot+"Reason"), uint16(0)),
			rawValue(id(slot+"Seq"), uint16(0)),
		}}
	}
	// The spare slot is the one after the ring's last: slot-shaped node
	// ids the PLC does not have.
	return &RawClient{c: c, hostNode: id("Host.State"), slot: slotReq(0), spare: slotReq(cfg.Ring)}, nil
}

func rawValue(id *ua.NodeID, v any) *ua.WriteValue {
	return &ua.WriteValue{NodeID: id, AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}}
}

// WriteIdleSlot writes divert slot 0's four nodes in one WriteRequest
// (TrackingId 40000, Chute 1, Reason 0, Seq 0 last), the request the link
// makes for every command, and returns its round trip. A PLC takes Seq 0
// only when AckSeq is 65535: write it before any load (after a start the
// PLC waits for Seq 1 in slot 1), not while a link runs. A node the server
// did not write is an error.
func (r *RawClient) WriteIdleSlot(ctx context.Context) (time.Duration, error) {
	return r.write(ctx, r.slot)
}

// WriteSpare writes the four nodes of slot Ring, one past the ring's last
// (TrackingId, Chute, Reason, Seq: the same WriteRequest as a divert
// command, the same types and size), and returns the round trip. It is
// the rate-matched floor of `sortgw bench`: it runs while a link drives
// the same PLC and cannot disturb the ring, since the PLC has no such
// slot. Each node must come back BadNodeIdUnknown (the server looked it
// up and refused it); a node the server wrote, or another status, is an
// error.
func (r *RawClient) WriteSpare(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	res, err := r.c.Write(ctx, r.spare)
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("opcua raw spare write: %w", err)
	}
	if len(res.Results) != len(r.spare.NodesToWrite) {
		return d, fmt.Errorf("opcua raw spare write: %d results for %d nodes", len(res.Results), len(r.spare.NodesToWrite))
	}
	for i, st := range res.Results {
		if st != ua.StatusBadNodeIDUnknown {
			return d, fmt.Errorf("opcua raw spare write %s: %v, want BadNodeIdUnknown (the PLC must not have this slot)", r.spare.NodesToWrite[i].NodeID, st)
		}
	}
	return d, nil
}

// WriteHostState writes Host.State and returns the round trip. Write the
// value the link itself writes (1, ready) while a link runs against the
// same PLC.
func (r *RawClient) WriteHostState(ctx context.Context, v uint16) (time.Duration, error) {
	return r.write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{rawValue(r.hostNode, v)}})
}

func (r *RawClient) write(ctx context.Context, req *ua.WriteRequest) (time.Duration, error) {
	t0 := time.Now()
	res, err := r.c.Write(ctx, req)
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("opcua raw write: %w", err)
	}
	if len(res.Results) != len(req.NodesToWrite) {
		return d, fmt.Errorf("opcua raw write: %d results for %d nodes", len(res.Results), len(req.NodesToWrite))
	}
	for i, st := range res.Results {
		if st != ua.StatusOK {
			return d, fmt.Errorf("opcua raw write %s: %w", req.NodesToWrite[i].NodeID, st)
		}
	}
	return d, nil
}

// Close ends the session.
func (r *RawClient) Close(ctx context.Context) error {
	return r.c.Close(context.WithoutCancel(ctx))
}
