package wavepack_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/wavepack"
)

// bitsEqual compares float32s by their bits, so NaN payloads and -0 count.
func bitsEqual(t *testing.T, want, got []float32) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("sample %d: want %v (%#x), got %v (%#x)", i, want[i], math.Float32bits(want[i]), got[i], math.Float32bits(got[i]))
		}
	}
}

func roundTrip(t *testing.T, x, y, z []float32) []byte {
	t.Helper()
	packed := wavepack.Pack(x, y, z)
	gx, gy, gz, err := wavepack.Unpack(wavepack.FormatXORPlanes, packed)
	require.NoError(t, err)
	bitsEqual(t, x, gx)
	bitsEqual(t, y, gy)
	bitsEqual(t, z, gz)
	rx, ry, rz, err := wavepack.Unpack(wavepack.FormatRaw, wavepack.PackRaw(x, y, z))
	require.NoError(t, err)
	bitsEqual(t, x, rx)
	bitsEqual(t, y, ry)
	bitsEqual(t, z, rz)
	return packed
}

func TestRoundTripSpecialValues(t *testing.T) {
	t.Parallel()
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x7fc00001), math.Float32frombits(0xffffffff), 3.25e-7}
	rev := make([]float32, len(special))
	for i, v := range special {
		rev[len(special)-1-i] = v
	}
	roundTrip(t, special, rev, special)
	roundTrip(t, nil, nil, nil)
	roundTrip(t, []float32{1}, []float32{2}, []float32{3})
}

func TestRoundTripRandomBits(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{2, 3, 1000, 8192, 65536} {
		axes := [3][]float32{}
		for a := range axes {
			axes[a] = make([]float32, n)
			for i := range axes[a] {
				axes[a][i] = math.Float32frombits(rng.Uint32())
			}
		}
		packed := roundTrip(t, axes[0], axes[1], axes[2])
		// Random bits do not compress; stored blocks keep them close to raw
		// (each plane costs a block header and a flush marker).
		require.Less(t, len(packed), 12*n+12*n/100+12*16, "n=%d: %d bytes", n, len(packed))
	}
}

// simulated returns a simulator reading as gatewayd stores it: the decimals
// (5 places) or milli-g of the frame, decoded and rounded to float32.
func simulated(t testing.TB, serial int64, base64 bool) [3][]float32 {
	s := ctc.Sensor{Serial: serial, ReadRate: ctctest.DefaultReadRate, Samples: ctctest.DefaultSamples}
	x, y, z := ctctest.SignalFor(s).Waveform(s.ReadRate, s.Samples)
	var out [3][]float32
	for a, v := range [][]float64{x, y, z} {
		out[a] = make([]float32, len(v))
		for i, f := range v {
			if base64 {
				f = math.Round(f*1000) / 1000
			} else {
				f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'f', 5, 64), 64)
			}
			out[a][i] = float32(f)
		}
	}
	return out
}

func TestSimulatedReadingsPackSmaller(t *testing.T) {
	t.Parallel()
	for _, serial := range []int64{10001, 10002, 10005, 10008} {
		for _, b64 := range []bool{false, true} {
			w := simulated(t, serial, b64)
			packed := roundTrip(t, w[0], w[1], w[2])
			raw := 12 * len(w[0])
			t.Logf("serial %d base64 %v: %d of %d bytes (%.1f %%)", serial, b64, len(packed), raw, 100*float64(len(packed))/float64(raw))
			// The target is 100 KiB per reading with the row and TOAST's
			// overhead; the samples alone must leave room for them.
			require.Less(t, len(packed), raw*80/100, "serial %d base64 %v", serial, b64)
		}
	}
}

func TestUnpackRefusesCorruptData(t *testing.T) {
	t.Parallel()
	w := simulated(t, 10001, false)
	packed := wavepack.Pack(w[0][:100], w[1][:100], w[2][:100])
	cases := map[string][]byte{
		"empty":          nil,
		"short header":   {1, 0},
		"count too big":  append([]byte{0xff, 0xff, 0xff, 0x7f}, packed[4:]...),
		"count too low":  append([]byte{99, 0, 0, 0}, packed[4:]...),
		"count too high": append([]byte{101, 0, 0, 0}, packed[4:]...),
		"length too big": append(append([]byte{}, packed[:4]...), append([]byte{0xff, 0xff, 0xff, 0xff}, packed[8:]...)...),
		"length too low": withLength(packed, -1),
		"length to high": withLength(packed, +1),
		"truncated":      packed[:len(packed)-3],
		"trailing bytes": append(append([]byte{}, packed...), 0),
		"not deflate":    append([]byte{0, 0, 0, 0, 3, 0, 0, 0}, 0xff, 0xff, 0xff),
	}
	for name, data := range cases {
		_, _, _, err := wavepack.Unpack(wavepack.FormatXORPlanes, data)
		require.ErrorIs(t, err, wavepack.ErrCorrupt, name)
	}
	// Junk after the compressed planes, with the header's length
	// covering it: the stream ends before its bytes do.
	m := int(binary.LittleEndian.Uint32(packed[4:]))
	junk := append(append(append([]byte{}, packed[:8+m]...), 1, 2, 3), packed[8+m:]...)
	binary.LittleEndian.PutUint32(junk[4:], uint32(m+3))
	_, _, _, err := wavepack.Unpack(wavepack.FormatXORPlanes, junk)
	require.ErrorIs(t, err, wavepack.ErrCorrupt, "junk after the compressed planes")
	for _, n := range []int{4, 8, 13} { // whole float32s, not whole 3-axis samples
		_, _, _, err = wavepack.Unpack(wavepack.FormatRaw, make([]byte, n))
		require.ErrorIs(t, err, wavepack.ErrCorrupt, "%d raw bytes", n)
	}
	_, _, _, err = wavepack.Unpack(7, packed)
	require.ErrorIs(t, err, wavepack.ErrCorrupt)
}

