package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
)

// (Found by an audit, helper 2, whose test this is.) README "A reading's
// completed_at is when its samples arrived, not when their analysis ended:
// the gateway's next acquisition starts then, so one gateway's readings'
// [started_at, completed_at] never overlap"; the processor and every other
// failure of a reading whose samples came keep that time (failed(): "else
// when the samples came (onReading)").
//
// The writer's bound on samples waiting for the database (64 MiB: the
// database down or behind) turns a processed reading into FAILED "could not
// be stored (database unavailable)", and stamps its completed_at anew with
// the moment the processor handed it over: the samples' arrival is lost,
// and the reading's interval runs into the next reading's, which started
// at that arrival. Would catch: that restamp (and a FAILED reading left
// with samples and sample_rate_hz but no waveform or summary).
func TestWaveBoundKeepsTheSamplesArrival(t *testing.T) {
	st, g, s := writerStore(t)
	ctx := context.Background()
	w := actors.NewWriter(st, time.Hour, time.Hour, time.Hour) // flushed by the test only
	t.Cleanup(w.Close)

	arrived := time.Now().Add(-5 * time.Second).UTC().Truncate(time.Millisecond)
	started := arrived.Add(-time.Second)
	n, rate := 8192, 1000.0
	id := uuid.New()
	r := gatewayd.Reading{ID: id, SensorID: s.ID, GatewayID: g.ID, Trigger: gatewayd.TriggerScheduled,
		Status: gatewayd.ReadingComplete, RequestedAt: started, StartedAt: &started, CompletedAt: &arrived,
		Samples: &n, SampleRateHz: &rate, Summary: []byte(`{"x":{"samples":8192}}`)}
	// More samples than the writer lets wait: as if 900 readings' samples
	// waited for a database that does not answer.
	w.Reading(gatewayd.ReadingUpdate{Reading: r, Serial: s.Serial,
		Packed: &gatewayd.PackedWaveform{Format: 1, Data: make([]byte, 64<<20+1)}})
	w.FlushReadings()

	got, err := st.GetReading(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingFailed, got.Status)
	assert.Equal(t, "could not be stored (database unavailable)", errText(got))
	if assert.NotNil(t, got.CompletedAt) {
		assert.True(t, arrived.Equal(*got.CompletedAt), "completed_at is the samples' arrival %s, not %s", arrived, got.CompletedAt)
	}
	assert.Nil(t, got.Summary, "no summary: not COMPLETE")
	assert.Nil(t, got.Samples, "samples: a count of samples that were not stored")
}
