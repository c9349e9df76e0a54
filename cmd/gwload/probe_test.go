package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The probe polls the gateways' status with the token until its stdin
// ends, then reports each answered request's latency and counts the
// others as failed.
func TestProbePollsUntilStdinEnds(t *testing.T) {
	t.Parallel()
	good, bad := uuid.New(), uuid.New()
	var seen, unauthorized atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if r.Header.Get("Authorization") != "Bearer tok" {
			unauthorized.Add(1)
		}
		if r.URL.Path == "/api/gateways/"+bad.String()+"/status" {
			http.Error(w, "gone", http.StatusNotFound)
			return
		}
		assert.Equal(t, "/api/gateways/"+good.String()+"/status", r.URL.Path)
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()

	in, feed := io.Pipe()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- runProbe(in, &out) }()
	spec, err := json.Marshal(probeSpec{API: srv.URL + "/api", Token: "tok", IDs: []uuid.UUID{good, bad}, Pollers: 2, Every: time.Millisecond})
	require.NoError(t, err)
	_, err = feed.Write(append(spec, '\n'))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return seen.Load() >= 40 }, 10*time.Second, time.Millisecond)
	require.NoError(t, feed.Close())
	require.NoError(t, <-done)

	ready, result, found := strings.Cut(out.String(), "\n")
	require.True(t, found)
	assert.Equal(t, probeReady, ready, "the first line says the probe is polling")
	var res probeResult
	require.NoError(t, json.NewDecoder(strings.NewReader(result)).Decode(&res))
	assert.Positive(t, res.Failed, "the 404s")
	assert.NotEmpty(t, res.Latencies, "the 200s")
	assert.Equal(t, seen.Load(), int64(res.Failed+len(res.Latencies)), "every request counted once")
	assert.Zero(t, unauthorized.Load())
}

// A spec without gateways is refused rather than polling nothing.
func TestProbeRefusesAnEmptySpec(t *testing.T) {
	t.Parallel()
	err := runProbe(strings.NewReader(`{"api":"http://x","pollers":1,"every":1000}`+"\n"), io.Discard)
	assert.ErrorContains(t, err, "incomplete spec")
}
