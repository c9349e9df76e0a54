package actors

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/internal/wavepack"
	"github.com/ctcgw/gatewayd/vibration"
)

// job is a reading whose samples arrived, still as the gateway's text.
type job struct {
	r      gatewayd.Reading
	serial int64
	rateHz float64
	x, y   string
	z      string
	// text, when set, is the frame buffer x, y and z point into: the
	// worker gives it back to the pool once they are decoded, and nobody
	// may read them after that.
	text *[]byte
}

// size is what a queued job holds: its text (or the buffer it is in), and
// a little more.
func (j *job) size() int64 {
	n := len(j.x) + len(j.y) + len(j.z)
	if j.text != nil {
		n = max(n, cap(*j.text))
	}
	return int64(n) + 1024
}

// processor decodes and analyses readings off the actors, on a few
// workers, and hands the results to the writer. Its queue is bounded
// twice: by count, and by the bytes of text waiting (a CSV reading of
// 3 × 8192 samples is ~200 KB). A reading that finds it full fails
// ("processing overloaded") rather than letting a burst of readings grow
// the heap without limit. A job that finds the queue empty is always
// taken, however large.
type processor struct {
	// rateWait bounds storedRate (Config.RateLookupTimeout): a database
	// that does not answer costs a reading its rate, and the worker (one
	// of a few) a second, not five: a stalled database would otherwise
	// back the queue up into "processing overloaded" for readings that
	// needed no lookup.
	rateWait time.Duration
	jobs     chan job
	writer   *writer
	analyzer vibration.Analyzer
	log      zerolog.Logger
	wg       sync.WaitGroup
	maxBytes int64
	intake   *intake // told of the bytes queued
	crunch   crunch  // shared with the readers of large frames

	// ctx bounds the workers' database lookups (storedRate); close ends
	// it, so that none holds the shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards closed against submit, and queued
	closed  bool
	queued  int64 // bytes of the jobs in the channel
	waiting int   // jobs in the channel
	// perGateway counts each gateway's jobs and their bytes in the
	// channel; one may hold at most gatewayShare jobs and a quarter of
	// maxBytes (a job larger than that passes alone, as one larger than
	// maxBytes does in an empty queue). The channel is every gateway's,
	// and one gateway's burst of small pushed readings (within the flood
	// limits, each counting a few KiB in the intake, so no reader was
	// held back) filled it, and any other gateway's reading handed over
	// meanwhile failed "processing overloaded" (found by an audit, helper
	// 7). A count alone did not bound the bytes: a small reading decoded
	// in its reader's 256 KiB buffer counts that buffer, so a quarter of
	// the jobs could be the whole byte budget (found by an audit, helper
	// 2). Past its share, a gateway's own
	// readings fail so.
	perGateway   map[uuid.UUID]share
	gatewayShare int
}

// share is what one gateway holds of the processors' queue.
type share struct {
	jobs  int
	bytes int64
}

func newProcessor(w *writer, workers, queue int, queueBytes int64, rateWait time.Duration, log zerolog.Logger) *processor {
	p := &processor{jobs: make(chan job, queue), writer: w, log: log, maxBytes: queueBytes, rateWait: rateWait,
		perGateway: make(map[uuid.UUID]share), gatewayShare: max(1, queue/4)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var s scratch
			for j := range p.jobs {
				size := p.taken(&j) // before process gives j.text back
				if j.rateHz <= 0 {
					j.rateHz = p.storedRate(j)
				}
				var u gatewayd.ReadingUpdate
				p.crunch.do(func() { u = p.process(j, &s) })
				p.writer.reading(u) // counts its packed samples in the intake first
				p.intake.add(-size)
				s.trim()
			}
		}()
	}
	return p
}

// taken counts out a job a worker took from the channel, and returns
// its size.
func (p *processor) taken(j *job) int64 {
	size := j.size()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queued -= size
	p.waiting--
	if g := p.perGateway[j.r.GatewayID]; g.jobs <= 1 {
		delete(p.perGateway, j.r.GatewayID)
	} else {
		p.perGateway[j.r.GatewayID] = share{jobs: g.jobs - 1, bytes: g.bytes - size}
	}
	return size
}

// storedRate is the sensor's read rate as stored, for a reading whose
// actor knows none: the rates it knows come from its last discovery, and
// a reading can come before any (a gateway that pushes one right after
// login, a schedule firing first, an actor just restarted) or be of a
// sensor the last discovery did not list. Without a rate the reading was
// stored with no sample_rate_hz, a velocity and dominant frequency of 0
// and no spectrum, where a manual reading of the same sensor (whose rate
// the API reads from the database) had them.
func (p *processor) storedRate(j job) float64 {
	ctx, cancel := context.WithTimeout(p.ctx, p.rateWait)
	defer cancel()
	rate, err := p.writer.src.SensorReadRate(ctx, j.r.GatewayID, j.serial)
	if err != nil {
		p.log.Warn().Err(err).Str("reading_id", j.r.ID.String()).Int64("serial", j.serial).
			Msg("sensor read rate not found; the reading is stored without one")
		return 0
	}
	return rate
}

