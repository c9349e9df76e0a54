package actors_test

// (Found by an audit, helper 11, whose tests these are.) The socket layer under the frame meter and the quiet
// probe.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// deflateBomb is a permessage-deflate payload (RFC 7692 §7.2.1: the
// DEFLATE stream without its final 00 00 ff ff) that inflates to a valid
// message followed by size bytes of JSON whitespace.
func deflateBomb(t *testing.T, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	require.NoError(t, err)
	_, err = io.WriteString(fw, `{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{}}`)
	require.NoError(t, err)
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	for n := 0; n < size; n += len(spaces) {
		_, err = fw.Write(spaces)
		require.NoError(t, err)
	}
	require.NoError(t, fw.Flush())
	b := buf.Bytes()
	require.True(t, bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}))
	return b[:len(b)-4]
}

// README, "What a hostile peer can and cannot do": "a frame over 4 MiB
// ... cuts its connection off into BACKOFF"; "so a flood costs bounded
// memory". gatewayd never offers permessage-deflate, but gorilla/websocket
// accepts the extension when the gateway's 101 names it anyway, and its
// read limit (readLimit, 4 MiB) counts the bytes on the wire, not the
// inflated message: a compressed frame of a few KB is read whole, as a
// message of any size (DEFLATE inflates ~1000:1, so a 4 MiB frame is ~4
// GiB in gatewayd's heap). The frame meter sees only the small frame.
func TestDeflatedFrameIsHeldToTheReadLimit(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PingInterval, cfg.PongTimeout = time.Minute, time.Minute // nothing else ends the connection
	cfg.BackoffInitial, cfg.BackoffMax = 5*time.Second, 5*time.Second
	h := newHarness(t, cfg)
	p, sent, bomb := bombPeer(t, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover")
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g := addRawGateway(t, h, "deflate-bomb", p.url)
	// A gatewayd that refuses the extension it never offered (RFC 6455
	// §9.1) fails the handshake: nothing is read, and that will do too.
	var st gatewayd.Status
	refused := false
	testutil.Eventually(t, func() bool {
		select {
		case <-sent:
			return true
		default:
		}
		st = h.Status(g.ID)
		refused = st.State == gatewayd.StateBackoff
		return refused
	}, 20*time.Second, "neither refused nor sent the frame")
	if refused {
		t.Logf("refused before login: %q", lastError(st))
		return
	}
	ok := testutil.Poll(func() bool { st = h.Status(g.ID); return st.State == gatewayd.StateBackoff }, 5*time.Second)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	require.True(t, ok, "a %d-byte compressed frame inflating to %d MiB was read whole (state %s, last_error %q; "+
		"this process allocated %d MiB meanwhile); README: a frame over 4 MiB cuts the connection off",
		len(bomb), inflated>>20, st.State, lastError(st), (after.TotalAlloc-before.TotalAlloc)>>20)
}

// inflated is what a bombPeer's compressed frame inflates to: four times
// the read limit.
const inflated = 16 << 20

// bombPeer is a gateway whose 101 carries extLines (extension headers it
// was never offered) and which, once logged in, sends one compressed text
// frame inflating to inflated bytes (the bomb, returned), telling sent.
func bombPeer(t *testing.T, extLines ...string) (p *handPeer, sent <-chan struct{}, bomb []byte) {
	t.Helper()
	bomb = deflateBomb(t, inflated)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{}, 1)
	p = newHandPeer(t, ln, "ws", func(w io.Writer, accept string) error {
		lines := append([]string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket",
			"Connection: Upgrade", "Sec-WebSocket-Accept: " + accept}, extLines...)
		_, err := io.WriteString(w, strings.Join(append(lines, "", ""), "\r\n"))
		return err
	}, func(conn net.Conn, br *bufio.Reader, login []byte) {
		// gorilla compresses what it writes once the extension is on.
		text, _ := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(login),
			strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff"))))
		if !strings.Contains(string(login)+string(text), "POST_LOGIN") {
			return
		}
		if _, err := conn.Write(unmaskedFrame(true, 0x1, []byte(loginOK))); err != nil {
			return
		}
		// One text frame, RSV1 set (compressed), 64-bit length.
		frame := []byte{0xC1, 127, 0, 0, 0, 0, 0, 0, 0, 0}
		for i, n := 9, uint64(len(bomb)); i >= 2; i, n = i-1, n>>8 {
			frame[i] = byte(n)
		}
		if _, err := conn.Write(append(frame, bomb...)); err != nil {
			return
		}
		done <- struct{}{}
		_, _ = io.Copy(io.Discard, br)
	})
	return p, done, bomb
}
