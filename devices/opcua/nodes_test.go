package opcua

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gopcua/opcua/ua"
)

// TestDivertRequestBytes pins the wire form of one divert command: the
// four WriteValues of slot 3 for seq 19 (19 mod 16 = 3), in namespace 2,
// Seq last, TrackingId UInt32 and the rest UInt16.
func TestDivertRequestBytes(t *testing.T) {
	n := newNodeSet(2, "Sorter", 16)
	req := n.divertRequest(19, 0x01020304, 42, 4)
	if len(req.NodesToWrite) != 4 {
		t.Fatalf("%d nodes, want exactly 4", len(req.NodesToWrite))
	}
	nodeID := func(s string) []byte {
		b := []byte{
			0x03,       // string node id
			0x02, 0x00, // namespace 2
			byte(len(s)), 0x00, 0x00, 0x00, // string length
		}
		return append(b, s...)
	}
	value := func(id string, variant ...byte) []byte {
		b := nodeID(id)
		b = append(b,
			0x0d, 0x00, 0x00, 0x00, // AttributeId 13 (Value)
			0xff, 0xff, 0xff, 0xff, // IndexRange: null string
			0x01, // DataValue mask: value only
		)
		return append(b, variant...)
	}
	want := [][]byte{
		value("Sorter.Divert.3.TrackingId", 0x07, 0x04, 0x03, 0x02, 0x01), // UInt32 0x01020304
		value("Sorter.Divert.3.Chute", 0x05, 42, 0x00),                    // UInt16 42
		value("Sorter.Divert.3.Reason", 0x05, 4, 0x00),                    // UInt16 4
		value("Sorter.Divert.3.Seq", 0x05, 19, 0x00),                      // UInt16 19, last
	}
	for i, wv := range req.NodesToWrite {
		got, err := ua.Encode(wv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[i]) {
			t.Errorf("node %d:\n got % x\nwant % x", i, got, want[i])
		}
		// And back: the bytes decode to the same node and value.
		var back ua.WriteValue
		if _, err := ua.Decode(want[i], &back); err != nil {
			t.Fatal(err)
		}
		if back.NodeID.String() != wv.NodeID.String() || back.Value.Value.Value() != wv.Value.Value.Value() {
			t.Errorf("node %d decodes to %s = %v", i, back.NodeID, back.Value.Value.Value())
		}
	}
}

func TestNodeSet(t *testing.T) {
	tests := []struct {
		name   string
		ns     uint16
		prefix string
		ring   int
		seq    uint16
		want   string
	}{
		{"default", 1, "Sorter", 16, 16, "ns=1;s=Sorter.Divert.0.Seq"},
		{"other index", 5, "Sorter", 16, 65535, "ns=5;s=Sorter.Divert.15.Seq"},
		{"site prefix and ring", 3, "Line2.Sorter", 32, 40, "ns=3;s=Line2.Sorter.Divert.8.Seq"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newNodeSet(tc.ns, tc.prefix, tc.ring)
			req := n.divertRequest(tc.seq, 1, 2, 3)
			if got := req.NodesToWrite[3].NodeID.String(); got != tc.want {
				t.Fatalf("seq node %s, want %s", got, tc.want)
			}
		})
	}
	n := newNodeSet(4, "Sorter", 16)
	if got := n.plc[hConfirmCount].String(); got != "ns=4;s=Sorter.Confirm.Count" {
		t.Fatal(got)
	}
	r := n.confirmReadRequest(65535, 2) // Count, slots 15 and 0, their Nums again, AckSeq, BootId
	want := []string{"Confirm.Count", "Confirm.15.Num", "Confirm.15.TrackingId", "Confirm.15.Chute", "Confirm.15.Result",
		"Confirm.0.Num", "Confirm.0.TrackingId", "Confirm.0.Chute", "Confirm.0.Result", "Confirm.15.Num", "Confirm.0.Num",
		"Plc.AckSeq", "Plc.BootId"}
	if len(r.NodesToRead) != len(want) {
		t.Fatalf("confirm read %v", r.NodesToRead)
	}
	for i, w := range want {
		if got := r.NodesToRead[i].NodeID.String(); got != "ns=4;s=Sorter."+w {
			t.Fatalf("node %d: %s, want Sorter.%s", i, got, w)
		}
	}
	hb := n.heartbeatRequest(1, 2, 3)
	if hb.NodesToWrite[0].NodeID.String() != "ns=4;s=Sorter.Host.Heartbeat" || len(hb.NodesToWrite) != 3 {
		t.Fatal("heartbeat request")
	}
}

func TestWriteStatus(t *testing.T) {
	n := newNodeSet(1, "Sorter", 16)
	req := n.divertRequest(1, 1, 1, 0)
	ok := []ua.StatusCode{ua.StatusOK, ua.StatusOK, ua.StatusOK, ua.StatusOK}
	tests := []struct {
		name string
		res  *ua.WriteResponse
		want error
	}{
		{"all good", &ua.WriteResponse{Results: ok}, nil},
		{"seq refused", &ua.WriteResponse{Results: []ua.StatusCode{ua.StatusOK, ua.StatusOK, ua.StatusOK, ua.StatusBadTypeMismatch}}, ua.StatusBadTypeMismatch},
		{"first refused", &ua.WriteResponse{Results: []ua.StatusCode{ua.StatusBadNodeIDUnknown, ua.StatusOK, ua.StatusOK, ua.StatusOK}}, ErrBadStatus},
		{"too few results", &ua.WriteResponse{Results: ok[:3]}, ErrBadStatus},
		{"service fault", &ua.WriteResponse{ResponseHeader: &ua.ResponseHeader{ServiceResult: ua.StatusBadSessionIDInvalid}, Results: ok}, ua.StatusBadSessionIDInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := writeStatus(req, tc.res)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValueTypes(t *testing.T) {
	id := ua.NewStringNodeID(1, "x")
	dv := func(v any) *ua.DataValue {
		return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}
	}
	if v, err := u16(id, dv(uint16(7))); err != nil || v != 7 {
		t.Fatal(v, err)
	}
	var te *errValueType
	if _, err := u16(id, dv(int32(7))); !errors.As(err, &te) {
		t.Fatalf("int32 as uint16: %v", err)
	}
	if _, err := u32(id, dv(uint16(7))); !errors.As(err, &te) {
		t.Fatalf("uint16 as uint32: %v", err)
	}
	bad := &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown}
	if _, err := u16(id, bad); !errors.Is(err, ua.StatusBadNodeIDUnknown) {
		t.Fatalf("bad status: %v", err)
	}
	if b, err := bools(id, dv([]bool{true, false})); err != nil || len(b) != 2 || !b[0] {
		t.Fatal(b, err)
	}
}
