package api_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// The reading list's filters and paging (API.md §3, §8).
// Bad values are 400 VALIDATION_ERROR naming every bad field; an empty
// window (since after until) is an empty page, not an error; totals are
// exact under each filter; paging walks newest first without gaps.
// Would catch: a bad filter ignored (a silently wider list), a 500, a
// total that counts the unfiltered rows, a page boundary that repeats or
// skips a reading. (Checked by an audit, helper 7, whose test this is.)
func TestReadingListFiltersAndPaging(t *testing.T) {
	e := newEnv(t, api.Options{})
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var at []time.Time
	for i := range 7 {
		at = append(at, t0.Add(time.Duration(i)*time.Second))
	}
	sensor, ids := completeReadingsAt(t, e, at...)
	for _, q := range []string{"since=yesterday", "until=2026-02-30T00:00:00Z", "status=complete", "status=",
		"since=" + url.QueryEscape(t0.Format(time.RFC3339)) + "&since=" + url.QueryEscape(t0.Format(time.RFC3339)),
		"since=x&until=y&status=z&limit=0"} {
		r := e.do("GET", "/api/sensors/"+sensor+"/readings?"+q, nil)
		require.Equal(t, 400, r.status, "%s: %s", q, r.body)
		code, fields := r.errorBody(t)
		assert.Equal(t, "VALIDATION_ERROR", code, q)
		assert.NotEmpty(t, fields, q)
		if q == "since=x&until=y&status=z&limit=0" {
			assert.ElementsMatch(t, []string{"since", "until", "status", "limit"}, fields, "every problem named")
		}
	}
	// since after until: nothing, with a total of 0.
	q := "since=" + url.QueryEscape(at[5].Format(time.RFC3339Nano)) + "&until=" + url.QueryEscape(at[2].Format(time.RFC3339Nano))
	r := e.do("GET", "/api/sensors/"+sensor+"/readings?"+q, nil)
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, 0.0, r.json(t)["pagination"].(map[string]any)["total"])
	// A window [at[1], at[5]) paged two at a time: newest first, exact
	// total, no gap or repeat.
	win := "since=" + url.QueryEscape(at[1].Format(time.RFC3339Nano)) + "&until=" + url.QueryEscape(at[5].Format(time.RFC3339Nano))
	var got []string
	for off := 0; off < 6; off += 2 {
		r := e.do("GET", "/api/sensors/"+sensor+"/readings?"+win+"&limit=2&offset="+string(rune('0'+off)), nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		m := r.json(t)
		p := m["pagination"].(map[string]any)
		assert.Equal(t, 4.0, p["total"], "offset %d", off)
		assert.Equal(t, off+2 < 4, p["hasNext"], "offset %d", off)
		assert.Equal(t, off > 0, p["hasPrev"], "offset %d", off)
		for _, x := range m["data"].([]any) {
			got = append(got, x.(map[string]any)["id"].(string))
		}
	}
	assert.Equal(t, []string{ids[4], ids[3], ids[2], ids[1]}, got)
}
