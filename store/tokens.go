package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd"
)

// TokenPrefix starts every API token, so a leaked one is easy to spot.
const TokenPrefix = "gwd_"

// NewTokenSecret returns a fresh token: the prefix and 32 random bytes,
// base64url without padding.
func NewTokenSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is what is stored of a token: SHA-256 of its text.
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

const tokenColumns = `id, name, role, created_at, last_used_at, expires_at, revoked_at`

func scanToken(row pgx.CollectableRow) (gatewayd.Token, error) {
	var t gatewayd.Token
	err := row.Scan(&t.ID, &t.Name, &t.Role, &t.CreatedAt, &t.LastUsedAt, &t.ExpiresAt, &t.RevokedAt)
	return t, err
}

// CreateToken stores a new token and returns it with its secret, which is
// never stored and cannot be shown again.
func (s *Store) CreateToken(ctx context.Context, name string, role gatewayd.Role, expiresAt *time.Time) (gatewayd.Token, string, error) {
	secret, err := NewTokenSecret()
	if err != nil {
		return gatewayd.Token{}, "", err
	}
	rows, _ := s.pool.Query(ctx, `INSERT INTO api_tokens (name, role, token_hash, expires_at) VALUES ($1, $2, $3, $4)
		RETURNING `+tokenColumns, name, string(role), HashToken(secret), expiresAt)
	t, err := pgx.CollectExactlyOneRow(rows, scanToken)
	if err != nil {
		return gatewayd.Token{}, "", fmt.Errorf("create token: %w", classify(err))
	}
	return t, secret, nil
}

// ListTokens returns a page of the tokens, revoked ones included, ordered
// by name then id as every list, and how many there are.
func (s *Store) ListTokens(ctx context.Context, page Page) ([]gatewayd.Token, int, error) {
	p, err := countAndPage(ctx, s.pool, `SELECT count(*) FROM api_tokens`,
		`SELECT `+tokenColumns+` FROM api_tokens ORDER BY name, id LIMIT $1 OFFSET $2`, nil, page, scanToken)
	if err != nil {
		return nil, 0, fmt.Errorf("list tokens: %w", classify(err))
	}
	if p.items == nil {
		p.items = []gatewayd.Token{}
	}
	return p.items, p.total, nil
}

// RevokeToken revokes a token (idempotent); ErrNotFound if there is none.
func (s *Store) RevokeToken(ctx context.Context, id uuid.UUID) (gatewayd.Token, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1
		RETURNING `+tokenColumns, id)
	t, err := pgx.CollectExactlyOneRow(rows, scanToken)
	if err != nil {
		return gatewayd.Token{}, fmt.Errorf("revoke token: %w", classify(err))
	}
	return t, nil
}

// UsableTokenHashes returns the hashes of at most limit usable tokens
// (neither revoked nor expired), the newest first.
func (s *Store) UsableTokenHashes(ctx context.Context, limit int) ([][sha256.Size]byte, error) {
	rows, _ := s.pool.Query(ctx, `SELECT token_hash FROM api_tokens
		WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
		ORDER BY created_at DESC LIMIT $1`, limit)
	hashes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([sha256.Size]byte, error) {
		var b []byte
		var h [sha256.Size]byte
		if err := row.Scan(&b); err != nil {
			return h, err
		}
		copy(h[:], b)
		return h, nil
	})
	if err != nil {
		return nil, fmt.Errorf("usable token hashes: %w", classify(err))
	}
	return hashes, nil
}

// TokenByHash returns the token with this hash, usable or not, or
// ErrNotFound.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (gatewayd.Token, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE token_hash = $1`, hash)
	t, err := pgx.CollectExactlyOneRow(rows, scanToken)
	if err != nil {
		return gatewayd.Token{}, fmt.Errorf("token: %w", classify(err))
	}
	return t, nil
}

// UseToken returns the token with this hash and records that it was
// used (if it may be), or ErrNotFound.
func (s *Store) UseToken(ctx context.Context, hash []byte) (gatewayd.Token, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE api_tokens SET last_used_at = now()
		WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
		RETURNING `+tokenColumns, hash)
	t, err := pgx.CollectExactlyOneRow(rows, scanToken)
	if errors.Is(err, pgx.ErrNoRows) {
		// Revoked, expired or unknown: say which, without touching it.
		return s.TokenByHash(ctx, hash)
	}
	if err != nil {
		return gatewayd.Token{}, fmt.Errorf("use token: %w", classify(err))
	}
	return t, nil
}
