package todo

import (
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
)

// RequiredPermission is the permission a caller must hold before a tool runs
// at all (Tool.Requires), and whether there is one. A missing requirement is
// answered at the HTTP layer with a 403 step-up.
func RequiredPermission(tool string) (providers.Permission, bool) {
	if t, ok := Tools.named(tool); ok && t.Requires != "" {
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

// MissingPermissionText is the tool error that answers a call of tool by a
// caller without the permission whose scope string is scope: where the
// tenant chose tool_error over the 403 (the edge answers it so for an
// upstream's tool too), and the tool's own check, should a call ever reach
// it past the HTTP layer.
func MissingPermissionText(tool, scope string) string {
	return "Forbidden: the " + tool + " tool requires the " + scope + " scope, which this access token does not grant. " +
		"Sign in again granting " + scope + ", or ask an administrator for it."
}
