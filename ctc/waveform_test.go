package ctc

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encodeDecimals writes samples the way a gateway's CSV encoding does.
func encodeDecimals(samples []float64, format byte, prec int) string {
	var sb strings.Builder
	for i, v := range samples {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatFloat(v, format, prec, 64))
	}
	return sb.String()
}

func encodeJSON(t testing.TB, samples []float64) string {
	b, err := json.Marshal(samples)
	require.NoError(t, err)
	return string(b)
}

// encodeBase64 writes little-endian int16 milli-g, padded or not.
func encodeBase64(milli []int16, padded bool) string {
	raw := make([]byte, 2*len(milli))
	for i, v := range milli {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
	}
	if padded {
		return base64.StdEncoding.EncodeToString(raw)
	}
	return base64.RawStdEncoding.EncodeToString(raw)
}

func TestDecodeAxisEncodings(t *testing.T) {
	t.Parallel()
	abc, err := base64.RawStdEncoding.DecodeString("abc")
	require.NoError(t, err)
	cases := []struct {
		name string
		in   string
		want []float64
	}{
		{"decimals", "0.1,-0.2,3e-2", []float64{0.1, -0.2, 0.03}},
		{"decimals with spaces", " 0.1 ,\t-0.2,  3E-2\n", []float64{0.1, -0.2, 0.03}},
		{"decimals ParseFloat accepts", "+.5,5.,-0,1e-400", []float64{0.5, 5, math.Copysign(0, -1), 0}},
		{"one decimal", " 1.5 ", []float64{1.5}},
		{"one integer that is also base64", "1234", []float64{1234}},
		{"json", "[0.1,-0.2,3e-2]", []float64{0.1, -0.2, 0.03}},
		{"json with spaces", " \n[ 0.1 ,\t-0.2 , 3E+2 ]\r\n", []float64{0.1, -0.2, 300}},
		{"json one", "[0]", []float64{0}},
		{"base64 padded", encodeBase64([]int16{1000, -1000, 32767, -32768, 0}, true), []float64{1, -1, 32.767, -32.768, 0}},
		{"base64 unpadded", encodeBase64([]int16{1000, -1000, 32767, -32768, 0}, false), []float64{1, -1, 32.767, -32.768, 0}},
		{"base64 one sample", encodeBase64([]int16{-1}, true), []float64{-0.001}},
		{"base64 of 6 characters", "AAAAAA", []float64{0, 0}},
		{"base64 with spaces around", "  " + encodeBase64([]int16{250, 500}, true) + "\n", []float64{0.25, 0.5}},
		{"short text that is base64 by chance", "abc", []float64{float64(int16(binary.LittleEndian.Uint16(abc))) / 1000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeAxis(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeAxisMalformed(t *testing.T) {
	t.Parallel()
	cases := []string{
		// empty
		"", " \t\n",
		// decimals
		",", "1,", ",1", "1,,2", "1, ,2", "NaN", "nan", "Inf", "-Inf", "+Inf", "1,NaN", "1,Inf",
		"1e400", "-1e400", "1,1e400", "1e400000", "abc,1", "1,abc", "0x10,1", "1_0,2", "1e5e", "--1", ".", "e",
		"1;2", "1 2,3",
		// JSON
		"[]", "[ ]", "[", "[1", "[1,", "[1,]", "[,1]", "[null]", "[1,null]", `["1"]`, "[true]", "[1] x",
		"[1][2]", "[01]", "[+1]", "[.5]", "[1.]", "[1e]", "[-]", "[NaN]", "[Infinity]", "[1e400]", "[[1]]",
		"[1 2]", "[1;2]", `[1,"a"]`, "[{}]", "[1]]",
		// base64
		"A",                                   // 1 character
		"AAAA",                                // 3 bytes
		"AA==",                                // 1 byte
		"AAAAA",                               // 5 characters
		"AA=",                                 // short padding
		"AAA==",                               // too much padding
		"AAAA====",                            // far too much padding
		"A=AA",                                // padding inside
		"AAB=",                                // non-zero trailing bits
		"AAAA\nAAAA",                          // line break
		"AAAA AAAA",                           // space inside
		"AA-_",                                // URL alphabet
		"\xff\xfe",                            // not text
		"é",                                   // not base64
		encodeBase64([]int16{1, 2}, true)[:5], // cut short
	}
	for _, in := range cases {
		got, err := DecodeAxis(in)
		assert.Nil(t, got, "%q", in)
		assert.ErrorIs(t, err, ErrMalformedWaveform, "%q", in)
	}
}

func TestDecodeAxisErrorsSayWhereAndClip(t *testing.T) {
	t.Parallel()
	_, err := DecodeAxis("0.1,0.2,x")
	require.ErrorIs(t, err, ErrMalformedWaveform)
	assert.Contains(t, err.Error(), "sample 2")

	_, err = DecodeAxis("[0.1,null]")
	assert.Contains(t, err.Error(), "element 1")

	_, err = DecodeAxis("1," + strings.Repeat("x", 1<<20))
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 200, "a megabyte of garbage is not copied into the error")

	_, err = DecodeAxis(strings.Repeat("A", 2000) + "!AAAAAAA") // 1,506 bytes
	require.ErrorIs(t, err, ErrMalformedWaveform)
	assert.Contains(t, err.Error(), "character 2000", "the offset counts across chunks")
}

func TestDecodeAxisRoundTrips(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 767, 768, 769, 8192} {
		milli := make([]int16, n)
		g := make([]float64, n)
		for i := range milli {
			milli[i] = int16(rng.IntN(1<<16) - 1<<15)
			g[i] = float64(milli[i]) / 1000
		}
		exact := make([]float64, n)
		for i := range exact {
			exact[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(9)-4))
		}
		for name, tc := range map[string]struct {
			in   string
			want []float64
		}{
			"base64 padded":   {encodeBase64(milli, true), g},
			"base64 unpadded": {encodeBase64(milli, false), g},
			"json":            {encodeJSON(t, exact), exact},
			"decimals":        {encodeDecimals(exact, 'g', -1), exact},
			"decimals fixed":  {encodeDecimals(g, 'f', 3), g},
		} {
			got, err := DecodeAxis(tc.in)
			require.NoError(t, err, "%s n=%d", name, n)
			require.Equal(t, tc.want, got, "%s n=%d", name, n)
		}
	}
}

// TestSimpleDecimalsAgreeWithStrconv holds the fast path to strconv's
// answer, bit for bit, on the numbers gateways send and on the edges of
// the fast path (15 and 16 digits, signs, zeros, a lone point).
func TestSimpleDecimalsAgreeWithStrconv(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	toks := []string{"0", "-0", "+0", "0.0", "-0.000", "5.", ".5", "-.5", "+.5", "123456789012345",
		"1234567890123456", "0.123456789012345", "0.1234567890123456", "999999999999999.",
		".000000000000001", "-9.99999999999999", "0.1", "0.2", "0.3", "2.675", "1.005"}
	for range 100000 {
		v := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)-3))
		toks = append(toks, strconv.FormatFloat(v, 'f', rng.IntN(12), 64))
	}
	fast := 0
	for _, tok := range toks {
		want, err := strconv.ParseFloat(tok, 64)
		require.NoError(t, err, tok)
		if got, ok := parseSimpleDecimal(tok); ok {
			fast++
			require.Equal(t, math.Float64bits(want), math.Float64bits(got), tok)
		}
		got, err := parseDecimal(tok)
		require.NoError(t, err, tok)
		require.Equal(t, math.Float64bits(want), math.Float64bits(got), tok)
	}
	assert.Greater(t, fast, len(toks)*9/10, "most go the fast way")
	for _, tok := range []string{"", ".", "-", "+", "1e5", "1.2.3", "--1", "1-", "0x1", "1 ",
		"1234567890123456", "0.1234567890123456"} {
		_, ok := parseSimpleDecimal(tok)
		assert.False(t, ok, tok)
	}
}

