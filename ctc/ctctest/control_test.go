package ctctest

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
)

// call does one HTTP request against the control surface and decodes a
// JSON answer into a generic value.
func call(t *testing.T, s *Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader(body))
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(b, &out), string(b))
	}
	return resp.StatusCode, out
}

func TestFaultsJSONRoundTrip(t *testing.T) {
	t.Parallel()
	var f Faults
	v := reflect.ValueOf(&f).Elem()
	for i := range v.NumField() {
		field := v.Type().Field(i)
		require.NotEmpty(t, field.Tag.Get("json"), "%s has a json name", field.Name)
		switch fv := v.Field(i); {
		case field.Type == durationType:
			fv.SetInt(int64(time.Duration(i+1) * time.Millisecond))
		case field.Name == "Encoding":
			fv.SetString(string(EncodingBase64))
		case field.Name == "DropCode": // a close code (CheckDropCode)
			fv.SetInt(int64(4000 + i))
		case fv.Kind() == reflect.Bool:
			fv.SetBool(true)
		case fv.Kind() == reflect.Int:
			fv.SetInt(int64(i + 1))
		case fv.Kind() == reflect.String:
			fv.SetString("s")
		default:
			t.Fatalf("field %s of kind %s: teach the JSON codec", field.Name, fv.Kind())
		}
	}
	b, err := json.Marshal(f)
	require.NoError(t, err)
	var back Faults
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, f, back)
	assert.Contains(t, string(b), `"drop_after":"4ms"`)

	b, err = json.Marshal(Faults{CaptureDelay: CaptureRealtime})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"capture_delay":"realtime"`)
	assert.Contains(t, string(b), `"encoding":"csv"`)
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, CaptureRealtime, back.CaptureDelay)

	merged := Faults{Garbage: true}
	require.NoError(t, json.Unmarshal([]byte(`{"flood":true}`), &merged))
	assert.Equal(t, Faults{Garbage: true, Flood: true}, merged, "a merge")
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"flood":true,"nope":1}`), &merged), `unknown field "nope"`)
	assert.Equal(t, Faults{Garbage: true, Flood: true}, merged, "nothing changed by a bad patch")
}

