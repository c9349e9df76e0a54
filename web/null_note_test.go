package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// README Web UI: a gateway's page shows its sensors, and says what its
// 100-row table leaves out. drawSensors appends more()'s note with the
// DOM's own Element.append, which writes null as the text "null": every
// gateway with at most 100 sensors shows a stray "null" under its
// sensors table (seen at 375 px while auditing b143864; any width).
// (Found by an audit, helper 10, whose test this is.)
func TestGatewayPageShowsNoNullUnderItsSensors(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, _ := addWithSensors(t, h, "null-note", 2)

	b := newBrowser(t)
	b.do("open the gateway", chromedp.Navigate(base+"/#/gateways/"+g.ID.String()))
	b.wait("its sensors", `document.querySelector('main table tbody tr')`)
	text := eval[string](b, `document.querySelector('main table tbody tr').closest('section').textContent`)
	assert.NotContains(t, text, "null", "the sensors' box of a gateway with 2 sensors")
}
