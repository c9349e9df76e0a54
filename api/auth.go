package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// access is what a route needs: nothing (public), or a token of a role.
type access struct {
	public bool
	role   gatewayd.Role
}

var (
	public   = access{public: true}
	viewer   = access{role: gatewayd.RoleViewer}
	operator = access{role: gatewayd.RoleOperator}
	admin    = access{role: gatewayd.RoleAdmin}
)

// tokenLocal is where the request's token (name and id) is kept for the
// access log; never its secret.
const tokenLocal = "token"

var (
	errUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED",
		Message: "A valid API token is required: Authorization: Bearer <token>"}
	errForbidden = &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: "The token's role may not do this"}
)

// tokens checks bearer tokens. Lookups are cached for at most ttl, so a
// revoked or expired token is refused within ttl, and the database is
// asked at most once per ttl per token (which also records last_used_at).
// While the database cannot answer, a token it confirmed before stays
// good (see stale).
type tokens struct {
	store *store.Store
	ttl   time.Duration
	// dbUp is the background probe's last answer (nil: not known, ask).
	dbUp  func() bool
	group singleflight.Group

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]cachedToken
	// revokedAt holds the revocations this process wrote, for ttl: a
	// lookup whose answer the database gave before one and that is
	// cached after it is corrected (put).
	revokedAt map[uuid.UUID]time.Time

	refused *refusals
	guesses guesses

	// known holds the hashes of the usable tokens, read at most once per
	// ttl and only for a request its address's budget would refuse: a
	// token that works is looked up however much its address guessed.
	// Without it, a restarted process (whose cache starts empty) answered
	// every working token 429 while anyone behind the same address (a
	// reverse proxy, a NAT) guessed (found by an audit, helper 1).
	knownMu sync.Mutex
	known   map[[sha256.Size]byte]struct{}
	knownAt time.Time
}

// isKnown says whether hash is a usable token's, as of at most ttl ago.
func (t *tokens) isKnown(ctx context.Context, hash [sha256.Size]byte) bool {
	t.knownMu.Lock()
	_, ok := t.known[hash]
	fresh := !t.knownAt.IsZero() && time.Since(t.knownAt) < t.ttl
	t.knownMu.Unlock()
	if fresh {
		return ok
	}
	v, err, _ := t.group.Do("known tokens", func() (any, error) {
		hashes, err := t.store.UsableTokenHashes(ctx, maxCachedTokens)
		if err != nil {
			return nil, err
		}
		set := make(map[[sha256.Size]byte]struct{}, len(hashes))
		for _, h := range hashes {
			set[h] = struct{}{}
		}
		t.knownMu.Lock()
		t.known, t.knownAt = set, time.Now()
		t.knownMu.Unlock()
		return set, nil
	})
	if err != nil {
		return false // the lookup would fail too; the guesser's answer stands
	}
	_, ok = v.(map[[sha256.Size]byte]struct{})[hash]
	return ok
}

type cachedToken struct {
	hash  [sha256.Size]byte
	token gatewayd.Token
	found bool
	until time.Time
	// label names the token in the access log (its name and id, never
	// its secret), made once per lookup rather than once per request.
	label string
}

// maxCachedTokens bounds the cache: a client trying random tokens only
// ever empties it.
const maxCachedTokens = 10_000

// cached returns the token whose secret hashes to hash if a lookup of at
// most ttl ago knows it. It is the path of nearly every request, so it
// makes no context, no timer and no string.
func (t *tokens) cached(hash [sha256.Size]byte) (cachedToken, bool) {
	t.mu.RLock()
	e, ok := t.cache[hash]
	t.mu.RUnlock()
	// The map is keyed by the hash already; the comparison in constant
	// time keeps the check itself free of timing differences.
	if ok && time.Now().Before(e.until) && subtle.ConstantTimeCompare(e.hash[:], hash[:]) == 1 {
		return e, true
	}
	return cachedToken{}, false
}

// confirmed says whether the database knew the token whose secret hashes
// to hash when it was last asked (however long ago).
func (t *tokens) confirmed(hash [sha256.Size]byte) bool {
	t.mu.RLock()
	e, ok := t.cache[hash]
	t.mu.RUnlock()
	return ok && e.found
}

// lookup returns the token whose secret hashes to hash, as of at most ttl
// ago, asking the database when the cache does not know it.
func (t *tokens) lookup(ctx context.Context, hash [sha256.Size]byte) (cachedToken, error) {
	if e, ok := t.cached(hash); ok {
		return e, nil
	}
	return t.fetch(ctx, hash)
}

