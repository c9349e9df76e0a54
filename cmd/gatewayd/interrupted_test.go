package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// (Checked by an audit, helper 2, whose test this is.) API.md §8: "readings
// a previous process left QUEUED or RUNNING are FAILED (interrupted) at
// startup"; README "No reading waits for ever": "Either way they count in
// gatewayd_readings_total and are announced as reading.failed, as any
// reading that fails"; §9: reading.failed {id, sensor_id, gateway_id,
// status}.
//
// The real binary starts on a database holding a RUNNING manual reading
// and a QUEUED scheduled one: both are FAILED "interrupted" with a
// completed_at not before their requested_at or started_at, counted once
// each under their trigger in /metrics (and observed in
// gatewayd_reading_seconds), and replayed as reading.failed to a client
// that resumes the event stream. Would catch: interrupted readings left
// uncounted or unannounced (a dashboard's failure rate blind to restarts),
// or counted under the wrong trigger.
func TestInterruptedReadingsAreCountedAndAnnounced(t *testing.T) {
	t.Parallel()
	dbURL, env := migrated(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var sensor, gateway uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `
		WITH f AS (INSERT INTO factories (organization_id, name)
			SELECT id, 'F' FROM organizations LIMIT 1 RETURNING id),
		g AS (INSERT INTO gateways (factory_id, gateway_id, name, url, email, password_encrypted, desired_state)
			SELECT id, 'gw-old', 'G', 'ws://127.0.0.1:1/gw', 'e@example.com', 'x', 'DISCONNECTED' FROM f RETURNING id)
		INSERT INTO sensors (gateway_id, serial, name) SELECT id, 1, 'S' FROM g RETURNING id, gateway_id`).Scan(&sensor, &gateway))
	var running, queued uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO readings (sensor_id, gateway_id, trigger, status, requested_at, started_at)
		VALUES ($1, $2, 'MANUAL', 'RUNNING', now() - interval '2 minutes', now() - interval '1 minute') RETURNING id`,
		sensor, gateway).Scan(&running))
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO readings (sensor_id, gateway_id, trigger, status, requested_at)
		VALUES ($1, $2, 'SCHEDULED', 'QUEUED', now() - interval '1 minute') RETURNING id`, sensor, gateway).Scan(&queued))

	s := startServe(t, append(env, "AUTH_ENABLED=false"))
	base := fmt.Sprintf("http://127.0.0.1:%d", s.port)

	for _, id := range []uuid.UUID{running, queued} {
		var r struct {
			Status      string
			Error       *string
			RequestedAt time.Time  `json:"requested_at"`
			StartedAt   *time.Time `json:"started_at"`
			CompletedAt *time.Time `json:"completed_at"`
		}
		require.Equal(t, 200, getJSON(t, base+"/api/readings/"+id.String(), &r))
		assert.Equal(t, "FAILED", r.Status)
		if assert.NotNil(t, r.Error) {
			assert.Equal(t, "interrupted", *r.Error)
		}
		if assert.NotNil(t, r.CompletedAt) {
			assert.False(t, r.CompletedAt.Before(r.RequestedAt))
			if r.StartedAt != nil {
				assert.False(t, r.CompletedAt.Before(*r.StartedAt))
			}
		}
	}

	res, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	metrics := string(body)
	assert.Contains(t, metrics, `gatewayd_readings_total{status="FAILED",trigger="MANUAL"} 1`+"\n")
	assert.Contains(t, metrics, `gatewayd_readings_total{status="FAILED",trigger="SCHEDULED"} 1`+"\n")
	assert.Contains(t, metrics, `gatewayd_readings_total{status="COMPLETE",trigger="MANUAL"} 0`+"\n")
	assert.Contains(t, metrics, "gatewayd_reading_seconds_count 2\n")

	// A client of the previous process resumes: reset, then the ring.
	reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, "GET", base+"/api/events", nil)
	require.NoError(t, err)
	req.Header.Set("Last-Event-ID", "1")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	failed := map[string]map[string]any{}
	sc := bufio.NewScanner(res.Body)
	event := ""
	for len(failed) < 2 && sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "reading.failed" {
			var d map[string]any
			require.NoError(t, json.Unmarshal([]byte(v), &d))
			id, _ := d["id"].(string)
			assert.NotContains(t, failed, id, "announced once")
			failed[id] = d
		}
	}
	for _, id := range []uuid.UUID{running, queued} {
		if d, ok := failed[id.String()]; assert.True(t, ok, "reading.failed for %s", id) {
			assert.Equal(t, sensor.String(), d["sensor_id"])
			assert.Equal(t, gateway.String(), d["gateway_id"])
			assert.Equal(t, "FAILED", d["status"])
		}
	}
}
