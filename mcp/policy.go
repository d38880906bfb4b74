package mcp

import (
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
)

// RequiredPermission is the permission a caller must hold before a tool runs
// at all (Tool.Requires), and whether there is one. A missing requirement is
// answered at the HTTP layer with a 403 step-up.
func RequiredPermission(tool string) (providers.Permission, bool) {
	if t, ok := toolNamed(tool); ok && t.Requires != "" {
		return t.Requires, true
	}
	return "", false
}

// CanListAll reports whether the caller sees every todo of the tenant rather
// than only their own.
func CanListAll(p *providers.Principal) bool { return p.Has(providers.PermRead) }

// CanDelete reports whether the caller may delete t: its owner always may,
// anyone with the delete permission may delete any todo.
func CanDelete(p *providers.Principal, t store.Todo) bool {
	return p != nil && (t.OwnerID == p.Subject || p.Has(providers.PermDelete))
}
