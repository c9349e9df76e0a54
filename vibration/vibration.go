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

// minSpectrumSamples is the shortest signal that has a spectrum, a
// velocity and a dominant frequency. A Hann-windowed tone on bin k reads
// right only if its three bins k-1, k, k+1 touch neither DC nor Nyquist,
// where its mirror image lands: 2 ≤ k ≤ N/2-2, so N ≥ 8. Shorter signals
// give nonsense (the periodic Hann window of 2 samples is [0, 1]).
const minSpectrumSamples = 8

// How velocityAndDominant groups the spectrum into lobes; see there.
const (
	// mainLobeBins is the half width of the Hann window's main lobe, in
	// bins of the window's length: a tone's power is all within ±2 bins of
	// it but for side lobes of at most -31.5 dB.
	mainLobeBins = 2
	// leakageMargin is the headroom, in power, over the Hann window's
	// side-lobe envelope that a bin beyond the main lobe may have and still
	// count as leakage of its peak: 4× in amplitude, for the mirror image
	// and neighbouring content adding in phase.
	leakageMargin = 16
	// bandEdgeToleranceBins is how far, in bins, a lobe's centre may lie
	// outside the band and still be in it: the centre of a lone tone is
	// estimated to within 0.006 bin from bin 3 up (0.05 at bin 2, where
	// its mirror image interferes). So a tone at exactly 10 or 1000 Hz
	// counts in full, not by the luck of rounding.
	bandEdgeToleranceBins = 0.01
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
//   - one sample, or a constant signal (every sample the same float64):
//     Min, Max and Mean are the value, exactly, everything else 0 (a
//     crest factor of 0/0 is reported as 0);
//   - fewer than 8 samples: the statistics are computed, VelocityRMS and
//     DominantFrequency are 0 (too short for a spectrum; see
//     Analyzer.Spectrum);
//   - sampleRateHz not a positive finite number: the statistics are
//     computed, VelocityRMS and DominantFrequency are 0;
//   - no bin above 2 Hz: DominantFrequency is 0;
//   - a figure that would overflow (only possible for NaN or Inf samples,
//     which ctc.DecodeAxis never returns, or magnitudes near 1e154 g and
//     beyond): that figure is 0.
//
// The velocity needs a record of a few periods of the band's low edge to
// be resolved from drift: content within about two bins of DC (below
// 2·sampleRateHz/N Hz) cannot be told from drift or an offset by any
// window, so for records shorter than about 0.3 s (N/sampleRateHz) the
// velocity of content in the band's bottom is uncertain (up to tens of
// percent for a tone of one or two periods per record).
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
	lo, hi, mean := stats(samples)
	s.Min, s.Max, s.Mean = finite(lo), finite(hi), finite(mean)
	if lo == hi {
		// Constant: nothing varies. Subtracting the mean would leave 0
		// exactly here, but say so rather than rely on it.
		return s
	}
	var squares, peak float64
	for _, v := range samples {
		d := v - mean
		squares += d * d
		peak = max(peak, math.Abs(d))
	}
	rms := math.Sqrt(squares / float64(n))

	s.PeakToPeak = finite(hi - lo)
	s.RMS, s.Peak = finite(rms), finite(peak)
	if s.RMS > 0 && s.Peak > 0 {
		s.CrestFactor = finite(peak / rms)
	}
	if n >= minSpectrumSamples && s.RMS > 0 && validRate(sampleRateHz) {
		v, f := a.velocityAndDominant(samples, mean, sampleRateHz)
		s.VelocityRMS, s.DominantFrequency = finite(v), finite(f)
	}
	return s
}

