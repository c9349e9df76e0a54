package api_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/api"
)

// completeReadingsAt stores one COMPLETE scheduled reading of a fresh
// sensor per time and returns the sensor's id and the readings' ids.
func completeReadingsAt(t *testing.T, e *env, at ...time.Time) (string, []string) {
	t.Helper()
	gw := e.gateway(e.factory(e.org("O"), "F"), "G")["id"].(string)
	ctx := context.Background()
	_, err := e.st.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: uuid.MustParse(gw), At: time.Now(),
		Sensors: []gatewayd.SensorReport{{Serial: 1, Connected: true}}}})
	require.NoError(t, err)
	sensor := e.do("GET", "/api/gateways/"+gw+"/sensors", nil).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	var us []gatewayd.ReadingUpdate
	var ids []string
	for _, when := range at {
		w := when
		r := gatewayd.Reading{ID: uuid.New(), SensorID: uuid.MustParse(sensor), GatewayID: uuid.MustParse(gw),
			Trigger: gatewayd.TriggerScheduled, Status: gatewayd.ReadingComplete, RequestedAt: w, CompletedAt: &w}
		us = append(us, gatewayd.ReadingUpdate{Reading: r, Serial: 1})
		ids = append(ids, r.ID.String())
	}
	_, err = e.st.SaveReadings(ctx, us)
	require.NoError(t, err)
	return sensor, ids
}

func readingIDs(t *testing.T, e *env, sensor, query string) []string {
	t.Helper()
	r := e.do("GET", "/api/sensors/"+sensor+"/readings?"+query, nil)
	require.Equal(t, 200, r.status, "%s: %s", query, r.body)
	ids := []string{}
	for _, x := range r.json(t)["data"].([]any) {
		ids = append(ids, x.(map[string]any)["id"].(string))
	}
	return ids
}

// OpenAPI (GET /api/sensors/:id/readings): since = "only readings
// requested at or after this RFC 3339 time", until = "only readings
// requested before this RFC 3339 time". RFC 3339 times may carry
// nanoseconds, and the API accepts them (RFC3339Nano); PostgreSQL keeps
// microseconds. A reading requested at T (whole microseconds) is before
// T+500ns, so until=T+500ns must list it, and since=T+500ns must not; pgx
// truncated both bounds to T, and the answers were the other way round.
// (Found by an audit, helper 9, whose test this is.)
func TestSubMicrosecondTimeFilters(t *testing.T) {
	e := newEnv(t, api.Options{})
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second).Add(123456 * time.Microsecond)
	sensor, ids := completeReadingsAt(t, e, at)
	q := func(name string, v time.Time) string {
		return name + "=" + url.QueryEscape(v.Format(time.RFC3339Nano))
	}
	// Whole microseconds: the documented bounds hold.
	assert.Equal(t, ids, readingIDs(t, e, sensor, q("since", at)), "since = its time: included (inclusive)")
	assert.Empty(t, readingIDs(t, e, sensor, q("until", at)), "until = its time: excluded (exclusive)")
	// Half a microsecond later.
	later := at.Add(500 * time.Nanosecond)
	assert.Equal(t, ids, readingIDs(t, e, sensor, q("until", later)),
		"requested at %s, which is before until=%s: must be listed", at.Format(time.RFC3339Nano), later.Format(time.RFC3339Nano))
	assert.Empty(t, readingIDs(t, e, sensor, q("since", later)),
		"requested at %s, which is before since=%s: must not be listed", at.Format(time.RFC3339Nano), later.Format(time.RFC3339Nano))
}

// Time zones in the query: the same instant spelled with an offset
// selects the same readings as in UTC; since inclusive, until exclusive
// at exactly a reading's (millisecond) time.
// (Checked by an audit, helper 9, whose test this is.)
func TestTimeFiltersWithOffsets(t *testing.T) {
	e := newEnv(t, api.Options{})
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	sensor, ids := completeReadingsAt(t, e, t0, t0.Add(time.Minute), t0.Add(2*time.Minute))
	plant := time.FixedZone("plant", 5*3600+30*60)
	west := time.FixedZone("west", -8*3600)
	for _, z := range []*time.Location{time.UTC, plant, west} {
		since := url.QueryEscape(t0.Add(time.Minute).In(z).Format("2006-01-02T15:04:05.000Z07:00"))
		until := url.QueryEscape(t0.Add(2 * time.Minute).In(z).Format("2006-01-02T15:04:05.000Z07:00"))
		assert.Equal(t, []string{ids[1]}, readingIDs(t, e, sensor, "since="+since+"&until="+until), z.String())
	}
	// The rendered time of a reading, as a client reads it, is a bound
	// that includes it (since) and excludes it (until).
	list := e.do("GET", "/api/sensors/"+sensor+"/readings", nil).json(t)["data"].([]any)
	shown := list[0].(map[string]any)["requested_at"].(string)
	assert.Equal(t, []string{ids[2]}, readingIDs(t, e, sensor, "since="+url.QueryEscape(shown)))
	assert.Equal(t, []string{ids[1], ids[0]}, readingIDs(t, e, sensor, "until="+url.QueryEscape(shown)))
	// An unescaped '+' arrives as a space: a 400 that names the field,
	// not a silently different window.
	r := e.do("GET", "/api/sensors/"+sensor+"/readings?since="+t0.In(plant).Format(time.RFC3339), nil)
	assert.Equal(t, 400, r.status, "%s", r.body)
}

// Extreme but valid RFC 3339 times are answered (200, or a 400 naming
// the field), never a 500: offsets that move the instant past year
// 9999 or before year 0, lower-case t and z.
// (Checked by an audit, helper 9, whose test this is.)
func TestExtremeTimeFilters(t *testing.T) {
	e := newEnv(t, api.Options{})
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	sensor, ids := completeReadingsAt(t, e, at)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"since=0000-01-01T00:00:00%2B23:59", ids},
		{"until=9999-12-31T23:59:59.999999999-23:59", ids},
		{"since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z", ids},
		{"since=" + url.QueryEscape(strings.ToLower(at.Format(time.RFC3339Nano))), ids},
		{"until=" + url.QueryEscape(strings.ToLower(at.Format(time.RFC3339Nano))), []string{}},
	} {
		r := e.do("GET", "/api/sensors/"+sensor+"/readings?"+tc.query, nil)
		if !assert.Equal(t, 200, r.status, "%s: %s", tc.query, r.body) {
			continue
		}
		assert.Equal(t, tc.want, readingIDs(t, e, sensor, tc.query), tc.query)
	}
}
