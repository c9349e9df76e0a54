package web_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Found by an audit, helper 4, whose test this is.) README (Security): a client address that looked up
// too many unknown tokens is answered 429 TOO_MANY_REQUESTS "with
// Retry-After: 1", and "neither a restart nor a guesser behind the same
// reverse proxy keeps an operator out"; "a token made since that read
// waits for the budget when it comes from the guessing address". So a
// 429 passes by itself, within seconds. The UI treated it as final
// (live.js transient: only no answer and 5xx): an operator who signed in
// with a new token while someone behind the same address guessed got
// "The fleet could not be loaded: Too many unknown tokens…" for good (the
// fleet's snapshot and whoami never asked again), under a header that
// said "Live" once the stream, which does retry, came back.
// Would catch: a 429 (Retry-After) not retried by the pages' again().
func TestFleetRecoversFromA429(t *testing.T) {
	w := newRealWorld(t, freePort(t), "AUTH_ENABLED=true")
	a := w.addGateway("tm-a")
	ctx := context.Background()
	_, admin, err := w.st.CreateToken(ctx, "audit admin", gatewayd.RoleAdmin, nil)
	require.NoError(t, err)
	w.start("")
	w.waitStates(admin, map[string]string{a: "AUTHENTICATED"})

	b := newBrowser(t)
	tab := &uiTab{t: t, name: "fleet", ctx: b.ctx}
	tab.navigate(w.base + "/")
	tab.wait("the sign-in dialog", `document.querySelector('#signin')?.open`, 15*time.Second)

	// Someone at the same address guesses tokens, 50 a second.
	gctx, stopGuessing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var refused atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-gctx.Done():
				return
			case <-tick.C:
			}
			buf := make([]byte, 16)
			_, _ = rand.Read(buf)
			req, _ := http.NewRequestWithContext(gctx, "GET", w.base+"/api/organizations?limit=1", nil)
			req.Header.Set("Authorization", "Bearer guess-"+hex.EncodeToString(buf))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			res.Body.Close()
			if res.StatusCode == 429 {
				refused.Add(1)
			}
		}
	}()
	t.Cleanup(func() { stopGuessing(); wg.Wait() })
	testutil.Eventually(t, func() bool { return refused.Load() > 0 }, 20*time.Second, "the guesser refused")

	// A viewer token made now is refused (429) for a few seconds.
	var viewer string
	for i := 0; i < 20 && viewer == ""; i++ {
		_, secret, err := w.st.CreateToken(ctx, "audit viewer", gatewayd.RoleViewer, nil)
		require.NoError(t, err)
		if code, _ := w.do("GET", "/whoami", secret); code == 429 {
			viewer = secret
		}
	}
	require.NotEmpty(t, viewer, "a new token refused 429 while the address guesses")
	signInTab(tab, viewer)
	sawRefusal := testutil.Poll(func() bool {
		v, _ := tabEval[bool](tab, `/Too many|could not be loaded/i.test(document.querySelector('#main')?.textContent || '')`)
		return v
	}, 10*time.Second)
	t.Logf("the page showed the refusal: %v", sawRefusal)

	// The token is known within 5 s (the usable tokens' read); the page
	// should show the fleet, and learn its role, by itself.
	testutil.Eventually(t, func() bool { code, _ := w.do("GET", "/whoami", viewer); return code == 200 }, 15*time.Second, "the token accepted")
	shown := testutil.Poll(func() bool { ok, _ := tabEval[bool](tab, showsJS(a, "AUTHENTICATED")); return ok }, 25*time.Second)
	text, _ := tabEval[string](tab, `document.querySelector('#live').textContent + ' | ' + document.querySelector('#main').innerText.replace(/\s+/g, ' ').slice(0, 300)`)
	assert.True(t, shown, "the fleet, 25 s after the token is accepted (no reload); the page shows: %s", text)
	role, _ := tabEval[string](tab, `document.documentElement.dataset.role || '(unknown)'`)
	assert.Equal(t, "viewer", role, "the page's role")
}
