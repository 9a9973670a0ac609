// Package devices holds the small contracts between the gateway and the
// sorter's devices: a source of scanner reads and a link to the sorter PLC.
//
// The implementations live in devices/scanner, devices/modbus and
// devices/opcua. The gateway sees devices only through these types, so a
// site can swap Modbus TCP for OPC UA without touching the item pipeline.
// This package knows nothing of sort plans: chutes and reasons are plain
// numbers here, as they are on the wire.
package devices

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// LinkState is the state of one device connection. The status page and the
// metrics read it; nobody reads a connection directly.
type LinkState uint8

// Link states, in the order a link walks through them when it connects.
const (
	// LinkDown: not connected; a reconnect is pending (back-off).
	LinkDown LinkState = iota
	// LinkConnecting: dialling or accepting.
	LinkConnecting
	// LinkSyncing: connected, but not yet allowed to send commands (a PLC
	// link waits for FAULT_CODE 0 after writing its heartbeat; an OPC UA
	// link waits for its subscription).
	LinkSyncing
	// LinkUp: connected and working.
	LinkUp
	// LinkClosed: stopped for good (Run returned).
	LinkClosed
)

// String returns the state's name as shown on the status page.
func (s LinkState) String() string {
	switch s {
	case LinkDown:
		return "down"
	case LinkConnecting:
		return "connecting"
	case LinkSyncing:
		return "syncing"
	case LinkUp:
		return "up"
	case LinkClosed:
		return "closed"
	}
	return "unknown"
}

// Read is one scanner telegram that carried a tracking id.
type Read struct {
	// Scanner is the configured name of the scanner that sent it.
	Scanner string
	// TID is the PLC's tracking id (never 0 in a well-formed read).
	TID uint32
	// Codes holds the decoded barcodes in telegram order; empty for a no-read.
	Codes []string
	// NoRead is set when the telegram was the NoRead token.
	NoRead bool
	// At is when the frame's last byte arrived (time.Now, so it carries the
	// monotonic clock reading).
	At time.Time
}

// ScannerStatus is a snapshot of one scanner connection and its counters.
type ScannerStatus struct {
	Name          string
	Addr          string
	State         LinkState
	Online        bool      // heard from (read or heartbeat) within the heartbeat timeout
	LastHeard     time.Time // zero if never
	LastHeartbeat time.Time // zero if never
	Reads         uint64    // telegrams with a TID, no-reads included
	NoReads       uint64
	Heartbeats    uint64
	Malformed     uint64 // frames that did not parse
	Oversized     uint64 // frames dropped for exceeding the frame limit
	Bytes         uint64
	Reconnects    uint64
	// Refused counts connections refused (server mode: from an IP that is
	// not the scanner's peer, or while its live connection was not silent).
	Refused uint64
	// LastError is the last connection or listen error ("" if none).
	LastError string
}

// ScannerSource delivers scanner reads. Run connects (or listens), hands
// every read to sink in arrival order, reconnects on its own, and returns
// when ctx is done. sink must not block for long: it runs on the
// connection's reader goroutine.
type ScannerSource interface {
	Run(ctx context.Context, sink func(Read)) error
	Status() []ScannerStatus
}

// Command is one divert command for the PLC.
type Command struct {
	TID    uint32
	Chute  uint16 // 0 = recirculate
	Reason uint16 // contract reason code, informational for the PLC
	// Deadline is the last moment the command may be written. A command
	// that cannot be written by then is reported EventLate and never
	// written.
	Deadline time.Time
}

// EventKind says what happened to a command or what the PLC reported.
type EventKind uint8

// Event kinds.
const (
	// EventWritten: the PLC replied to the write request (function 16
	// without exception, or a WriteResponse with every status Good).
	EventWritten EventKind = iota + 1
	// EventTaken: ACK_SEQ has passed the command's sequence number.
	EventTaken
	// EventLate: the deadline passed before the command could be written;
	// it was never written and took no sequence number.
	EventLate
	// EventConfirmed: a confirmation from the PLC (Result, Chute are set).
	EventConfirmed
	// EventLost: the command was written but will never be confirmed (the
	// PLC restarted cold, or the link was closed with it outstanding).
	EventLost
	// EventMissed: Count confirmations were overwritten unread. Their TIDs
	// are unknown; the gateway decides which open items they were.
	EventMissed
)

