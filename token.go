package gatewayd

import (
	"time"

	"github.com/google/uuid"
)

// Role is what an API token may do; each includes the ones before it.
type Role string

// The roles.
const (
	RoleViewer   Role = "viewer"   // every GET: status, events, metrics
	RoleOperator Role = "operator" // also connect, disconnect, discover, readings
	RoleAdmin    Role = "admin"    // everything: create, update, delete, tokens, chaos
)

// Roles lists the roles from least to most.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin}

// Allows reports whether a token of role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.rank() >= need.rank() }

// Valid reports whether r is a role.
func (r Role) Valid() bool { return r.rank() > 0 }

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Token is an API token as stored: only a hash of its secret.
type Token struct {
	ID         uuid.UUID
	Name       string
	Role       Role
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
}

// MaxTokenLife bounds a token's lifetime, through the API or the CLI:
// ten years is already forever.
const MaxTokenLife = 3660 * 24 * time.Hour

// Usable reports whether the token may be used at now.
func (t Token) Usable(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}
