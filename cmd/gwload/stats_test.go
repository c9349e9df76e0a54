package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
