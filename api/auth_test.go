package api_test

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/netguard"
)

func authEnv(t *testing.T, ttl time.Duration) (*env, map[gatewayd.Role]string) {
	t.Helper()
	opts := api.Options{AuthEnabled: true, ChaosEnabled: true, TokenCacheTTL: ttl}
	e := newEnv(t, opts)
	tokens := map[gatewayd.Role]string{}
	for _, role := range gatewayd.Roles {
		_, secretText, err := e.st.CreateToken(context.Background(), string(role)+"-token", role, nil)
		require.NoError(t, err)
		tokens[role] = secret(secretText)
	}
	return e, tokens
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// Every route the app registers has an access rule, and each role gets
// exactly what its rule says: a matrix made from the registered routes,
// so a new route without a rule fails here.
func TestRoleRouteMatrix(t *testing.T) {
	e, tokens := authEnv(t, time.Second)
	rules := api.RouteAccess(api.Options{ChaosEnabled: true})
	rank := map[string]int{"public": 0, "viewer": 1, "operator": 2, "admin": 3}
	seen := 0
	for _, rt := range e.app.GetRoutes(true) {
		switch rt.Method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			continue
		}
		if rt.Path == "/api/gateways/status" && rt.Method != "GET" {
			continue // the 405 beside the status list
		}
		key := rt.Method + " " + rt.Path
		need, ok := rules[key]
		if !assert.True(t, ok, "%s has no access rule in routes.go", key) {
			continue
		}
		seen++
		path := strings.ReplaceAll(rt.Path, ":id", uuid.NewString())
		if rt.Path == "/api/events" {
			continue // a stream; its rule is checked below without reading it
		}
		r := e.do(rt.Method, path, nil)
		if need == "public" {
			assert.NotEqual(t, 401, r.status, "%s is public", key)
			continue
		}
		require.Equal(t, 401, r.status, "%s without a token: %s", key, r.body)
		assert.Equal(t, `Bearer realm="gatewayd"`, r.header.Get("WWW-Authenticate"), key)
		code, _ := r.errorBody(t)
		assert.Equal(t, "UNAUTHORIZED", code)
		for _, role := range gatewayd.Roles {
			r := e.do(rt.Method, path, nil, bearer(tokens[role])...)
			if rank[string(role)] < rank[need] {
				assert.Equal(t, 403, r.status, "%s as %s: %s", key, role, r.body)
				code, _ := r.errorBody(t)
				assert.Equal(t, "FORBIDDEN", code)
			} else {
				assert.NotContains(t, []int{401, 403}, r.status, "%s as %s: %s", key, role, r.body)
			}
		}
	}
	assert.Equal(t, len(rules), seen, "every rule is a registered route")
	assert.Equal(t, "viewer", rules["GET /api/events"])
	assert.Equal(t, "viewer", rules["GET /metrics"])
	assert.Equal(t, "public", api.RouteAccess(api.Options{MetricsPublic: true})["GET /metrics"])
	for _, key := range []string{"GET /api/health", "GET /api/ready", "GET /api/openapi.json", "GET /api/docs"} {
		assert.Equal(t, "public", rules[key], key)
	}
	for _, key := range []string{"POST /api/gateways/:id/connect", "POST /api/gateways/:id/disconnect",
		"POST /api/gateways/:id/sensors/discover", "POST /api/sensors/:id/readings"} {
		assert.Equal(t, "operator", rules[key], key)
	}
}

