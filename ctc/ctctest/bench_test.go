package ctctest

import (
	"io"
	"testing"
	"time"

	"github.com/ctcgw/gatewayd/ctc"
)

// BenchmarkEncodeWave is the cost of a reading whose waveform is not
// cached yet: 3 × 8192 samples generated and encoded.
func BenchmarkEncodeWave(b *testing.B) {
	s := DefaultSensors(1)[0]
	for _, enc := range []Encoding{EncodingCSV, EncodingJSON, EncodingBase64} {
		b.Run(string(enc), func(b *testing.B) {
			k := waveKey{sig: SignalFor(s), rate: readRate(s), n: samples(s), enc: enc}
			b.ReportAllocs()
			for b.Loop() {
				encodeWave(k)
			}
		})
	}
}

// BenchmarkPushReading is the simulator's cost of one reading of a
// default sensor (cached waveform) written to a subscribed socket whose
// client reads and discards it.
func BenchmarkPushReading(b *testing.B) {
	s, err := NewServer("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := s.Add("bench", Config{Email: "e", Password: "p"})
	ws := dial(b, g.URL())
	login(b, ws, "e", "p")
	send(b, ws, ctc.TypePostSubChanges, nil)
	recv(b, ws)
	_ = ws.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, r, err := ws.NextReader()
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
		}
	}()
	bp := g.readingFrame(g.Sensors()[0])
	b.SetBytes(int64(len(*bp)))
	framePool.Put(bp)
	b.ReportAllocs()
	for b.Loop() {
		if g.PushReading(10001) != 1 {
			b.Fatal("not sent")
		}
	}
	b.StopTimer()
	g.Drop(0)
	<-done
}

// BenchmarkDecodeReadingFrame is gatewayd's cost of parsing one
// simulated NOT_DYN_READING (3 × 8192 samples) from the wire, per
// encoding: ctc.Decode, then the samples decoded to floats.
func BenchmarkDecodeReadingFrame(b *testing.B) {
	s := DefaultSensors(1)[0]
	var waves waveCache
	for _, enc := range []Encoding{EncodingCSV, EncodingJSON, EncodingBase64} {
		w := waves.get(waveKey{sig: SignalFor(s), rate: readRate(s), n: samples(s), enc: enc})
		frame := appendReadingFrame(nil, 1, s.Serial, time.Now(), w)
		b.Run(string(enc)+"/frame", func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ctc.Decode(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(enc)+"/samples", func(b *testing.B) {
			m, err := ctc.Decode(frame)
			if err != nil {
				b.Fatal(err)
			}
			r := m.(*ctc.Reading)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ctc.DecodeWaveform(r.X, r.Y, r.Z); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