func TestControlSurface(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("alpha", Config{Email: "e", Password: "p"})
	s.Add("beta", Config{Email: "e", Password: "p", Sensors: []ctc.Sensor{}})
	g.SetFaults(Faults{TempEvery: time.Hour})
	ws := session(t, g)
	subscribe(t, ws)

	code, out := call(t, s, "GET", "/control", "")
	require.Equal(t, http.StatusOK, code)
	list := out["gateways"].([]any)
	require.Len(t, list, 2)
	assert.Equal(t, map[string]any{"name": "alpha", "url": g.URL(), "open": 1.0, "accepted": 1.0, "logins": 1.0}, list[0])
	assert.Equal(t, "beta", list[1].(map[string]any)["name"])

	code, out = call(t, s, "GET", "/control/alpha", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "alpha", out["name"])
	faults := out["faults"].(map[string]any)
	assert.Equal(t, "1h0m0s", faults["temp_every"])
	assert.Equal(t, false, faults["refuse_logins"])
	sensors := out["sensors"].([]any)
	require.Len(t, sensors, 2)
	assert.Equal(t, map[string]any{"serial": 10001.0, "name": "Pump 1", "part_num": "TA-CE-WS-1", "read_rate": 25600.0, "samples": 8192.0, "connected": 1.0}, sensors[0])
	st := out["stats"].(map[string]any)
	assert.Equal(t, 1.0, st["logins"])
	frames := st["last_frames"].([]any)
	require.Len(t, frames, 2)
	assert.Equal(t, "POST_SUB_CHANGES", frames[1].(map[string]any)["type"])

	// Merge faults.
	code, out = call(t, s, "POST", "/control/alpha", `{"refuse_logins":true,"drop_after":"5s","encoding":"base64","capture_delay":"realtime"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	assert.Equal(t, "base64", out["faults"].(map[string]any)["encoding"])
	assert.Equal(t, Faults{TempEvery: time.Hour, RefuseLogins: true, DropAfter: 5 * time.Second, Encoding: EncodingBase64, CaptureDelay: CaptureRealtime}, g.Faults())
	for _, bad := range []struct{ body, msg string }{
		{`{"refuse_logins":false,"no_such_fault":true}`, `unknown field "no_such_fault"`},
		{`{"drop_after":5}`, "duration"},
		{`{"drop_after":"soon"}`, "duration"},
		{`{"encoding":"xml"}`, "unknown encoding"},
		{`{"flood":"yes"}`, "flood: want a bool"},
		{`[1]`, "JSON object"},
		{`{`, "JSON object"},
	} {
		code, out = call(t, s, "POST", "/control/alpha", bad.body)
		assert.Equal(t, http.StatusBadRequest, code, bad.body)
		assert.Contains(t, out["error"], bad.msg, bad.body)
	}
	assert.True(t, g.Faults().RefuseLogins, "a bad patch changes nothing")
	g.SetFaults(Faults{})

	// Sensors.
	code, out = call(t, s, "POST", "/control/alpha/sensors", `{"serial":555,"name":"Press"}`)
	require.Equal(t, http.StatusCreated, code, "%v", out)
	assert.Contains(t, g.Sensors(), ctc.Sensor{Serial: 555, Connected: 1, PartNum: "TA-CE-WS-1", ReadRate: 25600, Samples: 8192, Name: "Press"})
	code, _ = call(t, s, "POST", "/control/alpha/sensors", `{"serial":556,"colour":"red"}`)
	assert.Equal(t, http.StatusBadRequest, code, "unknown field")
	code, _ = call(t, s, "POST", "/control/alpha/sensors", `{"name":"no serial"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = call(t, s, "DELETE", "/control/alpha/sensors/555", "")
	assert.Equal(t, http.StatusNoContent, code)
	code, _ = call(t, s, "DELETE", "/control/alpha/sensors/555", "")
	assert.Equal(t, http.StatusNotFound, code, "already gone")
	code, _ = call(t, s, "DELETE", "/control/alpha/sensors/abc", "")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Len(t, g.Sensors(), 2)

	// Pushes.
	code, out = call(t, s, "POST", "/control/alpha/readings/10002", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1.0, out["sent"])
	assert.Equal(t, ctc.Text("10002"), recv(t, ws).(*ctc.Reading).Serial)
	code, out = call(t, s, "POST", "/control/alpha/temperature/10002", `{"temp":25.5}`)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1.0, out["sent"])
	assert.Equal(t, ctc.Temperature{Serial: "10002", Temp: ctc.Scalar("25.5")}, *recv(t, ws).(*ctc.Temperature))
	code, _ = call(t, s, "POST", "/control/alpha/temperature/10002", `{"temperature":25.5}`)
	assert.Equal(t, http.StatusBadRequest, code)

	// Drop.
	code, _ = call(t, s, "POST", "/control/alpha/drop?code=99", "")
	assert.Equal(t, http.StatusBadRequest, code)
	code, out = call(t, s, "POST", "/control/alpha/drop?code=1001", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1.0, out["dropped"])
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, _, err := ws.ReadMessage()
	assert.True(t, websocket.IsCloseError(err, websocket.CloseGoingAway), "%v", err)

	// Unknown gateway, unknown route, wrong method.
	for _, c := range []struct{ method, path string }{
		{"GET", "/control/nobody"}, {"POST", "/control/nobody"}, {"POST", "/control/nobody/drop"},
		{"POST", "/control/nobody/sensors"}, {"DELETE", "/control/nobody/sensors/1"},
		{"POST", "/control/nobody/readings/1"}, {"POST", "/control/nobody/temperature/1"},
	} {
		code, out = call(t, s, c.method, c.path, `{}`)
		assert.Equal(t, http.StatusNotFound, code, c.path)
		assert.Equal(t, `no gateway "nobody"`, out["error"], c.path)
	}
	code, _ = call(t, s, "GET", "/nothing/here", "")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = call(t, s, "PUT", "/control/alpha", "{}")
	assert.Equal(t, http.StatusMethodNotAllowed, code)
}
