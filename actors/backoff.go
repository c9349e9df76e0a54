package actors

import (
	"math"
	"time"
)

// backoff returns the delay before retry number attempt (1 for the first
// retry): initial × multiplier^(attempt-1), capped at max, plus up to 50%
// jitter, so gateways that failed together do not retry together. Where
// that would pass max, the jitter goes below it instead (up to 25 %): a
// plain cap retried every gateway on the cap at exactly max, together
// (found by an audit, helper 6). jitter is a number in [0, 1).
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
		d = float64(max) * (1 - 0.25*jitter)
	}
	if d < float64(initial) {
		d = float64(initial)
	}
	return time.Duration(d)
}
