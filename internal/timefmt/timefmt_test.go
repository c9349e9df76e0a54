package timefmt

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Append writes what time.Format gives with Layout, for times
// across the years, the fractions that round (they must truncate) and the
// years outside four digits.
func TestAppendMatchesFormat(t *testing.T) {
	t.Parallel()
	zones := []*time.Location{time.UTC, time.FixedZone("plant", 5*3600+30*60), time.FixedZone("west", -8*3600)}
	times := []time.Time{
		time.Date(2026, 12, 6, 4, 5, 6, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 1_000_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
		time.Now(),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		times = append(times, time.Unix(rng.Int64N(1<<36)-(1<<35), rng.Int64N(1e9)))
	}
	for _, tm := range times {
		for _, z := range zones {
			in := tm.In(z)
			assert.Equal(t, in.UTC().Format(Layout), string(Append(nil, in)), "%v", in)
		}
	}
	assert.Equal(t, "x2026-12-06T04:05:06.999Z", string(Append([]byte("x"), times[0])), "appends")
}

func BenchmarkAppend(b *testing.B) {
	now := time.Now()
	b.Run("format", func(b *testing.B) {
		for b.Loop() {
			_ = now.UTC().Format(Layout)
		}
	})
	b.Run("append", func(b *testing.B) {
		var buf [32]byte
		for b.Loop() {
			_ = Append(buf[:0], now)
		}
	})
}
