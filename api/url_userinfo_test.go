package api_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/api"
)

// README, Security: "a gateway's `url` is shown as stored: a `user:pass@`
// in it is refused, 400 ... so keep credentials in `email` and
// `password`". A newcomer who types ws://operator:secret@10.0.0.5/ got
// the detail "must be a ws:// or wss:// URL with a host": the URL has a
// host, and nothing says the user info is what is wrong, nor where the
// credentials go. The detail must name the user info (and point to
// email/password), on create and on update. (Found by an audit, helper 3, whose test this is.)
func TestURLWithUserInfoSaysSo(t *testing.T) {
	e := newEnv(t, api.Options{})
	f := e.factory(e.org("O"), "F")
	for i, u := range []string{"ws://operator:secret@10.0.0.5/gw", "ws://operator@10.0.0.5:8080/gw", "wss://:pw@gw.example/"} {
		r := e.do("POST", "/api/gateways", map[string]any{"factory_id": f, "gateway_id": fmt.Sprintf("ui-%d", i), "name": "n",
			"url": u, "email": "a@example.com", "password": secret("pw-url-Zq9")})
		if assert.Equal(t, 400, r.status, "%s: %s", u, r.body) {
			assert.Contains(t, string(r.body), "user info", "%s: the detail does not say what is wrong: %s", u, r.body)
			assert.Contains(t, string(r.body), "email", "%s: the detail does not say where the credentials go: %s", u, r.body)
		}
	}
	id := e.gateway(f, "ui-put")["id"].(string)
	r := e.do("PUT", "/api/gateways/"+id, map[string]any{"url": "ws://operator:secret@10.0.0.5/gw", "password": secret("pw-url-Zq9")})
	if assert.Equal(t, 400, r.status, "%s", r.body) {
		assert.Contains(t, string(r.body), "user info", "%s", r.body)
	}
}
