package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testdb"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

var tmpl *testdb.Template

// Every response body of the package's tests is kept, and every password
// the tests send is registered: after the run no body may contain one.
var leaks struct {
	sync.Mutex
	bodies    []string
	passwords map[string]bool
	// shown are bodies that carry a secret on purpose: the one answer
	// that shows a new API token.
	shown map[string]bool
}

// shownOnce marks a body as the one that may carry its secret.
func shownOnce(body []byte) {
	leaks.Lock()
	defer leaks.Unlock()
	if leaks.shown == nil {
		leaks.shown = map[string]bool{}
	}
	leaks.shown[string(body)] = true
}

// The tests mostly wait on the runtime, the simulator and PostgreSQL
// (each has its own database; the longest wait on timers): up to 8 run at
// once. The package is the suite's longest and starts first, so at 4 its
// last waiting tests ran alone at the end of make test with a core idle
// (BENCHMARKS.md, 2026-12-04, third session). At 8 one whole-suite run in
// seven once stalled past FastConfig's pong timeout (then 2 s) and failed
// four tests at once, but PostgreSQL's disk was then busy dropping a
// database per test, which testdb no longer does.
func TestMain(m *testing.M) {
	testutil.Parallel(8)
	leaks.passwords = map[string]bool{}
	code := testdb.Run(m, &tmpl)
	leaks.Lock()
	for _, b := range leaks.bodies {
		if leaks.shown[b] {
			continue
		}
		for p := range leaks.passwords {
			if strings.Contains(b, p) {
				fmt.Fprintf(os.Stderr, "a response body contains the password %q: %s\n", p, b)
				code = 1
			}
		}
	}
	leaks.Unlock()
	testdb.Exit(code)
}

func secret(p string) string {
	leaks.Lock()
	leaks.passwords[p] = true
	leaks.Unlock()
	return p
}

// fakeRuntime records what the API tells the runtime; it stands in for
// the actor runtime only in tests of the HTTP contract.
type fakeRuntime struct {
	mu       sync.Mutex
	started  []gatewayd.Target
	updated  []gatewayd.Target
	removed  []uuid.UUID
	failWith error
	ready    bool
}

func (f *fakeRuntime) GatewayStarted(c gatewayd.Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, c)
}

func (f *fakeRuntime) GatewayUpdated(c gatewayd.Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updated = append(f.updated, c)
}

func (f *fakeRuntime) GatewaysRemoved(ids []uuid.UUID, then func()) {
	f.mu.Lock()
	f.removed = append(f.removed, ids...)
	f.mu.Unlock()
	if then != nil {
		then()
	}
}

func (f *fakeRuntime) Status(context.Context, uuid.UUID) (gatewayd.Status, error) {
	return gatewayd.Status{}, gatewayd.ErrNotFound
}

func (f *fakeRuntime) Statuses(context.Context, *uuid.UUID) ([]gatewayd.Status, error) {
	if f.failWith != nil {
		return nil, f.failWith
	}
	return nil, nil
}

func (f *fakeRuntime) Connect(context.Context, uuid.UUID) (gatewayd.Status, error) {
	return gatewayd.Status{}, gatewayd.ErrNotFound
}

func (f *fakeRuntime) Disconnect(context.Context, uuid.UUID) (gatewayd.Status, error) {
	return gatewayd.Status{}, gatewayd.ErrNotFound
}

func (f *fakeRuntime) Crash(context.Context, uuid.UUID) error { return gatewayd.ErrNotFound }
func (f *fakeRuntime) Discover(context.Context, uuid.UUID) (gatewayd.Discovery, error) {
	return gatewayd.Discovery{}, gatewayd.ErrNotFound
}
func (f *fakeRuntime) TakeReading(context.Context, gatewayd.Reading, int64, float64) error {
	return gatewayd.ErrNotFound
}
func (f *fakeRuntime) Reconcile()         {}
func (f *fakeRuntime) Counts() (int, int) { return 3, 2 }
func (f *fakeRuntime) Ready() bool        { return f.ready }

