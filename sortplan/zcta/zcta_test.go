package zcta

import "testing"

func TestAll(t *testing.T) {
	z, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(z) != 33791 {
		t.Fatalf("got %d ZIPs, want 33791", len(z))
	}
	if z[0].Code != "10001" {
		t.Errorf("first ZIP %q, want 10001", z[0].Code)
	}
	if c := Codes(); len(c) != len(z) {
		t.Errorf("Codes: %d, want %d", len(c), len(z))
	}
}
