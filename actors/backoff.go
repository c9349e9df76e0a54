package actors

import (
	"math"
	"time"
)

// backoff returns the delay before retry number attempt (1 for the first
// retry): initial × multiplier^(attempt-1), capped at max, plus up to 50%
// jitter (still capped), so gateways that failed together do not retry
// together. jitter is a number in [0, 1).
func backoff(attempt int, initial, max time.Duration, multiplier, jitter float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(initial) * math.Pow(multiplier, float64(attempt-1))
	if d > float64(max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(max)
	}
	d += d * 0.5 * jitter
	if d > float64(max) {
		d = float64(max)
	}
	if d < float64(initial) {
		d = float64(initial)
	}
	return time.Duration(d)
}
