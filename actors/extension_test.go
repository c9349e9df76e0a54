package actors_test

// (Found by an audit, helper 13, whose test this is.) 54f676a failed the dial when the 101 names an
// extension, but checked only the first Sec-WebSocket-Extensions header
// (http.Header.Get), while gorilla/websocket switches permessage-deflate on
// from any of them (parseExtensions ranges over every value).

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
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
	p, sent, bomb := bombPeer(t, "Sec-WebSocket-Extensions: ",
		"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover")
	g := addRawGateway(t, h, "deflate-second-header", p.url)
	var st gatewayd.Status
	backoff := testutil.Poll(func() bool {
		select {
		case <-sent:
			st = h.Status(g.ID)
			t.Fatalf("gatewayd logged in over a 101 naming permessage-deflate in its second Sec-WebSocket-Extensions "+
				"header and was sent a %d-byte compressed frame inflating to %d MiB (state now %s, last_error %q)",
				len(bomb), inflated>>20, st.State, lastError(st))
		default:
		}
		st = h.Status(g.ID)
		return st.State == gatewayd.StateBackoff
	}, 10*time.Second)
	if !backoff {
		t.Fatalf("no BACKOFF: state %s, last_error %q", st.State, lastError(st))
	}
	require.Contains(t, lastError(st), "extension")
}
