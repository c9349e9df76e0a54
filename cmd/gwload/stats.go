package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// percentile of sorted durations (p in 0..100), nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
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

// runLoad calls op from workers goroutines for d, recording each call's
// latency, and samples rss every 100 ms.
func runLoad(ctx context.Context, workers int, d time.Duration, rss func() int, op func(worker, i int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var errs atomic.Int64
	per := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	var peak atomic.Int64
	sampler := make(chan struct{})
	go func() {
		defer close(sampler)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := int64(rss()); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := op(w, i); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				per[w] = append(per[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	<-sampler
	var all []time.Duration
	for _, p := range per {
		all = append(all, p...)
	}
	slices.Sort(all)
	return loadResult{latencies: all, errors: errs.Load(), elapsed: elapsed, peakRSS: int(peak.Load())}
}
