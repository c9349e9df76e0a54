package actors_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/store"
)

// A peer that has not logged in (its POST_LOGIN is unanswered) sends an
// unsolicited WebSocket pong. README: "nothing a gateway pushes before its
// login is accepted is stored"; API.md §4: last_seen_at is written "on
// every successful login and at least once a minute while authenticated".
// The pong moved last_seen_at anyway (status and database), and a
// gateway with a last_seen_at starts in the dial limiter's open lane after
// a restart, as if it had logged in (found by an audit, helper 6, whose
// test this is).
func TestPongBeforeLoginIsNotSeen(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.AuthTimeout = 30 * time.Second
	h := newHarness(t, cfg)
	answered := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if _, b, err := ws.ReadMessage(); err != nil || !strings.Contains(string(b), "POST_LOGIN") {
			return
		}
		// Never answer the login. A pong nobody asked for, then a ping:
		// gatewayd's answer to the ping says its reader has handled the pong.
		_ = ws.WriteControl(websocket.PongMessage, []byte("x"), time.Now().Add(time.Second))
		ws.SetPongHandler(func(string) error { close(answered); return nil })
		_ = ws.WriteControl(websocket.PingMessage, []byte("y"), time.Now().Add(time.Second))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	g, err := h.Store.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.Factory, GatewayID: "pong-peer",
		Name: "pong-peer", URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Email: "a@example.com", Password: "pw"})
	require.NoError(t, err)
	h.Runtime.GatewayStarted(g.Target("pw"))
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("gatewayd never answered the peer's ping")
	}
	st := h.Status(g.ID)
	assert.Equal(t, "CONNECTED", string(st.State))
	assert.Nil(t, st.LastSeenAt, "a peer that never logged in was seen")
}