// stats returns the extremes and the mean of samples (not empty). A
// constant signal's mean is its value, exactly; otherwise the mean is a
// compensated (Neumaier) sum divided by N, within an ulp or two of the
// true mean, and never outside [lo, hi]. A plain sum of 1000 × 0.1 is
// 99.9999999999986: the mean would be 14 ulp off, and the "mean-removed"
// constant would have an RMS, a crest factor and a spectrum of rounding
// residue.
func stats(samples []float64) (lo, hi, mean float64) {
	lo, hi = samples[0], samples[0]
	var sum, c float64 // as compensatedSum, in the same pass
	for _, v := range samples {
		lo = min(lo, v)
		hi = max(hi, v)
		sum, c = neumaier(sum, c, v)
	}
	if lo == hi {
		return lo, hi, lo
	}
	n := float64(len(samples))
	mean = (sum + c) / n
	if math.IsInf(mean, 0) && !math.IsInf(lo, 0) && !math.IsInf(hi, 0) {
		mean = compensatedSum(samples, 1/n) // the sum overflowed; its terms do not
	}
	if mean < lo {
		mean = lo
	}
	if mean > hi {
		mean = hi
	}
	return lo, hi, mean
}

// compensatedSum is Σ scale·v by Neumaier's improvement of Kahan summation.
func compensatedSum(samples []float64, scale float64) float64 {
	var sum, c float64
	for _, v := range samples {
		sum, c = neumaier(sum, c, v*scale)
	}
	return sum + c
}

// neumaier adds v to the running sum, keeping in c what rounding lost.
func neumaier(sum, c, v float64) (float64, float64) {
	t := sum + v
	if math.Abs(sum) >= math.Abs(v) {
		c += (sum - t) + v
	} else {
		c += (v - t) + sum
	}
	return t, c
}