// withLength returns packed with its compressed length moved by d (and
// the bytes after the header as they were).
func withLength(packed []byte, d int) []byte {
	out := append([]byte{}, packed...)
	m := int(out[4]) | int(out[5])<<8
	out[4], out[5] = byte(m+d), byte((m+d)>>8)
	return out
}

// FuzzUnpack: any bytes unpack or fail with ErrCorrupt, never panic; what
// unpacks packs back to the same samples.
func FuzzUnpack(f *testing.F) {
	w := simulated(f, 10001, false)
	f.Add(wavepack.Pack(w[0][:64], w[1][:64], w[2][:64]))
	f.Add(wavepack.Pack(nil, nil, nil))
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		x, y, z, err := wavepack.Unpack(wavepack.FormatXORPlanes, data)
		if err != nil {
			require.ErrorIs(t, err, wavepack.ErrCorrupt)
			return
		}
		gx, gy, gz, err := wavepack.Unpack(wavepack.FormatXORPlanes, wavepack.Pack(x, y, z))
		require.NoError(t, err)
		bitsEqual(t, x, gx)
		bitsEqual(t, y, gy)
		bitsEqual(t, z, gz)
	})
}

// FuzzRoundTrip: any float32 bits pack and unpack to themselves.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = raw[:len(raw)/12*12]
		x, y, z, err := wavepack.Unpack(wavepack.FormatRaw, raw)
		require.NoError(t, err)
		roundTrip(t, x, y, z)
	})
}

func BenchmarkPack(b *testing.B) {
	for _, b64 := range []bool{false, true} {
		w := simulated(b, 10001, b64)
		name := map[bool]string{false: "csv", true: "base64"}[b64]
		b.Run(name+"/pack", func(b *testing.B) {
			b.SetBytes(int64(12 * len(w[0])))
			b.ReportAllocs()
			var size int
			for b.Loop() {
				size = len(wavepack.Pack(w[0], w[1], w[2]))
			}
			b.ReportMetric(float64(size), "packed-B")
		})
		b.Run(name+"/raw", func(b *testing.B) {
			b.SetBytes(int64(12 * len(w[0])))
			b.ReportAllocs()
			for b.Loop() {
				wavepack.PackRaw(w[0], w[1], w[2])
			}
		})
		packed := wavepack.Pack(w[0], w[1], w[2])
		b.Run(name+"/unpack", func(b *testing.B) {
			b.SetBytes(int64(12 * len(w[0])))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := wavepack.Unpack(wavepack.FormatXORPlanes, packed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// AppendPack writes the same bytes as Pack after what dst holds, in dst's
// own array when it has room, and in a new one, exactly as long, when not.
func TestAppendPackReusesRoom(t *testing.T) {
	t.Parallel()
	w := simulated(t, 10001, false)
	x, y, z := w[0][:500], w[1][:500], w[2][:500]
	want := wavepack.Pack(x, y, z)
	require.Equal(t, len(want), cap(want), "Pack's result is exactly as long as it needs to be")

	roomy := make([]byte, 3, 3+len(want)+100)
	copy(roomy, "abc")
	got := wavepack.AppendPack(roomy, x, y, z)
	require.Equal(t, "abc", string(got[:3]))
	require.Equal(t, want, got[3:])
	require.Same(t, &roomy[0], &got[0], "dst had room: its array is reused")

	tight := []byte("abc")
	got = wavepack.AppendPack(tight, x, y, z)
	require.Equal(t, "abc", string(got[:3]))
	require.Equal(t, want, got[3:])
	require.Equal(t, len(got), cap(got))
	require.Equal(t, "abc", string(tight), "dst is not written past its length")
}
