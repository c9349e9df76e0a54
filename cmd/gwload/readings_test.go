package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The burst at small size: every manual reading requested is stored
// COMPLETE, none FAILED.
func TestReadingsBurstAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.readingGateways, o.readingBurst, o.readingSchedule = 20, true, 0
	figures := runSmall(t, o, out, progress, "readings")
	requireFigures(t, figures, "burst_stored_rate", "burst_beyond_capture_p99", "burst_status_p99_over_idle",
		"burst_peak_rss_over_idle", "burst_storage_per_reading")
	assert.Equal(t, 40.0, figures["burst_readings"])
	assert.Equal(t, 40.0, figures["burst_complete"])
	assert.Equal(t, 0.0, figures["burst_failed"])
}

// The schedule's code path at small size. One minute is the least
// reading_interval the API takes, and each sensor's first reading comes
// at a random offset within it, so a few seconds see only the readings
// that fell due: about 200 × 4 s / 60 s ≈ 13 in the 3 s and the grace
// after them (none at all has odds of about 1e-6). Every one of those is stored COMPLETE (the scenario fails
// on a missing or failed one), and none twice.
func TestReadingsScheduleAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.readingGateways, o.readingBurst, o.readingSchedule = 100, false, 3*time.Second
	figures := runSmall(t, o, out, progress, "readings")
	requireFigures(t, figures, "schedule_status_p99_over_idle", "schedule_peak_rss_over_idle")
	assert.Equal(t, 200.0, figures["schedule_sensors"])
	assert.Positive(t, figures["schedule_expected"], "some scheduled readings fell due")
	assert.Equal(t, figures["schedule_expected"], figures["schedule_complete"])
	assert.Equal(t, 0.0, figures["schedule_missing"])
	assert.Equal(t, 0.0, figures["schedule_failed"])
	assert.Equal(t, 0.0, figures["schedule_duplicates"])
}

// tallySchedule counts a lost first scheduled reading. It used to take
// each sensor's first reading in the window as the start of its due
// times, so when that reading was lost the second became "first", the
// lost one was never due, and the schedule reported missing 0.
// (Found by an audit, helper 6.)
func TestTallyScheduleCountsALostFirstReading(t *testing.T) {
	const interval = time.Minute
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	end := t0.Add(3*interval + 2*time.Second)
	a, b, c, d := readingSensor{id: uuid.New()}, readingSensor{id: uuid.New()}, readingSensor{id: uuid.New()}, readingSensor{id: uuid.New()}
	at := func(after time.Duration, status string) scheduledReading {
		return scheduledReading{status: status, requested: t0.Add(after), completed: t0.Add(after + 300*time.Millisecond)}
	}
	tl := tallySchedule(t0, end, interval, []readingSensor{a, b, c, d}, map[uuid.UUID][]scheduledReading{
		// a: due at 10 s (lost), 70 s, 130 s.
		a.id: {at(70*time.Second, "COMPLETE"), at(130*time.Second, "COMPLETE")},
		// b: due at 59.5 s, read 1 s late (not taken for a lost one);
		// then 119.5 s and 179.5 s.
		b.id: {at(60500*time.Millisecond, "COMPLETE"), at(119500*time.Millisecond, "COMPLETE"), at(179500*time.Millisecond, "FAILED")},
		// c: due at 20 s, 80 s (lost), 140 s; 140 s read twice.
		c.id: {at(20*time.Second, "COMPLETE"), at(140*time.Second, "COMPLETE"), at(140100*time.Millisecond, "COMPLETE")},
		// d: nothing at all in three minutes.
	})
	assert.Equal(t, 3+3+3+3, tl.expected)
	assert.Equal(t, 1+1+3, tl.missing, "a's first, c's second, all of d's")
	assert.Equal(t, 2+2+2, tl.complete)
	assert.Equal(t, 1, tl.failed)
	assert.Equal(t, 1, tl.extra)
	assert.Equal(t, 1, tl.silent)
	// Lateness from the first reading: b's is −1 s at its last two.
	assert.Equal(t, -time.Second, tl.late[0])
}

