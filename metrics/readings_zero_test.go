package metrics_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/metrics"
)

// gatewayd_readings_total{trigger,status} (API.md §9) is exposed from the
// start with each of its six series at zero, as gatewayd_logins_total is:
// before the first reading ended the whole family was missing from
// /metrics, so `rate(gatewayd_readings_total{status="FAILED"}[5m])` had
// no data and an `absent()` alert fired on a fresh or idle process.
// Would catch the family being created lazily again. (Found by an audit, helper 6, whose test this is.)
func TestReadingResultsStartAtZero(t *testing.T) {
	m := metrics.New()
	got := scrape(t, m)
	for _, trig := range []string{"GATEWAY", "MANUAL", "SCHEDULED"} {
		for _, st := range []string{"COMPLETE", "FAILED"} {
			key := `gatewayd_readings_total{status=` + st + `,trigger=` + trig + `}`
			v, ok := got[key]
			assert.True(t, ok, "%s exposed before any reading", key)
			assert.Zero(t, v.value, key)
		}
	}
}
