// Package opcua is the gateway's link to a sorter PLC over OPC UA
// (github.com/gopcua/opcua v0.8.0), implementing devices.PLCLink.
//
// The link writes each divert command as one WriteRequest of the four
// nodes of its ring slot (Seq last), up to Config.MaxInFlight of them out
// at once and sent in ring order, and counts one written only when every
// per-node status is Good. It follows Sorter.Plc.*, Sorter.Confirm.Count
// and Sorter.Chutes.* through one subscription (monitored items, default
// publishing interval 10 ms), reads new confirmations (with AckSeq) in one
// ReadRequest on a change of Count and every Config.ConfirmPoll while
// confirmations are due, and writes the host heartbeat (with State and
// PlanVersion) every 100 ms. The namespace index is looked up by URI on
// every connect.
//
// The link is a transport: every rule of the interface (sequence numbers
// and the ring window, deadlines, ACK_SEQ, confirmations and missed ones,
// BOOT_ID warm and cold, the FAULT_CODE hold, the PLC heartbeat watchdog,
// the link state and the event order) is kept by devices/hostif, the same
// core the Modbus link runs on. The link feeds it the published values as
// one block per data change and the confirmation slots it reads, reports
// its own readiness (a subscription that delivers), and writes the slots
// the core hands out.
//
// Run is the one owner of reconnection: gopcua's auto-reconnect is off
// (its restore paths can leave a client "connected" with no live
// subscription, gopcua #876/#879) and every connect makes a new client,
// session and subscription, with back-off and jitter. A connection whose
// subscription has stopped delivering is never reported up; gopcua v0.8.0
// does not pass keep-alives on, so the watchdog (session.go) tells a quiet
// PLC from a dead subscription with a probe read.
//
// Security: None, or Basic256Sha256 with Sign or SignAndEncrypt from a
// certificate and key file. gopcua checks no server certificate, so the
// link does (security.go): the certificate of the endpoint it picks must
// be byte-identical to one in TrustedServerCerts and within its validity
// period, and the secure channel is opened with that trusted copy, so
// only the holder of its private key can complete the handshake.
package opcua
