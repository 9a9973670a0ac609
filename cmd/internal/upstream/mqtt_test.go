package upstream

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	gwup "sortgw/gateway/upstream"
)

// mqttPacket frames an MQTT 3.1.1 control packet (remaining length as a
// varint).
func mqttPacket(kind byte, body []byte) []byte {
	out := []byte{kind}
	n := len(body)
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

func mqttString(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

// readMQTT reads one packet: its first byte and its body.
func readMQTT(t *testing.T, r *bufio.Reader) (byte, []byte) {
	t.Helper()
	kind, err := r.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	n, mul := 0, 1
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	return kind, body
}

// TestMQTTSeesRecords: with mqtt_listen, a plant-floor MQTT 3.1.1 client
// subscribed to sortgw/<site>/# receives the gateway's records, the
// subject's tokens as topic levels. The client is written from the
// protocol here (no MQTT library is allowed).
func TestMQTTSeesRecords(t *testing.T) {
	j := startJournal(t, filepath.Join(t.TempDir(), "j.db"))
	cfg := embeddedConfig(t, "s1")
	mqttAddr := freeAddr(t)
	cfg.NATS.Embedded.MQTTListen = mqttAddr
	r, _ := runner(t, cfg, j)
	<-r.Started()

	conn, err := net.DialTimeout("tcp", mqttAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	rd := bufio.NewReader(conn)
	connect := append(mqttString("MQTT"), 4, 0x02, 0, 60) // level 4, clean session, keep-alive 60s
	connect = append(connect, mqttString("plc-hmi-1")...)
	if _, err := conn.Write(mqttPacket(0x10, connect)); err != nil {
		t.Fatal(err)
	}
	if kind, body := readMQTT(t, rd); kind != 0x20 || len(body) != 2 || body[1] != 0 {
		t.Fatalf("CONNACK %x %x", kind, body)
	}
	sub := append([]byte{0, 1}, mqttString("sortgw/s1/+/outcome")...)
	sub = append(sub, 0) // QoS 0
	if _, err := conn.Write(mqttPacket(0x82, sub)); err != nil {
		t.Fatal(err)
	}
	if kind, body := readMQTT(t, rd); kind != 0x90 || len(body) != 3 || body[2] != 0 {
		t.Fatalf("SUBACK %x %x", kind, body)
	}
	want := appendItems(t, j, "L1", 1, 3)
	for i := range want {
		kind, body := readMQTT(t, rd)
		if kind&0xf0 != 0x30 {
			t.Fatalf("packet %x, want PUBLISH", kind)
		}
		tl := int(binary.BigEndian.Uint16(body))
		topic, payload := string(body[2:2+tl]), body[2+tl:]
		if kind&0x06 != 0 { // QoS > 0 carries a packet id
			payload = payload[2:]
		}
		if topic != "sortgw/s1/L1/outcome" {
			t.Fatalf("topic %q", topic)
		}
		e, err := gwup.Decode(payload)
		if err != nil || e.Record.Seq != want[i] {
			t.Fatalf("payload %s: %v, want seq %d", payload, err, want[i])
		}
	}
}
