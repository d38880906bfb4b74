package mcp

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The fast path answers the one request the gateway serves most, a
// tools/call of one of its own tools, without mcp-go's generic JSON
// handling: mcp-go decodes the body six times (once per concern: response
// detection, protocol era twice, envelope, trace context, the call), sets
// up a session with seven channels and a notification goroutine per
// request, and encodes the result through a map that its encoder then
// reparses and compacts. That was half of serveMCP's CPU on get-todos.
// Here the envelope is decoded once (instead of peekCall), the handler
// mcp-go would call runs, and the answer is encoded once, with
// encoding/json/v2, byte for byte as mcp-go writes it.
//
// It is taken only where its answer is certainly mcp-go's: one JSON-RPC
// request object whose members are exactly those of a plain legacy
// tools/call (see fastRequest), decoded strictly (no duplicate or unknown
// member, no other spelling of a known one, valid UTF-8), so that mcp-go's
// case-insensitive, last-duplicate-wins decoder reads the same values; a
// string or number id; one of Tools by name; arguments an object or
// absent; Content-Type exactly application/json; and no
// Mcp-Protocol-Version header, or one naming a version before 2026-07-28
// that mcp-go implements. Everything else goes to mcp-go: batches,
// notifications, responses, other methods, unknown tools, _meta (progress
// tokens, trace context, the 2026-07-28 protocol with its header checks
// and result decoration), task augmentation, malformed input. FuzzFastPath
// holds the answers of both paths equal, with a real mcp-go server as the
// oracle.

// fastTools is a tenant's fast path: the handlers its mcp-go server has for
// Tools, in the table's order.
type fastTools struct {
	handlers []server.ToolHandlerFunc
}

// fastRequest is every member a request on the fast path may have; any
// other member, even "_meta", sends the request to mcp-go.
type fastRequest struct {
	JSONRPC string         `json:"jsonrpc"`
	ID      jsontext.Value `json:"id"`
	Method  string         `json:"method"`
	Params  *struct {
		Name      string         `json:"name"`
		Arguments jsontext.Value `json:"arguments"`
	} `json:"params"`
}

// fastCall is a request the fast path answers.
type fastCall struct {
	// id is the request id as mcp-go reads it: a string, or a float64 for
	// any number (so 1.0 is answered as 1, and an integer beyond 2^53 with
	// the float64 nearest to it, as mcp-go does).
	id   any
	tool int // index in Tools
	// args are the arguments decoded as mcp-go decodes them (nil when
	// absent), raw the bytes they were decoded from.
	args map[string]any
	raw  jsontext.Value
}

// peekFast is peekCall(body), read from the fast call when there is one.
func peekFast(c fastCall, fast bool, body []byte) (rpcCall, bool) {
	if fast {
		return rpcCall{Method: string(mcpgo.MethodToolsCall), Tool: Tools[c.tool].Name}, true
	}
	return peekCall(body)
}

// strict is how the fast path decodes: the defaults of encoding/json/v2
// (names matched exactly, duplicates and invalid UTF-8 refused) and no
// member it does not know.
var strict = json.RejectUnknownMembers(true)

// parse reports whether the request is one the fast path answers, and
// what it asks.
func (f *fastTools) parse(h http.Header, body []byte) (fastCall, bool) {
	if f == nil || h.Get("Content-Type") != "application/json" || !legacyVersion(h.Get(mcpgo.HeaderProtocolVersion)) {
		return fastCall{}, false
	}
	var req fastRequest
	if json.Unmarshal(body, &req, strict) != nil ||
		req.JSONRPC != mcpgo.JSONRPC_VERSION || req.Method != string(mcpgo.MethodToolsCall) || req.Params == nil {
		return fastCall{}, false
	}
	c := fastCall{tool: -1}
	for i := range Tools {
		if Tools[i].Name == req.Params.Name {
			c.tool = i
			break
		}
	}
	if c.tool < 0 {
		return fastCall{}, false
	}
	switch req.ID.Kind() {
	case '"', '0':
		if json.Unmarshal(req.ID, &c.id) != nil {
			return fastCall{}, false
		}
	default: // absent (a notification), null, or not an id
		return fastCall{}, false
	}
	switch req.Params.Arguments.Kind() {
	case 0: // absent
	case '{':
		if json.Unmarshal(req.Params.Arguments, &c.args) != nil {
			return fastCall{}, false
		}
		c.raw = req.Params.Arguments
	default:
		return fastCall{}, false
	}
	return c, true
}

// legacyVersion reports whether mcp-go serves a request with this
// Mcp-Protocol-Version header as a plain legacy request: no header (as
// 2025-03-26 clients send), or a version it implements before 2026-07-28.
// It answers an unknown version with a 400 and checks 2026-07-28 requests
// further.
func legacyVersion(v string) bool {
	return v == "" || (mcpgo.IsValidProtocolVersion(v) && !mcpgo.IsModernProtocol(v))
}

