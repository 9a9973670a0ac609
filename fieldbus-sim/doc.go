// Package fieldbussim emulates the sorter side of the sorter host interface
// (docs/plc-interface.md): a loop sorter's PLC with its Modbus TCP and OPC UA
// fronts, the barcode scanners and the items on the belt, with faults to
// inject and a ground truth to check the gateway against.
//
// It is written from the interface contract alone and imports no gateway,
// devices or sortplan code, so that it catches a gateway that merely agrees
// with itself.
//
// The PLC core (PLC) holds the register image both fronts serve. Its scan
// cycle consumes the divert ring strictly in order, refuses TID 0 and chutes
// above CHUTE_COUNT with result 7 at once, runs the host watchdog (FAULT_CODE
// 1 after HostWatchdog without a HOST_HEARTBEAT change) and moves
// PLC_HEARTBEAT every 100 ms. With Conveyor.Rate 0 the PLC is in
// commissioning mode: every commanded non-zero TID is an item that reaches
// its decision point CommissioningTravel later. With a rate, the conveyor
// inducts items, the scanners report them and only tracked TIDs are taken.
//
// Time comes from a Clock: real time by default, or a VirtualClock that tests
// advance explicitly to run an hour of sorting in seconds, deterministically
// for a seed.
//
// # Options: a PLC harder than the contract's minimum
//
// By default the emulator is a well-behaved PLC. These opt-in options (Go
// config fields; flags of cmd/fieldbus-sim; where marked, switchable at run
// time with Sim.SetModbusFault and POST /fault/... on the control endpoint)
// make it behave as real PLCs may:
//
//   - ModbusConfig.RegisterByRegister (-fc16-by-register): a function-16
//     write is applied one register at a time in address order, with a PLC
//     scan after each register but the last. SEQ is the first register of a
//     divert slot, so the scan after it takes the slot while TID, CHUTE and
//     REASON still hold the previous command: a host that writes the whole
//     slot in one request has its commands taken one ring lap late, with the
//     wrong TID. Writing TID..REASON first and SEQ in a request of its own is
//     safe.
//   - ModbusConfig.WordOrder = WordOrderLowFirst (-word-order low-first):
//     TID_LO before TID_HI in divert and confirmation slots.
//   - ModbusConfig.SilentWrongUnit (-silent-unit; run time: silent-unit): a
//     request for another unit id gets no answer at all instead of exception
//     0B. The server library answers a connection's requests in order, so
//     that connection answers nothing after it either.
//   - ModbusConfig.Mute (-mute; run time: mute): connections are accepted,
//     no request is ever answered.
//   - ModbusConfig.NeverAccept (-never-accept; run time: never-accept): the
//     Modbus port is a socket listening with a backlog of 0 whose one queue
//     place the emulator fills itself and never accepts; Linux then drops
//     every client SYN, so a dial hangs until the client's timeout (not
//     refused). This is what is reliable on Linux loopback; a listener that
//     merely never accepts would complete the first 4096 connects.
//     Switching it on drops every connection; off listens normally again on
//     the same port. Linux only.
//   - Config.StrictTIDs (cmd/fieldbus-sim: on unless -commissioning): the
//     PLC takes commands only for TIDs its conveyor inducted and scanned;
//     any other TID is refused with result 7, also at Conveyor.Rate 0. Off
//     (the Go API's default, which device tests that send invented TIDs
//     rely on), rate 0 is commissioning mode.
//
// # Quirks: a PLC that breaks the contract
//
// Config.Quirks (quirks.go; cmd/fieldbus-sim -quirks) make the emulated PLC
// commit the mistakes found at commissioning, for `sortgw probe` to name:
// confirmations numbered from 0, the draft contract's result codes,
// FAULT_CODE 0 at power-on, a heartbeat that never moves, the PLC block
// shifted by a register, and (not a violation) the sorter's OPC UA
// namespace behind others so that its index is not 1.
//
// Requests left unanswered by SilentWrongUnit or Mute are held until the
// option is switched off, ModbusConfig.IdleTimeout passes or the sim stops;
// the connection is then closed without a reply (Sim.ModbusHeld counts them).
//
// Not options, because real servers and common clients (UaExpert,
// node-opcua) expect them: the OPC UA server answers GetEndpoints for any
// URL the client used (a trailing "/", localhost, the host's name, an
// address) with its own endpoints, and revises the session timeout to what
// the client asked, clamped to 1 s..1 h (60 s for 0). The OPC UA server
// library prints through the standard library's global logger; the package
// leaves that global alone and offers LibraryLogWriter for a binary to route
// it into zerolog (cmd/fieldbus-sim does; the package's tests discard it).
//
// Logging: the sim tags its parts with the key "sim" (plc, conveyor,
// modbus, opcua, scanners), so a caller's "part" is not repeated; durations
// are in milliseconds in keys ending _ms.
//
// The folder is fieldbus-sim/ (the project layout names top-level folders
// with hyphens) and the package fieldbussim, because a Go package name
// cannot contain '-'.
package fieldbussim