func TestDecodeWaveform(t *testing.T) {
	t.Parallel()
	w, err := DecodeWaveform("0.1,0.2", "[0.3,0.4]", encodeBase64([]int16{500, 600}, false))
	require.NoError(t, err)
	assert.Equal(t, Waveform{X: []float64{0.1, 0.2}, Y: []float64{0.3, 0.4}, Z: []float64{0.5, 0.6}}, w)

	w, err = DecodeWaveform("0.1", "0.3", "0.4")
	require.NoError(t, err, "the protocol's own example")
	assert.Equal(t, Waveform{X: []float64{0.1}, Y: []float64{0.3}, Z: []float64{0.4}}, w)

	cases := []struct{ x, y, z, says string }{
		{"0.1,0.2", "0.3", "0.4,0.5", "x 2, y 1, z 2"},
		{"0.1", "0.3", "[0.4,0.5]", "x 1, y 1, z 2"},
		{"NaN", "1", "1", "axis x"},
		{"1", "", "1", "axis y"},
		{"1", "1", "[1,]", "axis z"},
	}
	for _, tc := range cases {
		w, err := DecodeWaveform(tc.x, tc.y, tc.z)
		assert.ErrorIs(t, err, ErrMalformedWaveform)
		assert.ErrorContains(t, err, tc.says)
		assert.Equal(t, Waveform{}, w)
	}
}

// DecodeWaveformInto reuses a worker's buffers: a long reading, then a
// short one, then a bad one, then a long one again, each as DecodeWaveform
// reads it.
func TestDecodeWaveformIntoReuses(t *testing.T) {
	long := strings.Repeat("0.5,-0.25,", 99) + "1"
	var w Waveform
	for _, axes := range [][3]string{{long, long, long}, {"0.1,0.2", "[0.3,0.4]", encodeBase64([]int16{500, 600}, false)},
		{"0.1", "0.2,0.3", "0.4"}, {long, "[" + long + "]", long}} {
		want, wantErr := DecodeWaveform(axes[0], axes[1], axes[2])
		err := DecodeWaveformInto(&w, axes[0], axes[1], axes[2])
		if wantErr != nil {
			require.EqualError(t, err, wantErr.Error())
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, want, w)
	}
	assert.GreaterOrEqual(t, cap(w.X), 100, "the long reading's array is kept")
}

