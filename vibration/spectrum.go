package vibration

import (
	"math"
	"math/cmplx"
	"sync"

	"gonum.org/v1/gonum/dsp/fourier"
)

// The plan cache's bounds. Sensors are configured with a few sample
// counts, so a handful of lengths cover every reading; the least recently
// used length makes room for a new one. A plan costs ~54 bytes a sample
// (planBytes), and the count is whatever a gateway sends: a few pushed
// readings of ~500,000 samples each (legal frames) kept ~27 MiB of plans
// each for the life of the process, 16 lengths of them ~430 MiB, and
// pushed the fleet's own lengths out of the cache (found by an audit,
// helper 2). So a length whose plan is over maxCachedPlanBytes (~77,000
// samples) is not cached, and the kept plans together stay under
// maxKeptPlanBytes. A length not cached is still analysed, with a plan
// built for the call.
const (
	maxPlanLengths     = 16
	maxCachedPlanBytes = 4 << 20
	maxKeptPlanBytes   = 16 << 20
)

// maxPrimeFactor is the largest prime factor of a length that is
// transformed as it is. The FFT does radices 2, 3, 4 and 5 quickly and any
// other factor p in O(N·p): a prime N costs O(N²), 10 s for 65,521
// samples. A gateway may send any count, so a length with a larger prime
// factor is zero-padded to the next length whose factors are all 2, 3 or 5.
const maxPrimeFactor = 64

// Analyzer computes summaries and spectra. Building an FFT plan and a
// window for a length costs about as much as the FFT itself, and many
// goroutines analyse readings of the same few lengths, so an Analyzer keeps
// them, one kept and a pool per length. Its zero value is ready to use and it is safe
// for concurrent use: share one (per process) rather than making one per
// reading. It must not be copied after first use.
type Analyzer struct {
	mu    sync.Mutex
	plans map[int]*plans // by signal length
	kept  int            // bytes of the kept plans
	clock uint64         // counts plan calls, for least recently used
}

// plans are a length's plans: one kept, which the collector never takes
// (a plan of 8,192 samples is ~450 KB to make; the pool alone lost its
// plans at every other collection, and a busy processing worker made one
// per reading), and a pool for more users at once.
type plans struct {
	kept *plan
	pool sync.Pool
	used uint64 // the Analyzer's clock when last handed out
}

// Spectrum returns the single-sided amplitude spectrum of samples (in g)
// sampled at sampleRateHz, as the API serves it: the mean is removed, a
// Hann window applied, and the result divided by the window's coherent
// gain, so a sine of amplitude A whose frequency falls on a bin peaks at
// A (between bins the peak reads up to 15 % low: Hann's scalloping loss).
// There are N/2+1 bins, bin k at k·sampleRateHz/N Hz; bin 0 is DC, which
// is about 0 because the mean was removed. N is the number of samples,
// except for a count with a prime factor above 64 (no sensor is configured
// so, but a gateway may send it): that is zero-padded to the next length
// with no prime factor above 5, giving finer bins, rather than costing
// O(N²).
//
// The slices are new and the caller's. With fewer than 8 samples (too few
// for a windowed spectrum to mean anything: the periodic Hann window of 2
// samples is [0, 1]), or a sample rate that is not a positive finite
// number, both are nil, as with no samples. A constant signal's amplitudes
// are all 0, exactly. Amplitudes that would not be finite (only for NaN or
// Inf samples, or magnitudes near 1e300 g) are 0.
func (a *Analyzer) Spectrum(samples []float64, sampleRateHz float64) (freqHz, amplitude []float64) {
	n := len(samples)
	if n < minSpectrumSamples || !validRate(sampleRateHz) {
		return nil, nil
	}
	_, _, mean := stats(samples)
	p := a.plan(n)
	defer a.release(p)
	coef := p.transform(samples, mean)

	freqHz = make([]float64, len(coef))
	amplitude = make([]float64, len(coef))
	binHz := sampleRateHz / float64(p.m)
	for k, c := range coef {
		freqHz[k] = float64(k) * binHz
		amp := cmplx.Abs(c) / p.sumW
		if k > 0 && 2*k != p.m {
			amp *= 2 // one-sided: add the mirror image, except DC and Nyquist
		}
		amplitude[k] = finite(amp)
	}
	return freqHz, amplitude
}

// fftLength is the length to transform n samples at: n itself, or for n
// with a prime factor above maxPrimeFactor the next length ≥ n whose
// prime factors are 2, 3 and 5 only.
func fftLength(n int) int {
	if largestPrimeFactor(n) <= maxPrimeFactor {
		return n
	}
	for m := n + 1; ; m++ {
		if largestPrimeFactor(m) <= 5 {
			return m
		}
	}
}

