package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		err  string
	}{
		{"defaults", nil, ""},
		{"everything", []string{"-modbus", "127.0.0.1:0", "-opcua", "", "-scanner", "127.0.0.1:3001", "-scanners", "3",
			"-chutes", "512", "-rate", "12.5", "-seed", "9", "-speed", "2", "-noread", "0.1", "-multiread", "0.05",
			"-cycle", "2ms", "-control", "", "-security", "SignAndEncrypt", "-full", "1,2", "-modbus-exception", "6",
			"-word-order", "low-first", "-fc16-by-register", "-silent-unit", "-mute", "-never-accept", "-commissioning"}, ""},
		{"bad word order", []string{"-word-order", "middle"}, "word order \"middle\""},
		{"bad unit", []string{"-unit", "0"}, "-unit 0"},
		{"bad chutes", []string{"-chutes", "4096"}, "chutes 4096"},
		{"bad security", []string{"-security", "Encrypt"}, "security \"Encrypt\""},
		{"bad rate", []string{"-rate", "-1"}, "rate -1"},
		{"bad exception", []string{"-modbus-exception", "7"}, "-modbus-exception 7"},
		{"overlapping map", []string{"-plc-base", "50"}, "overlaps"},
		{"stray argument", []string{"extra"}, "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(tc.args)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("parse: %v, want %q", err, tc.err)
			}
			_ = o
		})
	}
	o, err := parse([]string{"-scanner", "127.0.0.1:3001", "-scanners", "3", "-cycle", "2ms"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.cfg.StrictTIDs {
		t.Error("strict TIDs off by default; the binary refuses TIDs it did not induct unless -commissioning")
	}
	o2, err := parse([]string{"-commissioning", "-word-order", "low-first", "-fc16-by-register"})
	if err != nil {
		t.Fatal(err)
	}
	if o2.cfg.StrictTIDs || o2.cfg.Modbus.WordOrder != "low-first" || !o2.cfg.Modbus.RegisterByRegister {
		t.Errorf("-commissioning -word-order low-first -fc16-by-register: strict %v, %+v", o2.cfg.StrictTIDs, o2.cfg.Modbus)
	}
	if got := strings.Join(o.cfg.Scanners.Addrs, ","); got != "127.0.0.1:3001,127.0.0.1:3002,127.0.0.1:3003" {
		t.Errorf("scanner addrs %s", got)
	}
	if o.cfg.PLCCycle != 2*time.Millisecond || len(o.cfg.Labels.Destinations) < 30000 {
		t.Errorf("cycle %v, %d destinations", o.cfg.PLCCycle, len(o.cfg.Labels.Destinations))
	}
}
