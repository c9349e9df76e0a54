package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// percentile of sorted durations (p in 0..100), nearest rank: the value
// at rank ceil(n·p/100), so that at least p % of the values are at or
// below it. Rounding n·p/100 to the nearest rank instead would return
// one rank lower whenever its fraction is below one half — a p99 that
// leaves out a sample it should cover.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadResult is what one throughput phase measured.
type loadResult struct {
	latencies []time.Duration // sorted
	errors    int64
	elapsed   time.Duration
	peakRSS   int // KiB, sampled
}

func (l loadResult) rate() float64 { return float64(len(l.latencies)) / l.elapsed.Seconds() }

// err says why the phase's figures measure nothing worth printing: some
// request failed, or not one succeeded (its rate 0 and p99 0 ms would
// read as a fast service).
func (l loadResult) err() error {
	if l.errors > 0 {
		return fmt.Errorf("%d of %d requests failed", l.errors, l.errors+int64(len(l.latencies)))
	}
	if len(l.latencies) == 0 {
		return errors.New("no request succeeded")
	}
	return nil
}

// samplePeak samples rss every 100 ms until the returned stop is called,
// which returns the peak.
func samplePeak(rss func() int) (stop func() int) {
	var peak atomic.Int64
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := int64(rss()); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() int {
		close(quit)
		<-finished
		return int(peak.Load())
	}
}

// load runs op from this env's clients for d at its options' pace.
func (e *env) load(ctx context.Context, d time.Duration, op func(worker, i int) error) loadResult {
	return runLoad(ctx, e.o.concurrency, d, e.o.pace, e.rssKiB, op)
}

// runLoad calls op from workers goroutines for d, recording each call's
// latency, and samples rss every 100 ms. With pace > 0 each worker waits
// that long after each call (the latencies stay the calls' own).
func runLoad(ctx context.Context, workers int, d, pace time.Duration, rss func() int, op func(worker, i int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var errs atomic.Int64
	per := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	stopSampling := samplePeak(rss)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := op(w, i); err != nil {
					// A request that started inside the phase is
					// counted however late it fails: a 5xx or a
					// timeout that comes after the deadline is still
					// a failed request. Only a call the phase's end
					// itself cancelled is no failure of the service.
					if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
						errs.Add(1)
					}
					continue
				}
				per[w] = append(per[w], time.Since(t0))
				if pace > 0 {
					wait := time.NewTimer(pace)
					select {
					case <-ctx.Done():
						wait.Stop()
					case <-wait.C:
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	peak := stopSampling()
	var all []time.Duration
	for _, p := range per {
		all = append(all, p...)
	}
	slices.Sort(all)
	return loadResult{latencies: all, errors: errs.Load(), elapsed: elapsed, peakRSS: peak}
}

// reportLatencies prints count, p50, p99 and max of one kind of operation.
func reportLatencies(r *report, name string, lat []time.Duration) {
	slices.Sort(lat)
	r.value(name+"_count", float64(len(lat)), "count")
	if len(lat) == 0 {
		return
	}
	r.value(name+"_p50", ms(percentile(lat, 50)), "ms")
	r.value(name+"_p99", ms(percentile(lat, 99)), "ms")
	r.value(name+"_max", ms(lat[len(lat)-1]), "ms")
}

// eachConcurrently calls f(i) for every i in [0, n) on workers goroutines
// and returns how many calls failed and the first error, kept whole.
func eachConcurrently(n, workers int, f func(i int) error) (failed int, first error) {
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					mu.Lock()
					if failed++; first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return failed, first
}
