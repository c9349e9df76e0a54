package web_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// tabWalk presses Tab until focus comes back round (or max presses) and
// returns, for every visible control of the page that Tab never reached,
// a short description; and for every control reached whose focus is not
// visible (no outline, no box-shadow), another.
func tabWalk(b *browser, max int) (missed, invisible []string) {
	b.t.Helper()
	eval[chromedp.Void](b, `window.__tabbed = new Set(); window.__invisible = [];
	  document.addEventListener('focusin', ev => { const e = ev.target; if (window.__tabbed.has(e)) return; window.__tabbed.add(e);
	    const s = getComputedStyle(e); if ((s.outlineStyle === 'none' || parseFloat(s.outlineWidth) === 0) && s.boxShadow === 'none')
	      window.__invisible.push(e.tagName.toLowerCase() + ' ' + (e.id || e.name || e.textContent.trim().slice(0, 30))); }, true);
	  document.activeElement?.blur();`)
	for i := 0; i < max; i++ {
		b.do("tab", chromedp.KeyEvent("\t"))
	}
	missed = eval[[]string](b, `[...document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])')]
	  .filter(e => !e.disabled && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden' && !e.closest('[inert]'))
	  .filter(e => !(e.type === 'radio' && [...document.querySelectorAll('input[type=radio][name="' + e.name + '"]')].some(r => window.__tabbed.has(r))))
	  .filter(e => !window.__tabbed.has(e))
	  .map(e => e.tagName.toLowerCase() + ' ' + (e.id || e.name || e.getAttribute('href') || e.textContent.trim().slice(0, 30)))`)
	return missed, eval[[]string](b, `window.__invisible`)
}

// (Found by an audit, helper 7, whose test this is.) API.md §9: the UI
// is "usable with a keyboard"; README: "Keyboard: real links and buttons
// ... visible focus". On a sensor's page with a reading plotted, the
// spectrum opens on 0–1 kHz of the 12.8 kHz the API answers (25.6 kHz
// sampling), and the rest was reachable only with a mouse: "drag to zoom,
// double-click for all". The plots had no control a keyboard could reach,
// so a keyboard user never saw most of the spectrum, nor zoomed the
// waveform.
func TestSpectrumWholeRangeReachableByKeyboard(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	_, sensors := addWithSensors(t, h, "keys", 1)
	sid := sensors[0].ID.String()
	r := completeReading(t, base, sid)
	var spec struct {
		F []float64 `json:"frequency_hz"`
	}
	resp, err := http.Get(base + "/api/readings/" + r.ID + "/spectrum?axis=x")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&spec))
	resp.Body.Close()
	// Where the page's spectrum opens (sensor.js): up to 1 kHz or four
	// times the highest dominant frequency, whichever is higher.
	top := 0.0
	for _, a := range r.Summary {
		top = max(top, a["dominant_frequency_hz"])
	}
	opens := max(1000, 4*top)
	require.Greater(t, spec.F[len(spec.F)-1], opens, "the API's spectrum goes past where the chart opens")

	b := newBrowser(t)
	b.do("open the reading", chromedp.Navigate(base+"/#/sensors/"+sid+"?reading="+r.ID))
	b.wait("plotted", `document.querySelector('.plots')?.dataset.drawn === 'x' && document.querySelectorAll('.plots canvas').length === 2`, 20*time.Second)
	missed, invisible := tabWalk(b, 60)
	t.Logf("not reached by Tab: %v; reached without visible focus: %v", missed, invisible)
	assert.Empty(t, invisible, "controls whose keyboard focus is not visible")
	// The spectrum's figure holds something the keyboard can operate.
	assert.True(t, eval[bool](b, `(() => { const f = [...document.querySelectorAll('.plots figure')][1];
	  return [...f.querySelectorAll('*')].some(e => window.__tabbed.has(e)) || [...f.parentElement.querySelectorAll('button')].some(e => window.__tabbed.has(e)); })()`),
		"no keyboard control on the spectrum: only a mouse shows it past %.0f Hz (the API's goes to %.0f Hz)",
		opens, spec.F[len(spec.F)-1])

	// From the keyboard: the spectrum's whole range, then back to where it opened.
	pressed := func(label string) string {
		return eval[string](b, `[...[...document.querySelectorAll('.plots figure')][1].querySelectorAll('button')]
		  .find(e => e.textContent === `+js(label)+`)?.getAttribute('aria-pressed') ?? 'none'`)
	}
	press := func(label string) {
		eval[chromedp.Void](b, `[...[...document.querySelectorAll('.plots figure')][1].querySelectorAll('button')]
		  .find(e => e.textContent === `+js(label)+`).focus()`)
		b.do("Enter on "+label, chromedp.KeyEvent("\r"))
	}
	assert.Equal(t, "true", pressed("0–1 kHz"), "the range the spectrum opens on")
	assert.Equal(t, "false", pressed("Whole range"))
	press("Whole range")
	b.wait("the whole spectrum", `[...[...document.querySelectorAll('.plots figure')][1].querySelectorAll('button')]
	  .find(e => e.textContent === 'Whole range').getAttribute('aria-pressed') === 'true'`)
	assert.Equal(t, "false", pressed("0–1 kHz"))
	press("Zoom in")
	b.wait("zoomed in", `[...document.querySelectorAll('.plots figure')][1].querySelector('[aria-pressed=true]') === null`)
	press("0–1 kHz")
	b.wait("back to 0–1 kHz", `[...[...document.querySelectorAll('.plots figure')][1].querySelectorAll('button')]
	  .find(e => e.textContent === '0–1 kHz').getAttribute('aria-pressed') === 'true'`)
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}
