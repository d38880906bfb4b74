package mcp

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// tenantServer is a tenant's MCP server, what the edge hands an
// authenticated request to: the built-in todo server (todoServer) or an
// upstream MCP server (upstreamServer). Everything before it (route,
// metadata, bearer, verify, challenge, rate limit, audit) is the edge's
// and the same for both.
//
// serve takes the audit record through the interface call, which moves it
// to the heap: BenchmarkHandler's get-todos went from 108 allocations and
// 19,530 bytes to 110 and 19,685 (its time within the run-to-run spread),
// the price of one entry point for both kinds of server.
type tenantServer interface {
	policy
	// HasTool reports whether name is a tool the server names itself (the
	// todo tools, an upstream's permissions.tools): a bounded set, so the
	// name can label a metric.
	HasTool(name string) bool
	// Methods are the HTTP methods the endpoint takes, as an Allow header
	// lists them.
	Methods() string
	// serve answers a request of p, authenticated with token (which only
	// an upstream's token exchange reads): read, authorize and dispatch,
	// each kind its own way, every refusal through g.refuse.
	serve(g *Gateway, c echo.Context, ts *tenantState, audit *auditRecord, p *providers.Principal, token string) error
	// Close stops what the server runs, once no request uses it.
	Close(ctx context.Context) error
}

// policy is what the calls of a tenant's server need.
type policy interface {
	// Requires is what one JSON-RPC call needs before it may reach the
	// server: method is the call's method ("" for a response), tool the
	// tool a tools/call names. The caller must hold every permission of
	// perms; exposed is false for a call the server takes from nobody,
	// which no permission helps. perms is the server's: not to be changed.
	Requires(method, tool string) (perms []providers.Permission, exposed bool)
}

var (
	_ tenantServer = todoServer{}
	_ tenantServer = upstreamServer{}
)

// todoServer is the server of a todo tenant: package todo's server, which
// the edge feeds one JSON-RPC message at a time (a batch split here).
type todoServer struct{ *todo.Server }

func (s todoServer) serve(g *Gateway, c echo.Context, ts *tenantState, audit *auditRecord, p *providers.Principal, _ string) error {
	body, answered, err := g.read(c, ts, audit)
	if answered {
		return err
	}
	if isBatch(body) {
		return g.serveBatch(c, ts, s.Server, audit, p, body)
	}
	call, answered, err := g.authorize(c, ts, s.Server, audit, p, body)
	if answered {
		return err
	}
	g.dispatch(c, s.Server, p, body, call)
	return nil
}

func (u upstreamServer) serve(g *Gateway, c echo.Context, ts *tenantState, audit *auditRecord, p *providers.Principal, token string) error {
	return g.serveUpstream(c, ts, u, audit, p, token)
}

// policyOf is the policy of t's server read from its configuration alone
// (StepUpScope has no generation): the todo server's tool table, or the
// upstream's permissions.
func policyOf(t *tenants.Tenant) policy {
	if t.Server.IsUpstream() {
		return upstreamPolicy{t.Server}
	}
	return todo.Tools
}

// upstreamPolicy is an upstream's permissions block as a policy: the one
// owner of its rules is upstream.Config.Requires.
type upstreamPolicy struct{ cfg *upstream.Config }

func (u upstreamPolicy) Requires(method, tool string) ([]providers.Permission, bool) {
	n := u.cfg.Requires(method, tool)
	return n.Permissions, !n.Refused
}

func (u upstreamPolicy) HasTool(name string) bool {
	_, ok := u.cfg.Permissions.Tools[name]
	return ok
}

// upstreamServer is the server of a tenant that fronts an upstream MCP
// server: the proxy, and the permissions of its configuration. The proxy
// is nil when it could not be built; the tenant's verifier is then the
// stand-in that refuses every request before it gets here.
type upstreamServer struct {
	*upstream.Server
	upstreamPolicy
}

// Methods: GET opens the upstream's stream of its own messages.
func (upstreamServer) Methods() string { return "POST, GET, DELETE, OPTIONS" }

func (u upstreamServer) Close(context.Context) error {
	if u.Server == nil {
		return nil
	}
	return u.Server.Close()
}
