package main

import (
	"go/build"
	"strings"
	"testing"
)

// TestNoProtocolLibrary: cmd/sortgw wires and prints; the protocol
// libraries are the devices packages' business (their raw baseline clients
// included), so no file of this package, test files too, imports one.
func TestNoProtocolLibrary(t *testing.T) {
	p, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range append(append(p.Imports, p.TestImports...), p.XTestImports...) {
		for _, lib := range []string{"github.com/goburrow/", "github.com/gopcua/", "github.com/simonvetter/"} {
			if strings.HasPrefix(imp, lib) {
				t.Errorf("cmd/sortgw imports %s: use the devices packages", imp)
			}
		}
	}
}
