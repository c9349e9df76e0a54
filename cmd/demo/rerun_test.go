package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// README (Quick start): "`make demo` does the same ... Run again, it finds
// its own organization, factory and gateways (by `gateway_id`) whatever
// else the database holds, and sets their credentials again"; `make run`
// "prints their states and sensors (all AUTHENTICATED; otherwise it says so
// and exits non-zero)". A demo gateway that was once refused (the README's
// own simulator example breaks demo-gw-2's logins; interrupt it, or play
// with the control surface, then restart `make run`: a fresh simulator
// accepts the login again, and gatewayd restores AUTH_FAILED from the row,
// migration 008) must authenticate again when the demo is re-run. The
// demo's PUT repeated the stored url/email/password and CONNECTED, which
// the API (as README documents) treats as no connect, so the gateway
// stayed AUTH_FAILED and every later `make run`/`make demo` failed until
// the newcomer found out to POST /connect by hand. (Found by an audit,
// helper 6, whose test this is.)
func TestDemoRerunRevivesARefusedDemoGateway(t *testing.T) {
	t.Parallel()
	h, base, token := live(t)
	file := simFile(t, h.Sim, 2)
	args := []string{"-api", base, "-token", token, "-gateways", file, "-timeout", "10s"}

	// First run: demo-gw-2's logins are refused (AUTH_FAILED, no retries).
	h.Sim.Gateway("demo-gw-2").SetFaults(ctctest.Faults{RefuseLogins: true})
	code, out, _ := runDemo(t, append(args[:len(args)-2:len(args)-2], "-timeout", "1s")...)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "AUTH_FAILED")

	// The simulator accepts the demo's credentials again (a new ctcsim on
	// the next `make run` does), and the demo is run again.
	h.Sim.Gateway("demo-gw-2").SetFaults(ctctest.Faults{RefuseLogins: false})
	code, out, errText := runDemo(t, args...)
	assert.Equal(t, 0, code, "re-running the demo leaves a demo gateway it re-registered AUTH_FAILED:\n%s\n%s", out, errText)
	assert.Equal(t, 2, strings.Count(out, "AUTHENTICATED"), out)
}
