package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// Metadata goes from the form to the API as typed, and comes back into the
// form as stored: a number a JS number cannot hold keeps its digits, and a
// duplicate key reaches the API, which refuses it in its own words. (The
// form once parsed and re-serialized it: 12345678901234567890 was stored as
// 12345678901234567000, 1.50 as 1.5, 1e400 as null.)
func TestUIKeepsMetadataAsTyped(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	typed := `{"serial": 12345678901234567890, "ratio": 1.50, "big": 1e400}`
	stored := func(id string) string {
		t.Helper()
		org, err := h.Store.GetOrganization(context.Background(), uuid.MustParse(id))
		require.NoError(t, err)
		return string(org.Metadata)
	}
	// What the API stores for the same text sent directly.
	resp, err := http.Post(base+"/api/organizations", "application/json", strings.NewReader(`{"name":"Direct","metadata":`+typed+`}`))
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode, string(raw))
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(raw, &created))
	direct := stored(created.ID)
	require.Contains(t, direct, "12345678901234567890")

	b := newBrowser(t)
	b.do("open the organizations", chromedp.Navigate(base+"/#/organizations"))
	b.do("create one with metadata", chromedp.Click(chromedp.CSS(`details.create > summary`)),
		chromedp.SendKeys(chromedp.CSS(`details.create [name=name]`), "Meta"),
		chromedp.SetValue(chromedp.CSS(`details.create [name=metadata]`), typed),
		chromedp.Click(chromedp.CSS(`details.create button[type=submit]`)))
	b.wait("its page", `document.querySelector('main h1')?.textContent === 'Meta'`)
	id := strings.TrimPrefix(eval[string](b, `location.hash`), "#/organizations/")
	assert.Equal(t, direct, stored(id), "stored as if sent directly")

	edit := `section[aria-labelledby=edit-h] `
	// The heading can come before the edit form is there (CI's run found
	// it missing once): wait for the form.
	b.wait("the edit form", `document.querySelector('`+edit+`[name=metadata]')`)
	shown := eval[string](b, `document.querySelector('`+edit+`[name=metadata]').value`)
	for _, digits := range []string{"12345678901234567890", "1.50"} {
		assert.Contains(t, shown, digits, "the form shows what is stored")
	}
	b.do("rename only", chromedp.SetValue(chromedp.CSS(edit+`[name=name]`), "Meta 2"),
		chromedp.Click(chromedp.CSS(edit+`button[type=submit]`)))
	b.wait("renamed", `document.querySelector('main h1')?.textContent === 'Meta 2'`)
	assert.Equal(t, direct, stored(id), "metadata untouched by a rename")

	b.wait("the edit form again", `document.querySelector('`+edit+`[name=metadata]')`)
	// A save re-renders the page: the form that answers is a new one.
	eval[chromedp.Void](b, `window.__form = document.querySelector('`+edit+`form')`)
	b.do("add a key", chromedp.SetValue(chromedp.CSS(edit+`[name=metadata]`), `{"serial": 12345678901234567890, "ratio": 1.50, "line": 4}`),
		chromedp.Click(chromedp.CSS(edit+`button[type=submit]`)))
	b.wait("saved and shown again", `(f => f && f !== window.__form && f.querySelector('[name=metadata]').value.includes('"line"'))(document.querySelector('`+edit+`form'))`)
	assert.Contains(t, stored(id), "12345678901234567890")
	assert.Contains(t, stored(id), "1.50")

	b.do("a duplicate key", chromedp.SetValue(chromedp.CSS(edit+`[name=metadata]`), `{"a": 1, "a": 2}`),
		chromedp.Click(chromedp.CSS(edit+`button[type=submit]`)))
	b.wait("the API's words", `document.querySelector('`+edit+`[data-field=metadata] .field-error:not([hidden])')`)
	assert.Contains(t, eval[string](b, `document.querySelector('`+edit+`[data-field=metadata] .field-error').textContent`), `"a"`)
	assert.Contains(t, stored(id), `"line"`, "nothing stored from the refused edit")
}
