package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

func TestBufferedBatchesAndLosesNothing(t *testing.T) {
	out := &testutil.SyncBuffer{}
	b := NewBuffered(out, 20*time.Millisecond)
	log := New(b, "info", "json", false)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				log.Info().Int("g", g).Int("i", i).Msg("request")
			}
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		return strings.Count(out.String(), "\n") == 4000
	}, 10*time.Second, 5*time.Millisecond, "the interval flushes without Close")
	s := out.String()
	assert.Less(t, out.Writes(), 400, "4,000 lines in far fewer writes")
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		assert.True(t, strings.HasPrefix(line, `{"level":"info"`) && strings.HasSuffix(line, `"message":"request"}`), "whole line: %q", line)
	}
	log.Warn().Msg("last words")
	require.NoError(t, b.Close())
	assert.Contains(t, out.String(), "last words", "Close flushes")
	require.NoError(t, b.Close(), "twice is fine")
}

func TestLevelsAndFormat(t *testing.T) {
	var buf bytes.Buffer
	warn := New(&buf, "warn", "json", false)
	warn.Info().Msg("hidden")
	assert.Empty(t, buf.String())
	def := New(&buf, "", "json", false)
	def.Info().Msg("default info")
	assert.Contains(t, buf.String(), "default info")
	buf.Reset()
	console := New(&buf, "debug", "console", false)
	console.Debug().Str("k", "v").Msg("human")
	assert.Contains(t, buf.String(), "human")
	assert.NotContains(t, buf.String(), `{"level"`)
	assert.NotContains(t, buf.String(), "\x1b[", "no colour unless asked")
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}`, buf.String(), "milliseconds")
	buf.Reset()
	colourful := New(&buf, "info", "console", true)
	colourful.Info().Msg("colourful")
	assert.Contains(t, buf.String(), "\x1b[")
}

func TestColor(t *testing.T) {
	var buf bytes.Buffer
	assert.False(t, Color(&buf, nil), "not a terminal")
	f, err := os.CreateTemp(t.TempDir(), "log")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, Color(f, nil), "a file is not a terminal")
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		assert.True(t, Color(tty, nil))
		assert.False(t, Color(tty, []string{"NO_COLOR=1"}))
		assert.True(t, Color(tty, []string{"NO_COLOR="}), "an empty NO_COLOR is unset")
	}
}

// Timestamps carry milliseconds, in JSON and on the console: gateway
// events a few ms apart must read in order.
func TestTimestampsHaveMilliseconds(t *testing.T) {
	t.Parallel()
	var js bytes.Buffer
	log := New(&js, "info", "json", false)
	log.Info().Msg("x")
	var line struct{ Time string }
	require.NoError(t, json.Unmarshal(js.Bytes(), &line))
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, line.Time)
	at, err := time.Parse(time.RFC3339, line.Time)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), at, time.Minute)

	// Whole seconds would print .000 every time; real milliseconds do so
	// only within one millisecond in a thousand.
	msPart := regexp.MustCompile(`T\d\d:\d\d:\d\d\.(\d{3})`)
	var seen []string
	ok := assert.Eventually(t, func() bool {
		var con bytes.Buffer
		log := New(&con, "info", "console", false)
		log.Info().Msg("x")
		m := msPart.FindStringSubmatch(con.String())
		if m == nil {
			seen = append(seen, con.String())
			return false
		}
		seen = append(seen, m[1])
		return m[1] != "000"
	}, time.Second, time.Millisecond, "console timestamps never had milliseconds")
	if !ok {
		t.Logf("seen: %v", seen[:min(len(seen), 20)])
	}
}

// Listening finds the line serve logs, in the JSON format New writes, for
// the address asked about only.
func TestListeningFindsTheAPILine(t *testing.T) {
	var out bytes.Buffer
	log := New(&out, "info", "json", false)
	log.Info().Str("addr", "127.0.0.1:4000").Msg("runtime loaded")
	assert.False(t, Listening(out.String(), "127.0.0.1:4000"), "another message")
	log.Info().Str("addr", "127.0.0.1:4000").Msg(APIListening)
	assert.True(t, Listening(out.String(), "127.0.0.1:4000"))
	assert.False(t, Listening(out.String(), "127.0.0.1:400"), "another port")
	assert.False(t, Listening(out.String(), "127.0.0.1:40000"), "another port")
}
