package web_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/store"
)

// (Found by an audit, helper 9, whose test this is.) the names of parents that the forms and filters offer
// (resources.js `names`) are read once per tab and kept until a reload;
// only this tab's own create, edit and delete drop them. A factory made
// by anyone else (another admin, another tab, the API) is never offered
// in the "New gateway" / "New equipment" forms' Factory select nor in the
// lists' Factory filter, however often the user navigates: the UI cannot
// register a gateway in it (API.md §9: the UI "does everything the API
// does ... for gateways"), until a full reload.
func TestFormsOfferFactoriesMadeElsewhere(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	org, err := h.Store.CreateOrganization(ctx, "Elsewhere Org", nil)
	require.NoError(t, err)

	b := newBrowser(t)
	factoryOptions := `[...document.querySelectorAll('main details.create select[name=factory_id] option')].map(o => o.textContent)`
	b.do("the gateway form", chromedp.Navigate(base+"/#/gateways?new=1"))
	b.wait("its factories", factoryOptions+`.includes('F')`)

	// Another admin makes a factory (here: straight in the store, as the
	// API would).
	_, err = h.Store.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "Made Elsewhere"})
	require.NoError(t, err)

	// The user moves on and comes back to register a gateway in it.
	b.do("the factories list", chromedp.Evaluate[chromedp.Void](`location.hash = '#/factories'`))
	b.wait("the new factory listed", `[...document.querySelectorAll('main tbody a')].some(a => a.textContent === 'Made Elsewhere')`)
	b.do("the gateway form again", chromedp.Evaluate[chromedp.Void](`location.hash = '#/gateways?new=1'`))
	b.wait("its factories", factoryOptions+`.includes('F')`)
	assert.Contains(t, eval[[]string](b, factoryOptions), "Made Elsewhere",
		"the factories list shows it, the gateway form does not offer it")
}
