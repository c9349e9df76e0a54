package actors

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/netutil"
)

// dialAddr dials what gorilla/websocket would: the URL's port, else the
// scheme's; URLs gorilla refuses are left to it.
func TestDialAddr(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"ws://gw.plant.example/ws":       "gw.plant.example:80",
		"wss://gw.plant.example/ws":      "gw.plant.example:443",
		"ws://10.0.0.7:8080/ws?x=1#frag": "10.0.0.7:8080",
		"wss://10.0.0.7:8443":            "10.0.0.7:8443",
		"ws://[fd00::7]/ws":              "[fd00::7]:80",
		"wss://[fd00::7]:9443/ws":        "[fd00::7]:9443",
		"ws://user:pw@gw.plant.example/": "",
		"http://gw.plant.example/":       "",
		"ws:///no-host":                  "",
		"::not a url":                    "",
	} {
		addr, ok := dialAddr(url)
		assert.Equal(t, want != "", ok, url)
		assert.Equal(t, want, addr, url)
	}
}

// A refused dial's last_error is what it was when gorilla/websocket
// dialed; a URL gorilla refuses is still its to name.
func TestDialErrorsNameTheirCause(t *testing.T) {
	rt := startQuietRuntime(t, fixedSource{})
	refused, malformed := uuid.New(), uuid.New()
	for id, url := range map[uuid.UUID]string{refused: "ws://127.0.0.1:9/none", malformed: "ws://user:pw@127.0.0.1:9/none"} {
		rt.GatewayStarted(gatewayd.Target{ID: id, FactoryID: uuid.New(), GatewayID: id.String(), Name: "dial", Desired: gatewayd.DesiredConnected,
			Credentials: gatewayd.Credentials{URL: url, Email: "e@example.com", Password: "p"}})
	}
	lastError := func(id uuid.UUID) string {
		var msg string
		require.Eventually(t, func() bool {
			st, err := rt.Status(context.Background(), id)
			if err != nil || st.State != gatewayd.StateBackoff || st.LastError == nil {
				return false
			}
			msg = *st.LastError
			return true
		}, 10*time.Second, 5*time.Millisecond)
		return msg
	}
	assert.Equal(t, "dial failed: dial: connection refused", lastError(refused))
	assert.Equal(t, "dial failed: malformed ws or wss URL", lastError(malformed))
}

// BenchmarkRefusedDial: one attempt at a gateway whose port refuses,
// what every retry of an unreachable gateway costs.
func BenchmarkRefusedDial(b *testing.B) {
	d := &deps{cfg: Config{ConnectTimeout: time.Second}.withDefaults(), dialer: &websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := handshake(context.Background(), d, "ws://127.0.0.1:9/gw"); err == nil {
			b.Fatal("port 9 answered")
		}
	}
}

// pending tells bytes the kernel holds for a socket, without taking them:
// the quiet probe's peek, which gatewayd relies on alone (QuietWait 0).
func TestPendingPeeksWithoutTaking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()

	assert.False(t, netutil.Pending(client), "nothing sent yet")
	_, err = server.Write([]byte("hi"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return netutil.Pending(client) }, 5*time.Second, time.Millisecond, "sent")
	b := make([]byte, 2)
	_, err = io.ReadFull(client, b)
	require.NoError(t, err)
	assert.Equal(t, "hi", string(b), "the peek took nothing")
	assert.False(t, netutil.Pending(client), "all read")
	a, b2 := net.Pipe()
	defer a.Close()
	defer b2.Close()
	assert.False(t, netutil.Pending(a), "a connection without a descriptor has none")
}