func largestPrimeFactor(n int) int {
	largest := 1
	for p := 2; p*p <= n; p++ {
		for n%p == 0 {
			largest, n = p, n/p
		}
	}
	return max(largest, n)
}

// plan is everything the FFT of n samples needs. It is not safe for
// concurrent use; the pools hand each one to one goroutine at a time.
type plan struct {
	n      int // samples
	m      int // FFT length: n, or more when zero-padded (see fftLength)
	fft    *fourier.FFT
	window []float64 // periodic Hann over the n samples
	sumW   float64   // Σw: n times the coherent gain, for amplitudes
	sumW2  float64   // Σw²: n times the energy gain, for powers
	buf    []float64 // m long; past n it stays 0, the padding
	coef   []complex128
	power  []float64 // m/2+1 one-sided bin powers, for the velocity
	lobe   []int32   // m/2+1: the peak whose lobe each bin is in, or -1
	bytes  int       // planBytes(n)
}

// planBytes is about what a plan of n samples holds: the window and
// buffer, gonum's copy and work arrays (3m floats), and the m/2+1 bins'
// coefficients, powers and lobes.
func planBytes(n int) int { return planSize(n, fftLength(n)) }

// planSize is planBytes for n samples transformed at length m.
func planSize(n, m int) int {
	return 8*n + 8*m + 24*m + (m/2+1)*(16+8+4)
}

func newPlan(n int) *plan {
	m := fftLength(n)
	p := &plan{
		n:      n,
		m:      m,
		fft:    fourier.NewFFT(m),
		window: make([]float64, n),
		buf:    make([]float64, m),
		coef:   make([]complex128, m/2+1),
		power:  make([]float64, m/2+1),
		lobe:   make([]int32, m/2+1),
		bytes:  planSize(n, m),
	}
	// The periodic (DFT-even) Hann window: its coherent gain is exactly
	// 1/2 and a bin-centred tone falls into exactly three bins.
	for i := range p.window {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
		p.window[i] = w
		p.sumW += w
		p.sumW2 += w * w
	}
	return p
}

// transform returns the FFT of the windowed, mean-removed samples
// (zero-padded to p.m). The result is the plan's and valid until its next
// use.
func (p *plan) transform(samples []float64, mean float64) []complex128 {
	for i, v := range samples {
		p.buf[i] = (v - mean) * p.window[i]
	}
	return p.fft.Coefficients(p.coef, p.buf)
}

// plan hands out a plan for length n, cached or new.
func (a *Analyzer) plan(n int) *plan {
	a.mu.Lock()
	a.clock++
	ps, ok := a.plans[n]
	if !ok && planBytes(n) <= maxCachedPlanBytes {
		if a.plans == nil {
			a.plans = make(map[int]*plans)
		}
		for len(a.plans) >= maxPlanLengths && a.evictLocked(n) {
		}
		ps = &plans{pool: sync.Pool{New: func() any { return newPlan(n) }}}
		a.plans[n] = ps
	}
	var p *plan
	if ps != nil {
		ps.used = a.clock
		p, ps.kept = ps.kept, nil
		if p != nil {
			a.kept -= p.bytes
		}
	}
	a.mu.Unlock()
	switch {
	case p != nil:
		return p
	case ps == nil:
		return newPlan(n)
	}
	return ps.pool.Get().(*plan)
}

// release gives a plan back for the next reading of its length.
func (a *Analyzer) release(p *plan) {
	a.mu.Lock()
	ps := a.plans[p.n]
	keep := ps != nil && ps.kept == nil
	for keep && a.kept+p.bytes > maxKeptPlanBytes && a.evictLocked(p.n) {
	}
	if keep = keep && a.kept+p.bytes <= maxKeptPlanBytes; keep {
		ps.kept = p
		a.kept += p.bytes
	}
	a.mu.Unlock()
	if ps != nil && !keep {
		ps.pool.Put(p)
	}
}

// evictLocked forgets the least recently used length other than n (its
// pooled plans go to the collector), and says whether there was one.
func (a *Analyzer) evictLocked(n int) bool {
	victim, found := 0, false
	for k, ps := range a.plans {
		if k != n && (!found || ps.used < a.plans[victim].used) {
			victim, found = k, true
		}
	}
	if !found {
		return false
	}
	if p := a.plans[victim].kept; p != nil {
		a.kept -= p.bytes
	}
	delete(a.plans, victim)
	return true
}
