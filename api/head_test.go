package api_test

import (
	"bufio"
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/wavepack"
)

// completeReading stores a COMPLETE reading of n samples per axis.
func completeReading(t *testing.T, e *env, n int) string {
	t.Helper()
	ctx := context.Background()
	gw := e.gateway(e.factory(e.org("O"), "F"), "G")["id"].(string)
	_, err := e.st.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: uuid.MustParse(gw), At: time.Now(),
		Sensors: []gatewayd.SensorReport{{Serial: 1, Connected: true}}}})
	require.NoError(t, err)
	sensor := e.do("GET", "/api/gateways/"+gw+"/sensors", nil).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	r, s, err := e.st.CreateReading(ctx, uuid.New(), uuid.MustParse(sensor), gatewayd.TriggerManual)
	require.NoError(t, err)
	x, y, z := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range n {
		x[i] = float32(math.Sin(float64(i) / 7))
		y[i] = float32(i%13) / 13
		z[i] = float32(i%101) / 101
	}
	now := time.Now()
	rate := 20000.0
	r.Status, r.StartedAt, r.CompletedAt, r.SampleRateHz, r.Samples = gatewayd.ReadingComplete, &now, &now, &rate, &n
	r.Summary = []byte(`{}`)
	_, err = e.st.SaveReadings(ctx, []gatewayd.ReadingUpdate{{Reading: r, Serial: s.Serial,
		Packed: &gatewayd.PackedWaveform{Format: wavepack.FormatRaw, Data: wavepack.PackRaw(x, y, z)}}})
	require.NoError(t, err)
	return r.ID.String()
}

// README: "Every GET route but the event stream also answers HEAD (the
// same status and headers, no body …)"; RFC 9110 §9.3.2. The waveform is
// a chunked stream of unknown length; for HEAD fasthttp skipped its body
// but still wrote the chunked trailer's closing CRLF, two stray bytes in
// front of the next answer on the kept-alive connection, which a client
// then read as garbage (Go's transport: "Unsolicited response received on
// idle HTTP channel starting with \"\\r\\n\"", and a second HEAD failed
// "malformed HTTP response"). (Found by an audit, helper 2, whose test
// this is.)
func TestHeadOnTheWaveformSendsNoBytesAfterItsHead(t *testing.T) {
	e := newEnv(t, api.Options{})
	id := completeReading(t, e, 1000)
	addr := e.serve()
	for _, accept := range []string{"application/json", "text/csv"} {
		t.Run(accept, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			require.NoError(t, err)
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			for i := range 2 {
				_, err := io.WriteString(conn, "HEAD /api/readings/"+id+"/waveform HTTP/1.1\r\nHost: t\r\nAccept: "+accept+"\r\n\r\n")
				require.NoError(t, err)
				head, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
				require.NoError(t, err, "HEAD %d", i)
				head.Body.Close()
				require.Equal(t, 200, head.StatusCode)
				require.False(t, head.Close, "a keep-alive connection")
				assert.Equal(t, []string{"chunked"}, head.TransferEncoding, "the GET's framing")
				assert.Contains(t, head.Header.Get("Content-Type"), map[string]string{"application/json": "application/json", "text/csv": "text/csv"}[accept])
				assert.Contains(t, head.Header.Values("Vary"), "Accept")
			}

			// The next request on the same connection: its answer must be
			// the next bytes the server sends.
			_, err = io.WriteString(conn, "GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n")
			require.NoError(t, err)
			next, err := br.Peek(len("HTTP/1.1 "))
			require.NoError(t, err)
			assert.Equal(t, "HTTP/1.1 ", string(next), "the bytes after the HEAD answers' heads are the next answer's status line, not %q", next)
		})
	}
}