// The lost first reading end to end: a real database (the scenario reads
// the readings table) and a fake gatewayd (so that one reading can be
// lost on purpose) with a 2 s interval. Sensor A's reading due ~1.3 s
// after the schedule is set never comes, its next one does at ~3.3 s;
// sensor B has both of its (~0.9 s, ~2.9 s) in the 4 s window.
// (Found by an audit, helper 6.)
func TestScheduleCountsALostFirstReading(t *testing.T) {
	t.Parallel()
	o, out, _ := smallOptions(t)
	o.readingGateways, o.readingBurst, o.readingSchedule, o.readingInterval = 1, false, 4*time.Second, 2*time.Second
	o.duration = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := newEnv(ctx, o) // a migrated database, pool, organization and factory
	require.NoError(t, err)
	defer e.close()

	var puts atomic.Int64
	var inserts sync.WaitGroup // the fake's readings, stored beside its answer
	defer inserts.Wait()
	var sensors []uuid.UUID
	var gateway uuid.UUID
	var mu sync.Mutex // the handlers' shared sensors and gateway
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/api/gateways":
			var in map[string]any
			_ = json.NewDecoder(r.Body).Decode(&in)
			gateway = uuid.New()
			_, err := e.pool.Exec(ctx, `INSERT INTO gateways (id, factory_id, gateway_id, name, url, email, password_encrypted)
				VALUES ($1, $2, $3, $4, $5, $6, 'x')`, gateway, e.factory, in["gateway_id"], in["name"], in["url"], in["email"])
			assert.NoError(t, err)
			for serial := 1; serial <= 2; serial++ {
				id := uuid.New()
				sensors = append(sensors, id)
				_, err := e.pool.Exec(ctx, `INSERT INTO sensors (id, gateway_id, serial, name) VALUES ($1, $2, $3, 's')`, id, gateway, serial)
				assert.NoError(t, err)
			}
			w.WriteHeader(201)
			_ = json.NewEncoder(w).Encode(map[string]any{"id": gateway})
		case r.URL.Path == "/api/health":
			_, _ = io.WriteString(w, `{"gateways":{"total":1,"authenticated":1}}`)
		case strings.HasSuffix(r.URL.Path, "/status"):
			_, _ = io.WriteString(w, `{"state":"AUTHENTICATED"}`)
		case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/api/sensors/"):
			if puts.Add(1) == 2 { // the schedule is set: its readings, as gatewayd would store them
				// Stored beside the answer, not before it: the window
				// starts when the answer has arrived, whole, and the
				// inserts may take a while on a busy box; timed from
				// before them, sensor B's first reading fell before the
				// window (CI).
				at, gw, ss := time.Now(), gateway, slices.Clone(sensors)
				inserts.Add(1)
				go func() {
					defer inserts.Done()
					for _, x := range []struct {
						sensor uuid.UUID
						after  time.Duration
					}{
						// sensor A: due at ~1.3 s — lost; ~3.3 s stored
						{ss[0], 3300 * time.Millisecond},
						// sensor B: ~0.9 s and ~2.9 s stored
						{ss[1], 900 * time.Millisecond}, {ss[1], 2900 * time.Millisecond},
					} {
						req := at.Add(x.after)
						_, err := e.pool.Exec(ctx, `INSERT INTO readings (sensor_id, gateway_id, trigger, status, requested_at, started_at, completed_at)
							VALUES ($1, $2, 'SCHEDULED', 'COMPLETE', $3, $3, $4)`, x.sensor, gw, req, req.Add(300*time.Millisecond))
						assert.NoError(t, err)
					}
				}()
			}
			_, _ = io.WriteString(w, `{}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	o.target, e.api = srv.URL, srv.URL+"/api"

	err = readingSchedule(ctx, e, &report{o: o})
	t.Logf("figures:\n%s", out.String())
	assert.Contains(t, out.String(), "schedule_expected 4 count")
	assert.Contains(t, out.String(), "schedule_missing 1 count", "sensor A's reading due ~1.3 s after the schedule never came")
	assert.ErrorContains(t, err, "1 scheduled readings missing", "a scheduled reading was lost, yet the schedule reports none missing")
}
