package vibration

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type tone struct{ amplitudeG, freqHz, phase float64 }

// signal simulates an accelerometer: tones plus a DC offset plus
// deterministic noise, uniform in ±noiseG (bounded, so the extremes of the
// signal are known).
func signal(n int, rateHz, offsetG, noiseG float64, tones ...tone) []float64 {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	x := make([]float64, n)
	for i := range x {
		t := float64(i) / rateHz
		v := offsetG + noiseG*(2*rng.Float64()-1)
		for _, tn := range tones {
			v += tn.amplitudeG * math.Sin(2*math.Pi*tn.freqHz*t+tn.phase)
		}
		x[i] = v
	}
	return x
}

// velocityOf is the velocity RMS in mm/s of a sine of amplitude a g at f
// Hz: a·g0/(2πf) is the velocity amplitude in m/s, /√2 its RMS.
func velocityOf(a, f float64) float64 {
	return a * standardGravity / (2 * math.Pi * f) / math.Sqrt2 * 1000
}

func TestSummarizeSine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		a, f, rate    float64
		n             int
		offset, noise float64
		phase         float64
	}{
		{"159.2 Hz at 25.6 kHz, between bins", 0.5, 159.2, 25600, 8192, 0.1, 0.002, 0.3},
		{"bin-centred 156.25 Hz", 0.5, 156.25, 25600, 8192, -1, 0.002, 0},
		{"60.3 Hz at 20 kHz", 1, 60.3, 20000, 8192, -0.3, 0.002, 1},
		{"800.7 Hz at 20 kHz", 0.2, 800.7, 20000, 8192, 0.05, 0.001, 2},
		{"25 Hz near the band's low edge", 0.5, 25, 25600, 8192, 0, 0.002, 0},
		{"4,096 samples at 10 kHz, 437.3 Hz", 2, 437.3, 10000, 4096, 1, 0.005, 0.7},
		{"odd length 5,000 at 20 kHz, 123.4 Hz", 0.3, 123.4, 20000, 5000, 0, 0.001, 0},
	}
	var an Analyzer
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := signal(tc.n, tc.rate, tc.offset, tc.noise, tone{tc.a, tc.f, tc.phase})
			s := an.Summarize(x, x, x, tc.rate)
			assert.Equal(t, s.X, s.Y)
			assert.Equal(t, s.X, s.Z)
			got := s.X
			binHz := tc.rate / float64(tc.n)
			cycles := tc.f * float64(tc.n) / tc.rate
			// A sampled sine misses its crest by at most half a sample.
			crestMiss := tc.a * (1 - math.Cos(math.Pi*tc.f/tc.rate))

			assert.Equal(t, tc.n, got.Samples)
			assert.InDelta(t, tc.offset, got.Mean, tc.a/(math.Pi*cycles)+tc.noise, "mean")
			assert.InDelta(t, tc.offset+tc.a, got.Max, tc.noise+crestMiss+1e-12, "max")
			assert.InDelta(t, tc.offset-tc.a, got.Min, tc.noise+crestMiss+1e-12, "min")
			assert.Equal(t, got.Max-got.Min, got.PeakToPeak)
			assert.InEpsilon(t, 2*tc.a, got.PeakToPeak, 0.01, "peak to peak")
			assert.InEpsilon(t, tc.a/math.Sqrt2, got.RMS, 0.01, "rms")
			assert.InEpsilon(t, tc.a, got.Peak, 0.01, "peak")
			assert.InEpsilon(t, math.Sqrt2, got.CrestFactor, 0.01, "crest factor")
			assert.InEpsilon(t, velocityOf(tc.a, tc.f), got.VelocityRMS, 0.03, "velocity rms")
			assert.InDelta(t, tc.f, got.DominantFrequency, binHz, "dominant frequency")
		})
	}
}

func TestVelocityOfTwoTonesAddsEnergies(t *testing.T) {
	t.Parallel()
	var an Analyzer
	for _, rate := range []float64{25600, 20000} {
		x := signal(8192, rate, 0.2, 0.002, tone{0.5, 159.2, 0}, tone{0.3, 480.7, 1})
		s := an.Summarize(x, x, x, rate).X
		want := math.Hypot(velocityOf(0.5, 159.2), velocityOf(0.3, 480.7))
		assert.InEpsilon(t, want, s.VelocityRMS, 0.03, "rate %v", rate)
		assert.InEpsilon(t, math.Sqrt(0.5*0.5/2+0.3*0.3/2), s.RMS, 0.01, "rate %v", rate)
		assert.InDelta(t, 159.2, s.DominantFrequency, rate/8192, "the stronger tone")
	}
}

