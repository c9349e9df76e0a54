package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a log sink the refusals' timer may write to while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		out = append(out, m)
	}
	return out
}

// A burst of refused requests is logged when it happens: its first at
// once, the rest about a second later in one line with their count and
// the latest of them; not at the next refusal, whenever that comes.
func TestRefusalsLogABurstWithinASecond(t *testing.T) {
	var sink lockedBuffer
	r := &refusals{log: zerolog.New(&sink)}
	r.add(refused{why: "unknown token", method: "GET", path: "/api/first", ip: "10.0.0.1"})
	lines := sink.lines(t)
	require.Len(t, lines, 1, "the first refusal is logged at once")
	assert.Equal(t, float64(1), lines[0]["failed_since_last_line"])
	assert.Equal(t, "/api/first", lines[0]["path"])
	assert.Equal(t, "warn", lines[0]["level"])

	for i := range 999 {
		why := "unknown token"
		if i == 998 {
			why = "expired token"
		}
		r.add(refused{why: why, method: "GET", path: "/api/burst", ip: "10.0.0.2"})
	}
	assert.Len(t, sink.lines(t), 1, "the burst is not logged line by line")
	require.Eventually(t, func() bool { return len(sink.lines(t)) == 2 }, 5*time.Second, 5*time.Millisecond,
		"the burst's count was never logged")
	l := sink.lines(t)[1]
	assert.Equal(t, float64(999), l["failed_since_last_line"])
	assert.Equal(t, "expired token", l["reason"], "the latest refusal of the burst")
	assert.Equal(t, "10.0.0.2", l["ip"])

	// A refusal within the second after that line waits for close, which
	// writes it and stops the timer.
	r.add(refused{why: "no bearer token", method: "POST", path: "/api/last", ip: "10.0.0.3"})
	r.close()
	lines = sink.lines(t)
	require.Len(t, lines, 3)
	assert.Equal(t, float64(1), lines[2]["failed_since_last_line"])
	assert.Equal(t, "/api/last", lines[2]["path"])
	r.add(refused{why: "late"})
	r.flush()
	assert.Len(t, sink.lines(t), 3, "nothing is logged after close")
}

// The path logged for a request is cut at its '?' even when its URI does
// not parse: a query may carry what the log must not show.
func TestPathOfNeverKeepsTheQuery(t *testing.T) {
	for uri, want := range map[string]string{
		"/api/gateways?token=abc":       "/api/gateways",
		"http://h/api/x?token=abc":      "/api/x",
		"http://[::1/api/x?token=abc":   "http://[::1/api/x",
		"http://%41:80/api/x?token=abc": "http://%41:80/api/x",
	} {
		assert.Equal(t, want, pathOf(uri), uri)
	}
}
