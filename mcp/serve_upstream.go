package mcp

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
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
		g.traceFromMeta(c, body)
		calls, ch := readCalls(r.Header, body)
		if ch != nil {
			return g.refuse(c, ts, audit, *ch)
		}
		if refused, err := g.chargeCalls(c, ts, calls); refused {
			return err
		}
		modernHeader := mcpgo.IsModernProtocol(r.Header.Get(mcpgo.HeaderProtocolVersion))
		for _, rc := range calls {
			if audit.method == "" || rc.Method == string(mcpgo.MethodToolsCall) {
				audit.method, audit.tool = rc.Method, rc.Tool
			}
			if _, exposed := up.Requires(rc.Method, rc.Tool); !exposed {
				return g.refuse(c, ts, audit, notExposed(rc, requestID(body)))
			}
			if upstream.FilterAnswer(rc.Method, modernHeader || mcpgo.IsModernProtocol(rc.Version)) {
				call.Filter = true
			}
		}
		if len(calls) > 1 {
			audit.method = "batch"
		}
		call.Initializes = len(calls) == 1 && calls[0].Method == string(mcpgo.MethodInitialize)
		miss = missingPermissions(ts.server, p, calls...)
		if len(miss) > 0 && !(len(calls) == 1 && calls[0].Method == string(mcpgo.MethodToolsCall)) {
			// Only a single tool call can be answered with a tool error:
			// anything else lacking a permission gets the step-up, whatever
			// missing_permission says.
			return g.refuse(c, ts, audit, stepUp(ts.tenant, p, r.Header.Get(mcpgo.HeaderProtocolVersion), miss))
		}
		call.Body = body
	} else {
		audit.method = r.Method
	}
	if refused, err := g.decide(c, ts, audit, p, miss); refused {
		return err
	}
	if len(miss) > 0 {
		// missing_permission tool_error (decide wrote the denial): the call
		// is answered as the todo server answers it, and never reaches the
		// upstream.
		scope := ts.tenant.Scope(miss[0].perm)
		return writeToolError(c.Response(), requestID(call.Body), todo.MissingPermissionText(miss[0].tool, scope, ts.tenant.Claims.Roles, miss[0].perm, scopeNotIssued(ts.verifier)(scope)))
	}
	out := up.Forward(c.Response(), r, call)
	g.opts.Metrics.upstreamOutcome(ts.tenant.ID, out.Kind)
	return nil
}

// invalidParams refuses a message whose params is not an object: no tool
// can be read from it, so nothing can be decided about it.
const invalidParams = "Invalid Request: params must be an object"

// readCalls reads the method and tool of each JSON-RPC message of a body
// (one message, or a 2025-03-26 batch of at most maxBatch) as the
// upstream's SDK will, whichever SDK it is (readMessage). A single
// message's 2026-07-28 routing headers must agree with it.
func readCalls(h http.Header, body []byte) ([]rpcCall, *challenge) {
	if !isBatch(body) {
		rc, ch := readMessage(body)
		if ch != nil {
			return nil, ch
		}
		if err := checkHeaders(h, rc); err != nil {
			ch := headerMismatch(err, body)
			return nil, &ch
		}
		return []rpcCall{rc}, nil
	}
	msgs, ch := readBatch(h, body)
	if ch != nil {
		return nil, ch
	}
	calls := make([]rpcCall, len(msgs))
	for i, m := range msgs {
		rc, ch := readMessage(m)
		if ch != nil {
			return nil, invalidMessage(ch.rpcCode, nil, "message "+strconv.Itoa(i+1)+" of the batch: "+ch.description)
		}
		calls[i] = rc
	}
	return calls, nil
}

// readMessage reads one message's method, tool and protocol version, each
// once (upstream.ReadMessage), or refuses it as messageProblem would, or
// because JSON readers could read its members apart (the decision must
// rest on what the upstream will read). What it reads is what peekCall
// reads: once ReadMessage has found no name two readers take apart,
// encoding/json (peekCall's reader) reads each member as it is written.
func readMessage(body []byte) (rpcCall, *challenge) {
	m, err := upstream.ReadMessage(body)
	switch {
	case errors.Is(err, upstream.ErrNotJSON):
		return rpcCall{}, notJSON()
	case errors.Is(err, upstream.ErrNotObject):
		return rpcCall{}, notAnObject()
	case err != nil:
		return rpcCall{}, invalidMessage(mcpgo.INVALID_REQUEST, requestID(body), "Invalid Request: "+err.Error())
	}
	if ch := (messageKind{ID: m.ID, Method: m.Method, Result: m.Result, Error: m.Error}).problem(body); ch != nil {
		return rpcCall{}, ch
	}
	if m.Params != nil && m.Params[0] != '{' && string(m.Params) != "null" {
		return rpcCall{}, invalidMessage(mcpgo.INVALID_REQUEST, requestID(body), invalidParams)
	}
	// problem made sure a method is a string; a name of another type
	// names no tool (peekCall).
	return rpcCall{Method: upstream.StringValue(m.Method), Tool: upstream.StringValue(m.Name), Version: upstream.StringValue(m.ProtocolVersion)}, nil
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