func TestVelocityIgnoresOutOfBand(t *testing.T) {
	t.Parallel()
	var an Analyzer
	const rate, n = 25600.0, 8192
	// Bins are 3.125 Hz wide here, and a Hann window spreads a tone over
	// ±2 bins with side lobes of at most -31.5 dB (2.7 % in amplitude)
	// beyond, which integration weighs by f/12.5 Hz below the band. So a
	// tone within a bin or two of an edge (8 Hz, 9.5 Hz) is partly counted,
	// as through any real band-pass filter; further out it is not.
	cases := []struct {
		f, atMost float64 // share of what the tone would be worth in band
	}{
		{2, 0.01}, {3, 0.01}, {4, 0.01}, {5, 0.012}, {6.5, 0.01},
		{1030, 0.001}, {1300, 0.001}, {2500, 0.001}, {9000, 0.001},
	}
	for _, tc := range cases {
		for _, phase := range []float64{0, 0.4, 1.1, 2.5} {
			x := signal(n, rate, 0, 0, tone{0.5, tc.f, phase})
			s := an.Summarize(x, x, x, rate).X
			assert.Less(t, s.VelocityRMS, tc.atMost*velocityOf(0.5, tc.f), "%v Hz alone", tc.f)
		}
	}

	// Beside an in-band tone of the same acceleration, a tone well out of
	// the band changes the velocity by less than 1 %.
	inBand := signal(n, rate, 0, 0.002, tone{0.5, 159.2, 0})
	want := an.Summarize(inBand, inBand, inBand, rate).X.VelocityRMS
	assert.InEpsilon(t, velocityOf(0.5, 159.2), want, 0.03)
	for _, f := range []float64{3, 1300, 2500, 9000} {
		mixed := signal(n, rate, 0, 0.002, tone{0.5, f, 0.4}, tone{0.5, 159.2, 0})
		got := an.Summarize(mixed, mixed, mixed, rate).X.VelocityRMS
		assert.InEpsilon(t, want, got, 0.01, "%v Hz beside 159.2 Hz", f)
	}
}

func TestDominantFrequencyIgnoresDrift(t *testing.T) {
	t.Parallel()
	var an Analyzer
	// A fine grid (0.12 Hz bins): a strong 1 Hz sway below the 2 Hz floor
	// and a weaker 50 Hz vibration, which is the answer.
	x := signal(8192, 1000, 0, 0.001, tone{2, 1, 0}, tone{0.3, 50, 0})
	s := an.Summarize(x, x, x, 1000).X
	assert.InDelta(t, 50, s.DominantFrequency, 1000.0/8192)
}

func TestSpectrum(t *testing.T) {
	t.Parallel()
	var an Analyzer
	const rate, n = 25600.0, 8192
	binHz := rate / n
	for _, k := range []int{7, 50, 1000, 4095} {
		f := float64(k) * binHz
		x := signal(n, rate, 0.7, 0.002, tone{0.5, f, 0.3})
		freq, amp := an.Spectrum(x, rate)
		require.Len(t, freq, n/2+1)
		require.Len(t, amp, n/2+1)
		assert.Equal(t, 0.0, freq[0])
		assert.InDelta(t, rate/2, freq[n/2], 1e-9)
		assert.InDelta(t, f, freq[k], 1e-9)
		peak := 0
		for i := range amp {
			if amp[i] > amp[peak] {
				peak = i
			}
		}
		assert.Equal(t, k, peak, "%v Hz", f)
		assert.InEpsilon(t, 0.5, amp[k], 0.01, "a bin-centred sine peaks at its amplitude")
		assert.Less(t, amp[0], 0.01, "the offset is removed")
		// Hann: the tone is in three bins, the rest is noise.
		assert.InEpsilon(t, 0.25, amp[k-1], 0.05)
		assert.Less(t, amp[k-3], 0.001)
	}

	// Between bins Hann reads low by at most 1.42 dB (scalloping).
	x := signal(n, rate, 0, 0, tone{0.5, 50.5 * binHz, 0})
	_, amp := an.Spectrum(x, rate)
	assert.InDelta(t, 0.5*math.Pow(10, -1.42/20), max(amp[50], amp[51]), 0.005)

	// A tone at Nyquist has no mirror image: its bin is not doubled.
	alternating := make([]float64, n)
	for i := range alternating {
		alternating[i] = 0.5 * float64(1-2*(i%2))
	}
	_, amp = an.Spectrum(alternating, rate)
	assert.InEpsilon(t, 0.5, amp[n/2], 0.01, "Nyquist")
	// Sampled at Nyquist a tone's mean square is A², not A²/2; at 2 kHz
	// Nyquist is the top of the velocity band, and its bin counts once.
	s := an.Summarize(alternating, alternating, alternating, 2000).X
	assert.InEpsilon(t, 0.5, s.RMS, 1e-9)
	assert.InEpsilon(t, 0.5*standardGravity/(2*math.Pi*1000)*1000, s.VelocityRMS, 0.01, "Nyquist velocity")
	assert.InDelta(t, 1000, s.DominantFrequency, 2000.0/n)

	// Odd length: still N/2+1 bins, no Nyquist bin.
	x = signal(1001, 1001, 0, 0, tone{1, 100, 0})
	freq, amp := an.Spectrum(x, 1001)
	require.Len(t, freq, 501)
	assert.InDelta(t, 500, freq[500], 1e-9)
	assert.InEpsilon(t, 1, amp[100], 0.01)
}

