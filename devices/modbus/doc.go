// Package modbus is the gateway's link to a sorter PLC over Modbus TCP
// (github.com/goburrow/modbus), implementing devices.PLCLink and the divert
// ring of the sorter host interface (docs/plc-interface.md).
//
// # Two connections
//
// goburrow's TCP handler serialises requests on one connection behind a
// mutex. A divert command that arrived during a poll would wait for the
// poll's round trip, and one that arrived during a heartbeat write for that
// too. The link therefore opens two connections to the PLC by default: the
// command connection carries nothing but divert writes (function 16, five
// registers), the poll connection carries the block reads (function 3) and
// the heartbeat. A command goes out the moment a ring slot is free. The
// contract says nothing against several connections, most PLCs accept a
// handful (the emulated one 16), and the ring needs no ordering between
// them: ACK_SEQ is the only thing the poll learns about commands.
// Config.Connections = 1 is for PLCs that accept one client: both loops
// share one goburrow handler and a command may wait one poll round trip.
// The two connections live and die together as one session: an error on
// either ends both, and the reconnect rule runs once for the pair.
//
// # The ring
//
// The link is a transport around devices/hostif, which keeps every rule
// of the interface for both protocols; this section and the next describe
// what the core decides and the link carries out.
//
// A command waits in a bounded FIFO (Send never touches the network) until
// the link is up and (seq - ACK_SEQ) mod 65536 < Ring; only then does it
// take its sequence number, so a command that goes late leaves no gap.
// Command s goes into slot s mod Ring with one function-16 request of
// SEQ, TID (two registers, word order configurable), CHUTE, REASON. Ring
// must be a power of two so that slots stay contiguous across the wrap
// 65535 -> 0. EventWritten follows the function-16 reply; EventTaken the
// poll that sees ACK_SEQ pass the command, so taken-latency is about PLC
// cycle + poll interval. Confirmations are read from the same block read:
// each new CONFIRM_COUNT is checked against its slot's NUM; a jump of more
// than the ring, or a slot holding another NUM, is reported as
// EventMissed with a count, and logged.
//
// # Reconnecting
//
// Any error that is not a Modbus exception (I/O error, timeout, a reply
// with the wrong transaction id) ends the session: both connections are
// closed and redialled after a capped exponential back-off with jitter
// (first retry within BackoffMin, 100ms by default; cap BackoffMax, 2s).
// Closing is essential with goburrow: after a timeout it keeps the socket,
// and the late reply would be read as the answer to the next request
// (goburrow issue #64). A Modbus exception leaves the connection in step
// and never ends the session: 06 (busy), 0A and 0B are repeated on it up to
// BusyRetries times; after that, or for any other code, only the request
// failed (a poll keeps the last block, a divert write is rewritten in
// place, paced by a back-off, a heartbeat waits for the next). Block reads
// answered with exceptions for half the PLC watchdog hold commands until
// one is answered normally. See docs/plc-interface.md.
//
// # A second host
//
// Once per heartbeat, before writing it, the poll connection reads
// HOST_HEARTBEAT and the divert ring back for the core to check
// (hostif.Core.Readback): another host writing the PLC holds commands with
// hostif.ErrSecondHost, on both gateways, until the evidence has stopped
// for SecondHostHold.
//
// After every (re)connect the link reads the PLC block, writes its
// heartbeat, and holds commands (LinkSyncing) until FAULT_CODE reads 0
// (or 100 and up, a PLC-specific fault that does not stop the host). Then:
// same BOOT_ID as before -> every command not yet taken is rewritten with
// its own SEQ into its own slot, ahead of any new command; new BOOT_ID (or
// the first connection) -> every command not yet confirmed, taken or not,
// is reported EventLost, the next command is ACK_SEQ+1, and confirmations
// are read from CONFIRM_COUNT on. An ACK_SEQ that moves outside the
// commands this link gave out, or a BOOT_ID that changes under a live
// connection, is treated the same way as a cold start.
//
// # Link state
//
// LinkConnecting while dialling, LinkSyncing while connected but holding
// commands, LinkUp when commands flow, LinkDown between sessions,
// LinkClosed after Run. The link holds commands (LinkSyncing, not LinkDown)
// when FAULT_CODE is 1..99 at any time, and when PLC_HEARTBEAT has not
// changed for PLCWatchdog: a PLC whose program has stopped while its
// communication processor still answers is reachable, so redialling would
// not help; the connection stays up, polling goes on, and the link comes
// back the moment the heartbeat moves. Held commands go late at their
// deadline.
//
// # Events
//
// Events is buffered (Config.EventBuffer) and never closed; the gateway
// must drain it. While it is full the link's loops block: polling and the
// host heartbeat stop, and after 1 s the PLC declares the host lost, which
// is the right thing to tell a sorter whose host has stopped listening.
// When Run returns, queued commands are reported EventLate and commands
// not yet confirmed EventLost, without blocking (events that do not fit
// are counted and logged).
//
// # Lock order
//
// Link.emitMu, then Link.mu. mu guards the core (which has no lock of its
// own) and the link's counters and is never held across network I/O or a
// channel send; Send and Status take only mu. emitMu is held from deciding
// a batch of events to handing it to the channel, so events leave in the
// order they were decided.
package modbus
