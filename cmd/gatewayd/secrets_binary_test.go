package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Checked by an audit, helper 9, whose test this is.) API.md §10 and README "Security", against the real
// binary at LOG_LEVEL=debug: no secret (a gateway password, an API token,
// ENCRYPTION_KEY, DATABASE_URL's password, a URL's userinfo) reaches an
// answer or a log line, through logins, a refused login, a chaos crash,
// refused requests (a token in the query of a route that takes none, a
// URL with userinfo, a denied address) and a restart; and the allowlist is
// applied to the address dialed after name resolution at every dial: a
// gateway registered by name (localhost, /etc/hosts) while 127.0.0.0/8 was
// allowed is refused, BACKOFF "address not allowed", once gatewayd runs
// again with an allowlist that leaves 127.0.0.0/8 out, and the peer never
// sees a second login.
// It would catch: a secret printed by any of those paths (the access log's
// query string, a validation detail echoing input, pgx/startup lines with
// the DB URL, dial errors), or an allowlist checked only when a URL is
// written, or a connection kept/redialed past a narrowed allowlist.
func TestSecretsStayOutAndTheAllowlistHoldsAcrossARestart(t *testing.T) {
	t.Parallel()
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()
	const (
		pw       = "PWSECRET-7f3a9c"
		refused  = "PWSECRET-refused-41b2"
		dbSecret = "DBSECRET-c0ffee"
		userinfo = "USERINFOSECRET-9d1e"
	)
	// Trust authentication ignores the password; it is there to be masked.
	u, err := url.Parse(tmpl.New(t))
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), dbSecret)
	dbURL := u.String()
	base := []string{"DATABASE_URL=" + dbURL, "ENCRYPTION_KEY=" + key, "LOG_LEVEL=debug", "LOG_FORMAT=json",
		"CHAOS_ENABLED=true", "RECONCILE_INTERVAL=1s", "GATEWAY_BACKOFF_INITIAL=100ms", "GATEWAY_BACKOFF_MAX=200ms"}

	var cliOut, cliErr bytes.Buffer
	require.Equal(t, 0, run([]string{"token", "create", "--name", "root", "--role", "admin"}, base, &cliOut, &cliErr), cliErr.String())
	admin := strings.TrimSpace(cliOut.String())
	require.True(t, strings.HasPrefix(admin, "gwd_"), admin)
	secrets := map[string]string{"gateway password": pw, "refused password": refused, "db password": dbSecret,
		"userinfo": userinfo, "admin token": admin, "encryption key": key}

	first := startServe(t, append(base, "GATEWAY_ALLOWED_NETWORKS=127.0.0.0/8"))
	var answers bytes.Buffer
	call := func(port int, method, path, query string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s%s", port, path, query), rd)
		require.NoError(t, err)
		if query == "" {
			req.Header.Set("Authorization", "Bearer "+admin)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		answers.Write(b)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return res.StatusCode, m
	}
	code, org := call(first.port, "POST", "/api/organizations", "", map[string]any{"name": "O"})
	require.Equal(t, 201, code)
	code, fac := call(first.port, "POST", "/api/factories", "", map[string]any{"organization_id": org["id"], "name": "F"})
	require.Equal(t, 201, code)
	sg := sim.Add("named", ctctest.Config{Email: "e@example.com", Password: pw})
	byName := strings.Replace(sg.URL(), "ws://127.0.0.1:", "ws://localhost:", 1)
	require.NotEqual(t, sg.URL(), byName)
	code, gw := call(first.port, "POST", "/api/gateways", "", map[string]any{"factory_id": fac["id"], "gateway_id": "named",
		"name": "named", "url": byName, "email": "e@example.com", "password": pw})
	require.Equal(t, 201, code)
	id := gw["id"].(string)
	testutil.Eventually(t, func() bool { s := sg.Stats(); return s.Logins == 1 && s.Open == 1 }, 20*time.Second, "logged in by name")

	sr := sim.Add("refuser", ctctest.Config{Email: "e@example.com", Password: "other"})
	code, _ = call(first.port, "POST", "/api/gateways", "", map[string]any{"factory_id": fac["id"], "gateway_id": "refuser",
		"name": "refuser", "url": sr.URL(), "email": "e@example.com", "password": refused})
	require.Equal(t, 201, code)
	testutil.Eventually(t, func() bool { return strings.Contains(first.logs.String(), "AUTH_FAILED") }, 20*time.Second, "the refusal")

	// Refused input that carries secrets.
	for _, bad := range []string{"wss://ops:" + userinfo + "@127.0.0.1:1/gw", "ws://" + userinfo + "@127.0.0.1:1/gw",
		"ws://169.254.169.254/gw?password=" + userinfo, "ftp://127.0.0.1/" + userinfo} {
		code, _ = call(first.port, "POST", "/api/gateways", "", map[string]any{"factory_id": fac["id"], "gateway_id": "bad",
			"name": "bad", "url": bad, "email": "e@example.com", "password": pw})
		assert.Equal(t, 400, code, bad)
	}
	code, _ = call(first.port, "PUT", "/api/gateways/"+id, "", map[string]any{"url": "ws://a:" + userinfo + "@localhost:1/x", "password": pw})
	assert.Equal(t, 400, code)
	code, _ = call(first.port, "GET", "/api/gateways", "?access_token="+admin, nil)
	assert.Equal(t, 401, code, "no access_token outside the stream")
	code, _ = call(first.port, "GET", "/api/organizations", "?token="+admin+"&password="+pw, nil)
	assert.Equal(t, 401, code)
	code, _ = call(first.port, "POST", "/api/debug/gateways/"+id+"/crash", "", nil)
	require.Equal(t, 202, code)
	testutil.Eventually(t, func() bool { s := sg.Stats(); return s.Logins == 2 && s.Open == 1 }, 20*time.Second, "back after the crash")
	for _, p := range []string{"/api/gateways", "/api/gateways/" + id, "/api/gateways/status", "/api/tokens", "/api/whoami", "/metrics"} {
		code, _ = call(first.port, "GET", p, "", nil)
		assert.Equal(t, 200, code, p)
	}

	require.NoError(t, first.cmd.Process.Signal(syscall.SIGTERM))
	first.waitExit(t, 15*time.Second)
	require.NoError(t, first.err, "%s", first.logs)
	testutil.Eventually(t, func() bool { return sg.Stats().Open == 0 }, 10*time.Second, "closed at shutdown")

	// The plant network is now elsewhere: localhost resolves outside it.
	second := startServe(t, append(base, "GATEWAY_ALLOWED_NETWORKS=10.20.0.0/16"))
	var last map[string]any
	testutil.Eventually(t, func() bool {
		_, last = call(second.port, "GET", "/api/gateways/"+id+"/status", "", nil)
		return last["state"] == "BACKOFF" && last["last_error"] == "address not allowed"
	}, 20*time.Second, "refused at the dial after a restart")
	// Two more retries, and still nothing reached the peer.
	before := len(second.logs.String())
	testutil.Eventually(t, func() bool { return strings.Count(second.logs.String()[before:], "address not allowed") >= 2 }, 20*time.Second,
		"it keeps being refused")
	assert.Equal(t, 2, sg.Stats().Logins, "no login past the narrowed allowlist")
	assert.Equal(t, 0, sg.Stats().Open)
	code, _ = call(second.port, "GET", "/api/gateways/"+id, "", nil)
	require.Equal(t, 200, code)
	require.NoError(t, second.cmd.Process.Signal(syscall.SIGTERM))
	second.waitExit(t, 15*time.Second)

	logs := first.logs.String() + second.logs.String() + cliErr.String() + cliOut.String()[len(admin)+1:]
	require.Contains(t, logs, "/api/organizations", "precondition: the access log is captured")
	for what, s := range secrets {
		if !assert.NotContains(t, answers.String(), s, "an answer holds the %s", what) {
			t.Logf("answers: %s", answers.String())
		}
		if !assert.NotContains(t, logs, s, "a log line holds the %s", what) {
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, s) {
					t.Logf("line: %s", line)
				}
			}
		}
	}
}
