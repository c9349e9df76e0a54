// Package vibration analyses a vibration reading once, when it is stored:
// per-axis statistics of the acceleration in g, the velocity RMS in the
// ISO 20816 band, the dominant frequency, and the amplitude spectrum that
// the API serves. It is pure computation: no I/O, and nothing of the rest
// of gatewayd.
package vibration

import (
	"math"
)

// The figures the API promises (API.md §8).
const (
	standardGravity = 9.80665 // m/s² per g
	// The velocity RMS covers the ISO 20816 band for machines of this kind.
	velocityBandLowHz  = 10.0
	velocityBandHighHz = 1000.0
	// The dominant frequency ignores drift and the window's DC leakage.
	dominantAboveHz = 2.0
)

// AxisSummary describes one axis of a reading. The acceleration figures
// are in g. No field is ever NaN or ±Inf, so a summary always encodes as
// JSON; see Analyzer.Summarize for what degenerate input gives.
type AxisSummary struct {
	// Samples is the number of samples analysed.
	Samples int `json:"samples"`
	// Min, Max and Mean are those of the raw signal, offset included.
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	// RMS is the root mean square of the mean-removed signal.
	RMS float64 `json:"rms"`
	// Peak is the largest |x - mean|.
	Peak float64 `json:"peak"`
	// PeakToPeak is Max - Min.
	PeakToPeak float64 `json:"peak_to_peak"`
	// CrestFactor is Peak / RMS: √2 for a pure sine, larger for impacts.
	CrestFactor float64 `json:"crest_factor"`
	// VelocityRMS is the RMS vibration velocity in mm/s over 10–1000 Hz
	// (ISO 20816), integrated from the acceleration spectrum: the figure
	// that severity charts for rotating machines are read against.
	VelocityRMS float64 `json:"velocity_rms_mm_s"`
	// DominantFrequency is the frequency in Hz of the strongest bin of the
	// amplitude spectrum above 2 Hz (below that is drift, not vibration).
	DominantFrequency float64 `json:"dominant_frequency_hz"`
}

// Summary is the summary of a three-axis reading, stored with it.
type Summary struct {
	X AxisSummary `json:"x"`
	Y AxisSummary `json:"y"`
	Z AxisSummary `json:"z"`
}

// Summarize analyses the three axes of a reading sampled at sampleRateHz.
// The axes are analysed independently and may differ in length.
//
// Degenerate input never gives NaN or Inf; it gives zeros where a figure
// has no meaning:
//   - no samples: every field 0;
//   - one sample, or a constant signal: Min, Max and Mean are the value,
//     everything else 0 (a crest factor of 0/0 is reported as 0);
//   - sampleRateHz not a positive finite number: the statistics are
//     computed, VelocityRMS and DominantFrequency are 0;
//   - no bin above 2 Hz: DominantFrequency is 0;
//   - a figure that would overflow (only possible for NaN or Inf samples,
//     which ctc.DecodeAxis never returns, or magnitudes near 1e154 g and
//     beyond): that figure is 0.
func (a *Analyzer) Summarize(x, y, z []float64, sampleRateHz float64) Summary {
	return Summary{
		X: a.summarizeAxis(x, sampleRateHz),
		Y: a.summarizeAxis(y, sampleRateHz),
		Z: a.summarizeAxis(z, sampleRateHz),
	}
}

func (a *Analyzer) summarizeAxis(samples []float64, sampleRateHz float64) AxisSummary {
	n := len(samples)
	s := AxisSummary{Samples: n}
	if n == 0 {
		return s
	}
	lo, hi, sum := samples[0], samples[0], 0.0
	for _, v := range samples {
		lo = min(lo, v)
		hi = max(hi, v)
		sum += v
	}
	mean := sum / float64(n)
	var squares, peak float64
	for _, v := range samples {
		d := v - mean
		squares += d * d
		peak = max(peak, math.Abs(d))
	}
	rms := math.Sqrt(squares / float64(n))

	s.Min, s.Max, s.Mean = finite(lo), finite(hi), finite(mean)
	s.PeakToPeak = finite(hi - lo)
	s.RMS, s.Peak = finite(rms), finite(peak)
	if s.RMS > 0 && s.Peak > 0 {
		s.CrestFactor = finite(peak / rms)
	}
	if n >= 2 && s.RMS > 0 && validRate(sampleRateHz) {
		v, f := a.velocityAndDominant(samples, mean, sampleRateHz)
		s.VelocityRMS, s.DominantFrequency = finite(v), finite(f)
	}
	return s
}

// velocityAndDominant computes the velocity RMS in mm/s and the dominant
// frequency from one Hann-windowed FFT of the mean-removed signal.
//
// Velocity: each bin's one-sided power P_k = c_k·|X_k|² / (M·Σw²) (M the
// FFT length, c_k = 2, or 1 at Nyquist) is its share of the acceleration's
// mean square in g²; Parseval makes the bins add up to the signal's mean
// square. Converted to
// (m/s²)² by g0² and integrated by dividing by (2πf_k)², the powers of the
// bins with 10 Hz ≤ f_k ≤ 1000 Hz add up to the velocity's mean square.
//
// Why a Hann window with energy correction and not a rectangular window:
// integration weighs each bin by 1/f², so leakage from strong content
// below the band (drift, sway, an offset that is not a whole number of
// periods) into its first bins is amplified by up to (f_k/f_leak)². A
// rectangular window's leakage falls only as 1/Δk; Hann's falls as 1/Δk³.
// Dividing by Σw² instead of N corrects for the energy the window takes
// away, so a tone's power sums to A²/2 wherever it falls between bins: no
// scalloping loss in an RMS figure (an amplitude correction would be off by
// up to 15 %). The same spectrum gives the dominant frequency, so an axis
// costs one FFT.
func (a *Analyzer) velocityAndDominant(samples []float64, mean, sampleRateHz float64) (velocityMMPerS, dominantHz float64) {
	p := a.plan(len(samples))
	defer a.release(p)
	coef := p.transform(samples, mean)

	// With zero padding, Parseval holds over the m-point transform.
	binHz := sampleRateHz / float64(p.m)
	toPower := 1 / (float64(p.m) * p.sumW2)
	var velocitySquared, strongest float64
	for k := 1; k < len(coef); k++ {
		f := float64(k) * binHz
		c := coef[k]
		power := real(c)*real(c) + imag(c)*imag(c)
		oneSided := 2.0
		if 2*k == p.m {
			oneSided = 1 // the Nyquist bin has no mirror image
		}
		// Amplitude is oneSided·|X_k|/Σw; compare its square.
		if f > dominantAboveHz && oneSided*oneSided*power > strongest {
			strongest = oneSided * oneSided * power
			dominantHz = f
		}
		if f >= velocityBandLowHz && f <= velocityBandHighHz {
			perG := standardGravity / (2 * math.Pi * f) // (m/s) per (g at f)
			velocitySquared += oneSided * power * toPower * perG * perG
		}
	}
	return math.Sqrt(velocitySquared) * 1000, dominantHz
}

func validRate(hz float64) bool { return hz > 0 && !math.IsInf(hz, 1) }

// finite turns NaN and ±Inf into 0, so that JSON can carry the summary.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
