package opcua

// The commissioning client of `sortgw probe`: one session on a link
// Config's endpoint and security, reading what the server really has
// (namespaces, node attributes) where the link would only fail to
// connect. No reconnect, no ring.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"
)

// ProbeClient is one gopcua session for a commissioning probe.
type ProbeClient struct {
	c   *opcua.Client
	cfg Config
}

// DialProbe connects to cfg.Endpoint with cfg's security (a secured link
// checks the server's certificate as the link does).
func DialProbe(ctx context.Context, cfg Config) (*ProbeClient, error) {
	if cfg.Name == "" {
		cfg.Name = "probe"
	}
	l, err := New(cfg, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	cfg = l.cfg
	dctx, cancel := context.WithTimeout(ctx, 2*cfg.Timeout+time.Second)
	defer cancel()
	opts, err := l.clientOptions(dctx)
	if err != nil {
		return nil, fmt.Errorf("opcua probe %s: %w", cfg.Endpoint, err)
	}
	opts = append(opts, opcua.RequestTimeout(max(cfg.Timeout, 2*time.Second)))
	c, err := opcua.NewClient(cfg.Endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("opcua probe %s: %w", cfg.Endpoint, err)
	}
	if err := c.Connect(dctx); err != nil {
		return nil, fmt.Errorf("opcua probe %s: %w", cfg.Endpoint, err)
	}
	return &ProbeClient{c: c, cfg: cfg}, nil
}

// Close ends the session.
func (p *ProbeClient) Close(ctx context.Context) error {
	return p.c.Close(context.WithoutCancel(ctx))
}

// Namespaces returns the server's NamespaceArray (index i = ns=i).
func (p *ProbeClient) Namespaces(ctx context.Context) ([]string, error) {
	return p.c.NamespaceArray(ctx)
}

// NodeID is the string node id of name (without the prefix) in ns, as
// the link names it: "ns=3;s=Sorter.Plc.Heartbeat".
func (p *ProbeClient) NodeID(ns uint16, name string) string {
	return ua.NewStringNodeID(ns, p.cfg.NodePrefix+"."+name).String()
}

// NodeInfo is what a node holds, as read.
type NodeInfo struct {
	Name string // without the prefix, e.g. "Plc.Heartbeat"
	// Err is the Value attribute's status, nil when Good.
	Err error
	// Value is the value as Go reads it: uint16, uint32, []bool, …
	Value any
	// Readable and Writable are the AccessLevel's CurrentRead and
	// CurrentWrite bits (UserAccessLevel where the server gives it).
	Readable, Writable bool
}

// ReadNodes reads Value and UserAccessLevel of each name in ns in one
// ReadRequest.
func (p *ProbeClient) ReadNodes(ctx context.Context, ns uint16, names []string) ([]NodeInfo, error) {
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
	for _, n := range names {
		id := ua.NewStringNodeID(ns, p.cfg.NodePrefix+"."+n)
		req.NodesToRead = append(req.NodesToRead,
			&ua.ReadValueID{NodeID: id, AttributeID: ua.AttributeIDValue},
			&ua.ReadValueID{NodeID: id, AttributeID: ua.AttributeIDUserAccessLevel})
	}
	res, err := p.c.Read(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("read %d nodes: %w", len(names), err)
	}
	if len(res.Results) != len(req.NodesToRead) {
		return nil, fmt.Errorf("read %d nodes: %d results", len(names), len(res.Results))
	}
	out := make([]NodeInfo, len(names))
	for i, n := range names {
		v, a := res.Results[2*i], res.Results[2*i+1]
		ni := NodeInfo{Name: n}
		if v.Status != ua.StatusOK {
			ni.Err = v.Status
		} else if v.Value != nil {
			ni.Value = v.Value.Value()
		}
		if a.Status == ua.StatusOK && a.Value != nil {
			if lvl, ok := a.Value.Value().(uint8); ok {
				ni.Readable = lvl&uint8(ua.AccessLevelTypeCurrentRead) != 0
				ni.Writable = lvl&uint8(ua.AccessLevelTypeCurrentWrite) != 0
			}
		}
		out[i] = ni
	}
	return out, nil
}

// WriteUint16 writes one UInt16 node; a per-node status other than Good
// is an error.
func (p *ProbeClient) WriteUint16(ctx context.Context, ns uint16, name string, v uint16) error {
	id := ua.NewStringNodeID(ns, p.cfg.NodePrefix+"."+name)
	res, err := p.c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{writeValue(id, v)}})
	if err != nil {
		return fmt.Errorf("write %s: %w", id, err)
	}
	if len(res.Results) != 1 || res.Results[0] != ua.StatusOK {
		return fmt.Errorf("write %s: %v", id, res.Results)
	}
	return nil
}

