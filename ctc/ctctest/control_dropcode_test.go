package ctctest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README, the simulator's control surface: "An unknown gateway is 404, an
// unknown field or a bad value 400", and `POST /control/<name>/drop?code=`
// refuses a code outside 1000–4999. `POST /control/<name>` took any
// drop_code (-1, 999, 99999: 200), and with drop_after the simulator then
// sent that int cut to 16 bits as a close code (99999 → 34463), which RFC
// 6455 lets no endpoint send: its peer saw a protocol error, not the drop
// it was asked to simulate. (Found by an audit, helper 4, whose test this
// is.)
func TestControlRefusesACloseCodeNoPeerMaySend(t *testing.T) {
	t.Parallel()
	s, err := NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	g := s.Add("gw", Config{})

	for _, code := range []string{"-1", "999", "99999"} {
		status, body := call(t, s, "POST", "/control/gw", `{"drop_code":`+code+`}`)
		assert.Equal(t, 400, status, "drop_code %s: %v", code, body)
	}
	for _, code := range []string{"0", "1000", "4999"} {
		status, body := call(t, s, "POST", "/control/gw", `{"drop_code":`+code+`}`)
		assert.Equal(t, 200, status, "drop_code %s: %v", code, body)
	}

	// What an accepted one does on the wire.
	status, _ := call(t, s, "POST", "/control/gw", `{"drop_code":99999,"drop_after":"50ms"}`)
	if status != 200 {
		return // refused, as it should be
	}
	ws, _, err := websocket.DefaultDialer.Dial(g.URL(), nil)
	require.NoError(t, err)
	defer ws.Close()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	for {
		if _, _, err = ws.ReadMessage(); err != nil {
			break
		}
	}
	var ce *websocket.CloseError
	assert.True(t, errors.As(err, &ce), "the simulated drop ends with a close frame a peer can read, got: %v", err)
}

// Inside 1000–4999, 1004 and 1016–2999 are reserved (RFC 6455 §7.4.2):
// the control surface took them, the simulator sent them in a close
// frame, and the peer (gorilla, as gatewayd) read "bad close code", a
// protocol error, not the drop; and 1014, registered since, gorilla
// refuses as well. (Found by audits, helpers 5 and 8, whose test this is.)
func TestControlRefusesReservedCloseCodes(t *testing.T) {
	t.Parallel()
	s, err := NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	g := s.Add("gw", Config{})

	for _, code := range []int{1004, 1014, 1016, 2000, 2999} {
		status, body := call(t, s, "POST", "/control/gw", fmt.Sprintf(`{"drop_code":%d,"drop_after":"50ms"}`, code))
		if status == 400 {
			continue // refused, as it should be
		}
		require.Equal(t, 200, status, "drop_code %d: %v", code, body)
		// Accepted: what it does on the wire.
		ws, _, err := websocket.DefaultDialer.Dial(g.URL(), nil)
		require.NoError(t, err)
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
		for {
			if _, _, err = ws.ReadMessage(); err != nil {
				break
			}
		}
		ws.Close()
		var ce *websocket.CloseError
		assert.True(t, errors.As(err, &ce), "drop_code %d accepted (200), and the simulated drop ends with: %v", code, err)
	}
}
