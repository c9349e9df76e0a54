package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The sensors scenario stores and checks every sensor row (each gateway's
// own serials under it) or fails; both halves must have run.
func TestSensorsScenarioAtSmallSize(t *testing.T) {
	t.Parallel()
	o, out, progress := smallOptions(t)
	o.sensorsPerGateway = 3
	o.sensorsFirst = true // the order the default does not cover
	figures := runSmall(t, o, out, progress, "sensors")
	requireFigures(t, figures, "sensors_without_all_authenticated", "sensors_with_all_authenticated", "sensors_with_all_rows",
		"sensors_authenticated_ratio", "sensors_rows_ratio", "sensors_with_rss", "sensors_without_rss")
	assert.Equal(t, 50.0, figures["sensors_gateways"])
	assert.Equal(t, 150.0, figures["sensors_rows"])
	// gatewayd's pool was seen in pg_stat_activity in both halves, and
	// gwload's own connections were not counted (gatewayd's pool is 16).
	for _, half := range []string{"without", "with"} {
		assert.GreaterOrEqual(t, figures["sensors_"+half+"_db_conns_peak"], 1.0, half)
		assert.LessOrEqual(t, figures["sensors_"+half+"_db_conns_peak"], 16.0, half)
	}
}
