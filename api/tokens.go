package api

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/duration"
)

const resToken = "TOKEN"

// createToken answers the new token with its secret: the only time the
// secret is shown; only its hash is stored.
func (s *server) createToken(c *fiber.Ctx) error {
	b, err := parseBody(c)
	if err != nil {
		return err
	}
	name, _ := b.name(true)
	roleText, ok := b.str("role", true, 1, 20)
	role := gatewayd.Role(roleText)
	if ok && !role.Valid() {
		b.fail("role", "must be viewer, operator or admin")
	}
	var expires *time.Time
	if text, ok := b.str("expires_in", false, 1, 32); ok {
		d, err := duration.Parse(text)
		if err != nil || d <= 0 || d > gatewayd.MaxTokenLife {
			b.fail("expires_in", "must be a duration such as 90d or 12h, up to 3660d")
		} else {
			at := time.Now().Add(d)
			expires = &at
		}
	}
	if err := b.done(); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	tok, secret, err := s.store.CreateToken(ctx, name, role, expires)
	if err != nil {
		return err
	}
	out := struct {
		tokenJSON
		Token string `json:"token"`
	}{renderToken(tok), secret}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) listTokens(c *fiber.Ctx) error {
	page, err := pageQuery(c, nil)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	list, total, err := s.store.ListTokens(ctx, page)
	if err != nil {
		return err
	}
	return c.JSON(renderList(list, total, page, renderToken))
}

// revokeToken revokes a token (idempotent); it is refused within the
// token cache's lifetime (5 s).
func (s *server) revokeToken(c *fiber.Ctx) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	tok, err := s.store.RevokeToken(ctx, id)
	if err != nil {
		return scoped(err, resToken, "")
	}
	if s.auth != nil {
		s.auth.revoked(tok)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// whoamiJSON says what the request's own token may do, so that a client
// (the web UI) offers only what the API will accept.
type whoamiJSON struct {
	AuthEnabled bool       `json:"auth_enabled"`
	Role        string     `json:"role"`
	Token       *tokenJSON `json:"token"`
}

// whoami answers the request's own token, without its secret. It needs
// only a valid token (any role): with access control off, every request
// may do everything, and there is no token to show.
func (s *server) whoami(c *fiber.Ctx) error {
	if s.auth == nil {
		return c.JSON(whoamiJSON{Role: string(gatewayd.RoleAdmin)})
	}
	hash, ok := requestToken(c)
	if !ok {
		return errUnauthorized // authorize let no such request through
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	entry, err := s.auth.lookup(ctx, hash) // cached by authorize a moment ago
	if err != nil {
		return err
	}
	tok := renderToken(entry.token)
	return c.JSON(whoamiJSON{AuthEnabled: true, Role: tok.Role, Token: &tok})
}
