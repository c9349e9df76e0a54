package actors

import (
	"math/rand/v2"
	"testing"
	"time"
)

func BenchmarkBackoff(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		_ = backoff(i%12+1, time.Second, 30*time.Second, 2, rand.Float64())
	}
}
