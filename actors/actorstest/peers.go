package actorstest

import (
	"encoding/json"
	"net"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// ServePeer serves a scripted gateway on a port of its own until the test
// ends: handle runs for each WebSocket connection, which is closed when it
// returns. It returns the gateway's ws:// URL.
func ServePeer(t testing.TB, handle func(ws *websocket.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		handle(ws)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "ws://" + ln.Addr().String() + "/gw"
}

// RefusingPeer serves, until the test ends, a gateway that answers every
// request (a login first) with RTN_ERR whose Error is text, a refusal in
// words of the peer's choosing. It returns its ws:// URL.
func RefusingPeer(t testing.TB, text string) string {
	t.Helper()
	return ServePeer(t, func(ws *websocket.Conn) {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var req struct{ Type string }
			_ = json.Unmarshal(b, &req)
			out, _ := json.Marshal(map[string]any{"Type": "RTN_ERR", "From": "SERV", "Target": "UI",
				"Data": map[string]any{"Attempt": req.Type, "Error": text}})
			if ws.WriteMessage(websocket.TextMessage, out) != nil {
				return
			}
		}
	})
}