// String names the event kind for logs and the journal.
func (k EventKind) String() string {
	switch k {
	case EventWritten:
		return "written"
	case EventTaken:
		return "taken"
	case EventLate:
		return "late"
	case EventConfirmed:
		return "confirmed"
	case EventLost:
		return "lost"
	case EventMissed:
		return "missed"
	}
	return "unknown"
}

// Event is something that happened on a PLC link.
type Event struct {
	Kind   EventKind
	TID    uint32
	Seq    uint16 // command sequence number (written, taken, lost), or confirmation NUM
	Chute  uint16 // commanded chute, or for a confirmation the chute entered
	Result uint16 // confirmation result code (EventConfirmed)
	Count  int    // EventMissed: how many confirmations were lost
	At     time.Time
}

// ValidPort reports whether s is a TCP port a device can be reached on:
// a decimal number in 1..65535.
func ValidPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == s
}

// MaxChutes is the largest sorter the contract allows.
const MaxChutes = 2048

// ChuteBits is a bitset over chutes 1..MaxChutes: bit (n-1) is chute n.
// It is a value type so a status snapshot copies it without allocating.
type ChuteBits [MaxChutes / 64]uint64

// Has reports whether chute n's bit is set.
func (b *ChuteBits) Has(n uint16) bool {
	if n == 0 || int(n) > MaxChutes {
		return false
	}
	i := n - 1
	return b[i/64]&(1<<(i%64)) != 0
}

// Set sets or clears chute n's bit.
func (b *ChuteBits) Set(n uint16, on bool) {
	if n == 0 || int(n) > MaxChutes {
		return
	}
	i := n - 1
	if on {
		b[i/64] |= 1 << (i % 64)
	} else {
		b[i/64] &^= 1 << (i % 64)
	}
}

// PLCStatus is a snapshot of a PLC link and what the PLC last reported.
type PLCStatus struct {
	Name          string
	Addr          string
	Protocol      string // "modbus" or "opcua"
	State         LinkState
	LastError     string
	Reconnects    uint64
	PLCHeartbeat  uint16
	LastHeartbeat time.Time // when PLCHeartbeat last changed
	SorterState   uint16
	FaultCode     uint16
	ChuteCount    uint16
	BootID        uint16
	AckSeq        uint16
	NextSeq       uint16 // the sequence number the next command will take
	Outstanding   int    // written, not yet taken
	Queued        int    // waiting for a ring slot
	Full          ChuteBits
	Disabled      ChuteBits

	Written   uint64
	Taken     uint64
	Late      uint64
	Confirmed uint64
	Lost      uint64
	Missed    uint64
	Errors    uint64 // I/O errors, timeouts, bad statuses
	Busy      uint64 // Modbus exceptions retried without a redial
	RoundTrip HistogramSnapshot

	// Exceptions counts every Modbus exception reply (retried or not; the
	// connection is kept for all of them); ExceptionsByCode splits it by
	// exception code (index = code, codes 16 and above at index 0).
	// LastException and LastExceptionAt are the newest one (0: none).
	// OPC UA links leave them zero.
	Exceptions       uint64
	ExceptionsByCode [16]uint64
	LastException    uint8
	LastExceptionAt  time.Time
}

// PLCLink is the gateway's connection to one sorter PLC. Run owns the
// connection and its reconnect loop and returns when ctx is done. Send never
// blocks on the network: it queues the command and the outcome arrives on
// Events. Events must be drained; the link blocks (and eventually misses
// confirmations) if nobody reads it.
type PLCLink interface {
	Run(ctx context.Context) error
	Send(ctx context.Context, cmd Command) error
	Events() <-chan Event
	Status() PLCStatus
	// SetHostState and SetPlanVersion feed HOST_STATE and PLAN_VERSION,
	// written with the next heartbeat.
	SetHostState(s HostState)
	SetPlanVersion(v uint16)
}

// HostState is the gateway's state as the PLC's HMI shows it.
type HostState uint16

// Host states (HOST_STATE register).
const (
	HostStarting HostState = 0
	HostReady    HostState = 1
	HostDegraded HostState = 2
	HostDraining HostState = 3
)

// Errors that callers branch on.
var (
	// ErrQueueFull: Send found the link's command queue full.
	ErrQueueFull = errors.New("plc command queue full")
	// ErrClosed: the link has stopped.
	ErrClosed = errors.New("plc link closed")
	// ErrBadCommand: TID 0 or a chute above MaxChutes.
	ErrBadCommand = errors.New("bad divert command")
)
