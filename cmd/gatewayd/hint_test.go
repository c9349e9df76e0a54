package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/store"
)

// A database that does not exist gets the hint that says so, as
// TestHintForAMissingDatabase expects of hintFor: "the database in
// DATABASE_URL (…) does not exist: create it, or run `make db`". But the
// start's retries end with the attempt its patience cuts short, whose error
// ("connect: unavailable: context deadline exceeded") no longer says the
// database is missing, so the process said "PostgreSQL … does not answer:
// start it" of a server that answered every time (found by an audit,
// helper 5: `DATABASE_URL=…/nonexistent gatewayd migrate`).
func TestMissingDatabaseGetsItsHintAfterThePatience(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(tmpl.New(t))
	require.NoError(t, err)
	u.Path = "/gwt_missing_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	hint, err := hintAfterPatience(t, u)
	assert.ErrorIs(t, err, store.ErrNoDatabase, "the last error still says why: %v", err)
	assert.Contains(t, hint, "does not exist: create it")
	assert.NotContains(t, hint, "does not answer")
}

// hintAfterPatience connects to u as the start does, for 1.5 s, and
// returns the hint given for the error it ends with, and that error.
func hintAfterPatience(t *testing.T, u *url.URL) (hint string, err error) {
	t.Helper()
	cfg := &config.Config{DatabaseURL: u.String(), DatabaseMaxConns: 2}
	pool, err := connectWithin(context.Background(), cfg, zerolog.Nop(), 1500*time.Millisecond)
	require.Error(t, err)
	assert.Nil(t, pool)
	return hintFor(context.Background(), err, cfg), err
}
