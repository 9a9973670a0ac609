//go:build race

package gateway

// raceEnabled: the race detector slows the sim, the links and the gateway
// about tenfold on the 2-core CI machine, so the end-to-end tests run
// fewer items under -race (the full 10,000 run without it).
const raceEnabled = true