// SubscribeResult is what a probe subscription got.
type SubscribeResult struct {
	// Revised publishing and sampling intervals granted by the server.
	Publishing, Sampling time.Duration
	// Notifications counts data changes of the node within the wait.
	Notifications int
}

// ProbeSubscribe subscribes to one node at interval (publishing and
// sampling), counts its data changes for wait and deletes the
// subscription.
func (p *ProbeClient) ProbeSubscribe(ctx context.Context, ns uint16, name string, interval, wait time.Duration) (SubscribeResult, error) {
	var out SubscribeResult
	notifs := make(chan *opcua.PublishNotificationData, 64)
	sub, err := p.c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: interval, MaxKeepAliveCount: 100, LifetimeCount: 300}, notifs)
	if err != nil {
		return out, fmt.Errorf("create subscription: %w", err)
	}
	defer func() { _ = sub.Cancel(context.WithoutCancel(ctx)) }()
	out.Publishing = sub.RevisedPublishingInterval
	id := ua.NewStringNodeID(ns, p.cfg.NodePrefix+"."+name)
	ms := float64(interval) / float64(time.Millisecond)
	req := opcua.NewMonitoredItemCreateRequestWithDefaults(id, ua.AttributeIDValue, 1)
	req.RequestedParameters.SamplingInterval = ms
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnNeither, req)
	if err != nil {
		return out, fmt.Errorf("create monitored item: %w", err)
	}
	if len(res.Results) != 1 || res.Results[0].StatusCode != ua.StatusOK {
		return out, fmt.Errorf("create monitored item %s: %w", id, ErrBadStatus)
	}
	out.Sampling = time.Duration(res.Results[0].RevisedSamplingInterval * float64(time.Millisecond))
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-t.C:
			return out, nil
		case n := <-notifs:
			if n == nil {
				continue
			}
			if n.Error != nil {
				return out, fmt.Errorf("subscription: %w", n.Error)
			}
			if dc, ok := n.Value.(*ua.DataChangeNotification); ok {
				out.Notifications += len(dc.MonitoredItems)
			}
		}
	}
}

// IsBadNodeID reports whether a node's status says it does not exist.
func IsBadNodeID(err error) bool {
	return errors.Is(err, ua.StatusBadNodeIDUnknown) || errors.Is(err, ua.StatusBadNodeIDInvalid)
}

// WriteDivert writes one divert command as the link does: one
// WriteRequest of the slot's four nodes, Seq last. A per-node status
// other than Good is an error.
func (p *ProbeClient) WriteDivert(ctx context.Context, ns uint16, seq uint16, tid uint32, chute, reason uint16) error {
	req := newNodeSet(ns, p.cfg.NodePrefix, p.cfg.Ring).divertRequest(seq, tid, chute, reason)
	res, err := p.c.Write(ctx, req)
	if err != nil {
		return fmt.Errorf("write divert seq %d: %w", seq, err)
	}
	if err := writeStatus(req, res); err != nil {
		return fmt.Errorf("write divert seq %d: %w", seq, err)
	}
	return nil
}
