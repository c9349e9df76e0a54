package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// (Found by an audit, helper 7, whose test this is.) API.md §10:
// "failed attempts are logged at warn, rate-limited". A
// request with a made-up token refused 429 (its address spent its budget
// of lookups) is a failed attempt like one refused 401, but it is logged
// only at info, in the access log, and is left out of the rate-limited
// warn line's count: during a guessing flood the warn lines report about
// 10 failed attempts a second however many arrive, so an operator
// watching warnings never sees the size of the attack.
func TestEveryRefusedGuessIsCountedInTheWarnLines(t *testing.T) {
	e := newEnv(t, api.Options{AuthEnabled: true, TokenCacheTTL: time.Minute})
	const guesses = 200
	limited := 0
	for range guesses {
		guess, err := store.NewTokenSecret()
		require.NoError(t, err)
		r := e.do("GET", "/api/factories", nil, bearer(guess)...)
		require.Contains(t, []int{401, 429}, r.status, string(r.body))
		if r.status == 429 {
			limited++
		}
	}
	require.Positive(t, limited, "the address's budget was spent (else this test proves nothing)")

	counted := func() int64 {
		var n int64
		for _, line := range strings.Split(e.logText(), "\n") {
			if !strings.Contains(line, "request refused: no valid API token") {
				continue
			}
			var l struct {
				Level string `json:"level"`
				Count int64  `json:"failed_since_last_line"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Level == "warn" {
				n += l.Count
			}
		}
		return n
	}
	// The line a burst's rest is counted in comes a second after its first.
	var last int64
	testutil.Poll(func() bool { last = counted(); return last >= guesses }, 10*time.Second)
	assert.EqualValues(t, guesses, counted(),
		"every one of the %d refused attempts (%d of them 429) is counted in the warn lines; they count %d", guesses, limited, last)
}
