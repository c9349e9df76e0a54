package api_test

import (
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// With a background probe, health answers from it and never touches the
// database: with the pool closed it still says what the probe says, and
// ready (its own check) fails.
func TestHealthAnswersFromTheProbe(t *testing.T) {
	pool, _ := tmpl.Pool(t)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer)
	var up atomic.Bool
	up.Store(true)
	var asked atomic.Int32
	rt := &fakeRuntime{ready: true}
	app := api.New(st, rt, zerolog.Nop(), api.Options{DatabaseUp: func() bool { asked.Add(1); return up.Load() }})
	e := &env{t: t, app: app, st: st, rt: rt}

	pool.Close()
	h := e.do("GET", "/api/health", nil)
	require.Equal(t, 200, h.status)
	assert.Equal(t, "ok", h.json(t)["database"], "the probe's last answer, not a ping")
	assert.Equal(t, int32(1), asked.Load())
	up.Store(false)
	assert.Equal(t, "unreachable", e.do("GET", "/api/health", nil).json(t)["database"])
	assert.Equal(t, 503, e.do("GET", "/api/ready", nil).status, "ready keeps its own check")
}