// velocityAndDominant computes the velocity RMS in mm/s and the dominant
// frequency from one Hann-windowed FFT of the mean-removed signal.
//
// Each bin's one-sided power P_k = c_k·|X_k|² / (M·Σw²) (M the FFT length,
// c_k = 2, or 1 at DC and Nyquist) is its share of the acceleration's mean
// square in g²: dividing by Σw² rather than N corrects for the energy the
// window takes, so a tone's power sums to A²/2 wherever it falls between
// bins. A sine of A g at f has a velocity amplitude of A·g0/(2πf), so the
// velocity's mean square is the power of the content from 10 to 1000 Hz
// weighed by (g0/(2πf))². The question is which f weighs a bin's power.
//
// Not the bin's own, as this did before: Hann spreads a tone on bin k over
// bins k-1, k, k+1 as 1/6, 2/3, 1/6 of its power (an off-bin tone over
// four bins), 1/f² differs across them (by 2.8× at k = 3), and a side bin
// beyond 10 or 1000 Hz was dropped. At 25.6 kHz × 8192 a 10 Hz tone read
// up to 58 % low, 11.7 Hz 24 %, 12.5 Hz 12 %, 1000 Hz 9 %; 8 Hz counted
// 11 %. Not a rectangular window either, though it puts an on-bin tone in
// one bin: it leaks off-bin tones and everything below the band (drift,
// sway, an offset not a whole number of periods) over the spectrum as
// 1/Δk², which 1/f² amplifies in the band's first bins: a 0.5 Hz sway 10×
// a 50 Hz tone's size read +330 %, +66 % with a least-squares line
// removed first, and removing the line takes each tone's projection on it
// too (+18 % for 500 Hz in 1024 samples at 25.6 kHz); 11.7 Hz read 18 %
// low.
//
// So the window stays Hann, whose leakage falls as 1/Δk³, and the spectrum
// is read as lobes, one per peak: a tone as the window smeared it. A bin
// is in the lobe of the peak that climbing the spectrum from it reaches,
// if within 2 bins of it (the main lobe), or further if every bin on the
// way stays under the most Hann's side lobes could leak there from that
// peak (sideLobeEnvelope): beyond, it is content of its own. A peak's
// neighbours are its own whatever they climb to. A lobe's power goes, all
// of it, to its centre (the power-weighted mean frequency of its main
// lobe, within 0.01 bin of a lone tone's from bin 3 up), weighed by 1/f²
// there, and counts if that centre is in the band. Bins in no lobe count
// at their own frequency. Main lobes alone fix the tones but leave drift's
// leakage weighed bin by bin: a 0.1 g tone at 50 Hz beside a 10 g sway at
// 0.5 Hz read +106 % at 25.6 kHz × 8192, +200 % at 2.56 kHz × 1024; the
// leakage tails make that 0.03 %.
//
// Over a battery of on- and off-bin tones from 10 to 1000 Hz, pairs of
// tones, and tones beside a 10 g offset, a ramp or a sway of 10× their
// size, at 25.6 kHz × 8192, 1 kHz × 1000 and 2.56 kHz × 1024, the worst
// error is 1.5 % (a 15.6 Hz tone beside the sway; tones alone 0.04 %;
// the bin-by-bin method: 58 %), and tones at 5, 8 or 1100 Hz count for
// nothing (bin by bin: up to 43 %); see TestVelocityBattery. Random
// vibration inside the band reads within 2 %. What no method resolves:
// content within two bins of DC (see Summarize), and broad content
// straddling an edge within a bin or two (a resonance at 8 Hz, its skirt
// in the band, reads up to 37 % low: its peak's lobe is out), and two
// tones closer than the window resolves (about two bins) on either side
// of an edge: their joint lobe counts whole or not at all by where its
// centre falls (1 g at 7 Hz beside 1 g at 12.5 Hz, 25.6 kHz × 8192: 0 to
// 1.9 times the 12.5 Hz tone's worth, by their phases; bin by bin they
// read 12 % low on average). Weighing such lobes bin by bin when they are
// wider than one tone was tried: it depends on the phases as much, and
// white noise then read 4.4 % low.
//
// The same spectrum gives the dominant frequency, so an axis costs one FFT.
func (a *Analyzer) velocityAndDominant(samples []float64, mean, sampleRateHz float64) (velocityMMPerS, dominantHz float64) {
	p := a.plan(len(samples))
	defer a.release(p)
	coef := p.transform(samples, mean)

	// With zero padding, Parseval holds over the m-point transform.
	binHz := sampleRateHz / float64(p.m)
	toPower := 1 / (float64(p.m) * p.sumW2)
	var strongest float64
	for k, c := range coef {
		sq := real(c)*real(c) + imag(c)*imag(c)
		oneSided := 2.0
		if k == 0 || 2*k == p.m {
			oneSided = 1 // DC and Nyquist have no mirror image
		}
		p.power[k] = oneSided * sq * toPower
		// Amplitude is oneSided·|X_k|/Σw; compare its square.
		if float64(k)*binHz > dominantAboveHz && oneSided*oneSided*sq > strongest {
			strongest = oneSided * oneSided * sq
			dominantHz = float64(k) * binHz
		}
	}
	return math.Sqrt(p.velocitySquared(binHz)) * 1000, dominantHz
}

