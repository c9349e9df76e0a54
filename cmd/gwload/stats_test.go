package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// percentile is nearest rank: the p-th percentile of n sorted values is
// the value at rank ceil(p/100 × n). For p99 of 60 values that is rank 60
// (the maximum), of 160 values rank 159, of 1,075 values rank 1,065.
// Rounding p/100 × n to the nearest integer instead returned the value
// one rank lower whenever n mod 100 was above 50: a p99 taken from fewer
// samples than the nearest-rank p99.
// (Found by an audit, helper 6.)
func TestPercentileIsNearestRank(t *testing.T) {
	for _, n := range []int{60, 160, 1075} {
		sorted := make([]time.Duration, n)
		for i := range sorted {
			sorted[i] = time.Duration(i+1) * time.Millisecond // value = rank
		}
		rank := (99*n + 99) / 100 // ceil(0.99 n)
		assert.Equal(t, time.Duration(rank)*time.Millisecond, percentile(sorted, 99),
			"p99 of %d values is the value at rank %d", n, rank)
	}
	// Ranks that n·p/100 hits exactly, one value and none.
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	assert.Equal(t, 50*time.Millisecond, percentile(hundred, 50))
	assert.Equal(t, 99*time.Millisecond, percentile(hundred, 99))
	assert.Equal(t, time.Millisecond, percentile(hundred[:1], 99))
	assert.Zero(t, percentile(nil, 99))
}

// runLoad counts every failed request, however late it fails: a request
// that started inside the phase and failed after its deadline (a 5xx or
// a timeout that arrives late) used to be neither a latency nor an
// error, and a phase in which every request failed that way came back
// with no error, no latency, rate 0 and p99 0. Only a call that the
// phase's end itself cancelled is not a failure — and then a phase with
// no request that succeeded is still one.
// (Found by an audit, helper 6.)
func TestRunLoadCountsRequestsThatFailAfterTheDeadline(t *testing.T) {
	ctx := context.Background()
	res := runLoad(ctx, 2, 50*time.Millisecond, 0, func() int { return 0 }, func(w, i int) error {
		time.Sleep(120 * time.Millisecond)           // answered after the phase's end…
		return errors.New("503 Service Unavailable") // …and failed
	})
	assert.Empty(t, res.latencies, "no request succeeded")
	assert.Equal(t, int64(2), res.errors, "each worker's one request failed")
	require.Error(t, res.err())

	res = runLoad(ctx, 2, 50*time.Millisecond, 0, func() int { return 0 }, func(w, i int) error {
		time.Sleep(120 * time.Millisecond)
		return fmt.Errorf("cut short: %w", context.Canceled)
	})
	assert.Zero(t, res.errors, "a call the phase's end cancelled is no failure")
	require.ErrorContains(t, res.err(), "no request succeeded")

	res = runLoad(ctx, 2, 50*time.Millisecond, 5*time.Millisecond, func() int { return 0 }, func(w, i int) error { return nil })
	assert.NotEmpty(t, res.latencies)
	require.NoError(t, res.err())
}
