package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// API.md §2: the gateway password's "plaintext never reaches a response,
// a log line or an error message". Through a refused login, a heal, a
// chaos crash, a disconnect and a url change, no answer, event or log
// line carries it.
// (Checked by an audit, helper 4, whose test this is.)
func TestGatewayPasswordNeverLeaves(t *testing.T) {
	t.Parallel()
	h := actorstest.New(t, tmpl, actorstest.FastConfig())
	app := api.New(h.Store, h.Runtime, h.Log, api.Options{AuthEnabled: true, ChaosEnabled: true, TokenCacheTTL: time.Second, Telemetry: h.Telemetry})
	base := serveOn(t, app, h.Telemetry.Events)
	_, admin, err := h.Store.CreateToken(context.Background(), "admin", gatewayd.RoleAdmin, nil)
	require.NoError(t, err)
	pw := "PW-" + strings.ReplaceAll(uuid.NewString(), "-", "")
	email := "ops@example.com"
	sg := h.Sim.Add("secret-gw", ctctest.Config{Email: email, Password: pw})
	sg.SetFaults(ctctest.Faults{RefuseLogins: true})

	var seen bytes.Buffer
	call := func(method, path string, body any) (int, map[string]any) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, base+path, rd)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+admin)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		seen.Write(b)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	stream, stop := subscribe(t, base, "?access_token="+admin)
	defer stop()

	code, org := call("POST", "/api/organizations", map[string]any{"name": "O"})
	require.Equal(t, 201, code)
	code, fac := call("POST", "/api/factories", map[string]any{"organization_id": org["id"], "name": "F"})
	require.Equal(t, 201, code)
	code, gw := call("POST", "/api/gateways", map[string]any{"factory_id": fac["id"], "gateway_id": "secret-gw", "name": "S",
		"url": sg.URL(), "email": email, "password": pw})
	require.Equal(t, 201, code)
	id := gw["id"].(string)
	state := func() string {
		_, st := call("GET", "/api/gateways/"+id+"/status", nil)
		s, _ := st["state"].(string)
		return s
	}
	require.Eventually(t, func() bool { return state() == "AUTH_FAILED" }, 10*time.Second, 20*time.Millisecond)
	sg.SetFaults(ctctest.Faults{})
	code, _ = call("POST", "/api/gateways/"+id+"/connect", nil)
	require.Equal(t, 202, code)
	require.Eventually(t, func() bool { return state() == "AUTHENTICATED" }, 10*time.Second, 20*time.Millisecond)
	code, _ = call("POST", "/api/debug/gateways/"+id+"/crash", nil)
	require.Equal(t, 202, code)
	require.Eventually(t, func() bool { return state() == "AUTHENTICATED" }, 10*time.Second, 20*time.Millisecond)
	// Validation failures around the password.
	call("PUT", "/api/gateways/"+id, map[string]any{"url": "ws://169.254.169.254/x", "password": pw})
	call("PUT", "/api/gateways/"+id, map[string]any{"url": "ftp://x/", "password": pw, "email": "bad"})
	call("POST", "/api/gateways", map[string]any{"factory_id": fac["id"], "gateway_id": "secret-gw", "name": "S",
		"url": sg.URL(), "email": email, "password": pw}) // 409
	call("POST", "/api/gateways", map[string]any{"factory_id": uuid.NewString(), "gateway_id": "x", "name": "S",
		"url": sg.URL(), "email": email, "password": pw}) // 422
	call("POST", "/api/gateways", map[string]any{"factory_id": fac["id"], "gateway_id": "y", "name": "S",
		"url": sg.URL(), "email": email, "password": pw, "pasword": pw}) // unknown field
	code, _ = call("POST", "/api/gateways/"+id+"/disconnect", nil)
	require.Equal(t, 202, code)
	call("GET", "/api/gateways/"+id, nil)
	call("GET", "/api/gateways", nil)
	call("GET", "/api/gateways/status", nil)
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	seen.Write(b)
	stop()
	for ev := range stream {
		b, _ := json.Marshal(ev)
		seen.Write(b)
	}
	assert.NotContains(t, seen.String(), pw, "an answer or event carries the password")
	logs := h.Logs.String()
	require.Contains(t, logs, "chaos: crash requested", "precondition: the runtime's log is captured")
	assert.NotContains(t, logs, pw, "a log line carries the password")
}
