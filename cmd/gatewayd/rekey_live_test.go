package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Found by an audit, helper 16, whose test this is.) Within one
// RECONCILE_INTERVAL of the rekey the old-key serve closed every
// authenticated gateway (code 1000) and made it FAILED, though each actor
// still held the password it logged in with, and said nothing of it.
//
// README "Rotating the encryption key", run against a live serve: rekey
// (new key, the old one previous) while a serve with the gateways
// connected still runs on the old key alone. rekey prints its counts and
// exits 0; the serve's gateways stay connected through its reconciles
// (a read it cannot open changes nothing); a serve restarted as step 1
// says opens every password and logs every gateway in again.
func TestRekeyBesideALiveServeOnTheOldKeyDropsNoGateway(t *testing.T) {
	t.Parallel()
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()
	dbURL := tmpl.New(t)
	oldEnv := []string{"DATABASE_URL=" + dbURL, "ENCRYPTION_KEY=" + key, "AUTH_ENABLED=false", "RECONCILE_INTERVAL=1s", "LOG_FORMAT=json"}
	gw := startServe(t, oldEnv)
	api := apiClient(fmt.Sprintf("http://127.0.0.1:%d/api", gw.port))
	org := api.post(t, "/organizations", map[string]any{"name": "O"}, http.StatusCreated)["id"]
	factory := api.post(t, "/factories", map[string]any{"organization_id": org, "name": "F"}, http.StatusCreated)["id"]
	var sims []*ctctest.Gateway
	for i := range 3 {
		name := fmt.Sprintf("gw-%d", i)
		sg := sim.Add(name, ctctest.Config{Email: "e@example.com", Password: "p"})
		sims = append(sims, sg)
		api.post(t, "/gateways", map[string]any{"factory_id": factory, "gateway_id": name, "name": name, "url": sg.URL(),
			"email": "e@example.com", "password": "p"}, http.StatusCreated)
	}
	for _, sg := range sims {
		testutil.Eventually(t, func() bool { s := sg.Stats(); return s.Logins == 1 && s.Open == 1 }, 20*time.Second, "logged in")
	}

	newKey := base64.StdEncoding.EncodeToString([]byte("the new key, thirty-two bytes!!!"))
	rotated := []string{"ENCRYPTION_KEY=" + newKey, "ENCRYPTION_KEYS_PREVIOUS=" + key, "DATABASE_URL=" + dbURL}
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"rekey"}, rotated, &out, &errb), errb.String())
	assert.Equal(t, "resealed 3, already current 0, unreadable 0\n", out.String())
	assert.NotContains(t, errb.String(), "hunter2")

	// Three reconciles of the old-key serve: nothing is dropped.
	deadline := time.Now().Add(3500 * time.Millisecond)
	testutil.Eventually(t, func() bool { return time.Now().After(deadline) }, 5*time.Second, "three reconcile intervals")
	for i, sg := range sims {
		s := sg.Stats()
		assert.Equal(t, 1, s.Open, "gateway %d still connected (close codes %v)\n%s", i, s.CloseCodes, tail(gw.logs.String(), 1500))
		assert.Equal(t, 1, s.Logins, "gateway %d not logged in again", i)
	}

	// Step 1 done late: restarted with the new key, every gateway logs in.
	require.NoError(t, gw.cmd.Process.Signal(syscall.SIGTERM))
	gw.waitExit(t, 15*time.Second)
	require.NoError(t, gw.err, "%s", gw.logs)
	startServe(t, append(rotated, "AUTH_ENABLED=false"))
	for _, sg := range sims {
		testutil.Eventually(t, func() bool { s := sg.Stats(); return s.Logins == 2 && s.Open == 1 }, 20*time.Second, "logged in again")
	}
	out.Reset()
	require.Equal(t, 0, run([]string{"rekey"}, rotated, &out, &errb), errb.String())
	assert.Equal(t, "resealed 0, already current 3, unreadable 0\n", out.String())
}
