package actors

import (
	"encoding/json"
	"math"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/vibration"
)

// job is a reading whose samples arrived, still as the gateway's text.
type job struct {
	r      gatewayd.Reading
	serial int64
	rateHz float64
	x, y   string
	z      string
}

// processor decodes and analyses readings off the actors, on a few
// workers, and hands the results to the writer. Its queue is bounded: a
// reading that finds it full fails ("processing overloaded") rather than
// letting a burst of readings grow the heap without limit.
type processor struct {
	jobs     chan job
	writer   *writer
	analyzer vibration.Analyzer
	log      zerolog.Logger
	wg       sync.WaitGroup

	mu     sync.Mutex // guards closed against submit
	closed bool
}

func newProcessor(w *writer, workers, queue int, log zerolog.Logger) *processor {
	p := &processor{jobs: make(chan job, queue), writer: w, log: log}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				p.writer.reading(p.process(j))
			}
		}()
	}
	return p
}

// submit queues a job without blocking the caller (an actor).
func (p *processor) submit(j job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		select {
		case p.jobs <- j:
			return
		default:
		}
	}
	p.writer.reading(failed(&acquisition{r: j.r, serial: j.serial}, "processing overloaded", time.Now()))
}

// process turns the gateway's text into a stored reading: decoded
// strictly, analysed once, samples kept as float32.
func (p *processor) process(j job) (u gatewayd.ReadingUpdate) {
	defer func() {
		// A bug in decoding or analysis fails this reading, not the process.
		if r := recover(); r != nil {
			p.log.Error().Interface("panic", r).Str("reading_id", j.r.ID.String()).Msg("reading processing panicked")
			u = failed(&acquisition{r: j.r, serial: j.serial}, "processing failed", time.Now())
		}
	}()
	w, err := ctc.DecodeWaveform(j.x, j.y, j.z)
	if err == nil && !fitsFloat32(w.X, w.Y, w.Z) {
		err = ctc.ErrMalformedWaveform // samples are stored as float32
	}
	if err != nil {
		return failed(&acquisition{r: j.r, serial: j.serial}, gatewayd.ReadingErrMalformed, time.Now())
	}
	summary, err := json.Marshal(p.analyzer.Summarize(w.X, w.Y, w.Z, j.rateHz))
	if err != nil {
		return failed(&acquisition{r: j.r, serial: j.serial}, "analysis failed", time.Now())
	}
	now := time.Now()
	r := j.r
	n := len(w.X)
	r.Status, r.CompletedAt, r.Samples, r.Summary = gatewayd.ReadingComplete, &now, &n, summary
	if j.rateHz > 0 {
		rate := j.rateHz
		r.SampleRateHz = &rate
	}
	return gatewayd.ReadingUpdate{Reading: r, Serial: j.serial,
		Waveform: &gatewayd.Waveform{SampleRateHz: j.rateHz, X: float32s(w.X), Y: float32s(w.Y), Z: float32s(w.Z)}}
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

func float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, f := range v {
		out[i] = float32(f)
	}
	return out
}

// close finishes the queued jobs and ends the workers.
func (p *processor) close() {
	p.mu.Lock()
	p.closed = true
	close(p.jobs)
	p.mu.Unlock()
	p.wg.Wait()
}
