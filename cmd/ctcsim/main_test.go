package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
)

func TestHelpExitsZero(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 0, run(context.Background(), []string{arg}, &stdout, &stderr), arg)
		assert.Empty(t, stderr.String())
		help := stdout.String()
		for _, want := range []string{
			"Usage: ctcsim", "ws://HOST:PORT/gw/<prefix>-<n>", "-sensors", "-capture-delay", "-encoding",
			"-temp-every", "-refuse-readings", "-flood", "-oversize-after-login", "-login-error-size",
			"GET    /control/<name>", "curl -s -X POST http://A/control/gw-1 -d '{\"refuse_logins\":true}'",
			"A·9.80665/(2π·f)/√2 × 1000", "X: A = 0.5 g, f =  50·k Hz", "11.04 mm/s",
		} {
			assert.Contains(t, help, want)
		}
	}
}

func TestBadUsageExitsTwo(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--encoding", "xml"},
		{"--capture-delay", "soon"},
		{"--gateways", "0"},
		{"--sensors", "-1"},
		{"stray"},
	} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &stdout, &stderr), "%v", args)
		assert.Contains(t, stderr.String(), "ctcsim: ", "%v", args)
		assert.Contains(t, stderr.String(), "--help", "%v", args)
		assert.Empty(t, stdout.String(), "%v", args)
	}
}

func TestServesGatewaysUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--gateways", "3", "--sensors", "1", "--encoding", "base64",
			"--start-delay", "0s", "--capture-delay", "0s", "--temp-every", "5ms", "--prefix", "sim"}, pw, &stderr)
		_ = pw.Close()
	}()

	lines := bufio.NewScanner(pr)
	var urls []string
	for len(urls) < 3 && lines.Scan() {
		name, url, ok := strings.Cut(lines.Text(), " ")
		require.True(t, ok, lines.Text())
		assert.Equal(t, "sim-"+string(rune('1'+len(urls))), name)
		urls = append(urls, url)
	}
	require.Len(t, urls, 3)
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	write, read := loggedIn(t, urls[0], 2*time.Second)
	write(ctc.TypeGetDynConnected, nil)
	sensors, _, err := ctc.Sensors(read().(*ctc.DynResult).Data)
	require.NoError(t, err)
	require.Len(t, sensors, 1)
	write(ctc.TypePostSubChanges, nil)
	write(ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 10001})
	var reading *ctc.Reading
	var temp *ctc.Temperature
	for reading == nil || temp == nil {
		switch m := read().(type) {
		case *ctc.Reading:
			reading = m
		case *ctc.Temperature:
			if temp == nil {
				temp = m // the first push: tick 0
			}
		}
	}
	raw, err := base64.StdEncoding.DecodeString(reading.X)
	require.NoError(t, err)
	assert.Len(t, raw, 2*8192, "base64 int16 samples")
	assert.Equal(t, "21", string(temp.Temp), "a number, as gateways send it")

	// The control surface answers on the same address.
	host := strings.TrimPrefix(strings.Split(urls[0], "/gw/")[0], "ws://")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + host + "/control")
	require.NoError(t, err)
	var list struct{ Gateways []struct{ Name string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	_ = resp.Body.Close()
	require.Len(t, list.Gateways, 3)
	assert.Equal(t, "sim-1", list.Gateways[0].Name)

	cancel()
	select {
	case code := <-exit:
		assert.Equal(t, 0, code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	assert.Contains(t, stderr.String(), "serving 3 gateways")
}

// loggedIn dials a simulated gateway and logs in with the default
// credentials; read waits at most wait for each message.
func loggedIn(t *testing.T, url string, wait time.Duration) (write func(typ string, data any), read func() ctc.Message) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	write = func(typ string, data any) {
		b, err := ctc.Encode(typ, data)
		require.NoError(t, err)
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, b))
	}
	read = func() ctc.Message {
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(wait)))
		_, b, err := ws.ReadMessage()
		require.NoError(t, err)
		m, err := ctc.Decode(b)
		require.NoError(t, err)
		return m
	}
	write(ctc.TypePostLogin, ctc.Login{Email: "operator@example.com", Password: "secret"})
	ok, reason := ctc.LoginOutcome(read())
	require.True(t, ok, reason)
	return write, read
}
