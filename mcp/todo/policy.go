package todo

import (
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
	"strings"
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
// caller without the permission perm, whose scope string is scope: where
// the tenant chose tool_error over the 403 (the edge answers it so for an
// upstream's tool too), and the tool's own check, should a call ever reach
// it past the HTTP layer. When the tenant grants perm from a role or group
// claim (claims.roles), it names the values that grant it: at a provider
// that issues no such scope (Dex refuses scopes it does not define),
// signing in again cannot help, and membership is what the user must ask
// for. notIssued, when not "", says why the authorization server will not
// issue scope (providers.Provider.ScopeNotIssued); the text then does not
// send the user to sign in for it.
func MissingPermissionText(tool, scope string, roles *providers.RoleGrants, perm providers.Permission, notIssued string) string {
	msg := "Forbidden: the " + tool + " tool requires the " + scope + " scope"
	grantors := roles.Grantors(perm)
	switch {
	case len(grantors) == 0 && notIssued == "":
		return msg + ", which this access token does not grant. Sign in again granting " + scope + ", or ask an administrator for it."
	case len(grantors) == 0:
		return msg + ", which this access token does not grant; " + notIssued + ". Ask an administrator to have it issued to you."
	}
	msg += " or one of the " + roles.Claim + " " + strings.Join(grantors, ", ") + ", which this access token does not grant. " +
		"Ask an administrator to add you to " + strings.Join(grantors, " or ") + ", then sign in again"
	if notIssued != "" {
		return msg + "."
	}
	return msg + " (or sign in granting " + scope + ", where the authorization server issues it)."
}
