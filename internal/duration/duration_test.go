package duration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"15m": 15 * time.Minute, "1h30m": 90 * time.Minute, "90d": 90 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, " 2d ": 48 * time.Hour, "0": 0, "0d": 0,
	} {
		got, err := Parse(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "10", "d", "1.5d", "-1d", "1d-2h", "1dd", "abc", "1e3d", "99999999d"} {
		_, err := Parse(in)
		assert.Error(t, err, in)
	}
}
