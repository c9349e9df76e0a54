package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// (Checked by an audit, helper 4, whose tests these are.) Names that look like markup, where the newer code
// draws them: the fleet's factory filter (two factories of one name get
// their organizations' names in parentheses), a factory's page and the
// lists. They show as text; no element is made of them.
// Would catch: a label or cell built with innerHTML (or a template string
// parsed as markup) from a name.
func TestMarkupInNamesStaysText(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	const orgName = `<img src=x id=xss-org>`
	const facName = `<b id=xss-fac>F</b>`
	var facID string
	for i := 0; i < 2; i++ {
		org, err := h.Store.CreateOrganization(ctx, orgName, nil)
		require.NoError(t, err)
		f, err := h.Store.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: facName})
		require.NoError(t, err)
		facID = f.ID.String()
	}
	b := newBrowser(t)
	tab := &uiTab{t: t, name: "tab", ctx: b.ctx}
	const injected = `!!document.querySelector('#xss-org, #xss-fac')`
	tab.navigate(base + "/")
	tab.wait("the factory filter", `[...document.querySelectorAll('#f-factory option')].filter(o => o.textContent.includes('<b id=xss-fac>')).length === 2`, 15*time.Second)
	label, _ := tabEval[string](tab, `[...document.querySelectorAll('#f-factory option')].map(o => o.textContent).filter(s => s.includes('xss')).join(' | ')`)
	assert.Contains(t, label, orgName, "the organization's name, as text, in the label")
	drawn := map[string]string{
		"#/factories/" + facID: `document.querySelector('#main h1')?.textContent === ` + js(facName),
		"#/factories":          `document.querySelectorAll('#main tbody tr').length >= 2`,
		"#/organizations":      `document.querySelectorAll('#main tbody tr').length >= 2`,
		// Same-named factories of same-named organizations: told apart
		// by the start of their ids, the names still text.
		"#/gateways?new=1": `[...document.querySelectorAll('#main form select[name=factory_id] option')].filter(o => o.textContent.replace(/[\u2068\u2069]/g, '').startsWith(` +
			js(facName+" ("+orgName+") · ") + `)).length === 2`,
	}
	for _, r := range []string{"#/factories/" + facID, "#/factories", "#/organizations", "#/gateways?new=1"} {
		tab.do(r, navigateHash(r))
		if ok := testutil.Poll(func() bool { v, _ := tabEval[bool](tab, drawn[r]); return v }, 15*time.Second); !ok {
			shown, _ := tabEval[string](tab, `[...document.querySelectorAll("#main select")].map(s => s.name + ": " + [...s.options].map(o => o.textContent).join(",")).join(" / ")`)
			t.Fatalf("%s not drawn; selects: %s", r, shown)
		}
		v, _ := tabEval[bool](tab, injected)
		assert.False(t, v, "%s: an element made of a name", r)
	}
	v, _ := tabEval[bool](tab, injected)
	assert.False(t, v)
	assert.Empty(t, scriptProblems(b))
}
