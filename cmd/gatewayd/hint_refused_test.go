package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/store"
)

// A server that answers and refuses the login (a user that does not
// exist, a wrong password: SQLSTATE class 28) was classified as
// unavailable, and after its 30 s of retries the process ended with the
// hint of a server that is down: "PostgreSQL at DATABASE_URL (…) does not
// answer: start it, or run `make db`". PostgreSQL answered every attempt;
// and `make db`, which the hint sends the newcomer to, finds no server it
// can log in to either and tries to start a private cluster on the port
// the running one holds ("pg_ctl: could not start server"). serve.go's own
// comment says the hint needs the reason ("the database does not exist,
// the login is refused"). (Found by an audit, helper 4, whose test this
// is.)
func TestRefusedLoginIsNotReportedAsAServerThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(tmpl.New(t))
	require.NoError(t, err)
	u.User = url.User("gwt_no_such_role_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12])
	hint, err := hintAfterPatience(t, u)
	require.Contains(t, err.Error(), "SQLSTATE 28000", "the server answered, refusing the login: %v", err)
	assert.ErrorIs(t, err, store.ErrLoginRefused)
	assert.NotContains(t, hint, "does not answer", "the server answered; it refused the login")
	assert.NotContains(t, hint, "start it", "starting PostgreSQL does not fix a refused login")
	assert.Contains(t, hint, "refused the login")
	assert.NotContains(t, hint, u.User.Username()+":", "no password in the hint")
}

// The same hint was given for a server that answered and whose TLS the
// URL's sslmode refuses (verify-full against a certificate without the
// host, or a server without TLS): "does not answer: start it". (Found by
// an audit, helper 4, whose test this is.)
func TestRefusedTLSIsNotReportedAsAServerThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(tmpl.New(t))
	require.NoError(t, err)
	q := u.Query()
	q.Set("sslmode", "verify-full")
	u.RawQuery = q.Encode()
	hint, err := hintAfterPatience(t, u)
	assert.ErrorIs(t, err, store.ErrTLS, "%v", err)
	assert.NotContains(t, hint, "does not answer", "the server answered; its TLS was refused (or it has none)")
	assert.Contains(t, hint, "TLS connection failed")
}
