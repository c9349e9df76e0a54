package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Checked by an audit, helper 9, whose test this is.) API.md §10 "wss:// verifies the gateway's
// certificate against the system roots plus GATEWAY_CA_FILE", through the
// real binary's configuration (the actors' tests build the TLS config
// themselves, so they would not catch serve.go dropping the variable):
// with the CA file a gateway at the certificate's address logs in and one
// reached by another name (localhost; the certificate names only
// 127.0.0.1) is BACKOFF with a certificate error; without the CA file the
// same peer is BACKOFF with a certificate error too. No credentials go to
// a peer that was not verified.
// It would catch: GATEWAY_CA_FILE not wired, InsecureSkipVerify, a
// ServerName taken from the dialed address instead of the URL, or a
// last_error that does not say it was the certificate.
func TestGatewayCAFileThroughTheBinary(t *testing.T) {
	t.Parallel()
	caFile, serverTLS := testutil.NewTestCA(t, "127.0.0.1")
	sim, err := ctctest.NewTLSServer("127.0.0.1:0", serverTLS)
	require.NoError(t, err)
	defer sim.Close()

	type result struct{ state, lastError string }
	register := func(port int, name string, byName bool) (*ctctest.Gateway, func() result) {
		sg := sim.Add(name, ctctest.Config{Email: "e@example.com", Password: "p-" + name})
		u := sg.URL()
		require.True(t, strings.HasPrefix(u, "wss://127.0.0.1:"), u)
		if byName {
			u = strings.Replace(u, "wss://127.0.0.1:", "wss://localhost:", 1)
		}
		a := apiClient(fmt.Sprintf("http://127.0.0.1:%d/api", port))
		org := a.post(t, "/organizations", map[string]any{"name": "O-" + name}, http.StatusCreated)["id"]
		factory := a.post(t, "/factories", map[string]any{"organization_id": org, "name": "F"}, http.StatusCreated)["id"]
		id := a.post(t, "/gateways", map[string]any{"factory_id": factory, "gateway_id": name, "name": name, "url": u,
			"email": "e@example.com", "password": "p-" + name}, http.StatusCreated)["id"].(string)
		return sg, func() result {
			res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/gateways/%s/status", port, id))
			require.NoError(t, err)
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m), "%s", b)
			le, _ := m["last_error"].(string)
			return result{m["state"].(string), le}
		}
	}
	env := func() []string {
		return []string{"DATABASE_URL=" + tmpl.New(t), "ENCRYPTION_KEY=" + key, "AUTH_ENABLED=false",
			"GATEWAY_BACKOFF_INITIAL=100ms", "GATEWAY_BACKOFF_MAX=200ms"}
	}

	withCA := startServe(t, append(env(), "GATEWAY_CA_FILE="+caFile))
	okSG, ok := register(withCA.port, "trusted", false)
	testutil.Eventually(t, func() bool { return ok().state == "AUTHENTICATED" }, 20*time.Second, "verified and logged in")
	assert.Equal(t, 1, okSG.Stats().Logins)

	otherSG, other := register(withCA.port, "other-name", true)
	var r result
	testutil.Eventually(t, func() bool { r = other(); return r.state == "BACKOFF" }, 20*time.Second, "refused: another name")
	t.Logf("name mismatch: %q", r.lastError)
	assert.Contains(t, r.lastError, "certificate")
	assert.Contains(t, r.lastError, "localhost", "the error names the name that did not match")

	without := startServe(t, env())
	noCASG, noCA := register(without.port, "untrusted", false)
	testutil.Eventually(t, func() bool { r = noCA(); return r.state == "BACKOFF" }, 20*time.Second, "refused: unknown CA")
	t.Logf("unknown authority: %q", r.lastError)
	assert.Contains(t, r.lastError, "certificate")

	// A few more retries of each refused one: still no credentials sent.
	before := strings.Count(without.logs.String(), "certificate")
	testutil.Eventually(t, func() bool { return strings.Count(without.logs.String(), "certificate") >= before+2 }, 20*time.Second, "retried")
	assert.Zero(t, otherSG.Stats().Logins, "no credentials to a peer of another name")
	assert.Zero(t, noCASG.Stats().Logins, "no credentials to an unverified peer")
}
