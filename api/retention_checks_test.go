package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/internal/wavepack"
)

// sampledReadings stores n COMPLETE readings with samples (each
// axis of size samples) at time at, and returns the sensor and the ids.
func sampledReadings(t *testing.T, e *env, n, samples int, at time.Time) (string, []string) {
	t.Helper()
	gw := e.gateway(e.factory(e.org("O"), "F"), "G")["id"].(string)
	ctx := context.Background()
	_, err := e.st.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: uuid.MustParse(gw), At: time.Now(),
		Sensors: []gatewayd.SensorReport{{Serial: 1, Connected: true}}}})
	require.NoError(t, err)
	sensor := e.do("GET", "/api/gateways/"+gw+"/sensors", nil).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	x, y, z := make([]float32, samples), make([]float32, samples), make([]float32, samples)
	for i := range x {
		x[i], y[i], z[i] = float32(i%17)/7, float32(i%5)/3, 1
	}
	rate := 25600.0
	var ids []string
	var us []gatewayd.ReadingUpdate
	for range n {
		w := at
		cnt := samples
		r := gatewayd.Reading{ID: uuid.New(), SensorID: uuid.MustParse(sensor), GatewayID: uuid.MustParse(gw),
			Trigger: gatewayd.TriggerScheduled, Status: gatewayd.ReadingComplete, RequestedAt: w, StartedAt: &w, CompletedAt: &w,
			SampleRateHz: &rate, Samples: &cnt, Summary: []byte(`{"x":{"samples":1}}`)}
		us = append(us, gatewayd.ReadingUpdate{Reading: r, Serial: 1,
			Packed: &gatewayd.PackedWaveform{Format: wavepack.FormatXORPlanes, Data: wavepack.Pack(x, y, z)}})
		ids = append(ids, r.ID.String())
	}
	_, err = e.st.SaveReadings(ctx, us)
	require.NoError(t, err)
	return sensor, ids
}

// API.md §8: retention deletes samples; "the reading and its summary
// stay". A download racing the deletion gets the whole waveform or the
// documented 404 WAVEFORM_NOT_FOUND, never a 500 or a cut answer; the
// reading still answers with its summary.
// (Checked by an audit, helper 9, whose test this is.)
func TestRetentionRacingWaveformDownloads(t *testing.T) {
	e := newEnv(t, api.Options{})
	const n, samples = 12, 4096
	_, ids := sampledReadings(t, e, n, samples, time.Now().Add(-time.Hour))
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	start, stop := make(chan struct{}), make(chan struct{})
	oks := make(chan struct{}, 1000)
	for _, id := range ids {
		for _, path := range []string{"/waveform", "/waveform#csv", "/spectrum?axis=y"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					p, accept := strings.TrimSuffix(path, "#csv"), "application/json"
					if strings.HasSuffix(path, "#csv") {
						accept = "text/csv"
					}
					r := e.do("GET", "/api/readings/"+id+p, nil, "Accept", accept)
					key := fmt.Sprintf("%s %d", path, r.status)
					switch {
					case r.status == 200 && path == "/waveform":
						var w struct{ X, Y, Z []float64 }
						if assert.NoError(t, json.Unmarshal(r.body, &w), "%s", key) {
							assert.Len(t, w.Z, samples, key)
						}
					case r.status == 200 && path == "/waveform#csv":
						assert.Equal(t, samples+1, strings.Count(string(r.body), "\n"), key)
					case r.status == 200:
					case r.status == 404:
						code, _ := r.errorBody(t)
						assert.Equal(t, "WAVEFORM_NOT_FOUND", code, key)
					case r.status == 503:
						// the answers' memory budget: documented, Retry-After
						assert.Equal(t, "1", r.header.Get("Retry-After"), key)
					default:
						t.Errorf("%s: %s", key, r.body)
					}
					if r.status == 200 {
						select {
						case oks <- struct{}{}:
						default:
						}
					}
					mu.Lock()
					codes[key]++
					mu.Unlock()
				}
			}()
		}
	}
	close(start)
	for range 2 * n { // downloads under way
		<-oks
	}
	removed, err := e.st.DeleteSamplesBefore(context.Background(), time.Now(), 1)
	require.NoError(t, err)
	// Some more downloads after the deletion, then stop.
	var after int
	testutil.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		after = 0
		for k, v := range codes {
			if strings.HasSuffix(k, " 404") {
				after += v
			}
		}
		return after >= 3*n
	}, 30*time.Second, "downloads after the deletion")
	close(stop)
	wg.Wait()
	assert.Equal(t, n, removed, "every sample row, in batches of 1")
	t.Logf("answers: %v", codes)
	for _, id := range ids {
		r := e.do("GET", "/api/readings/"+id, nil)
		require.Equal(t, 200, r.status)
		m := r.json(t)
		assert.Equal(t, "COMPLETE", m["status"])
		assert.NotNil(t, m["summary"], "the summary stays")
		assert.Equal(t, float64(samples), m["samples"])
		assert.Equal(t, 404, e.do("GET", "/api/readings/"+id+"/waveform", nil).status)
	}
}

// Readings with equal requested_at are listed in one stable order, and
// pages of it neither repeat nor skip one.
// (Checked by an audit, helper 9, whose test this is.)
func TestEqualTimestampsPageWithoutGapsOrDuplicates(t *testing.T) {
	e := newEnv(t, api.Options{})
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	sensor, ids := completeReadingsAt(t, e, at, at, at, at, at, at, at, at, at, at, at, at, at, at, at, at, at, at, at, at, at, at, at)
	all := readingIDs(t, e, sensor, "limit=100")
	require.Len(t, all, len(ids))
	for range 2 {
		var paged []string
		for off := 0; off < len(ids); off += 4 {
			paged = append(paged, readingIDs(t, e, sensor, fmt.Sprintf("limit=4&offset=%d", off))...)
		}
		assert.Equal(t, all, paged, "page by page, the same order")
	}
	assert.ElementsMatch(t, ids, all)
}
