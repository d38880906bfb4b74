package mcp

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// serveUpstream is the rest of a request to a tenant that fronts an
// upstream MCP server, after authentication: read the body, authorize
// every message in it with the tenant's tool and method table, then
// forward it with the caller's identity (never the client's token) and
// stream the answer back. GET (the upstream's own stream) and DELETE (end
// of session) carry no body and need no permission beyond a valid token.
func (g *Gateway) serveUpstream(c echo.Context, ts *tenantState, up upstreamServer, audit *auditRecord, p *providers.Principal, token string) error {
	r := c.Request()
	call := upstream.Call{Principal: p, Token: token}
	var miss []missing
	if r.Method == http.MethodPost {
		body, answered, err := g.read(c, ts, audit)
		if answered {
			return err
		}
		calls, ch := readCalls(r.Header, body)
		if ch != nil {
			return g.refuse(c, ts, audit, *ch)
		}
		for _, rc := range calls {
			if audit.method == "" || rc.Method == string(mcpgo.MethodToolsCall) {
				audit.method, audit.tool = rc.Method, rc.Tool
			}
			if _, exposed := up.Requires(rc.Method, rc.Tool); !exposed {
				return g.refuse(c, ts, audit, notExposed(rc, requestID(body)))
			}
			if rc.Method == string(mcpgo.MethodToolsList) {
				call.ListsTools = true
			}
		}
		if len(calls) > 1 {
			audit.method = "batch"
		}
		miss = missingPermissions(ts.server, p, calls...)
		if len(miss) > 0 && len(calls) == 1 && ts.tenant.MissingPermission == tenants.MissingPermissionToolError &&
			calls[0].Method == string(mcpgo.MethodToolsCall) {
			// The tenant's clients cannot step up: the call is answered as
			// the todo server answers it, with the tool error, and never
			// reaches the upstream.
			ch := stepUp(ts.tenant, p, r.Header.Get(mcpgo.HeaderProtocolVersion), miss)
			audit.log(g.log, r.Context(), "deny", ch.code+": "+ch.description+" (answered as a tool error)", http.StatusOK)
			g.opts.Metrics.decision(audit.tenant, "deny", ch.code)
			return writeToolError(c.Response(), requestID(body), todo.MissingPermissionText(miss[0].tool, ts.tenant.Scope(miss[0].perm)))
		}
		call.Body = body
	} else {
		audit.method = r.Method
	}
	if len(miss) > 0 {
		ch := stepUp(ts.tenant, p, r.Header.Get(mcpgo.HeaderProtocolVersion), miss)
		return g.refuse(c, ts, audit, ch)
	}
	audit.allow(g.log, r.Context())
	g.opts.Metrics.decision(audit.tenant, "allow", "")
	out := up.Forward(c.Response(), r, call)
	g.opts.Metrics.upstreamOutcome(ts.tenant.ID, out.Kind)
	return nil
}

// readCalls reads the method and tool of each JSON-RPC message of a body
// (one message, or a 2025-03-26 batch of at most maxBatch) as the
// upstream's SDK will; a body that is no JSON-RPC message or batch is
// refused here, since the decision must rest on what the upstream will
// read. A single message's 2026-07-28 routing headers must agree with it.
func readCalls(h http.Header, body []byte) ([]rpcCall, *challenge) {
	invalid := func(code int, msg string) *challenge {
		return &challenge{status: http.StatusBadRequest, code: errInvalidRequest, description: msg, plain: true, rpcCode: code, rpcID: requestID(body)}
	}
	if !isBatch(body) {
		if !jsonStartsWith(body, '{') {
			return nil, invalid(mcpgo.PARSE_ERROR, "the body must be one JSON-RPC message (an object)")
		}
		rc, ok := peekCall(body)
		if !ok {
			return nil, invalid(mcpgo.PARSE_ERROR, "request body is not valid json")
		}
		if err := checkHeaders(h, rc); err != nil {
			ch := headerMismatch(err, body)
			return nil, &ch
		}
		return []rpcCall{rc}, nil
	}
	if h.Get(mcpgo.HeaderMethod) != "" || h.Get(mcpgo.HeaderName) != "" {
		return nil, invalid(mcpgo.HEADER_MISMATCH, "a batch cannot carry the Mcp-Method or Mcp-Name header: each names one message")
	}
	var msgs []json.RawMessage
	if json.Unmarshal(body, &msgs) != nil {
		return nil, invalid(mcpgo.PARSE_ERROR, "request body is not valid json")
	}
	switch {
	case len(msgs) == 0:
		return nil, invalid(mcpgo.INVALID_REQUEST, "the batch is empty")
	case len(msgs) > maxBatch:
		return nil, invalid(mcpgo.INVALID_REQUEST, "a batch may hold at most "+strconv.Itoa(maxBatch)+" messages")
	}
	calls := make([]rpcCall, len(msgs))
	for i, m := range msgs {
		rc, ok := peekCall(m)
		if !ok || !jsonStartsWith(m, '{') {
			return nil, invalid(mcpgo.INVALID_REQUEST, "Invalid Request: a batch holds JSON-RPC message objects")
		}
		calls[i] = rc
	}
	return calls, nil
}

// notExposed refuses a tool or method the tenant does not expose: 403,
// with a JSON-RPC error, the same for a tool that does not exist and one
// the table leaves out, so that the answer reveals nothing tools/list
// does not.
func notExposed(rc rpcCall, id any) challenge {
	m := missing{method: rc.Method, tool: rc.Tool}
	return challenge{status: http.StatusForbidden, code: "not_exposed", plain: true, rpcCode: mcpgo.INVALID_PARAMS, rpcID: id,
		description: m.what() + " is not available through this gateway"}
}

// writeToolError answers a tools/call with a tool error result.
func writeToolError(w http.ResponseWriter, id any, text string) error {
	b, err := json.Marshal(mcpgo.JSONRPCResponse{JSONRPC: mcpgo.JSONRPC_VERSION, ID: mcpgo.NewRequestId(id),
		Result: mcpgo.NewToolResultError(text)})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(append(b, '\n'))
	return err
}