// velocitySquared is the velocity's mean square in (m/s)² over the band,
// from the one-sided powers in p.power (in g², bins binHz apart), read as
// lobes (see velocityAndDominant).
func (p *plan) velocitySquared(binHz float64) float64 {
	power, lobe := p.power, p.lobe
	// Zero padding makes the FFT's bins finer than the window's.
	windowBins := float64(p.n) / float64(p.m)
	// join returns the lobe of peak r that bin k joins, or -1.
	join := func(k int, r int32) int32 {
		if r < 0 {
			return -1
		}
		d := math.Abs(float64(k-int(r))) * windowBins
		if d <= mainLobeBins || power[k] <= power[r]*sideLobeEnvelope(d) {
			return r
		}
		return -1
	}
	// Climbing is monotone, so the bins climbing left are settled left to
	// right, each by the one it climbs to, and those climbing right right
	// to left; a bin joins only if the one it climbs to did.
	for k := range power {
		switch uphill(power, k) {
		case k:
			lobe[k] = int32(k)
		case k - 1:
			lobe[k] = join(k, lobe[k-1])
		}
	}
	for k := len(power) - 1; k >= 0; k-- {
		if uphill(power, k) == k+1 {
			lobe[k] = join(k, lobe[k+1])
		}
	}
	// A bin beside a peak is in that peak's main lobe even where it
	// climbs the other way, to a stronger peak's leakage (a weak tone a few
	// bins above strong drift): a tone's neighbours hold a third of it.
	// Beside two peaks, it goes to the stronger. Peaks alone are their own
	// lobe, so this reads lobe[] as it goes without confusion.
	for k := range lobe {
		if lobe[k] == int32(k) {
			continue
		}
		beside := int32(-1)
		if k > 0 && lobe[k-1] == int32(k-1) {
			beside = int32(k - 1)
		}
		if k+1 < len(lobe) && lobe[k+1] == int32(k+1) && (beside < 0 || power[k+1] > power[k-1]) {
			beside = int32(k + 1)
		}
		if beside >= 0 {
			lobe[k] = beside
		}
	}

	tolerance := bandEdgeToleranceBins * binHz
	var squares float64
	addAt := func(pw, f, lowHz, highHz float64) {
		if f > 0 && f >= lowHz && f <= highHz {
			perG := standardGravity / (2 * math.Pi * f) // (m/s) per (g at f)
			squares += pw * perG * perG
		}
	}
	// A lobe's bins are contiguous: sum each, then place it at its centre.
	var lobePower, mainPower, mainMoment float64
	current := int32(-1)
	flush := func() {
		if current >= 0 && mainPower > 0 {
			centre := mainMoment / mainPower * binHz
			addAt(lobePower, centre, velocityBandLowHz-tolerance, velocityBandHighHz+tolerance)
		}
		lobePower, mainPower, mainMoment = 0, 0, 0
	}
	for k, pw := range power {
		r := lobe[k]
		if r < 0 {
			addAt(pw, float64(k)*binHz, velocityBandLowHz, velocityBandHighHz)
			continue
		}
		if r != current {
			flush()
			current = r
		}
		lobePower += pw
		if math.Abs(float64(k-int(r)))*windowBins <= mainLobeBins {
			mainPower += pw
			mainMoment += float64(k) * pw
		}
	}
	flush()
	return squares
}

// uphill is the neighbour of bin k with more power, the larger if both
// have, or k itself at a peak.
func uphill(power []float64, k int) int {
	left, right := -1.0, -1.0
	if k > 0 {
		left = power[k-1]
	}
	if k+1 < len(power) {
		right = power[k+1]
	}
	switch {
	case left > power[k] && left >= right:
		return k - 1
	case right > power[k]:
		return k + 1
	}
	return k
}

// sideLobeEnvelope is the most power, relative to its peak bin, that one
// tone leaks into a bin d window bins from that peak (d > 2), with
// leakageMargin. The periodic Hann window's energy-normalised kernel is
// H(ν) = (2/3)·(sin πν / (πν(1-ν²)))²; the tone is at most half a bin from
// its peak bin, where H ≥ H(1/2) = (2/3)·(8/3π)², and at least ν = d - 1/2
// from the bin, where H ≤ (2/3)/(πν(ν²-1))². Their ratio is
// (3 / (8ν(ν²-1)))²: 8e-4 at 3 bins, 9e-5 at 4, 5e-6 at 6.
func sideLobeEnvelope(d float64) float64 {
	nu := d - 0.5
	r := 3 / (8 * nu * (nu*nu - 1))
	return leakageMargin * r * r
}

func validRate(hz float64) bool { return hz > 0 && !math.IsInf(hz, 1) }

// finite turns NaN and ±Inf into 0, so that JSON can carry the summary.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