// Choices where the contract leaves room (the sim's behaviour, so a gateway
// can be tested against it):
//
//   - Modbus function 3 reads anywhere from the host block's start to
//     BOOT_ID; reserved registers (3..9, 90..99) read 0. Function 16 writes
//     only HOST_HEARTBEAT, HOST_STATE, PLAN_VERSION and the divert slots; a
//     write touching any other register (reserved or PLC block) is refused
//     as a whole with exception 02. Function 6 is accepted like a one-register
//     function 16 (the server library does not tell them apart). Functions
//     1, 2, 4, 5 and 15 answer exception 01.
//   - Another unit id is answered with exception 0B (gateway target failed
//     to respond) rather than left unanswered, which would stall the
//     connection's later requests; ModbusConfig.SilentWrongUnit leaves it
//     unanswered.
//   - Chute bit fields are 16 words up to 256 chutes (the default map,
//     BOOT_ID at 218) and ceil(N/16) words above; CONFIRM and BOOT_ID follow.
//   - NUM and SEQ run 1, 2, ... 65535, 0, 1: zero is not skipped.
//   - A HOST_HEARTBEAT write of a value different from the register's counts
//     as a heartbeat; rewriting the same value does not.
//   - FAULT_CODE 1 items: the PLC decides at the decision point, so an item
//     whose command came before the host was lost but reaches its decision
//     point after is confirmed 9; a refusal (7) is still given at once.
//   - Decision point: chute c's lies ScannerToFirstChute + (c-1)*ChutePitch
//     after the scanner; chute 0 is decided at the last chute's. A command
//     taken after its decision point is confirmed 4 at once (chute 0: 8).
//     An item that reaches the end of the sort zone without any command
//     recirculates unconfirmed (there is no command to confirm) and is read
//     again after a lap with the same TID.
//   - A second command for an item that already has one pending in the same
//     pass is refused with 7; the first stands. A command for a TID the
//     conveyor does not track (or one not yet scanned) is refused with 7. In
//     commissioning mode every command is an item of its own.
//   - Emergency stop: every tracked item is flushed at the moment of the
//     stop; those with a pending command are confirmed 6. Commands taken
//     during the stop find no item (7) on a conveyor; in commissioning mode
//     they wait for the belt. States 0, 3, 4 (SetSorterState) stop the belt:
//     nothing is inducted or decided until it runs again.
//   - Persistent faults (for a training panel and tests) hold until
//     switched off: SorterFault sets SORTER_STATE 3 with a FAULT_CODE (host
//     lost, 1, shows over it while it lasts; 1 itself is refused);
//     SetPLCDown takes the PLC off the network (Modbus completes no
//     connection, OPC UA closes every connection); SetScannerOff closes a
//     scanner's listener (or stops its dialling) and drops its
//     connections, and listens again on the same address when back on.
//   - Cold restart: power-on state, new BOOT_ID (from a random source, not
//     the seed, so two runs never share one); the chute bits are physical and
//     stay; tracked items are forgotten without confirmation. Warm restart:
//     only the connections drop. Both drop every Modbus connection and
//     restart the OPC UA server.
//   - DelayNextReply applies the request, then holds its reply back;
//     InjectModbusException answers before the request touches the PLC;
//     InjectModbusExceptionOn limits it to reads, writes or divert-ring
//     writes. ModbusClients counts the connections that sent a request, so
//     a test can tell a client that kept its connection from one that
//     redialled.
//   - A PLC allows MaxPasses (10) passes without a command, then rejects the
//     item on its own (no confirmation: there is no command).
