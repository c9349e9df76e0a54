package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// forgeStream is an /api/events response's bytes as they came.
type forgeStream struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *forgeStream) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

func openForgeStream(t *testing.T, url string) *forgeStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	s := &forgeStream{}
	go func() {
		defer resp.Body.Close()
		b := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

type parsedEvent struct {
	id, typ, data string
}

// parseEventStream is the HTML standard's event stream interpretation: a
// line ends at CRLF, LF or CR; a blank line dispatches; "data" lines are
// joined with LF. This is what a browser's EventSource makes of the bytes.
func parseEventStream(b []byte) []parsedEvent {
	var out []parsedEvent
	var cur parsedEvent
	var data []string
	text := strings.TrimPrefix(string(b), "\uFEFF")
	for len(text) > 0 {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			break // an incomplete last line: not dispatched
		}
		line := text[:i]
		if strings.HasPrefix(text[i:], "\r\n") {
			text = text[i+2:]
		} else {
			text = text[i+1:]
		}
		if line == "" {
			if data != nil {
				cur.data = strings.Join(data, "\n")
				if cur.typ == "" {
					cur.typ = "message"
				}
				out = append(out, cur)
			}
			cur.typ, data = "", nil // the id persists, as EventSource's last event id does
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			cur.typ = value
		case "data":
			data = append(data, value)
		case "id":
			cur.id = value
		}
	}
	return out
}

// Brief (audit helper 3): "can a hostile sensor name break the SSE
// framing and inject fake events for other gateways into a subscriber's
// stream?" A gateway's login refusal text reaches last_error, which every
// gateway.state event carries. A gateway whose refusal holds every line
// break the event stream format knows (LF, CR, CRLF), each followed by a
// whole forged gateway.state frame about an honest gateway, plus U+2028,
// NEL and NUL: the bytes a stream filtered to the honest gateway gets,
// read as a browser's EventSource reads them, hold none of its events,
// and an unfiltered stream's events each decode as one JSON object, the
// hostile one's last_error exactly the status's. Held. (Checked by an
// audit, helper 3.)
func TestAHostileLoginErrorForgesNoEvent(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	base := e.listen()
	honest, _ := e.add("honest")
	e.waitState(honest, "AUTHENTICATED")

	forged := `id: 999999` + "\n" + `event: gateway.state` + "\n" + `data: {"id":"` + honest + `","to":"FAILED","last_error":"forged"}`
	text := "refused\n\n" + forged + "\n\n" +
		"\r\r" + strings.ReplaceAll(forged, "\n", "\r") + "\r\r" +
		"\r\n\r\n" + strings.ReplaceAll(forged, "\n", "\r\n") + "\r\n\r\n" +
		"\u2028\u2029\u0085\x00 end"

	mine := openForgeStream(t, base+"/api/events?gateway_id="+honest)
	all := openForgeStream(t, base+"/api/events")
	require.Eventually(t, func() bool { return e.h.Telemetry.Events.Subscribers() == 2 }, 5*time.Second, 5*time.Millisecond)

	hostile := e.create("/api/gateways", map[string]any{"factory_id": e.factoryID, "gateway_id": "forger", "name": "forger",
		"url": actorstest.RefusingPeer(t, text), "email": "f@example.com", "password": secret("pw-forger-Zz9")})["id"].(string)
	st := e.waitState(hostile, "AUTH_FAILED")
	lastError, _ := st["last_error"].(string)
	require.Contains(t, lastError, "event: gateway.state", "the refusal's text reached last_error")

	// The unfiltered stream has the refusal.
	var evs []parsedEvent
	require.Eventually(t, func() bool {
		evs = parseEventStream(all.bytes())
		for _, ev := range evs {
			if ev.typ == "gateway.state" && strings.Contains(ev.data, hostile) && strings.Contains(ev.data, "AUTH_FAILED") {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the unfiltered stream's AUTH_FAILED of the hostile gateway")
	sawRefusal := false
	for _, ev := range evs {
		assert.NotEqual(t, "999999", ev.id, "a forged id")
		var d map[string]any
		require.NoError(t, json.Unmarshal([]byte(ev.data), &d), "%s: data is not one JSON object: %q", ev.typ, ev.data)
		if ev.typ == "gateway.state" && d["id"] == honest {
			assert.NotEqual(t, "FAILED", d["to"], "a forged state change of the honest gateway")
			assert.NotEqual(t, "forged", d["last_error"], "a forged state change of the honest gateway")
		}
		if ev.typ == "gateway.state" && d["id"] == hostile && d["to"] == "AUTH_FAILED" {
			sawRefusal = true
			assert.Equal(t, lastError, d["last_error"], "the event's last_error is the status's")
		}
	}
	assert.True(t, sawRefusal)

	// The honest gateway's stream: only its events, none forged.
	for _, ev := range parseEventStream(mine.bytes()) {
		assert.NotEqual(t, "999999", ev.id, "a forged id")
		var d map[string]any
		require.NoError(t, json.Unmarshal([]byte(ev.data), &d), "%s: %q", ev.typ, ev.data)
		gw := d["id"] // gateway.*: the gateway's; sensor.* and reading.*: gateway_id
		if !strings.HasPrefix(ev.typ, "gateway.") {
			gw = d["gateway_id"]
		}
		assert.Equal(t, honest, gw, "an event of another gateway in a gateway_id stream: %s %q", ev.typ, ev.data)
		assert.NotEqual(t, "FAILED", d["to"])
	}
	assert.False(t, bytes.ContainsAny(all.bytes(), "\r"), "a CR in the stream (a line break to EventSource)")
}