type env struct {
	t    testing.TB
	app  *api.App
	st   *store.Store
	rt   *fakeRuntime
	logs *testutil.SyncBuffer
}

// keptReads keeps every GET's row for far longer than a test: a write
// that the API makes and the store's cache misses shows as a stale
// answer in whichever test reads the row back (store.ReadsKeptFor).
var keptReads = store.ReadsKeptFor(time.Minute)

// newEnv is the API over a fake runtime and a fresh database; tests that
// use it run in parallel.
func newEnv(t *testing.T, opts api.Options) *env {
	t.Helper()
	t.Parallel()
	pool, _ := tmpl.Pool(t)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer, keptReads)
	rt := &fakeRuntime{ready: true}
	logs := &testutil.SyncBuffer{}
	// A failed test shows what the server logged: a 5xx's cause is
	// logged, never sent.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &env{t: t, app: api.New(st, rt, zerolog.New(logs), opts), st: st, rt: rt, logs: logs}
}

func (e *env) logText() string { return e.logs.String() }

// poolEnv is newEnv with opts over a pool the test holds, to close it
// (a database outage).
func poolEnv(t *testing.T, opts api.Options) (*env, *pgxpool.Pool) {
	t.Helper()
	pool, _ := tmpl.Pool(t)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer, keptReads)
	e := &env{t: t, st: st, rt: &fakeRuntime{ready: true}, logs: &testutil.SyncBuffer{}}
	e.app = api.New(st, e.rt, zerolog.New(e.logs), opts)
	return e, pool
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

// errorBody asserts the error shape and returns code and detail fields.
func (r response) errorBody(t *testing.T) (string, []string) {
	t.Helper()
	var eb struct {
		Error struct {
			Code       string
			Message    string
			StatusCode int
			Details    []struct{ Field, Message string }
		}
	}
	require.NoError(t, json.Unmarshal(r.body, &eb), string(r.body))
	assert.Equal(t, r.status, eb.Error.StatusCode, string(r.body))
	assert.NotEmpty(t, eb.Error.Message)
	var fields []string
	for _, d := range eb.Error.Details {
		fields = append(fields, d.Field)
		assert.NotEmpty(t, d.Message)
	}
	return eb.Error.Code, fields
}

// do sends a request; body may be nil, a string (sent raw) or a value
// (sent as JSON). Content-Type is application/json unless headers say.
func (e *env) do(method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.send(req)
}

// send sends a request as it is (do sets a JSON Content-Type on a body).
func (e *env) send(req *http.Request) response {
	e.t.Helper()
	resp, err := e.app.Test(req, -1)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	leaks.Lock()
	leaks.bodies = append(leaks.bodies, string(raw))
	leaks.Unlock()
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (e *env) create(path string, body any) map[string]any {
	e.t.Helper()
	r := e.do("POST", path, body)
	require.Equal(e.t, 201, r.status, string(r.body))
	out := r.json(e.t)
	if path != "/api/tokens" { // a token has no GET of its own
		assert.Equal(e.t, path+"/"+out["id"].(string), r.header.Get("Location"), "the created resource (RFC 9110 §15.3.2)")
	}
	return out
}

var millis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func assertTime(t testing.TB, v any, field string) {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "%s is %T", field, v)
	assert.Regexp(t, millis, s, field)
	_, err := time.Parse(time.RFC3339, s)
	assert.NoError(t, err, field)
}

func (e *env) org(name string) string {
	return e.create("/api/organizations", map[string]any{"name": name})["id"].(string)
}

func (e *env) factory(org, name string) string {
	return e.create("/api/factories", map[string]any{"organization_id": org, "name": name})["id"].(string)
}

func (e *env) gateway(factory, gid string) map[string]any {
	return e.create("/api/gateways", map[string]any{"factory_id": factory, "gateway_id": gid, "name": "GW " + gid,
		"url": "ws://127.0.0.1:9/gw/" + gid, "email": "ops@example.com", "password": secret("pw-" + gid + "-Zq9")})
}

var errBoom = errors.New("boom: pq secret detail")