// serve runs the call and answers it as mcp-go would: 200, application/json,
// one JSON-RPC response followed by a newline.
func (f *fastTools) serve(w http.ResponseWriter, ctx context.Context, h http.Header, c fastCall) {
	name := Tools[c.tool].Name
	req := mcpgo.CallToolRequest{Header: h}
	req.Method = string(mcpgo.MethodToolsCall)
	req.Params.Name = name
	if c.raw != nil {
		req.Params.Arguments = c.args
		req.Params.RawArguments = stdjson.RawMessage(c.raw)
	}
	res, err := f.run(ctx, c.tool, req)

	e := encoders.Get().(*fastEncoder)
	defer e.release()
	var werr error
	switch {
	case err != nil:
		code, data := mcpgo.INTERNAL_ERROR, any(nil)
		var required mcpgo.URLElicitationRequiredError
		var prequired *mcpgo.URLElicitationRequiredError
		switch {
		case errors.As(err, &required):
			d := required.JSONRPCError().Error
			code, data = d.Code, d.Data
		case errors.As(err, &prequired) && prequired != nil:
			d := prequired.JSONRPCError().Error
			code, data = d.Code, d.Data
		}
		werr = e.error(c.id, code, err.Error(), data)
	case res == nil:
		werr = e.error(c.id, mcpgo.INTERNAL_ERROR, fmt.Sprintf("tool '%s' handler returned no result", name), nil)
	default:
		werr = e.result(c.id, res)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if werr == nil { // as mcp-go, which writes nothing it cannot encode
		_, _ = w.Write(e.buf.Bytes())
	}
}

// run calls the tool's handler as mcp-go's tools/call does, WithRecovery
// included (though authenticated already answers a panic as a tool error).
func (f *fastTools) run(ctx context.Context, tool int, req mcpgo.CallToolRequest) (res *mcpgo.CallToolResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("panic recovered in %s tool handler: %v", req.Params.Name, r)
		}
	}()
	return f.handlers[tool](ctx, req)
}

// fastEncoder writes a JSON-RPC response the way mcp-go's encoding/json
// encoder does: members in the same order, <, >, &, U+2028 and U+2029
// escaped, invalid UTF-8 replaced in strings, raw values (structured
// content) kept as they are otherwise, a newline at the end.
type fastEncoder struct {
	buf bytes.Buffer
	enc jsontext.Encoder
	err error // the first error of tok or val
}

var encoders = sync.Pool{New: func() any { return new(fastEncoder) }}

// maxPooled is the largest buffer kept for the next response: a page of a
// thousand long todos is megabytes, which the pool must not hold on to.
const maxPooled = 64 << 10

func (e *fastEncoder) release() {
	if e.buf.Cap() <= maxPooled {
		encoders.Put(e)
	}
}

var encodeOpts = []jsontext.Options{
	jsontext.EscapeForHTML(true), jsontext.EscapeForJS(true), jsontext.AllowInvalidUTF8(true),
	jsontext.AllowDuplicateNames(true), jsontext.PreserveRawStrings(true),
}

func (e *fastEncoder) tok(t jsontext.Token) {
	if e.err == nil {
		e.err = e.enc.WriteToken(t)
	}
}

func (e *fastEncoder) str(s string) { e.tok(jsontext.String(s)) }

func (e *fastEncoder) val(v []byte, err error) {
	if e.err == nil {
		e.err = err
	}
	if e.err == nil {
		e.err = e.enc.WriteValue(v)
	}
}

// begin resets e and writes {"jsonrpc":"2.0","id":<id>,"<member>":.
func (e *fastEncoder) begin(id any, member string) {
	e.buf.Reset()
	e.enc.Reset(&e.buf, encodeOpts...)
	e.err = nil
	e.tok(jsontext.BeginObject)
	e.str("jsonrpc")
	e.str(mcpgo.JSONRPC_VERSION)
	e.str("id")
	switch id := id.(type) {
	case string:
		e.str(id)
	case float64:
		e.tok(jsontext.Float(id))
	default: // parse lets no other through
		e.err = fmt.Errorf("request id of type %T", id)
	}
	e.str(member)
}

// end closes the envelope (the encoder adds the newline) and returns the
// first error.
func (e *fastEncoder) end() error {
	e.tok(jsontext.EndObject)
	return e.err
}

// result encodes {"jsonrpc":"2.0","id":..,"result":<res>}. A plain result
// (text content, structured content as bytes, isError: what the gateway's
// tools return) is written member by member, in the order of mcp-go's
// CallToolResult.MarshalJSON (a map's, so sorted); anything else as that
// MarshalJSON writes it.
func (e *fastEncoder) result(id any, res *mcpgo.CallToolResult) error {
	e.begin(id, "result")
	if !plain(res) {
		e.val(stdjson.Marshal(res))
		return e.end()
	}
	e.tok(jsontext.BeginObject)
	e.str("content")
	e.tok(jsontext.BeginArray)
	for _, c := range res.Content {
		t := c.(mcpgo.TextContent)
		e.tok(jsontext.BeginObject)
		e.str("type")
		e.str(t.Type)
		e.str("text")
		e.str(t.Text)
		e.tok(jsontext.EndObject)
	}
	e.tok(jsontext.EndArray)
	if res.IsError {
		e.str("isError")
		e.tok(jsontext.True)
	}
	if len(res.RawStructuredContent) > 0 {
		e.str("structuredContent")
		e.val(res.RawStructuredContent, nil)
	}
	e.tok(jsontext.EndObject)
	return e.end()
}

// plain reports whether res holds only what result writes member by member.
func plain(res *mcpgo.CallToolResult) bool {
	if res.Meta != nil || res.ResultType != "" || res.StructuredContent != nil ||
		len(res.InputRequests) > 0 || res.RequestState != "" {
		return false
	}
	for _, c := range res.Content {
		t, ok := c.(mcpgo.TextContent)
		if !ok || t.Annotations != nil || t.Meta != nil {
			return false
		}
	}
	return true
}

// error encodes {"jsonrpc":"2.0","id":..,"error":{"code":..,"message":..}},
// with "data" when there is some.
func (e *fastEncoder) error(id any, code int, message string, data any) error {
	e.begin(id, "error")
	e.tok(jsontext.BeginObject)
	e.str("code")
	e.tok(jsontext.Int(int64(code)))
	e.str("message")
	e.str(message)
	if data != nil {
		e.str("data")
		e.val(stdjson.Marshal(data))
	}
	e.tok(jsontext.EndObject)
	return e.end()
}