// TestAwkwardLengths: a gateway may send any count. Lengths with a large
// prime factor would cost O(N²) (a 65,521-sample axis took 10 s), so they
// are zero-padded; the figures stay right.
func TestAwkwardLengths(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]int{
		2: 2, 1000: 1000, 1001: 1001, 4096: 4096, 5000: 5000, 8192: 8192, 61 * 128: 61 * 128,
		67: 72, 8191: 8192, 16381: 16384, 65521: 65536, 2 * 4099: 8640,
	} {
		assert.Equal(t, want, fftLength(n), "n=%d", n)
	}

	var an Analyzer
	for _, n := range []int{8191, 65521} {
		const rate = 25600.0
		x := signal(n, rate, 0.1, 0.002, tone{0.5, 159.2, 0.3})
		s := an.Summarize(x, x, x, rate).X
		assert.Equal(t, n, s.Samples)
		assert.InEpsilon(t, 0.5/math.Sqrt2, s.RMS, 0.01, "n=%d", n)
		assert.InEpsilon(t, velocityOf(0.5, 159.2), s.VelocityRMS, 0.03, "n=%d", n)
		assert.InDelta(t, 159.2, s.DominantFrequency, rate/float64(n), "n=%d", n)

		freq, amp := an.Spectrum(x, rate)
		m := fftLength(n)
		require.Len(t, freq, m/2+1)
		require.Len(t, amp, m/2+1)
		assert.InDelta(t, rate/2, freq[m/2], 1e-9)
		peak := 0
		for k := range amp {
			if amp[k] > amp[peak] {
				peak = k
			}
		}
		assert.InDelta(t, 159.2, freq[peak], rate/float64(m))
		assert.InEpsilon(t, 0.5, amp[peak], 0.16, "within Hann's scalloping loss")
	}
}

func TestSpectrumDegenerate(t *testing.T) {
	t.Parallel()
	var an Analyzer
	for _, rate := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		freq, amp := an.Spectrum([]float64{1, 2, 3}, rate)
		assert.Nil(t, freq, "rate %v", rate)
		assert.Nil(t, amp, "rate %v", rate)
	}
	freq, amp := an.Spectrum(nil, 1000)
	assert.Nil(t, freq)
	assert.Nil(t, amp)

	freq, amp = an.Spectrum([]float64{0.3}, 1000)
	assert.Equal(t, []float64{0}, freq)
	assert.Equal(t, []float64{0}, amp)

	freq, amp = an.Spectrum([]float64{0.3, 0.3, 0.3, 0.3}, 1000)
	assert.Equal(t, []float64{0, 250, 500}, freq)
	assert.Equal(t, []float64{0, 0, 0}, amp, "a constant has no spectrum once its mean is gone")

	_, amp = an.Spectrum([]float64{math.NaN(), 1, math.Inf(1), 2}, 1000)
	for _, v := range amp {
		assert.False(t, math.IsNaN(v) || math.IsInf(v, 0))
	}
}

