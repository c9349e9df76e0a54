package api_test

// (Found by an audit, helper 12, whose test this is.) the host-zoneinfo refusal (hostZoneFile) matches
// names exactly, but time.LoadLocation joins the name to the zoneinfo
// directory as a path: "./localtime" reads the same file as "localtime".

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
)

// API.md §3: a factory's timezone is "an IANA zone name"; README (commit
// 23c512d): localtime, posixrules, posix/… and right/… "are refused by
// name, whatever the host has" — localtime being the host's own time,
// which "Local" is refused for. The same files under a path spelled
// another way ("./localtime", "Etc/./UTC"-style names, a doubled slash)
// are no IANA names either, yet this host's zoneinfo directory answers
// them and the API stores them: a factory whose schedule follows the
// host's clock setting, and a name the embedded tzdata does not know
// (another host without /usr/share/zoneinfo cannot load it).
//
// Run on every host: the names are refused by their spelling, whatever
// files the host has (a host without them only makes the old code's
// mistake invisible here, not the check wrong).
func TestTimezoneHostFilesUnderAnotherSpelling(t *testing.T) {
	e := newEnv(t, api.Options{})
	org := e.org("Org")
	// Control: a real IANA name is accepted.
	r := e.do("POST", "/api/factories", map[string]any{"organization_id": org, "name": "ok", "timezone": "Europe/Berlin"})
	require.Equal(t, 201, r.status, string(r.body))
	for _, tz := range []string{"./localtime", "./posixrules", "./right/UTC", "Europe/./Berlin", "Europe//Berlin"} {
		r := e.do("POST", "/api/factories", map[string]any{"organization_id": org, "name": "x", "timezone": tz})
		assert.Equal(t, 400, r.status, "timezone %q is no IANA zone name; got %s", tz, r.body)
	}
}
