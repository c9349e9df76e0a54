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

// Factories that share a name are told apart in the forms' selects: by
// their organization, and by the start of their id where the
// organizations share a name too. They were offered as identical
// choices, one of them the wrong plant.
func TestFormsTellSameNamedFactoriesApart(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	var ids []string
	for _, org := range []string{"North", "South", "North"} {
		o, err := h.Store.CreateOrganization(ctx, org, nil)
		require.NoError(t, err)
		f, err := h.Store.CreateFactory(ctx, store.NewFactory{OrganizationID: o.ID, Name: "Plant 1"})
		require.NoError(t, err)
		ids = append(ids, f.ID.String())
	}

	b := newBrowser(t)
	options := `[...document.querySelectorAll('main details.create select[name=factory_id] option')]` +
		`.map(o => [o.value, o.textContent.replace(/[\u2068\u2069]/g, '')])`
	b.do("the gateway form", chromedp.Navigate(base+"/#/gateways?new=1"))
	b.wait("its factories", options+`.some(([, l]) => l.startsWith('Plant 1'))`)
	got := map[string]string{}
	for _, o := range eval[[][]string](b, options) {
		got[o[0]] = o[1]
	}
	assert.Equal(t, "F", got[h.Factory.String()], "a name nobody shares stays as it is")
	assert.Equal(t, "Plant 1 (North) · "+ids[0][:8], got[ids[0]])
	assert.Equal(t, "Plant 1 (South)", got[ids[1]])
	assert.Equal(t, "Plant 1 (North) · "+ids[2][:8], got[ids[2]])
}
