package todo

import (
	"context"

	"github.com/todo-gateway/todo-gateway/providers"
)

type principalKey struct{}

// WithPrincipal returns ctx carrying the verified caller: the edge sets it
// before Serve, and the tools read it (mcp-go passes the context it is
// handed to tool handlers).
func WithPrincipal(ctx context.Context, p *providers.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the verified caller, or nil.
func PrincipalFrom(ctx context.Context) *providers.Principal {
	p, _ := ctx.Value(principalKey{}).(*providers.Principal)
	return p
}
