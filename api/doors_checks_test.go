package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// API.md §10 / README Security: an open stream "ends within 5 s of its
// revocation or expiry". A stream opened with ?access_token= whose token
// expires while it is open ends within the token ttl of the expiry.
// (Checked by an audit, helper 4, whose test this is.)
func TestStreamEndsWhenItsQueryTokenExpires(t *testing.T) {
	t.Parallel()
	ttl := 2 * time.Second
	h, base := authServer(t, ttl)
	expires := time.Now().Add(1500 * time.Millisecond)
	_, text, err := h.Store.CreateToken(context.Background(), "ui", gatewayd.RoleViewer, &expires)
	require.NoError(t, err)
	stream, stop := subscribe(t, base, "?access_token="+text)
	defer stop()
	drainUntilClosed(t, stream, 10*ttl, "the expired token's stream")
	took := time.Since(expires)
	t.Logf("stream ended %s after expiry (ttl %s)", took.Round(time.Millisecond), ttl)
	require.Less(t, took, ttl+ttl/2, "an expired token's stream ends within the ttl of its expiry")
}

// A revocation through DELETE /api/tokens/:id ends a stream that
// authenticated with ?access_token= within the ttl.
// (Checked by an audit, helper 4, whose test this is.)
func TestAPIRevocationEndsAQueryTokenStream(t *testing.T) {
	t.Parallel()
	ttl := 2 * time.Second
	h, base := authServer(t, ttl)
	ctx := context.Background()
	_, adminText, err := h.Store.CreateToken(ctx, "admin", gatewayd.RoleAdmin, nil)
	require.NoError(t, err)
	tok, text, err := h.Store.CreateToken(ctx, "ui", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	stream, stop := subscribe(t, base, "?access_token="+text)
	defer stop()
	req, err := http.NewRequest("DELETE", base+"/api/tokens/"+tok.ID.String(), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminText)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
	revokedAt := time.Now()
	drainUntilClosed(t, stream, 10*ttl, "the revoked token's stream")
	require.Less(t, time.Since(revokedAt), ttl+ttl/2)
	// And it is refused at once for a new stream.
	req, _ = http.NewRequest("GET", base+"/api/events?access_token="+text, nil)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
}

// rawRequest writes a raw HTTP/1.1 request and returns the whole answer.
func rawRequest(t *testing.T, base, raw string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "(no response: " + err.Error() + ")"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var sb strings.Builder
	_ = resp.Header.Write(&sb)
	return fmt.Sprintf("%d\n%s\n%s", resp.StatusCode, sb.String(), b)
}

// API.md §10: "The access log names the token, never its secret". A token
// given as ?access_token= (the stream's) is never echoed in an answer nor
// written to the log, whatever the request looks like.
// (Checked by an audit, helper 4, whose test this is.)
func TestQueryTokenIsNeverEchoedNorLogged(t *testing.T) {
	t.Parallel()
	h, base := authServer(t, time.Second)
	ctx := context.Background()
	_, good, err := h.Store.CreateToken(ctx, "good", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	gone, revoked, err := h.Store.CreateToken(ctx, "gone", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	_, err = h.Store.RevokeToken(ctx, gone.ID)
	require.NoError(t, err)
	secrets := []string{good, revoked}
	host := strings.TrimPrefix(base, "http://")
	var answers []string
	for _, s := range secrets {
		for _, target := range []string{
			"/api/events?access_token=" + s + "&factory_id=nope",
			"/api/events?access_token=" + s + "&bogus=1",
			"/api/events?access_token=" + s + "&last_event_id=x",
			"/api/events?access_token=" + s + "&access_token=" + s,
			"/api/gateways?access_token=" + s,
			"/api/nope?access_token=" + s,
			"/API/EVENTS?access_token=" + s + "&factory_id=nope",
			"/api/events/?access_token=" + s + "&factory_id=nope",
			"http://" + host + "/api/events?access_token=" + s + "&factory_id=nope",
		} {
			answers = append(answers, rawRequest(t, base, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"))
			answers = append(answers, rawRequest(t, base, "POST "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"a\":"))
			answers = append(answers, rawRequest(t, base, "FOO "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"))
			answers = append(answers, rawRequest(t, base, "GET "+target+" HTTP/1.0\r\n\r\n"))
			answers = append(answers, rawRequest(t, base, "GET "+target+" HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"))
			answers = append(answers, rawRequest(t, base, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nX-Big: "+strings.Repeat("a", 40<<10)+"\r\nConnection: close\r\n\r\n"))
			answers = append(answers, rawRequest(t, base, "POST "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{}"))
			answers = append(answers, rawRequest(t, base, "POST "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"))
			answers = append(answers, rawRequest(t, base, "GET "+target+" HTTP/2.0\r\nHost: "+host+"\r\n\r\n"))
		}
	}
	for _, a := range answers {
		for _, s := range secrets {
			assert.NotContains(t, a, s, "an answer echoes the query token")
		}
	}
	logText := h.Logs.String()
	require.Contains(t, logText, `"path":"/api/nope"`, "precondition: the access log is captured")
	require.Contains(t, logText, "request refused: no valid API token", "precondition: refusals are logged")
	for _, s := range secrets {
		if !assert.NotContains(t, logText, s, "the log holds a query token") {
			for _, line := range strings.Split(logText, "\n") {
				if strings.Contains(line, s) {
					t.Logf("log line: %s", line)
				}
			}
		}
	}
}
