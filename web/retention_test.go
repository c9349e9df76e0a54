package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// (Found by an audit, helper 7, whose test this is.) API.md §8:
// WAVEFORM_RETENTION deletes a reading's samples, "the reading and its
// summary stay"; README Web UI: a sensor's page shows "for one reading
// the summary per axis with the waveform and the spectrum". For a
// COMPLETE reading whose samples retention removed (every reading older
// than 90 days by default), the page offered "Show", drew the summary,
// then replaced the whole panel with the waveform's 404
// (WAVEFORM_NOT_FOUND): the summary, which GET /api/readings/:id still
// answers, was gone from the UI. The 404's message belongs where the
// plots would be.
func TestReadingSummaryOutlivesItsSamples(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	_, sensors := addWithSensors(t, h, "retained", 1)
	sid := sensors[0].ID.String()

	r := completeReading(t, base, sid)
	require.NotNil(t, r.Summary["x"])

	// Retention's own call, as if the reading were older than it.
	n, err := h.Store.DeleteSamplesBefore(ctx, time.Now().Add(time.Hour), 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	b := newBrowser(t)
	b.do("open the sensor", chromedp.Navigate(base+"/#/sensors/"+sid))
	b.wait("the reading listed", `document.querySelector('table.readings tr[data-reading="`+r.ID+`"] button')`)
	assert.False(t, eval[bool](b, `document.querySelector('table.readings tr[data-reading="`+r.ID+`"] button').disabled`), "Show offered")
	b.do("show it", chromedp.Click(chromedp.CSS(`table.readings tr[data-reading="`+r.ID+`"] button`)))
	// Settled: the samples were asked for and answered 404, which the
	// page says (in the plots' place; it replaced the summary drawn first).
	// (The summary and the 404 both: on a loaded box the page's first
	// load can end after the click and draw the reading again, and a
	// panel that had settled once was then back at "Loading…".)
	b.wait("the reading's panel settled", `!document.querySelector('#reading .muted')?.textContent.startsWith('Loading') &&
		!!document.querySelector('#reading table.summary') && !!document.querySelector('#reading .plots .form-error')`)
	assert.True(t, eval[bool](b, `!!document.querySelector('#reading table.summary')`),
		"the reading's summary is shown; the panel: %s; console: %v", eval[string](b, `document.querySelector('#reading').outerHTML`), b.problems())
	assert.Contains(t, eval[string](b, `document.querySelector('#reading .plots .form-error')?.textContent ?? ''`), "no samples",
		"the API's message where the plots would be")
	if eval[bool](b, `!!document.querySelector('#reading table.summary')`) {
		assert.Equal(t, fmt.Sprintf("%.0f", r.Summary["x"]["samples"]),
			eval[string](b, `document.querySelector('#reading table.summary tbody td').textContent.replace(/[^0-9]/g, '')`))
	}
}
