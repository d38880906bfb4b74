package providers

import (
	"context"
	"errors"
	"time"
)

// TokenKind says how the token was verified.
type TokenKind string

const (
	TokenKindJWT    TokenKind = "jwt"
	TokenKindOpaque TokenKind = "opaque"
)

// Principal is who a verified token speaks for, and what it may do. It is
// read-only once Verify returns it: the verified-token and introspection
// caches hand the same Principal to every request that presents the token
// (a copy per request was a tenth of get-todos' garbage).
type Principal struct {
	Tenant   string
	Issuer   string
	Subject  string
	ClientID string
	Scopes   []string // raw scope strings from the token
	// Roles are the values of the tenant's role or group claim
	// (Claims.Roles), nil when it has none.
	Roles []string
	// Permissions are the scopes mapped through the tenant's ScopeMap and
	// the roles through its role grants.
	Permissions map[Permission]bool
	Audience    []string
	Expiry      time.Time
	Kind        TokenKind
}

// Has reports whether the principal holds a permission.
func (p *Principal) Has(perm Permission) bool { return p != nil && p.Permissions[perm] }

// Verifier verifies bearer tokens for one tenant.
type Verifier interface {
	Verify(ctx context.Context, rawToken string) (*Principal, error)
}

// Class groups verification failures by how the gateway answers them.
type Class int

const (
	ClassInvalidToken Class = iota // 401 invalid_token
	ClassUnavailable               // 503, the provider could not be reached
	ClassInternal                  // 500, a bug or misconfiguration
)

// Error is a verification failure. Reason is safe to show a client: it never
// contains the token or a secret.
type Error struct {
	Class  Class
	Reason string
	Err    error // the cause, for logs only
	// RetryAfter, for ClassUnavailable, is when the client should try
	// again when that is known to be sooner than the gateway's default.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// RetryAfterOf returns the *Error's RetryAfter, 0 for any other error.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ClassOf returns the class of err, ClassInternal when it is not an *Error.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassInternal
}
