package web_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Found by an audit, helper 4, whose test this is.) A list opened during a database outage is read again
// until it comes (live.js' again), and is drawn once the database is
// back. Its "New …" form is built once, before the list, and its parent
// select (the organization of a new factory, the factory of a new
// gateway or machine) asks for its options once: during the outage that
// failed, and the select stayed empty (not even "Choose…") after the list
// came back, so nothing could be created there without a reload. An
// operator expects the page, once it says nothing of the outage any
// more, to work as if opened then.
// Would catch: a form's options read once and never again after a
// transient failure.
func TestCreateFormOptionsComeBackAfterAnOutage(t *testing.T) {
	w, p, _, admin := dbDownWorld(t, freePort(t))
	b := newBrowser(t)
	tab := &uiTab{t: t, name: "factories", ctx: b.ctx}
	tab.navigate(w.base + "/")
	signInTab(tab, admin)
	tab.wait("live", liveJS, 15*time.Second)

	p.cut()
	w.waitDatabase("unreachable")
	tab.do("a new factory", navigateHash("#/factories?new=1"))
	tab.wait("the list says it tries again", `/Trying again/.test(document.querySelector('#main').textContent)`, 20*time.Second)

	p.heal()
	w.waitDatabase("ok")
	tab.wait("the factories listed", `document.querySelectorAll('#main tbody tr').length >= 1 && !/Trying again/.test(document.querySelector('#main').textContent)`, 25*time.Second)
	const orgOption = `[...document.querySelectorAll('#main form select[name=organization_id] option')].some(o => o.textContent === 'Audit 12')`
	ok := testutil.Poll(func() bool { v, _ := tabEval[bool](tab, orgOption); return v }, 20*time.Second)
	opts, _ := tabEval[string](tab, `[...document.querySelectorAll('#main form select[name=organization_id] option')].map(o => o.textContent).join(' | ') || '(none)'`)
	assert.True(t, ok, "the new factory form's organizations, 20 s after the list came back: %s", opts)
}
