package actors

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
)

func TestCapErrorBoundsLastError(t *testing.T) {
	assert.Equal(t, "short", *capError("short"))
	exact := strings.Repeat("x", maxErrorBytes)
	assert.Equal(t, exact, *capError(exact), "exactly the limit is kept whole")
	for _, s := range []string{strings.Repeat("e", 3_500_000), strings.Repeat("é", 2000), strings.Repeat("a", 1021) + "€€€"} {
		got := *capError(s)
		assert.LessOrEqual(t, len(got), maxErrorBytes)
		assert.True(t, strings.HasSuffix(got, "…"))
		assert.True(t, utf8.ValidString(got), "cut on a character boundary")
	}
}

// Gateway text reaches the database with U+FFFD for what a text column
// cannot hold, and sensor names are bounded as the API bounds them.
func TestGatewayTextIsStorable(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "a\x00b": "a\uFFFDb", "bad \xff\xfe utf-8": "bad \uFFFD utf-8", "é\x00": "é\uFFFD", "": "",
	} {
		assert.Equal(t, want, storable(in), "%q", in)
		assert.Equal(t, want, *capError(in), "%q", in)
	}
	assert.Equal(t, strings.Repeat("é", maxSensorName), sensorText(strings.Repeat("é", 300), maxSensorName))
	assert.Equal(t, "ok\uFFFD", sensorText("ok\x00", maxSensorName))
}

func TestTokenBucket(t *testing.T) {
	now := time.Now()
	b := newBucket(10, 20, now)
	for range 20 {
		assert.True(t, b.take(1, now), "the burst")
	}
	assert.False(t, b.take(1, now), "empty")
	assert.True(t, b.take(5, now.Add(500*time.Millisecond)), "refilled at the rate")
	assert.False(t, b.take(1, now.Add(500*time.Millisecond)))
	assert.True(t, b.take(20, now.Add(time.Hour)), "never above the burst")
	assert.False(t, b.take(1, now.Add(time.Hour)))
}

// A gateway's temperature, bare or in a string, is read as ctc.Text reads
// numbers: decimal only, finite.
func TestTemperatureIsDecimalOnly(t *testing.T) {
	for in, want := range map[string]bool{`21.5`: true, `"21.5"`: true, `" -3 "`: true, `"0x1p3"`: false, `"1_0"`: false,
		`"NaN"`: false, `"Inf"`: false, `1e400`: false, `""`: false, `true`: false, `null`: false, `[21.5]`: false, `{}`: false} {
		var temp ctc.Scalar
		require.NoError(t, temp.UnmarshalJSON([]byte(in)))
		_, ok := temp.Text().Float()
		assert.Equal(t, want, ok, "%s", in)
	}
}
