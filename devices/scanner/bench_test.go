package scanner

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// benchPayloads is a realistic mix: mostly single reads, some GS1 with
// two codes, no-reads, heartbeats.
var benchPayloads = []string{
	"1042;1Z999AA10123456784",
	"1043;]C1420902101\x1d92012345",
	"1044;]d2420100019\x1d00003123450000000017;00003123450000000017",
	"1045;420902109261290100130006123456",
	"1046;NoRead",
	"HB",
	"1047;9261290100130006123456",
	"1048;]C100003123450000000017",
}

func framed(f Framing, p string) []byte {
	if f == CRLF {
		return []byte(p + "\r\n")
	}
	return []byte("\x02" + p + "\x03")
}

// BenchmarkFramerParse: framer plus parser, as the connection loop runs
// them. "frame-per-read" feeds one frame per Feed call (what a socket
// returns at real scanner rates); "stream-32k" feeds a backlog in 32 KiB
// chunks. One op is one frame.
func BenchmarkFramerParse(b *testing.B) {
	for _, fr := range []Framing{STX, CRLF} {
		frames := make([][]byte, len(benchPayloads))
		for i, p := range benchPayloads {
			frames[i] = framed(fr, p)
		}
		var sink devices.Read
		emit := func(p []byte) {
			r, _, err := ParsePayload(p, DefaultParseConfig)
			if err != nil {
				b.Fatal(err)
			}
			sink = r
		}
		b.Run(fr.String()+"/frame-per-read", func(b *testing.B) {
			f := NewFramer(fr, DefaultMaxFrame)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f.Feed(frames[i%len(frames)], emit)
				i++
			}
			if f.Stats().Frames != uint64(i) {
				b.Fatalf("%d frames of %d", f.Stats().Frames, i)
			}
		})
		b.Run(fr.String()+"/stream-32k", func(b *testing.B) {
			var stream []byte
			for len(stream) < 1<<20 {
				for _, fb := range frames {
					stream = append(stream, fb...)
				}
			}
			f := NewFramer(fr, DefaultMaxFrame)
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			var n uint64
			for b.Loop() {
				before := f.Stats().Frames
				for p := stream; len(p) > 0; {
					c := min(len(p), 32<<10)
					f.Feed(p[:c], emit)
					p = p[c:]
				}
				n += f.Stats().Frames - before
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/frame")
		})
		_ = sink
	}
}

// BenchmarkParsePayload runs the parser over the table test's cases.
func BenchmarkParsePayload(b *testing.B) {
	for _, tc := range parseCases {
		if tc.err != nil || tc.pc != (ParseConfig{}) {
			continue
		}
		in := []byte(tc.in)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ParsePayload(in, DefaultParseConfig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSourceTCP: reads through a real loopback connection into the
// sink (server mode; the benchmark plays the scanner). One op is one read.
func BenchmarkSourceTCP(b *testing.B) {
	src, err := New([]Config{{Name: "bench", Mode: ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1", HeartbeatTimeout: time.Minute}}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1)
	var n, want int
	sink := func(devices.Read) {
		n++
		if n == want {
			got <- struct{}{}
		}
	}
	ctx, cancel := contextWithCancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	defer func() { cancel(); <-done }()
	<-src.Ready()
	conn, err := net.Dial("tcp", src.ListenAddr("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var batch []byte
	for i := range 1000 {
		batch = append(batch, framed(STX, benchPayloads[i%4])...)
	}
	per := bytes.Count(batch, []byte{stx})
	b.ReportAllocs()
	b.ResetTimer()
	rounds := (b.N + per - 1) / per
	want = rounds * per
	for range rounds {
		if _, err := conn.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	<-got
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/read")
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
