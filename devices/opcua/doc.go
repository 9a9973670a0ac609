// Package opcua is the gateway's link to a sorter PLC over OPC UA
// (github.com/gopcua/opcua v0.8.0), implementing devices.PLCLink.
//
// The link writes each divert command as one WriteRequest of the four
// nodes of its ring slot (Seq last), follows Sorter.Plc.* and
// Sorter.Confirm.Count through a subscription, reads new confirmations in
// one ReadRequest per change of Count, and writes the host heartbeat every
// 100 ms. Run is the one owner of reconnection: gopcua's auto-reconnect is
// off and every connect makes a new client, session and subscription. A
// connection whose subscription has stopped delivering is never reported
// up; see watchdog in session.go for how silence is told from death.
package opcua
