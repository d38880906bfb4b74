package mcp

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/providers"
)

// JSON-RPC batches, which MCP had in 2025-03-26 only (2025-06-18 removed
// them). The gateway negotiates 2025-03-26 (mcp-go echoes it in
// initialize) and must then take batches, which mcp-go does not. Offering
// 2025-03-26 no longer was the other way out; it was not taken because
// every client still on 2025-03-26 would lose the gateway to fix what few
// of them send, because the transport spec has a server assume 2025-03-26
// for any request without an Mcp-Protocol-Version header (curl, scripts,
// such clients), and because mcp-go cannot drop one version from its
// negotiation. So the gateway splits the batch: each message is read,
// checked and dispatched exactly as if it came alone, and the answers are
// gathered into one array. The permission check sees every message before
// any runs, so a batch cannot slip a create past the 403.

// maxBatch bounds the messages of one batch: each is dispatched on its own.
const maxBatch = 100

// isBatch reports whether the body is a JSON array, a JSON-RPC batch.
func isBatch(body []byte) bool { return jsonStartsWith(body, '[') }

// jsonStartsWith reports whether the JSON text b opens with c ('[' an
// array, '{' an object).
func jsonStartsWith(b []byte, c byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == c
}

// serveBatch answers a batch to the todo server for p, after
// authentication: it is read and checked whole, authorized whole, and each
// message dispatched to the server on its own (read as the fast path
// reads it, as a single message would be).
func (g *Gateway) serveBatch(c echo.Context, ts *tenantState, srv *todo.Server, audit *auditRecord, p *providers.Principal, body []byte) error {
	r := c.Request()
	audit.method = "batch"
	msgs, ch := readBatch(r.Header, body)
	if ch != nil {
		return g.refuse(c, ts, audit, *ch)
	}
	// Each message is peeked once: for the rate limit and the permission
	// check of the whole batch, then for its own dispatch.
	calls := make([]rpcCall, len(msgs))
	peeked := make([]bool, len(msgs))
	for i, m := range msgs {
		calls[i], peeked[i] = peekCall(m)
	}
	if refused, err := g.chargeCalls(c, ts, calls); refused {
		return err
	}
	miss := missingPermissions(ts.server, p, calls...)
	if len(miss) > 0 {
		audit.tool = miss[0].label()
	}
	if refused, err := g.decide(c, ts, audit, p, miss); refused {
		return err
	}

	ctx := todo.WithPrincipal(r.Context(), p)
	var answers [][]byte
	for i, m := range msgs {
		if ch := messageProblem(m); ch != nil {
			answers = append(answers, rpcError(ch.rpcID, ch.rpcCode, ch.description))
			continue
		}
		if peeked[i] && calls[i].Method == string(mcpgo.MethodInitialize) {
			answers = append(answers, rpcError(requestID(m), mcpgo.INVALID_REQUEST, "initialize must not be part of a batch"))
			continue
		}
		rec := todo.NewRecorder()
		srv.Serve(ctx, rec, r, m, srv.Read(r.Header, m))
		if a := answer(rec, m); a != nil {
			answers = append(answers, a)
		}
	}
	if len(answers) == 0 { // notifications and responses only
		return c.NoContent(http.StatusAccepted)
	}
	var out bytes.Buffer
	out.WriteByte('[')
	for i, a := range answers {
		if i > 0 {
			out.WriteByte(',')
		}
		out.Write(a)
	}
	out.WriteString("]\n")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, out.Bytes())
}

// readBatch reads a batch's messages and refuses, for the todo server and
// an upstream alike, what no server takes: a batch under a protocol
// version other than 2025-03-26, of another content type (mcp-go's rule),
// with the Mcp-Method or Mcp-Name header (each names one message), that is
// no JSON array, empty, or longer than maxBatch.
func readBatch(h http.Header, body []byte) ([]json.RawMessage, *challenge) {
	if v := h.Get(mcpgo.HeaderProtocolVersion); v != "" && v != mcpgo.ProtocolVersion20250326 {
		return nil, invalidMessage(mcpgo.INVALID_REQUEST, nil, "JSON-RPC batches exist only in MCP protocol version 2025-03-26; this request speaks "+
			quoteBounded(v)+": send one message per request")
	}
	if mt, _, err := mime.ParseMediaType(h.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return nil, invalidMessage(mcpgo.INVALID_REQUEST, nil, "Invalid content type: must be 'application/json'")
	}
	if h.Get(mcpgo.HeaderMethod) != "" || h.Get(mcpgo.HeaderName) != "" {
		return nil, invalidMessage(mcpgo.HEADER_MISMATCH, nil, "a batch cannot carry the Mcp-Method or Mcp-Name header: each names one message")
	}
	var msgs []json.RawMessage
	if json.Unmarshal(body, &msgs) != nil {
		return nil, invalidMessage(mcpgo.PARSE_ERROR, nil, "request body is not valid json")
	}
	switch {
	case len(msgs) == 0:
		return nil, invalidMessage(mcpgo.INVALID_REQUEST, nil, "the batch is empty")
	case len(msgs) > maxBatch:
		return nil, invalidMessage(mcpgo.INVALID_REQUEST, nil, "a batch may hold at most "+strconv.Itoa(maxBatch)+" messages")
	}
	return msgs, nil
}

// answer is a message's JSON-RPC answer, rec, for the batch's array: nil for
// none (a notification or response, answered 202), the JSON-RPC message
// written, or a plain-text refusal as a JSON-RPC error.
func answer(rec *todo.Recorder, request []byte) []byte {
	b := bytes.TrimSpace(rec.Body())
	if len(b) == 0 {
		return nil
	}
	if strings.HasPrefix(rec.Header().Get(echo.HeaderContentType), echo.MIMEApplicationJSON) && json.Valid(b) {
		return b
	}
	text := string(b[:min(len(b), maxRefusalText)])
	return rpcError(requestID(request), refusalCode(max(rec.Status(), http.StatusBadRequest)), text)
}
