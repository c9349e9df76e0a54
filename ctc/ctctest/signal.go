package ctctest

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/ctcgw/gatewayd/ctc"
)

// Tone is one sine wave: Amplitude in g (peak, so its RMS is
// Amplitude/√2) at FrequencyHz.
type Tone struct {
	Amplitude   float64
	FrequencyHz float64
}

// Signal is what a simulated sensor measures, per axis: a sine, plus a DC
// Offset in g, plus uniform pseudo-random noise in [-Noise, +Noise] g
// drawn from a generator seeded by Seed (and the axis), so a sensor's
// readings are the same every time.
//
// Sample i of an axis (rate = the sensor's ReadRate):
//
//	v[i] = Offset + Amplitude·sin(2π·FrequencyHz·i/rate) + Noise·(2u−1)
type Signal struct {
	X, Y, Z Tone
	Offset  [3]float64 // X, Y, Z
	Noise   float64
	Seed    uint64
}

// SignalFor is the signal of a sensor (unless Gateway.SetSignal overrides
// it). With k = ((serial−1) mod 8) + 1, so serial 10001 has k = 1 and
// 10002 has k = 2:
//
//	X: 0.5 g at  50·k Hz, no offset
//	Y: 0.3 g at 100·k Hz, no offset
//	Z: 0.2 g at  25·k Hz, offset 1 g (gravity)
//	noise ±0.005 g (RMS 0.0029 g), seeded by the serial
//
// Every frequency lies within 10–1000 Hz and is a multiple of 25 Hz, so at
// the default 25600 Hz × 8192 samples each axis holds a whole number of
// periods and falls on an exact 3.125 Hz FFT bin. A frequency not below
// ReadRate/2.56 (the usable band of a slower sensor) is halved until it
// is.
func SignalFor(s ctc.Sensor) Signal {
	k := float64(mod(s.Serial-1, 8) + 1)
	sig := Signal{
		X:      Tone{Amplitude: 0.5, FrequencyHz: 50 * k},
		Y:      Tone{Amplitude: 0.3, FrequencyHz: 100 * k},
		Z:      Tone{Amplitude: 0.2, FrequencyHz: 25 * k},
		Offset: [3]float64{0, 0, 1},
		Noise:  0.005,
		Seed:   uint64(s.Serial),
	}
	limit := readRate(s) / 2.56
	for _, tone := range []*Tone{&sig.X, &sig.Y, &sig.Z} {
		for tone.FrequencyHz >= limit {
			tone.FrequencyHz /= 2
		}
	}
	return sig
}

// readRate and samples are the sensor's, or the defaults when it has none.
func readRate(s ctc.Sensor) float64 {
	if s.ReadRate > 0 {
		return s.ReadRate
	}
	return DefaultReadRate
}

func samples(s ctc.Sensor) int {
	if s.Samples > 0 {
		return s.Samples
	}
	return DefaultSamples
}

// Waveform returns n samples per axis at rate Hz, in g, as the formula of
// Signal gives them (before encoding rounds them).
func (sig Signal) Waveform(rate float64, n int) (x, y, z []float64) {
	return sig.axis(0, rate, n, nil), sig.axis(1, rate, n, nil), sig.axis(2, rate, n, nil)
}

func (sig Signal) tone(axis int) Tone {
	return [3]Tone{sig.X, sig.Y, sig.Z}[axis]
}

// axis appends axis a's n samples to dst.
func (sig Signal) axis(a int, rate float64, n int, dst []float64) []float64 {
	tone := sig.tone(a)
	w := 2 * math.Pi * tone.FrequencyHz / rate
	state := sig.Seed*0x9E3779B97F4A7C15 ^ uint64(a+1)*0xD1B54A32D192ED03
	for i := range n {
		v := sig.Offset[a] + tone.Amplitude*math.Sin(w*float64(i))
		if sig.Noise != 0 {
			var r uint64
			state, r = splitmix64(state)
			u := float64(r>>11) / (1 << 53)
			v += sig.Noise * (2*u - 1)
		}
		dst = append(dst, v)
	}
	return dst
}

// splitmix64 is a small, fixed pseudo-random generator (Steele, Lea and
// Flood), so the noise does not change with Go's math/rand.
func splitmix64(state uint64) (uint64, uint64) {
	state += 0x9E3779B97F4A7C15
	z := state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return state, z ^ (z >> 31)
}

// Encoding is how NOT_DYN_READING carries each axis's samples (all three
// are seen on real gateways; API.md §8).
type Encoding string

