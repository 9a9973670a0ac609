package upstream

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartServer starts the embedded nats-server and waits until it takes
// connections. The caller stops it with StopServer.
func StartServer(e *Embedded, name string) (*server.Server, error) {
	host, port, err := hostPort(e.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen: %w", err)
	}
	o := &server.Options{
		ServerName:            name,
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              e.StoreDir,
		JetStreamDomain:       e.Domain,
		JetStreamMaxStore:     e.MaxStore,
		NoLog:                 true,
		NoSigs:                true,
		DisableShortFirstPing: true,
	}
	if e.Hub != nil {
		u, err := url.Parse(e.Hub.URL)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: hub url: %w", err)
		}
		o.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{u}, Credentials: e.Hub.CredsFile}}
		// The leaf redials the hub this often while the WAN is down.
		o.LeafNode.ReconnectInterval = time.Second
	}
	if e.LeafListen != "" {
		h, p, err := hostPort(e.LeafListen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: leaf listen: %w", err)
		}
		o.LeafNode.Host, o.LeafNode.Port = h, p
	}
	if e.MQTTListen != "" {
		h, p, err := hostPort(e.MQTTListen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: mqtt listen: %w", err)
		}
		o.MQTT.Host, o.MQTT.Port = h, p
	}
	s, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		StopServer(s)
		return nil, fmt.Errorf("embedded nats: not ready to take connections on %s within 10s", e.Listen)
	}
	return s, nil
}

// StopServer shuts s down and waits until its goroutines are gone. Safe
// with nil and twice.
func StopServer(s *server.Server) {
	if s == nil {
		return
	}
	s.Shutdown()
	s.WaitForShutdown()
}
