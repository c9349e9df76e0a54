package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// GATEWAY_COMMAND_TIMEOUT took any duration up to 65535d (no ceiling),
// but POST /api/gateways/:id/sensors/discover waits
// 4 × GATEWAY_COMMAND_TIMEOUT + a little (api/sensors.go:112, and the
// runtime's ask, actors/runtime.go:397), which wraps negative past ~26,690
// days: a "practically never" timeout such as 30000d (or 36500d, a
// century) is accepted at start, and then every discover answers 504
// GATEWAY_TIMEOUT at once, without the gateway being asked. Either the
// value is refused at start (API.md §1: "a bad value … stops the process
// at start with one line that names the variable"), or it is honoured.
// (Found by an audit, helper 4, whose test this is.)
func TestAHugeCommandTimeoutIsRefusedOrHonoured(t *testing.T) {
	t.Parallel()
	env := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + tmpl.New(t), "AUTH_ENABLED=false",
		"GATEWAY_COMMAND_TIMEOUT=30000d"}
	var out, errb bytes.Buffer
	if code := run([]string{"migrate"}, env, &out, &errb); code != 0 {
		assert.Equal(t, 2, code, errb.String())
		assert.Contains(t, errb.String(), "GATEWAY_COMMAND_TIMEOUT", "refused at start, naming the variable")
		return
	}

	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()
	sg := sim.Add("gw-1", ctctest.Config{Email: "e@example.com", Password: "p"})
	s := startServe(t, env)
	registerGateway(t, s.port, sg)

	base := fmt.Sprintf("http://127.0.0.1:%d/api", s.port)
	res, err := http.Get(base + "/gateways")
	require.NoError(t, err)
	var list struct{ Data []struct{ ID string } }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&list))
	res.Body.Close()
	require.Len(t, list.Data, 1)

	start := time.Now()
	res, err = http.Post(base+"/gateways/"+list.Data[0].ID+"/sensors/discover", "application/json", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode,
		"discover of an authenticated, answering gateway with GATEWAY_COMMAND_TIMEOUT=30000d (answered after %v): %s",
		time.Since(start), body)
}
