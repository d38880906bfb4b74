package mcp

import (
	"context"

	"github.com/todo-gateway/todo-gateway/providers"
)

type ctxKey int

const (
	principalKey ctxKey = iota
	requestIDKey
)

// WithPrincipal returns ctx carrying the verified caller; the bearer
// middleware sets it and the tools read it (mcp-go passes the HTTP request's
// context to tool handlers).
func WithPrincipal(ctx context.Context, p *providers.Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the verified caller, or nil.
func PrincipalFrom(ctx context.Context) *providers.Principal {
	p, _ := ctx.Value(principalKey).(*providers.Principal)
	return p
}

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestIDFrom returns the request id set by the gateway, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}
