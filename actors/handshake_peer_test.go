package actors_test

// (Found by an audit, helper 7, whose tests these are.) The socket's frame meter and the handshake layer
// under it: peers that speak the WebSocket handshake by hand, so the test
// controls every byte of the HTTP response and of the frames after it.

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// handPeer is a gateway whose WebSocket handshake and frames are written
// by hand on the accepted connection (plain TCP, or TLS when wrap is set).
// respond writes the HTTP response for the request's accept key; then the
// peer reads the client's first frame (POST_LOGIN) and runs after.
type handPeer struct {
	ln   net.Listener
	url  string
	done chan struct{}
	wg   sync.WaitGroup
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// readClientFrame reads one (masked) client frame and returns its opcode
// and unmasked payload.
func readClientFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var mask [4]byte
	if h[1]&0x80 != 0 {
		if _, err = io.ReadFull(br, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	return h[0] & 0x0f, payload, nil
}

func newHandPeer(t *testing.T, ln net.Listener, scheme string,
	respond func(w io.Writer, accept string) error,
	after func(conn net.Conn, br *bufio.Reader, login []byte)) *handPeer {
	t.Helper()
	p := &handPeer{ln: ln, url: scheme + "://" + ln.Addr().String() + "/gw", done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				go func() { <-p.done; _ = c.Close() }()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if respond(c, acceptKey(req.Header.Get("Sec-WebSocket-Key"))) != nil {
					return
				}
				_, login, err := readClientFrame(br)
				if err != nil {
					return
				}
				after(c, br, login)
			}()
		}
	}()
	t.Cleanup(func() {
		close(p.done)
		_ = ln.Close()
		p.wg.Wait()
	})
	return p
}

// response101 is a valid 101 answer with the given line ending.
func response101(eol string) func(w io.Writer, accept string) error {
	return func(w io.Writer, accept string) error {
		_, err := io.WriteString(w, strings.Join([]string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket",
			"Connection: Upgrade", "Sec-WebSocket-Accept: " + accept, "", ""}, eol))
		return err
	}
}

const loginOK = `{"Type":"RTN_LOGIN","From":"SERV","Target":"UI","Data":{"Email":"e","Success":true}}`

// fragmentFlood answers the login and then sends a text message that
// never ends: one fragment, then total empty continuation fragments
// (README's example of what the meter must count), draining what the
// client writes meanwhile; then it keeps the socket open.
func fragmentFlood(total int, sent chan<- int, done <-chan struct{}) func(conn net.Conn, br *bufio.Reader, login []byte) {
	return func(conn net.Conn, br *bufio.Reader, login []byte) {
		if !strings.Contains(string(login), "POST_LOGIN") {
			return
		}
		go func() { _, _ = io.Copy(io.Discard, br) }()
		if _, err := conn.Write(unmaskedFrame(true, 0x1, []byte(loginOK))); err != nil {
			return
		}
		if _, err := conn.Write(unmaskedFrame(false, 0x1, []byte("{"))); err != nil {
			return
		}
		chunk := []byte(strings.Repeat("\x00\x00", 4096))
		n := 0
		for n < total {
			_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := conn.Write(chunk); err != nil {
				break
			}
			n += 4096
		}
		sent <- n
		<-done
	}
}

// README, "What a hostile peer can and cannot do": "more than 200 frames
// or 8 MiB per second sustained (bursts of 2,000 frames / 32 MiB), cuts
// its connection off into BACKOFF (every WebSocket frame counts, as it is
// read off the socket ...)". The meter starts counting after the
// handshake response's blank line, which it knows only as "\r\n\r\n"; Go's
// HTTP response parser (which gorilla/websocket uses) also takes bare "\n"
// line endings. A peer that answers the upgrade with "\n" line endings is
// never metered: its frames are all taken for more of the HTTP response.
// The same flood after a "\r\n" response is cut off (control).
func TestMeterCountsFramesAfterALFOnlyResponse(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.BackoffInitial, cfg.BackoffMax = 2*time.Second, 2*time.Second
	cfg.PongTimeout = time.Minute // only a flood cut-off ends the connection
	h := newHarness(t, cfg)
	const total = 400_000 // 200 times the frame burst, 800 KB

	for i, eol := range []string{"\r\n", "\n"} {
		name := map[string]string{"\r\n": "crlf", "\n": "lf"}[eol]
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:617%d", i))
			require.NoError(t, err)
			sent := make(chan int, 1)
			done := make(chan struct{})
			defer close(done)
			p := newHandPeer(t, ln, "ws", response101(eol), fragmentFlood(total, sent, done))
			g := addRawGateway(t, h, "flood-"+name, p.url)
			n := <-sent
			// What the peer wrote fits in the socket buffers, so the cut-off
			// is read from the gateway's state.
			eventually(t, func() bool {
				return strings.Contains(lastError(h.Status(g.ID)), "flooding")
			}, 20*time.Second, "%s response: %d empty fragments were never cut off (state %s, last_error %q)",
				name, n, h.Status(g.ID).State, lastError(h.Status(g.ID)))
		})
	}
}
