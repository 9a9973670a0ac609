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
package fieldbussim