// fetch asks the database for the token whose secret hashes to hash and
// caches the answer; concurrent fetches of one token share a query.
func (t *tokens) fetch(ctx context.Context, hash [sha256.Size]byte) (cachedToken, error) {
	if t.dbUp != nil && !t.dbUp() {
		// The background probe finds the database down (or stalled):
		// a confirmed token is answered now, not after a wait for the
		// database's timeout on every request.
		if v, err := t.stale(hash, errDatabaseDown); err == nil {
			return v.(cachedToken), nil
		}
	}
	v, err, _ := t.group.Do(string(hash[:]), func() (any, error) {
		tok, err := t.store.UseToken(ctx, hash[:])
		found := err == nil
		if err != nil && !errors.Is(err, gatewayd.ErrNotFound) {
			return t.stale(hash, err)
		}
		entry := cachedToken{hash: hash, token: tok, found: found, until: time.Now().Add(t.ttl),
			label: tok.Name + " (" + tok.ID.String() + ")"}
		t.put(entry)
		return entry, nil
	})
	if err != nil {
		return cachedToken{}, err
	}
	return v.(cachedToken), nil
}

// put caches a lookup. A full cache first drops the lookups of unknown
// tokens: a client trying made-up tokens emptied it, and with it the
// confirmations that carry real tokens through a database outage (stale;
// found by an audit, helper 4). Only when confirmed tokens still fill half
// of it is it emptied, so the scan runs at most once per half a cache of
// lookups.
func (t *tokens) put(entry cachedToken) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.revokedAt[entry.token.ID]; ok && entry.found && entry.token.RevokedAt == nil {
		entry.token.RevokedAt = &at
	}
	if len(t.cache) >= maxCachedTokens {
		maps.DeleteFunc(t.cache, func(_ [sha256.Size]byte, e cachedToken) bool { return !e.found })
		if len(t.cache) >= maxCachedTokens/2 {
			clear(t.cache)
		}
	}
	t.cache[entry.hash] = entry
}

// revoked applies a revocation this process wrote to its cached lookups of
// the token at once: left to expire, an entry the database then could not
// refresh would have kept the token good through an outage (stale; found
// by an audit, helper 4).
func (t *tokens) revoked(tok gatewayd.Token) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	maps.DeleteFunc(t.revokedAt, func(_ uuid.UUID, at time.Time) bool { return now.Sub(at) > t.ttl })
	if t.revokedAt == nil {
		t.revokedAt = make(map[uuid.UUID]time.Time)
	}
	if tok.RevokedAt != nil {
		t.revokedAt[tok.ID] = *tok.RevokedAt
	}
	for k, e := range t.cache {
		if e.found && e.token.ID == tok.ID {
			e.token = tok
			t.cache[k] = e
		}
	}
}

// errDatabaseDown stands for the probe's answer where no lookup was made.
var errDatabaseDown = fmt.Errorf("%w: the database probe fails", gatewayd.ErrUnavailable)

// stale answers a lookup the database failed (unreachable, stalled):
// a token it confirmed before is still good, so what needs no database
// (a gateway's status, above all, when an operator needs it most) keeps
// answering through an outage. Its expiry is still checked by authorize;
// a revocation written meanwhile counts once the database answers again,
// and one seen before is final: such a token stays refused (401), as it
// was before the outage, not "cannot check" (503).
// The entry is good for another ttl, so an outage costs one attempt per
// token and ttl, not one per request. A token never confirmed gets err.
func (t *tokens) stale(hash [sha256.Size]byte, err error) (any, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.cache[hash]
	if !ok || !e.found {
		return nil, err
	}
	e.until = time.Now().Add(t.ttl)
	t.cache[hash] = e
	return e, nil
}

// authorize guards a route with what it needs.
func (s *server) authorize(need access) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if need.public || s.auth == nil {
			return c.Next()
		}
		hash, ok := requestToken(c)
		if !ok {
			return s.unauthorized(c, "no bearer token")
		}
		entry, ok := s.auth.cached(hash)
		if !ok && !s.auth.confirmed(hash) && !s.auth.guesses.allow(c.IP(), time.Now()) {
			ctx, cancel := s.dbCtx(c)
			known := s.auth.isKnown(ctx, hash)
			cancel()
			if !known {
				// A failed attempt as much as a 401: counted in the warn
				// lines, which otherwise showed a flood as its first ten
				// guesses a second (found by an audit, helper 7).
				s.auth.refused.add(refused{why: "lookup budget spent", method: c.Method(), path: c.Path(), ip: c.IP(), requestID: requestID(c)})
				c.Set(fiber.HeaderRetryAfter, "1")
				return errTooManyGuesses
			}
		}
		if !ok {
			// Only a cache miss asks the database, and pays for a
			// context with a deadline.
			ctx, cancel := s.dbCtx(c)
			var err error
			entry, err = s.auth.lookup(ctx, hash)
			cancel()
			if err != nil {
				return err // the database: 503
			}
		}
		if why := entry.refusal(time.Now()); why != "" {
			return s.unauthorized(c, why)
		}
		c.Locals(tokenLocal, entry.label)
		if !entry.token.Role.Allows(need.role) {
			return errForbidden
		}
		return c.Next()
	}
}

