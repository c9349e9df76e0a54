package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/config"
)

// README, Security, Tokens: "The CLI reads the same settings as the
// service: it needs ENCRYPTION_KEY (and DATABASE_URL unless the database
// is the default one), so in a new shell load the .env that make wrote
// first". A newcomer who ran `DATABASE_URL=… make run` (a second instance,
// README's own example) and then, in a new shell, `. scripts/dotenv.sh;
// dotenv; bin/gatewayd token create …` made the token in the default
// database (.env holds no DATABASE_URL): it printed a token that every
// request refused with 401, and nothing said which database it went to.
// `gatewayd migrate` names its database (masked); token create and revoke
// must too, so the mistake shows where it is made. (Found by an audit, helper 3, whose test this is.)
func TestTokenCommandsNameTheirDatabase(t *testing.T) {
	t.Parallel()
	dbURL := tmpl.New(t)
	env := []string{"ENCRYPTION_KEY=" + key, "DATABASE_URL=" + dbURL, "LOG_FORMAT=json"}
	want := config.MaskURL(dbURL)

	logged := func(errb string, msg string) map[string]any {
		for _, line := range strings.Split(errb, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["message"] == msg {
				return m
			}
		}
		t.Fatalf("no %q line in:\n%s", msg, errb)
		return nil
	}

	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"token", "create", "--name", "grafana", "--role", "viewer"}, env, &out, &errb), errb.String())
	assert.Equal(t, want, logged(errb.String(), "API token created")["database"], "token create names the database it wrote to")

	var list, lerr bytes.Buffer
	require.Equal(t, 0, run([]string{"token", "list"}, env, &list, &lerr), lerr.String())
	id := strings.Fields(strings.Split(strings.TrimSpace(list.String()), "\n")[1])[0]
	out.Reset()
	errb.Reset()
	require.Equal(t, 0, run([]string{"token", "revoke", id}, env, &out, &errb), errb.String())
	assert.Equal(t, want, logged(errb.String(), "API token revoked")["database"], "token revoke names the database it wrote to")
}
