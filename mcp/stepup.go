package mcp

import (
	"slices"
	"strings"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// missing is a permission a call needs and the caller lacks, with the
// call that needs it.
type missing struct {
	method, tool string
	perm         providers.Permission
}

// what names the call in a refusal: "the create-todo tool", "the
// resources/read method".
func (m missing) what() string {
	switch {
	case m.method == string(mcpgo.MethodToolsCall) && m.tool == "":
		return "a tools/call without a tool name"
	case m.method == string(mcpgo.MethodToolsCall):
		return "the " + m.tool + " tool"
	}
	return "the " + m.method + " method"
}

// label is the call's name in the audit line and the metrics.
func (m missing) label() string {
	if m.method == string(mcpgo.MethodToolsCall) {
		return m.tool
	}
	return m.method
}

// missingPermissions lists what the calls need that p lacks, each
// permission once, in the order of the calls. What a call needs is the
// tenant's server's to say (policy): for the todo server, the permission
// its tool table names (todo.Tools.Requires); for an upstream, what its
// permissions block says (upstream.Config.Requires). A call the upstream
// takes from nobody needs nothing here: serveUpstream refuses it before
// asking.
func missingPermissions(s policy, p *providers.Principal, calls ...rpcCall) []missing {
	var out []missing
	for _, c := range calls {
		perms, _ := s.Requires(c.Method, c.Tool)
		for _, perm := range perms {
			if p.Has(perm) || slices.ContainsFunc(out, func(m missing) bool { return m.perm == perm }) {
				continue
			}
			out = append(out, missing{method: c.Method, tool: c.Tool, perm: perm})
		}
	}
	return out
}

// stepUp is the 403 insufficient_scope challenge for what is missing, for a
// request speaking protocol version (its Mcp-Protocol-Version header).
func stepUp(t *tenants.Tenant, p *providers.Principal, version string, miss []missing) challenge {
	first := miss[0]
	desc := first.what() + " requires the " + t.Scope(first.perm) + " scope"
	if len(miss) > 1 {
		desc = "the batch's tool calls require the " + strings.Join(neededScopes(t, miss), " and ") + " scopes"
	}
	return challenge{status: 403, code: errInsufficientScope, description: desc, scope: stepUpScope(t, p, version, miss...)}
}

func neededScopes(t *tenants.Tenant, miss []missing) []string {
	out := make([]string, len(miss))
	for i, m := range miss {
		out[i] = t.Scope(m.perm)
	}
	return out
}

// stepUpScope is the scope parameter of a 403 for a request speaking
// protocol version. Clients before 2026-07-28 replace the scopes they ask
// for with the challenge's (the TS SDK, and with it Inspector and many
// hosts), as the authorization spec up to 2025-11-25 told servers to expect:
// so the challenge names the tenant's scopes the token already has as well
// as the missing one, or the user comes back having lost what they had.
// From 2026-07-28 (SEP-2350) the client accumulates and the challenge names
// only what the operation needs (RFC 6750 §3.1).
//
// It names the tenant's scopes the token has (a permission granted another
// way, by a role claim, is not asked for) and the missing ones, in the
// tenant's order, then every other scope the token carries (openid,
// offline_access, another API's), in the token's order: a client that
// replaced its scopes with only the tenant's would lose its refresh token
// (offline_access) and whatever else it had asked for. A scope that could
// not stand in the header (not an RFC 6749 scope-token) is left out.
func stepUpScope(t *tenants.Tenant, p *providers.Principal, version string, miss ...missing) string {
	need := neededScopes(t, miss)
	if !replacesScopes(version) {
		return strings.Join(need, " ")
	}
	var held []string
	if p != nil {
		held = p.Scopes
	}
	var out []string
	for _, s := range t.ScopeList() {
		if slices.Contains(need, s) || slices.Contains(held, s) {
			out = append(out, s)
		}
	}
	for _, s := range held {
		if !slices.Contains(out, s) && providers.IsScopeToken(s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

// replacesScopes reports whether a client speaking this protocol version
// replaces its scopes with a 403's rather than adding them: every version
// before 2026-07-28. No header means 2025-03-26: the transport spec tells a
// server with no other way to know (a stateless one) to assume it, and a
// 2026-07-28 request must send the header (mcp-go refuses it otherwise).
// A value that is no date (mcp-go compares versions as strings, so
// "garbage" would sort after 2026-07-28) gets the accumulated scopes too,
// which a client that accumulates itself only finds redundant.
func replacesScopes(version string) bool {
	if _, err := time.Parse(time.DateOnly, version); err != nil {
		return true
	}
	return !mcpgo.IsModernProtocol(version)
}

// StepUpScope is the scope parameter of the 403 a call of tool gets from the
// tenant when p lacks its permission, for a request speaking protocol
// version ("" when the tool needs nothing p lacks). The token command shows
// it; the edge answers with the same, from the same rules (policyOf).
func StepUpScope(t *tenants.Tenant, p *providers.Principal, version, tool string) string {
	miss := missingPermissions(policyOf(t), p, rpcCall{Method: string(mcpgo.MethodToolsCall), Tool: tool})
	if len(miss) == 0 {
		return ""
	}
	return stepUpScope(t, p, version, miss...)
}