// Tokens that are unknown, malformed, expired or revoked are all 401; the
// event stream takes its token as a query parameter too.
func TestBadTokens(t *testing.T) {
	e, tokens := authEnv(t, 50*time.Millisecond)
	ctx := context.Background()
	past := time.Now().Add(-time.Minute)
	_, expired, err := e.st.CreateToken(ctx, "old", gatewayd.RoleAdmin, &past)
	require.NoError(t, err)
	revokedTok, revoked, err := e.st.CreateToken(ctx, "gone", gatewayd.RoleAdmin, nil)
	require.NoError(t, err)
	_, err = e.st.RevokeToken(ctx, revokedTok.ID)
	require.NoError(t, err)
	secret(expired)
	secret(revoked)
	for name, h := range map[string][]string{
		"unknown":   bearer("gwd_" + strings.Repeat("A", 43)),
		"not a jwt": bearer("eyJhbGciOi.x.y"),
		"basic":     {"Authorization", "Basic YWRtaW46YWRtaW4="},
		"empty":     {"Authorization", "Bearer "},
		"expired":   bearer(expired),
		"revoked":   bearer(revoked),
	} {
		r := e.do("GET", "/api/organizations", nil, h...)
		assert.Equal(t, 401, r.status, name)
	}
	assert.Equal(t, 200, e.do("GET", "/api/organizations", nil, bearer(tokens[gatewayd.RoleViewer])...).status)
	// HEAD answers as GET does, without the body, behind the same rule.
	for _, h := range [][]string{nil, bearer(tokens[gatewayd.RoleViewer])} {
		r := e.do("HEAD", "/api/organizations", nil, h...)
		assert.Equal(t, map[bool]int{true: 401, false: 200}[h == nil], r.status)
		assert.Empty(t, r.body)
	}
	r := e.do("HEAD", "/api/health", nil)
	assert.Equal(t, 200, r.status, "a probe's HEAD")
	assert.Empty(t, r.body)
	for _, scheme := range []string{"bearer ", "BEARER "} {
		r := e.do("GET", "/api/organizations", nil, "Authorization", scheme+tokens[gatewayd.RoleViewer])
		assert.Equal(t, 200, r.status, "the scheme is case-insensitive: %q", scheme)
	}
	assert.Contains(t, e.logText(), "request refused: no valid API token", "failed attempts are logged")
	assert.Contains(t, e.logText(), `"token":"viewer-token (`, "the access log names the token")
	for _, s := range []string{expired, revoked, tokens[gatewayd.RoleViewer]} {
		assert.NotContains(t, e.logText(), s, "no secret in the log")
	}
	// CORS preflights need no token and allow the Authorization header.
	r = e.do("OPTIONS", "/api/organizations", nil, "Origin", "https://ui.example", "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "Authorization")
	assert.Equal(t, 204, r.status)
	assert.Contains(t, r.header.Get("Access-Control-Allow-Headers"), "Authorization")
}

// While the database cannot answer, tokens it confirmed before keep
// working for what needs no database (gateway status), with their expiry
// still applied; a token never confirmed cannot be checked: 503.
func TestTokensOutliveADatabaseOutage(t *testing.T) {
	ttl := 50 * time.Millisecond
	e, pool := poolEnv(t, api.Options{AuthEnabled: true, TokenCacheTTL: ttl})
	st := e.st
	ctx := context.Background()
	_, viewerText, err := st.CreateToken(ctx, "viewer", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	soon := time.Now().Add(time.Second)
	_, shortText, err := st.CreateToken(ctx, "short", gatewayd.RoleViewer, &soon)
	require.NoError(t, err)
	_, unseenText, err := st.CreateToken(ctx, "unseen", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	revokedTok, revokedText, err := st.CreateToken(ctx, "revoked", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	viewer, short, unseen := bearer(secret(viewerText)), bearer(secret(shortText)), bearer(secret(unseenText))
	revoked := bearer(secret(revokedText))
	require.Equal(t, 200, e.do("GET", "/api/gateways/status", nil, viewer...).status)
	require.Equal(t, 200, e.do("GET", "/api/gateways/status", nil, short...).status)
	require.Equal(t, 200, e.do("GET", "/api/gateways/status", nil, revoked...).status)
	_, err = st.RevokeToken(ctx, revokedTok.ID)
	require.NoError(t, err)
	// Refused once its entry is looked up again: the cache now holds
	// the revocation.
	require.Eventually(t, func() bool { return e.do("GET", "/api/gateways/status", nil, revoked...).status == 401 },
		5*time.Second, 10*time.Millisecond)

	pool.Close()
	// Asked all through several cache lifetimes, so past each entry's.
	for start := time.Now(); time.Since(start) < 4*ttl; {
		r := e.do("GET", "/api/gateways/status", nil, viewer...)
		require.Equal(t, 200, r.status, "status needs no database: %s", r.body)
		r = e.do("GET", "/api/gateways/status", nil, revoked...)
		require.Equal(t, 401, r.status, "a revoked token stays refused through the outage")
	}
	r := e.do("GET", "/api/organizations", nil, viewer...)
	assert.Equal(t, 503, r.status, "what needs the database still says it cannot")
	r = e.do("GET", "/api/gateways/status", nil, unseen...)
	assert.Equal(t, 503, r.status, "a token never confirmed cannot be checked")
	code, _ := r.errorBody(t)
	assert.Equal(t, "SERVICE_UNAVAILABLE", code)
	assert.Eventually(t, func() bool { return e.do("GET", "/api/gateways/status", nil, short...).status == 401 },
		time.Until(soon)+5*time.Second, 10*time.Millisecond, "an expired token is refused, outage or not")
}

// When the background probe finds the database down (a stalled one
// answers nothing for the whole query timeout), a confirmed token is
// answered from its last check at once, without asking the database; a
// token never confirmed is still looked up.
func TestTokensSkipTheDatabaseTheProbeFindsDown(t *testing.T) {
	ttl := 50 * time.Millisecond
	var up atomic.Bool
	up.Store(true)
	e, pool := poolEnv(t, api.Options{AuthEnabled: true, TokenCacheTTL: ttl, DatabaseUp: up.Load})
	st := e.st
	ctx := context.Background()
	tok, text, err := st.CreateToken(ctx, "viewer", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	viewer := bearer(secret(text))
	require.Equal(t, 200, e.do("GET", "/api/gateways/status", nil, viewer...).status)
	lastUsed := func() time.Time {
		t.Helper()
		var at time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT last_used_at FROM api_tokens WHERE id = $1`, tok.ID).Scan(&at))
		return at
	}
	before := lastUsed()

	up.Store(false)
	// Asked all through several cache lifetimes, so past each entry's.
	for start := time.Now(); time.Since(start) < 4*ttl; {
		require.Equal(t, 200, e.do("GET", "/api/gateways/status", nil, viewer...).status)
	}
	assert.Equal(t, before, lastUsed(), "no database round trip while the probe finds it down")

	up.Store(true)
	assert.Eventually(t, func() bool {
		return e.do("GET", "/api/gateways/status", nil, viewer...).status == 200 && lastUsed().After(before)
	}, 5*time.Second, 10*time.Millisecond, "asked again once the probe finds it up")
}

// Tokens through the API: the secret is shown once; a revoked token is
// refused within the cache's lifetime (5 s by default).
func TestTokensAPIAndRevocation(t *testing.T) {
	e, tokens := authEnv(t, 0) // the default lifetime, 5 s
	admin := bearer(tokens[gatewayd.RoleAdmin])
	r := e.do("POST", "/api/tokens", map[string]any{"name": "ci", "role": "operator", "expires_in": "90d"}, admin...)
	require.Equal(t, 201, r.status, string(r.body))
	shownOnce(r.body)
	created := r.json(t)
	tok := secret(created["token"].(string))
	assert.True(t, strings.HasPrefix(tok, "gwd_"))
	assert.Len(t, tok, 4+43)
	assert.Equal(t, "operator", created["role"])
	assertTime(t, created["expires_at"], "expires_at")
	id := created["id"].(string)

	list := e.do("GET", "/api/tokens", nil, admin...)
	require.Equal(t, 200, list.status)
	assert.NotContains(t, string(list.body), tok, "the secret is never shown again")
	assert.NotContains(t, string(list.body), "hash")
	assert.Len(t, list.json(t)["data"], 4)
	// A list as every list: paged, ordered by name.
	page := e.do("GET", "/api/tokens?limit=2&offset=1", nil, admin...)
	require.Equal(t, 200, page.status, string(page.body))
	body := page.json(t)
	assert.Equal(t, map[string]any{"total": 4.0, "limit": 2.0, "offset": 1.0, "hasNext": true, "hasPrev": true}, body["pagination"])
	names := []string{}
	for _, x := range body["data"].([]any) {
		names = append(names, x.(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{"ci", "operator-token"}, names, "admin-token, ci, operator-token, viewer-token")

	op := bearer(tok)
	assert.Equal(t, 200, e.do("GET", "/api/organizations", nil, op...).status)
	assert.Equal(t, 403, e.do("POST", "/api/tokens", map[string]any{"name": "x", "role": "admin"}, op...).status)
	for _, bad := range []map[string]any{{"name": "x", "role": "root"}, {"name": "", "role": "viewer"},
		{"name": "x", "role": "viewer", "expires_in": "forever"}, {"role": "viewer"}} {
		assert.Equal(t, 400, e.do("POST", "/api/tokens", bad, admin...).status, "%v", bad)
	}

	require.Equal(t, 204, e.do("DELETE", "/api/tokens/"+id, nil, admin...).status)
	start := time.Now()
	// 5 s of cache, plus room for a machine under the whole suite's load
	// (a second was not always enough, 2026-12-05): a cache that never
	// expired would still fail here.
	require.Eventually(t, func() bool { return e.do("GET", "/api/organizations", nil, op...).status == 401 },
		10*time.Second, 50*time.Millisecond, "revoked within 5 s")
	t.Logf("revocation took effect after %s", time.Since(start).Round(time.Millisecond))
	// A revoked token stays listed (and counted) with the time of its
	// revocation, which revoking it again does not move.
	listed := func() (item map[string]any, total float64) {
		body := e.do("GET", "/api/tokens?limit=100", nil, admin...).json(t)
		for _, x := range body["data"].([]any) {
			if m := x.(map[string]any); m["id"] == id {
				item = m
			}
		}
		return item, body["pagination"].(map[string]any)["total"].(float64)
	}
	first, total := listed()
	require.NotNil(t, first, "a revoked token is still listed")
	require.NotNil(t, first["revoked_at"])
	assert.Equal(t, 204, e.do("DELETE", "/api/tokens/"+id, nil, admin...).status, "idempotent")
	again, totalAgain := listed()
	assert.Equal(t, first["revoked_at"], again["revoked_at"], "revoking again keeps the first revocation's time")
	assert.Equal(t, total, totalAgain)
	assert.Equal(t, float64(len(e.do("GET", "/api/tokens?limit=100", nil, admin...).json(t)["data"].([]any))), total,
		"the total counts revoked tokens as the page lists them")
	assert.Equal(t, 404, e.do("DELETE", "/api/tokens/"+uuid.NewString(), nil, admin...).status)
}

// Literal addresses gatewayd would never dial are refused at the edge in
// every spelling, on create and on update, and nothing is stored.
func TestDeniedGatewayURLsAreRefused(t *testing.T) {
	e := newEnv(t, api.Options{DialPolicy: netguard.NewPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})})
	f := e.factory(e.org("O"), "F")
	gw := e.gateway(f, "ok") // 127.0.0.1 is inside the allowlist
	for _, host := range []string{
		"169.254.169.254", "[::ffff:169.254.169.254]", "0251.0376.0251.0376", "2852039166", "0xa9fea9fe",
		"169.254.43518", "0.0.0.0", "0", "[::]", "[fe80::1]", "224.0.0.1", "[ff02::1]", "[64:ff9b::a9fe:a9fe]",
		"10.1.2.3", // outside the allowlist
		"[::1]",    // also outside it
	} {
		u := "ws://" + host + ":8080/gw/x"
		r := e.do("POST", "/api/gateways", map[string]any{"factory_id": f, "gateway_id": "bad", "name": "Bad", "url": u,
			"email": "ops@example.com", "password": "pw"})
		require.Equal(t, 400, r.status, "%s: %s", u, r.body)
		code, fields := r.errorBody(t)
		assert.Equal(t, "VALIDATION_ERROR", code)
		assert.Equal(t, []string{"url"}, fields, u)

		r = e.do("PUT", "/api/gateways/"+gw["id"].(string), map[string]any{"url": u, "password": "pw"})
		require.Equal(t, 400, r.status, "%s: %s", u, r.body)
	}
	r := e.do("GET", "/api/gateways", nil)
	require.Equal(t, 200, r.status)
	assert.EqualValues(t, 1, r.json(t)["pagination"].(map[string]any)["total"], "nothing refused was stored")
	assert.Equal(t, gw["url"], e.do("GET", "/api/gateways/"+gw["id"].(string), nil).json(t)["url"], "the update changed nothing")
	// A host name is checked when it is dialed, after resolution.
	e.create("/api/gateways", map[string]any{"factory_id": f, "gateway_id": "named", "name": "Named",
		"url": "ws://gw.plant.example:8080/gw/x", "email": "ops@example.com", "password": "pw"})
}

// The line that logs a burst's refusals a second later names the latest
// refused request as it was: its method, path and address pointed into
// the request's buffers, which later requests reuse (the race detector
// caught it in the web UI's tests).
func TestDelayedRefusalLineNamesItsRequest(t *testing.T) {
	e, tokens := authEnv(t, time.Minute)
	e.do("GET", "/api/organizations", nil) // logged at once
	e.do("GET", "/api/factories", nil)     // logged with the burst, a second later
	for range 20 {
		e.do("GET", "/api/gateways/status?"+strings.Repeat("x=y&", 8), nil, bearer(tokens[gatewayd.RoleViewer])...)
	}
	var last string
	require.Eventually(t, func() bool {
		lines := strings.Split(strings.TrimSpace(e.logText()), "\n")
		n := 0
		for _, l := range lines {
			if strings.Contains(l, "request refused: no valid API token") {
				n, last = n+1, l
			}
		}
		return n == 2
	}, 5*time.Second, 10*time.Millisecond, "the burst's line")
	assert.Contains(t, last, `"path":"/api/factories"`)
	assert.Contains(t, last, `"method":"GET"`)
}

// A token's last_used_at records uses that were let through: a request
// with an expired or revoked token is refused (401) and leaves the
// token's last_used_at as it was (null, or its last real use), while a
// usable token's moves (store.UseToken's WHERE: not revoked, not
// expired). Each token is asked once, so each request is a cache miss
// that asks the database.
func TestOnlyUsableTokensRecordTheirUse(t *testing.T) {
	t.Parallel()
	e, pool := poolEnv(t, api.Options{AuthEnabled: true, TokenCacheTTL: time.Minute})
	ctx := context.Background()
	earlier := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	type token struct {
		expires   *time.Time
		revoked   bool
		lastUsed  *time.Time // as stored before the request
		usable    bool
		id        uuid.UUID
		secretTxt string
	}
	tokens := map[string]*token{
		"usable, never used":          {usable: true},
		"usable, used before":         {lastUsed: &earlier, usable: true},
		"usable until later":          {expires: &future, lastUsed: &earlier, usable: true},
		"expired, never used":         {expires: &past},
		"expired, used before":        {expires: &past, lastUsed: &earlier},
		"revoked, never used":         {revoked: true},
		"revoked, used before":        {revoked: true, lastUsed: &earlier},
		"revoked and expired, unused": {revoked: true, expires: &past},
	}
	for name, tk := range tokens {
		created, text, err := e.st.CreateToken(ctx, name, gatewayd.RoleViewer, tk.expires)
		require.NoError(t, err)
		tk.id, tk.secretTxt = created.ID, secret(text)
		_, err = pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, tk.id, tk.lastUsed)
		require.NoError(t, err)
		if tk.revoked {
			_, err = e.st.RevokeToken(ctx, tk.id)
			require.NoError(t, err)
		}
	}
	lastUsed := func(id uuid.UUID) *time.Time {
		t.Helper()
		var at *time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT last_used_at FROM api_tokens WHERE id = $1`, id).Scan(&at))
		return at
	}
	before := time.Now()
	for name, tk := range tokens {
		r := e.do("GET", "/api/organizations", nil, bearer(tk.secretTxt)...)
		at := lastUsed(tk.id)
		if tk.usable {
			assert.Equal(t, 200, r.status, "%s: %s", name, r.body)
			if assert.NotNil(t, at, "%s: a use is recorded", name) {
				assert.WithinDuration(t, before, *at, time.Minute, "%s: last_used_at moves to the use", name)
				assert.False(t, at.Before(before.Add(-time.Second)), "%s: last_used_at %s is the use's time", name, at)
			}
			continue
		}
		assert.Equal(t, 401, r.status, "%s: %s", name, r.body)
		if tk.lastUsed == nil {
			assert.Nil(t, at, "%s: a refused request is no use", name)
		} else if assert.NotNil(t, at, name) {
			assert.True(t, tk.lastUsed.Equal(*at), "%s: last_used_at stays %s, is %s", name, tk.lastUsed, at)
		}
	}
}

// A token's expires_in is a duration above zero and up to 3660d, the CLI's
// bound (README): the API may not make a token that expires as it is made,
// nor one that outlives the bound.
func TestTokenLifeIsBounded(t *testing.T) {
	e := newEnv(t, api.Options{})
	for _, d := range []string{"0s", "0d", "-1h", "3661d", "87841h"} {
		r := e.do("POST", "/api/tokens", map[string]any{"name": "x", "role": "viewer", "expires_in": d})
		require.Equal(t, 400, r.status, "%s: %s", d, r.body)
		_, fields := r.errorBody(t)
		assert.Equal(t, []string{"expires_in"}, fields, d)
	}
	for _, d := range []string{"1m", "3660d", "87840h"} {
		r := e.do("POST", "/api/tokens", map[string]any{"name": "x", "role": "viewer", "expires_in": d})
		require.Equal(t, 201, r.status, "%s: %s", d, r.body)
		shownOnce(r.body)
		expires, err := time.Parse(time.RFC3339, r.json(t)["expires_at"].(string))
		require.NoError(t, err)
		assert.True(t, expires.After(time.Now()), "%s: expires in the future", d)
	}
}

// Only the event stream takes its token as ?access_token= (EventSource
// cannot send headers); every other route needs the Authorization header,
// so tokens stay out of URLs, and the proxies' logs that keep them.
func TestAccessTokenQueryIsForTheStreamOnly(t *testing.T) {
	e, tokens := authEnv(t, time.Second)
	q := "?access_token=" + tokens[gatewayd.RoleAdmin]
	for _, path := range []string{"/metrics", "/api/gateways/status", "/api/organizations", "/api/tokens"} {
		r := e.do("GET", path+q, nil)
		require.Equal(t, 401, r.status, "%s: %s", path, r.body)
		code, _ := r.errorBody(t)
		assert.Equal(t, "UNAUTHORIZED", code, path)
	}
}

// routes.go's table is API.md §10's rule, route by route, written here
// again from the contract rather than read from the table (as
// TestRoleRouteMatrix's expectations are): public routes hold no data; a
// viewer reads everything; an operator also connects, disconnects,
// discovers and takes readings; an admin also creates, changes and
// deletes, manages tokens and crashes gateways.
func TestRouteRolesAreTheContracts(t *testing.T) {
	publicPaths := map[string]bool{"/": true, "/api/health": true, "/api/ready": true, "/api/openapi.json": true,
		"/api/docs": true, "/api/docs/docs.css": true}
	operatorRoutes := map[string]bool{"POST /api/gateways/:id/connect": true, "POST /api/gateways/:id/disconnect": true,
		"POST /api/gateways/:id/sensors/discover": true, "POST /api/sensors/:id/readings": true}
	want := func(method, path string) string {
		switch {
		case method == "GET" && (publicPaths[path] || strings.HasSuffix(path, "*")): // the UI's static files
			return "public"
		case operatorRoutes[method+" "+path]:
			return "operator"
		case method == "GET" && !strings.HasPrefix(path, "/api/tokens"):
			return "viewer"
		}
		return "admin" // writes, tokens, chaos
	}
	rules := api.RouteAccess(api.Options{ChaosEnabled: true})
	require.Contains(t, rules, "POST /api/debug/gateways/:id/crash")
	for key, got := range rules {
		method, path, _ := strings.Cut(key, " ")
		assert.Equal(t, want(method, path), got, key)
	}
}

// GET /api/whoami tells a client what its own token may do (the UI hides
// what the role may not do): each role its own answer, never the secret;
// no token is 401 as elsewhere; with access control off, everything.
func TestWhoamiAnswersTheRequestsOwnToken(t *testing.T) {
	e, tokens := authEnv(t, time.Second)
	for _, role := range gatewayd.Roles {
		r := e.do("GET", "/api/whoami", nil, bearer(tokens[role])...)
		require.Equal(t, 200, r.status, "%s: %s", role, r.body)
		body := r.json(t)
		assert.Equal(t, true, body["auth_enabled"], role)
		assert.Equal(t, string(role), body["role"])
		tok, ok := body["token"].(map[string]any)
		require.True(t, ok, "%s: the token: %s", role, r.body)
		assert.Equal(t, string(role)+"-token", tok["name"])
		assert.Equal(t, string(role), tok["role"])
		assert.Nil(t, tok["revoked_at"])
		assert.NotContains(t, string(r.body), tokens[role], "never the secret")
		assert.NotContains(t, string(r.body), "hash")
	}
	r := e.do("GET", "/api/whoami", nil)
	assert.Equal(t, 401, r.status)
	assert.Equal(t, `Bearer realm="gatewayd"`, r.header.Get("WWW-Authenticate"))

	t.Run("access control off", func(t *testing.T) {
		open := newEnv(t, api.Options{})
		r := open.do("GET", "/api/whoami", nil)
		require.Equal(t, 200, r.status, string(r.body))
		assert.Equal(t, map[string]any{"auth_enabled": false, "role": "admin", "token": nil}, r.json(t))
	})
}
