package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// The mission: a hostile client harms only itself. One client asking for
// a reading's waveform on a few dozen connections and reading nothing
// made gatewayd hold every answer, whole, in its heap for the write
// timeout (30 s): the JSON was built in memory (~20 bytes a sample) beside
// the decoded samples (12 bytes a sample), per request, with no bound
// across requests. 24 such requests of a 400,000-sample reading (a 3.2 MB
// frame, under the 4 MiB frame limit) kept ~400 MiB live; API_MAX_CONNECTIONS
// (4,096 by default) let one client hold ~170 times that, so the process
// would be killed for memory and every gateway's connection with it.
// (Found by an audit, helper 2, whose test this is.) Answers are now made
// as they are written, under api.AnswerBudget; those past it are 503.
func TestWaveformsAClientDoesNotReadAreBoundedInMemory(t *testing.T) {
	t.Parallel()
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()
	const samples = 400_000
	sg := sim.Add("big", ctctest.Config{Email: "e@example.com", Password: "p", Sensors: []ctc.Sensor{{
		Serial: ctctest.DefaultSerialBase + 1, Connected: 1, PartNum: ctctest.DefaultPartNum,
		ReadRate: ctctest.DefaultReadRate, Samples: samples, Name: "Big"}}})
	sg.UpdateFaults(func(f *ctctest.Faults) {
		f.Encoding = ctctest.EncodingBase64
		f.CaptureDelay = 10 * time.Millisecond
	})

	_, env := migrated(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	debug := ln.Addr().String()
	require.NoError(t, ln.Close())
	gw := startServe(t, append(env, "AUTH_ENABLED=false", "DEBUG_ADDR="+debug))
	base := fmt.Sprintf("http://127.0.0.1:%d", gw.port)
	api := base + "/api"
	call := func(method, path string, body any) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequest(method, api+path, rd)
		require.NoError(t, err)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Less(t, resp.StatusCode, 300, "%s %s: %s", method, path, b)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	org := call("POST", "/organizations", map[string]any{"name": "O"})["id"]
	factory := call("POST", "/factories", map[string]any{"organization_id": org, "name": "F"})["id"]
	gwID := call("POST", "/gateways", map[string]any{"factory_id": factory, "gateway_id": "big", "name": "big",
		"url": sg.URL(), "email": "e@example.com", "password": "p"})["id"].(string)
	testutil.Eventually(t, func() bool {
		return call("GET", "/gateways/"+gwID+"/status", nil)["state"] == "AUTHENTICATED"
	}, 20*time.Second, "the gateway logs in")
	sensors := call("POST", "/gateways/"+gwID+"/sensors/discover", nil)["data"].([]any)
	require.Len(t, sensors, 1)
	reading := call("POST", "/sensors/"+sensors[0].(map[string]any)["id"].(string)+"/readings", nil)["id"].(string)
	testutil.Eventually(t, func() bool {
		st := call("GET", "/readings/"+reading, nil)["status"]
		require.NotEqual(t, "FAILED", st)
		return st == "COMPLETE"
	}, 60*time.Second, "the reading completes")

	// The live heap, after a collection (pprof's gc=1 on DEBUG_ADDR).
	heap := func() float64 { return heapOf(t, debug) }
	// One honest download first, read whole: what a reading costs once.
	resp, err := http.Get(api + "/readings/" + reading + "/waveform")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	before := heap()

	// The hostile client: 24 downloads, a small receive window, nothing read.
	const conns = 24
	path := "/api/readings/" + reading + "/waveform"
	for range conns {
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", gw.port))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: t\r\n\r\n")
		require.NoError(t, err)
	}
	// Each request is logged once its answer is made, before it is written:
	// wait until all of them are, then look at the heap.
	testutil.Eventually(t, func() bool { return strings.Count(gw.logs.String(), `"path":"`+path+`"`) >= 1+conns },
		2*time.Minute, "every download was answered")
	const bound = 64 << 20
	grown := heap() - before
	require.Less(t, grown, float64(bound),
		"%d downloads one client does not read hold %.0f MiB of gatewayd's live heap (bound: %d MiB)", conns, grown/(1<<20), bound>>20)
}