// requestToken returns the hash of the request's bearer token.
func requestToken(c *fiber.Ctx) ([sha256.Size]byte, bool) {
	secret, ok := bearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok && c.Path() == "/api/events" {
		// EventSource cannot send headers; the stream alone takes the
		// token as a query parameter (the access log never prints query
		// strings).
		secret, ok = c.Query("access_token"), c.Query("access_token") != ""
	}
	secret = strings.TrimSpace(secret)
	if !ok || secret == "" {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256([]byte(secret)), true
}

// refusal says why the token may not be used at now, or "" if it may.
func (e cachedToken) refusal(now time.Time) string {
	switch {
	case !e.found:
		return "unknown token"
	case e.token.RevokedAt != nil:
		return "revoked token " + e.token.ID.String()
	case !e.token.Usable(now):
		return "expired token " + e.token.ID.String()
	}
	return ""
}

// allows reports whether the token whose secret hashes to hash may still
// do what need asks, for a request that outlives its check (an event
// stream): asked every ttl/2, a revoked or expired token ends it within
// ttl. It takes a cache entry only if the database answered it after
// since (the asker's previous check) and at most ttl/2 ago, else asks the
// database. An entry any request refreshed just before a revocation
// would otherwise answer for up to ttl more: taken at a check ttl after
// the last, a revocation went unseen for up to twice ttl (found by an
// audit, helper 4). Streams sharing a token still share a query, which
// writes last_used_at. A database that cannot answer changes nothing
// (see stale).
func (t *tokens) allows(hash [sha256.Size]byte, need gatewayd.Role, dbTimeout time.Duration, since time.Time) bool {
	if e, ok := t.cached(hash); ok && e.until.Add(-t.ttl).After(since) && time.Until(e.until) >= t.ttl/2 {
		return e.refusal(time.Now()) == "" && e.token.Role.Allows(need)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	e, err := t.fetch(ctx, hash)
	if err != nil {
		return true
	}
	return e.refusal(time.Now()) == "" && e.token.Role.Allows(need)
}

// bearerToken reads "Bearer <token>"; the scheme is case-insensitive
// (RFC 9110 §11.1), and some clients send "bearer".
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return token, true
}

func (s *server) unauthorized(c *fiber.Ctx, why string) error {
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="gatewayd"`)
	s.auth.refused.add(refused{why: why, method: c.Method(), path: c.Path(), ip: c.IP(), requestID: requestID(c)})
	return errUnauthorized
}

// refusals logs requests refused for want of a valid token, at warn and
// at most once a second: the first of a burst at once, the rest one
// second later in one line with their count and the latest of them. A
// flood of guessed tokens is seen when it happens; the count once waited
// for the next refusal, however much later, and was logged with that
// request's reason and address.
type refusals struct {
	log zerolog.Logger

	mu     sync.Mutex
	last   time.Time   // of the last line
	count  int64       // refused since the last line
	latest refused     // the latest of them
	timer  *time.Timer // a line due; nil: none
	closed bool
}

type refused struct{ why, method, path, ip, requestID string }

func (r *refusals) add(req refused) {
	// The request's strings point into fasthttp's buffers, reused by the
	// next request on the connection; the line may be written later.
	req.method, req.path, req.ip = strings.Clone(req.method), strings.Clone(req.path), strings.Clone(req.ip)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	r.latest = req
	if r.timer != nil || r.closed {
		return // a line is due, or close writes it
	}
	if wait := time.Second - time.Since(r.last); wait > 0 {
		r.timer = time.AfterFunc(wait, r.flush)
		return
	}
	r.writeLocked()
}

func (r *refusals) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if r.count > 0 && !r.closed {
		r.writeLocked()
	}
}

// close writes what is still counted and stops the timer (at shutdown).
func (r *refusals) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.closed = true
	if r.count > 0 {
		r.writeLocked()
	}
}

func (r *refusals) writeLocked() {
	q := r.latest
	r.log.Warn().Str("reason", q.why).Int64("failed_since_last_line", r.count).
		Str("method", q.method).Str("path", q.path).Str("ip", q.ip).Str("request_id", q.requestID).
		Msg("request refused: no valid API token")
	r.count = 0
	r.last = time.Now()
}
