package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// holdLarge runs after the handler: a write whose answer was 64 KiB or more
// (a POST or PUT with large metadata echoes it) was refused 503 by the
// answer budget after it was committed. API.md: POST → 201; a 503 is "the
// database cannot serve the request"; README: "past it 503
// SERVICE_UNAVAILABLE with Retry-After: 1" (a client retries, and creates a
// second organization). Only GET answers count now. (Found by an audit,
// helper 12, whose test this is.)
func TestAWriteStoredIsNotAnswered503ByTheAnswerBudget(t *testing.T) {
	e := newEnv(t, api.Options{DBTimeout: 2 * time.Minute})
	// A page of ~18 MB: one unread page is over a client's 16 MiB share
	// (allowed, as the client holds nothing else), so the client holds
	// more than its share until the 30 s write timeout.
	bigOrganizations(e, 18, 1_000_000)
	addr := e.serve()
	const from = "127.0.0.51"
	unreadFrom(t, from, addr, "GET /api/organizations?limit=100 HTTP/1.1\r\nHost: t\r\nX-Request-Id: hog\r\n\r\n")
	testutil.Eventually(t, func() bool { return len(e.accessLines("hog")) == 1 }, 2*time.Minute, "the unread page is made")
	require.EqualValues(t, 200, e.accessLines("hog")[0]["status"], "the page is held, not refused")

	// The same client creates an organization with 100 KB of metadata.
	client := clientFrom(from)
	client.Timeout = time.Minute
	raw, err := json.Marshal(map[string]any{"name": "after-the-page", "metadata": map[string]any{"blob": strings.Repeat("b", 100_000)}})
	require.NoError(t, err)
	resp, err := client.Post("http://"+addr+"/api/organizations", "application/json", bytes.NewReader(raw))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	t.Logf("POST answered %d (Location %q): %.200s", resp.StatusCode, loc, body)
	if loc != "" {
		got := e.do("GET", loc, nil)
		t.Logf("GET %s: %d", loc, got.status)
		if resp.StatusCode != 201 {
			assert.NotEqual(t, http.StatusOK, got.status, "the organization answered %d was stored: %s", resp.StatusCode, loc)
		}
	}
	assert.Equal(t, 201, resp.StatusCode, "POST → 201: %.300s", body)

	// A PUT the same client makes meanwhile: stored, and answered 503 too.
	target := e.create("/api/organizations", map[string]any{"name": "to-update"})["id"].(string)
	raw, err = json.Marshal(map[string]any{"metadata": map[string]any{"put": strings.Repeat("p", 100_000)}})
	require.NoError(t, err)
	req, err := http.NewRequest("PUT", "http://"+addr+"/api/organizations/"+target, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err = client.Do(req)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	got := e.do("GET", "/api/organizations/"+target, nil)
	t.Logf("PUT answered %d; the organization now has metadata.put: %v", resp.StatusCode, strings.Contains(string(got.body), `"put":"ppp`))
	assert.Equal(t, 200, resp.StatusCode, "PUT → 200: %.300s", body)
	if resp.StatusCode != 200 {
		assert.NotContains(t, string(got.body), `"put":"ppp`, "the PUT answered %d was stored", resp.StatusCode)
	}
}