// submit queues a job without blocking the caller (an actor).
func (p *processor) submit(j job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	size, g := j.size(), p.perGateway[j.r.GatewayID]
	if !p.closed && (p.waiting == 0 || p.queued+size <= p.maxBytes) &&
		g.jobs < p.gatewayShare && (g.jobs == 0 || g.bytes+size <= p.maxBytes/4) {
		select {
		case p.jobs <- j:
			p.queued += size
			p.waiting++
			p.perGateway[j.r.GatewayID] = share{jobs: g.jobs + 1, bytes: g.bytes + size}
			p.intake.add(size)
			return
		default:
		}
	}
	p.writer.reading(failed(&acquisition{r: j.r, serial: j.serial}, "processing overloaded", time.Now()))
}

// scratch is one worker's buffers, reused from reading to reading: the
// samples as float64 (what the analysis reads) and as float32 (what is
// stored). Only the packed samples and the summary are new per reading.
type scratch struct {
	w    ctc.Waveform
	f32  []float32
	pack wavepack.Packer // its Huffman writer is ~600 KB to make anew
}

// keepSamples is the most samples per axis whose buffers a worker keeps
// between readings (64 K: 2.25 MiB); a larger reading's are dropped.
const keepSamples = 1 << 16

func (s *scratch) trim() {
	if cap(s.w.X) > keepSamples || cap(s.w.Y) > keepSamples || cap(s.w.Z) > keepSamples {
		*s = scratch{}
	}
}

// process turns the gateway's text into a stored reading: decoded
// strictly, analysed once, samples kept as float32, packed.
func (p *processor) process(j job, s *scratch) (u gatewayd.ReadingUpdate) {
	defer func() {
		// A bug in decoding or analysis fails this reading, not the process.
		if r := recover(); r != nil {
			p.log.Error().Interface("panic", r).Str("reading_id", j.r.ID.String()).Msg("reading processing panicked")
			u = failed(&acquisition{r: j.r, serial: j.serial}, "processing failed", time.Now())
			*s = scratch{}
		}
	}()
	// A worker with jobs queued never blocks between them, so without a
	// yield it kept its core for the scheduler's whole 10 ms slice while
	// HTTP handlers waited: it yields after each stage of a few
	// milliseconds (decoding, analysis), which halved the status p99 in
	// a burst of 2,000 readings (BENCHMARKS.md, 2026-12-04 fourth
	// session). Yielding per axis gained nothing more. Since 2026-12-05
	// only one goroutine crunches at a time (crunch.go), and the yields
	// let the rest of its core's queue run in between.
	err := ctc.DecodeWaveformInto(&s.w, j.x, j.y, j.z)
	if j.text != nil {
		// The samples are floats now; the text they were read from is
		// not touched again (a panic above leaves the buffer to the GC).
		putFrame(j.text)
	}
	runtime.Gosched()
	w := s.w
	if err == nil && !fitsFloat32(w.X, w.Y, w.Z) {
		err = ctc.ErrMalformedWaveform // samples are stored as float32
	}
	if err != nil {
		return failed(&acquisition{r: j.r, serial: j.serial}, gatewayd.ReadingErrMalformed, time.Now())
	}
	summary, err := json.Marshal(p.analyzer.Summarize(w.X, w.Y, w.Z, j.rateHz))
	runtime.Gosched()
	if err != nil {
		return failed(&acquisition{r: j.r, serial: j.serial}, "analysis failed", time.Now())
	}
	n := len(w.X)
	if cap(s.f32) < 3*n {
		s.f32 = make([]float32, 3*n)
	}
	f32 := s.f32[:3*n]
	for a, axis := range [3][]float64{w.X, w.Y, w.Z} {
		for i, v := range axis {
			f32[a*n+i] = float32(v)
		}
	}
	packed := s.pack.AppendPack(p.writer.packs.get(), f32[:n], f32[n:2*n], f32[2*n:])
	if cap(packed) > 2*len(packed) {
		// A short reading got a long one's buffer: it would hold all of
		// it until written, and the intake counts only what it uses.
		exact := bytes.Clone(packed)
		p.writer.packs.put(packed)
		packed = exact
	}
	r := j.r
	if r.CompletedAt == nil { // the actor stamps when the samples came
		now := time.Now()
		r.CompletedAt = &now
	}
	r.Status, r.Samples, r.Summary = gatewayd.ReadingComplete, &n, summary
	if j.rateHz > 0 {
		rate := j.rateHz
		r.SampleRateHz = &rate
	}
	return gatewayd.ReadingUpdate{Reading: r, Serial: j.serial,
		Packed: &gatewayd.PackedWaveform{Format: wavepack.FormatXORPlanes, Data: packed}}
}

func fitsFloat32(axes ...[]float64) bool {
	for _, axis := range axes {
		for _, v := range axis {
			if math.Abs(v) > math.MaxFloat32 {
				return false
			}
		}
	}
	return true
}

// close finishes the queued jobs and ends the workers.
func (p *processor) close() {
	p.mu.Lock()
	p.closed = true
	close(p.jobs)
	p.mu.Unlock()
	p.cancel() // the last jobs are stored without a rate rather than wait
	p.wg.Wait()
}
