package upstream

import (
	"strings"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Need is what one JSON-RPC message needs before it may reach the
// upstream.
type Need struct {
	// Refused is a tool or method the tenant does not expose at all (a tool
	// its table does not list, with no other_tools rule; a method with no
	// other_methods rule): no permission helps.
	Refused bool
	// Permissions must all be held ("" none: any authenticated caller).
	Permissions []providers.Permission
}

// Requires says what a message needs: method is its JSON-RPC method ("" for
// a response, which the client sends to answer the upstream's own request),
// tool the name a tools/call names.
func (c Config) Requires(method, tool string) Need {
	switch {
	case method == "", method == "initialize", method == "server/discover", method == "ping",
		method == "tools/list", strings.HasPrefix(method, "notifications/"):
		// The lifecycle (server/discover is 2026-07-28's initialize: a
		// client that may not discover the server cannot connect, and a
		// 403 for it would send its user to consent to a scope only
		// other methods need), answers to the upstream's requests, and the
		// tool list, which Forward filters to what the caller may call.
		return Need{}
	case method == "tools/call":
		if perms, ok := c.Permissions.Tools[tool]; ok {
			return Need{Permissions: perms}
		}
		if c.Permissions.OtherTools != nil {
			return Need{Permissions: *c.Permissions.OtherTools}
		}
		return Need{Refused: true}
	}
	if c.Permissions.OtherMethods != nil {
		return Need{Permissions: *c.Permissions.OtherMethods}
	}
	return Need{Refused: true}
}

// mayCall reports whether p may call the tool: what tools/list shows.
func (c Config) mayCall(p *providers.Principal, tool string) bool {
	n := c.Requires("tools/call", tool)
	if n.Refused {
		return false
	}
	for _, perm := range n.Permissions {
		if !p.Has(perm) {
			return false
		}
	}
	return true
}