const (
	// EncodingCSV is comma-separated decimals in g with 5 decimals
	// ("0.01234,-0.49998,…"); the zero Encoding means this too.
	EncodingCSV Encoding = "csv"
	// EncodingJSON is a JSON array of the same numbers, in the string
	// ("[0.01234,-0.49998,…]").
	EncodingJSON Encoding = "json"
	// EncodingBase64 is standard base64 of little-endian int16 milli-g,
	// rounded and clamped to ±32767/−32768.
	EncodingBase64 Encoding = "base64"
)

// ParseEncoding accepts "csv", "json" and "base64" ("" is csv).
func ParseEncoding(s string) (Encoding, error) {
	switch e := Encoding(s); e {
	case "", EncodingCSV:
		return EncodingCSV, nil
	case EncodingJSON, EncodingBase64:
		return e, nil
	}
	return "", fmt.Errorf("unknown encoding %q (want csv, json or base64)", s)
}

// waveKey names one encoded waveform. A sensor's readings are the same
// every time, so 1,000 gateways sharing default serials encode each once.
type waveKey struct {
	sig       Signal
	rate      float64
	n         int
	enc       Encoding
	malformed bool
}

// waveText is the encoded X, Y and Z of a reading. Its bytes need no JSON
// escaping except where MalformedSamples put escaped quotes on purpose.
type waveText struct{ x, y, z []byte }

// waveCache keeps a server's recently encoded waveforms; it is emptied
// when full. The zero value is ready to use.
type waveCache struct {
	mu sync.Mutex
	m  map[waveKey]*waveText
}

const waveCacheSize = 32

// get returns the encoded waveform of k, encoding it on a miss.
func (c *waveCache) get(k waveKey) *waveText {
	c.mu.Lock()
	w := c.m[k]
	c.mu.Unlock()
	if w != nil {
		return w
	}
	w = encodeWave(k)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= waveCacheSize {
		c.m = make(map[waveKey]*waveText, waveCacheSize)
	}
	c.m[k] = w
	c.mu.Unlock()
	return w
}

// encodeWave generates and encodes a waveform. MalformedSamples makes Y
// one sample short and puts a non-number at Z[1] ("x" in CSV, the string
// "x" in JSON; in base64, a dangling odd byte).
func encodeWave(k waveKey) *waveText {
	buf := make([]float64, 0, k.n)
	var w waveText
	for a, dst := range []*[]byte{&w.x, &w.y, &w.z} {
		v := k.sig.axis(a, k.rate, k.n, buf[:0])
		bad := -1
		if k.malformed {
			switch a {
			case 1:
				v = v[:max(len(v)-1, 0)]
			case 2:
				bad = 1
			}
		}
		*dst = appendAxis(nil, v, k.enc, bad)
	}
	return &w
}

// appendAxis encodes v; bad ≥ 0 spoils that sample.
func appendAxis(dst []byte, v []float64, enc Encoding, bad int) []byte {
	switch enc {
	case EncodingBase64:
		raw := make([]byte, 0, 2*len(v)+1)
		for _, f := range v {
			raw = binary.LittleEndian.AppendUint16(raw, uint16(milliG(f)))
		}
		if bad >= 0 {
			raw = append(raw, 0x7f)
		}
		return base64.StdEncoding.AppendEncode(dst, raw)
	case EncodingJSON:
		dst = append(dst, '[')
		dst = appendDecimals(dst, v, bad, `\"x\"`)
		return append(dst, ']')
	default:
		return appendDecimals(dst, v, bad, "x")
	}
}

func appendDecimals(dst []byte, v []float64, bad int, token string) []byte {
	for i, f := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		if i == bad {
			dst = append(dst, token...)
			continue
		}
		dst = strconv.AppendFloat(dst, f, 'f', 5, 64)
	}
	return dst
}

// milliG rounds g to int16 milli-g, clamped.
func milliG(g float64) int16 {
	m := math.Round(g * 1000)
	return int16(max(math.MinInt16, min(math.MaxInt16, m)))
}

// framePool recycles reading frames (a few hundred kB each).
var framePool = sync.Pool{New: func() any { return new([]byte) }}

// appendReadingFrame appends a NOT_DYN_READING frame.
func appendReadingFrame(dst []byte, id int64, serial int64, at time.Time, w *waveText) []byte {
	dst = append(dst, `{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"Serial":"`...)
	dst = strconv.AppendInt(dst, serial, 10)
	dst = append(dst, `","Time":"`...)
	dst = at.UTC().AppendFormat(dst, time.DateTime)
	dst = append(dst, `","X":"`...)
	dst = append(dst, w.x...)
	dst = append(dst, `","Y":"`...)
	dst = append(dst, w.y...)
	dst = append(dst, `","Z":"`...)
	dst = append(dst, w.z...)
	return append(dst, `"}}`...)
}
