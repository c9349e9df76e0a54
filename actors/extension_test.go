package actors_test

// (Found by an audit, helper 13, whose test this is.): 54f676a fails the dial when the 101 names an
// extension, but checks only the first Sec-WebSocket-Extensions header
// (http.Header.Get), while gorilla/websocket switches permessage-deflate on
// from any of them (parseExtensions ranges over every value).

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// README, "What a hostile peer can and cannot do": "a handshake answer
// ... that names a WebSocket extension (gatewayd offers none: a compressed
// frame would inflate past every limit), fails the dial". A 101 whose first
// Sec-WebSocket-Extensions header is empty and whose second names
// permessage-deflate names an extension too: it must fail the dial, and a
// compressed frame must never be inflated past the read limit.
func TestExtensionInASecondHeaderFailsTheDial(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PingInterval, cfg.PongTimeout = time.Minute, time.Minute // nothing else ends the connection
	cfg.BackoffInitial, cfg.BackoffMax = 5*time.Second, 5*time.Second
	h := newHarness(t, cfg)
	const inflated = 16 << 20 // four times the read limit
	bomb := deflateBomb(t, inflated)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sent := make(chan struct{}, 1)
	p := newHandPeer(t, ln, "ws", func(w io.Writer, accept string) error {
		_, err := io.WriteString(w, strings.Join([]string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket",
			"Connection: Upgrade", "Sec-WebSocket-Accept: " + accept,
			"Sec-WebSocket-Extensions: ",
			"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover",
			"", ""}, "\r\n"))
		return err
	}, func(conn net.Conn, br *bufio.Reader, login []byte) {
		text, _ := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(login),
			strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff"))))
		if !strings.Contains(string(login)+string(text), "POST_LOGIN") {
			return
		}
		if _, err := conn.Write(unmaskedFrame(true, 0x1, []byte(loginOK))); err != nil {
			return
		}
		frame := []byte{0xC1, 127, 0, 0, 0, 0, 0, 0, 0, 0}
		for i, n := 9, uint64(len(bomb)); i >= 2; i, n = i-1, n>>8 {
			frame[i] = byte(n)
		}
		if _, err := conn.Write(append(frame, bomb...)); err != nil {
			return
		}
		sent <- struct{}{}
		_, _ = io.Copy(io.Discard, br)
	})
	g := addRawGateway(t, h, "deflate-second-header", p.url)
	var st gatewayd.Status
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		select {
		case <-sent:
			st = h.Status(g.ID)
			t.Fatalf("gatewayd logged in over a 101 naming permessage-deflate in its second Sec-WebSocket-Extensions "+
				"header and was sent a %d-byte compressed frame inflating to %d MiB (state now %s, last_error %q)",
				len(bomb), inflated>>20, st.State, lastError(st))
		default:
		}
		if st = h.Status(g.ID); st.State == gatewayd.StateBackoff {
			require.Contains(t, lastError(st), "extension")
			return
		}
	}
	t.Fatalf("no BACKOFF: state %s, last_error %q", st.State, lastError(st))
}