func TestSummarizeDegenerate(t *testing.T) {
	t.Parallel()
	var an Analyzer
	cases := []struct {
		name    string
		samples []float64
		rate    float64
		want    AxisSummary
	}{
		{"no samples", nil, 25600, AxisSummary{}},
		{"one sample", []float64{0.25}, 25600, AxisSummary{Samples: 1, Min: 0.25, Max: 0.25, Mean: 0.25}},
		{"constant", []float64{-1, -1, -1, -1}, 25600, AxisSummary{Samples: 4, Min: -1, Max: -1, Mean: -1}},
		{"zero rate", []float64{1, -1, 1, -1}, 0, AxisSummary{Samples: 4, Min: -1, Max: 1, RMS: 1, Peak: 1, PeakToPeak: 2, CrestFactor: 1}},
		{"negative rate", []float64{1, -1, 1, -1}, -5, AxisSummary{Samples: 4, Min: -1, Max: 1, RMS: 1, Peak: 1, PeakToPeak: 2, CrestFactor: 1}},
		{"NaN rate", []float64{1, -1, 1, -1}, math.NaN(), AxisSummary{Samples: 4, Min: -1, Max: 1, RMS: 1, Peak: 1, PeakToPeak: 2, CrestFactor: 1}},
		{"infinite rate", []float64{1, -1, 1, -1}, math.Inf(1), AxisSummary{Samples: 4, Min: -1, Max: 1, RMS: 1, Peak: 1, PeakToPeak: 2, CrestFactor: 1}},
		{"Nyquist tone, bins below 2 Hz", []float64{1, -1, 1, -1}, 4, AxisSummary{Samples: 4, Min: -1, Max: 1, RMS: 1, Peak: 1, PeakToPeak: 2, CrestFactor: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := an.Summarize(tc.samples, tc.samples, tc.samples, tc.rate)
			assert.Equal(t, tc.want, s.X)
			_, err := json.Marshal(s)
			require.NoError(t, err)
		})
	}

	// Samples that no decoder passes, or too large to square: every
	// figure is still a number JSON can carry.
	for _, samples := range [][]float64{
		{math.NaN(), 1, 2},
		{math.Inf(1), 1, 2},
		{math.Inf(-1), math.Inf(1)},
		{math.MaxFloat64, -math.MaxFloat64, math.MaxFloat64, 0},
		{1e200, -1e200, 1e200, -1e200},
	} {
		s := an.Summarize(samples, samples, samples, 25600)
		_, err := json.Marshal(s)
		require.NoError(t, err, "%v", samples)
	}
}

func TestSummaryJSON(t *testing.T) {
	t.Parallel()
	var an Analyzer
	x := signal(1024, 10000, 0, 0, tone{1, 100, 0})
	b, err := json.Marshal(an.Summarize(x, x, x, 10000))
	require.NoError(t, err)
	var back map[string]map[string]float64
	require.NoError(t, json.Unmarshal(b, &back))
	require.Len(t, back, 3)
	for _, axis := range []string{"x", "y", "z"} {
		keys := make([]string, 0, len(back[axis]))
		for k := range back[axis] {
			keys = append(keys, k)
		}
		assert.ElementsMatch(t, []string{"samples", "min", "max", "mean", "rms", "peak", "peak_to_peak",
			"crest_factor", "velocity_rms_mm_s", "dominant_frequency_hz"}, keys, axis)
	}
}

// TestAnalyzerConcurrentUse shares one Analyzer between goroutines that
// analyse readings of several lengths at once (run with -race), more
// lengths than the cache keeps, and checks every answer against a fresh
// Analyzer's.
func TestAnalyzerConcurrentUse(t *testing.T) {
	t.Parallel()
	lengths := make([]int, 0, maxPlanLengths+4)
	for i := range maxPlanLengths + 4 {
		lengths = append(lengths, 256+i*64)
	}
	want := make(map[int]Summary, len(lengths))
	for _, n := range lengths {
		var fresh Analyzer
		x := signal(n, 20000, 0.1, 0.01, tone{0.5, 159.2, 0})
		want[n] = fresh.Summarize(x, x, x, 20000)
	}

	var shared Analyzer
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3 * len(lengths) {
				n := lengths[(i+g)%len(lengths)]
				x := signal(n, 20000, 0.1, 0.01, tone{0.5, 159.2, 0})
				assert.Equal(t, want[n], shared.Summarize(x, x, x, 20000), "n=%d", n)
			}
		})
	}
	wg.Wait()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	assert.Len(t, shared.plans, maxPlanLengths, "the cache is bounded")
}

// BenchmarkSummarize analyses one reading of 3 × 8,192 samples, as done
// when a reading is stored; "cold" builds the FFT plans each time, which
// is what the cache saves.
func BenchmarkSummarize(b *testing.B) {
	const n, rate = 8192, 25600.0
	x := signal(n, rate, 0.1, 0.01, tone{0.5, 159.2, 0})
	y := signal(n, rate, -0.2, 0.01, tone{0.3, 480.7, 1})
	z := signal(n, rate, 1, 0.01, tone{0.1, 60.3, 2})
	b.Run("cached", func(b *testing.B) {
		var an Analyzer
		b.ReportAllocs()
		for b.Loop() {
			an.Summarize(x, y, z, rate)
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var an Analyzer
			an.Summarize(x, y, z, rate)
		}
	})
}

func BenchmarkSpectrum(b *testing.B) {
	const n, rate = 8192, 25600.0
	x := signal(n, rate, 0.1, 0.01, tone{0.5, 159.2, 0})
	var an Analyzer
	b.ReportAllocs()
	for b.Loop() {
		an.Spectrum(x, rate)
	}
}
