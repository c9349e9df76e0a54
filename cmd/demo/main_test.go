package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testdb"
	"github.com/ctcgw/gatewayd/store"
)

var tmpl *testdb.Template

func TestMain(m *testing.M) {
	// A test run started in the background of a script (`make test &`:
	// a shell without job control starts it with SIGINT ignored) passes
	// the ignored SIGINT to the demo script, whose trap then cannot catch
	// it (a shell cannot trap a signal ignored at its start): the Ctrl-C
	// test failed every time so. A signal this process catches is back at
	// its default in a child. (helper 5)
	if signal.Ignored(syscall.SIGINT) {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGINT)
	}
	testdb.Exit(testdb.Run(m, &tmpl))
}

// live serves the real API (access control on) over the real runtime and
// simulator; it returns the API's base URL and an admin token (organizations are an admin's).
func live(t *testing.T) (*actorstest.Harness, string, string) {
	t.Helper()
	h := actorstest.New(t, tmpl, actorstest.FastConfig())
	app := api.New(h.Store, h.Runtime, h.Log, api.Options{AuthEnabled: true, Telemetry: h.Telemetry})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() {
		h.Telemetry.Events.Close()
		_ = app.ShutdownWithTimeout(2 * time.Second)
	})
	_, token, err := h.Store.CreateToken(context.Background(), "demo", gatewayd.RoleAdmin, nil)
	require.NoError(t, err)
	return h, "http://" + ln.Addr().String() + "/api", token
}

// simFile adds n demo gateways to the simulator and writes what ctcsim
// would print.
func simFile(t *testing.T, sim *ctctest.Server, n int) string {
	var lines []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("demo-gw-%d", i)
		g := sim.Add(name, ctctest.Config{Email: "operator@example.com", Password: "demo-password"})
		lines = append(lines, name+" "+g.URL())
	}
	path := filepath.Join(t.TempDir(), "ctcsim.out")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return path
}

func runDemo(t *testing.T, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// The demo finds its own organization, factory and gateways whatever else
// is there (the README's "Acme" first, as a newcomer would have it), runs
// twice without a conflict, and shows every gateway AUTHENTICATED.
func TestDemoIsIdempotentBesideOtherData(t *testing.T) {
	t.Parallel()
	h, base, token := live(t)
	ctx := context.Background()
	// Its metadata holds a number no float64 holds (stored as written):
	// the demo reads lists of other rows and must not choke on it.
	acme, err := h.Store.CreateOrganization(ctx, "Acme", json.RawMessage(`{"huge": 1e400}`))
	require.NoError(t, err)
	_, err = h.Store.CreateFactory(ctx, store.NewFactory{OrganizationID: acme.ID, Name: "Demo Plant"})
	require.NoError(t, err)
	file := simFile(t, h.Sim, 3)
	args := []string{"-api", base, "-token", token, "-gateways", file, "-timeout", "10s"}

	code, out, errText := runDemo(t, args...)
	require.Equal(t, 0, code, "%s\n%s", out, errText)
	assert.Equal(t, 3, strings.Count(out, "demo: registered"), out)
	assert.Equal(t, 3, strings.Count(out, "AUTHENTICATED"), out)
	assert.Contains(t, out, "10001 ", "sensors are listed")

	code, out, errText = runDemo(t, args...)
	require.Equal(t, 0, code, "%s\n%s", out, errText)
	assert.Equal(t, 3, strings.Count(out, "already registered"), out)
	assert.Equal(t, 3, strings.Count(out, "AUTHENTICATED"), out)

	orgs, _, err := h.Store.ListOrganizations(ctx, store.Page{Limit: 100})
	require.NoError(t, err)
	var names []string
	for _, o := range orgs {
		names = append(names, o.Name)
	}
	assert.ElementsMatch(t, []string{"Default Organization", "Org", "Acme", "gatewayd demo"}, names)
	// ("Org" is the harness's.)
	gws, total, err := h.Store.ListGateways(ctx, nil, store.Page{Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, 3, total, "%v", gws)
}

// A demo gateway that cannot log in makes the demo fail, and say which.
func TestDemoFailsUnlessEveryGatewayAuthenticates(t *testing.T) {
	t.Parallel()
	h, base, token := live(t)
	file := simFile(t, h.Sim, 2)
	h.Sim.Gateway("demo-gw-2").SetFaults(ctctest.Faults{RefuseLogins: true})
	code, out, errText := runDemo(t, "-api", base, "-token", token, "-gateways", file, "-timeout", "1s")
	assert.Equal(t, 1, code)
	assert.Contains(t, errText, "1 of 2 demo gateways are not AUTHENTICATED")
	assert.Contains(t, out, "AUTH_FAILED")

	code, _, errText = runDemo(t, "-api", base, "-token", "gwd_wrong", "-gateways", file)
	assert.Equal(t, 1, code)
	assert.Contains(t, errText, "401")
	code, _, _ = runDemo(t, "-api", base)
	assert.Equal(t, 2, code, "-gateways is required")
}