// FuzzDecodeAxis shows that no text makes the decoder panic, that every
// failure is ErrMalformedWaveform, that every success is finite samples,
// and that base64 agrees with encoding/base64 (length = bytes/2, values =
// int16/1000) and JSON with encoding/json's idea of valid JSON. Seeds live
// in testdata/fuzz/FuzzDecodeAxis.
func FuzzDecodeAxis(f *testing.F) {
	f.Add("0.1,-0.2,3e-2")
	f.Add("[0.1, -0.2]")
	f.Add(encodeBase64([]int16{1000, -1000, 32767}, true))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := DecodeAxis(s)
		// AppendAxis after samples already there (with room to spare, as a
		// reused buffer has) reads the same, or fails the same way.
		dst := make([]float64, 2, 7)
		dst[0], dst[1] = 7, 8
		app, appErr := AppendAxis(dst, s)
		if (err == nil) != (appErr == nil) || (err != nil && (err.Error() != appErr.Error() || app != nil)) {
			t.Fatalf("DecodeAxis: %v; AppendAxis: %v (%d samples)", err, appErr, len(app))
		}
		if err == nil && (len(app) != 2+len(got) || app[0] != 7 || app[1] != 8 || !equalBits(app[2:], got)) {
			t.Fatalf("AppendAxis gave %v after [7 8], DecodeAxis %v", app, got)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedWaveform) {
				t.Fatalf("error is not ErrMalformedWaveform: %v", err)
			}
			if got != nil {
				t.Fatalf("samples with an error: %v", got)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no samples without an error")
		}
		for i, v := range got {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("sample %d is %v", i, v)
			}
		}
		trimmed := strings.TrimSpace(s)
		switch {
		case trimmed[0] == '[':
			if !json.Valid([]byte(trimmed)) {
				t.Fatalf("accepted invalid JSON %q", trimmed)
			}
			var back []float64
			if err := json.Unmarshal([]byte(trimmed), &back); err != nil || !equalFloats(back, got) {
				t.Fatalf("encoding/json reads %v (%v), we read %v", back, err, got)
			}
		case strings.Contains(trimmed, ",") || isDecimalText(trimmed):
			toks := strings.Split(trimmed, ",")
			if len(got) != len(toks) {
				t.Fatalf("%d samples from %d values", len(got), len(toks))
			}
			for i, tok := range toks {
				want, err := strconv.ParseFloat(strings.TrimSpace(tok), 64)
				if err != nil || math.Float64bits(want) != math.Float64bits(got[i]) {
					t.Fatalf("sample %d: %v, strconv says %v (%v)", i, got[i], want, err)
				}
			}
		default:
			enc := base64.RawStdEncoding.Strict()
			if strings.HasSuffix(trimmed, "=") {
				enc = base64.StdEncoding.Strict()
			}
			raw, err := enc.DecodeString(trimmed)
			if err != nil {
				t.Fatalf("encoding/base64 refuses %q: %v", trimmed, err)
			}
			if len(got) != len(raw)/2 || len(raw)%2 != 0 {
				t.Fatalf("%d samples from %d bytes", len(got), len(raw))
			}
			for i := range got {
				if want := float64(int16(binary.LittleEndian.Uint16(raw[2*i:]))) / 1000; got[i] != want {
					t.Fatalf("sample %d: %v, encoding/base64 says %v", i, got[i], want)
				}
			}
		}
	})
}

func equalBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkDecodeWaveform decodes one reading of 3 × 8,192 samples in each
// encoding; ~200 readings a second must fit on two cores.
func BenchmarkDecodeWaveform(b *testing.B) {
	const n = 8192
	rng := rand.New(rand.NewPCG(3, 4))
	axes := [3][]float64{}
	milli := [3][]int16{}
	for a := range axes {
		axes[a] = make([]float64, n)
		milli[a] = make([]int16, n)
		for i := range n {
			v := 0.5*math.Sin(2*math.Pi*159.2*float64(i)/25600+float64(a)) + 0.01*rng.NormFloat64()
			milli[a][i] = int16(math.Round(v * 1000))
			axes[a][i] = float64(milli[a][i]) / 1000
		}
	}
	encodings := []struct {
		name string
		enc  func(a int) string
	}{
		{"decimals", func(a int) string { return encodeDecimals(axes[a], 'f', 4) }},
		{"json", func(a int) string { return encodeJSON(b, axes[a]) }},
		{"base64", func(a int) string { return encodeBase64(milli[a], true) }},
	}
	for _, e := range encodings {
		x, y, z := e.enc(0), e.enc(1), e.enc(2)
		b.Run(e.name, func(b *testing.B) {
			b.SetBytes(int64(len(x) + len(y) + len(z)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeWaveform(x, y, z); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
