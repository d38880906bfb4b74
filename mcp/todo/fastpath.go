package todo

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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
// reparses and compacts. That was half of the edge's CPU on get-todos
// (serveMCP). Here the envelope is decoded once (Read: instead of the
// edge's peekCall, for its permission check as for Serve), the handler
// mcp-go would call runs, and the answer is encoded once, with
// encoding/json/v2, byte for byte as mcp-go writes it.
//
// It is taken only where its answer is certainly mcp-go's: one JSON-RPC
// request object whose members are exactly those of a plain legacy
// tools/call (see fastDecoder.request), decoded strictly (no duplicate or
// unknown member, no other spelling of a known one, valid UTF-8), so that mcp-go's
// case-insensitive, last-duplicate-wins decoder reads the same values; a
// string or number id; one of Tools by name; arguments an object or
// absent; Content-Type exactly application/json; and no
// Mcp-Protocol-Version header, or one naming a version before 2026-07-28
// that mcp-go implements. Everything else goes to mcp-go: batches,
// notifications, responses, other methods, unknown tools, _meta (progress
// tokens, trace context, the 2026-07-28 protocol with its header checks
// and result decoration), task augmentation, malformed input. FuzzFastPath
// (package mcp, through the whole edge) holds the answers of both paths
// equal, with a real mcp-go server as the oracle (Options.MCPOnly).

// fastTools is a tenant's fast path: the handlers its mcp-go server has for
// Tools, in the table's order.
type fastTools struct {
	handlers []server.ToolHandlerFunc
}

// Call is a message the fast path answers, as it read it (Server.Read);
// the zero Call is one it does not, which mcp-go answers.
type Call struct {
	fast bool
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

// Fast reports whether the fast path answers the message.
func (c Call) Fast() bool { return c.fast }

// Tool is the name of the tool the message calls (its method is
// tools/call), as mcp-go would read it; "" for the zero Call.
func (c Call) Tool() string {
	if !c.fast {
		return ""
	}
	return Tools[c.tool].Name
}

// parse reports whether the request is one the fast path answers, and
// what it asks.
func (f *fastTools) parse(h http.Header, body []byte) (Call, bool) {
	if f == nil || h.Get("Content-Type") != "application/json" || !legacyVersion(h.Get(mcpgo.HeaderProtocolVersion)) {
		return Call{}, false
	}
	d := decoders.Get().(*fastDecoder)
	d.src.Reset(body)
	d.dec.Reset(&d.src) // jsontext's defaults: duplicate names and invalid UTF-8 refused
	c, ok := d.request(body)
	d.src.Reset(nil)
	if len(body) <= maxPooled { // the decoder's buffer grew to the body's size
		decoders.Put(d)
	}
	if !ok {
		return Call{}, false
	}
	return c, true
}

// fastDecoder reads a request token by token: its members are few and
// fixed, and decoding it into a struct by reflection (encoding/json/v2,
// RejectUnknownMembers) was the largest part of the fast path's own CPU.
type fastDecoder struct {
	src bytes.Reader
	dec jsontext.Decoder
}

var decoders = sync.Pool{New: func() any { return new(fastDecoder) }}

// request reads {"jsonrpc":"2.0","id":..,"method":"tools/call","params":..}
// with its members in any order, each at most once, and nothing else, the
// object the whole body, params naming one of Tools. The values must be of the kinds mcp-go reads: a
// member of another kind (null included) sends the request to mcp-go,
// which answers it. body is what d reads, for the arguments' bytes.
func (d *fastDecoder) request(body []byte) (c Call, ok bool) {
	c.tool = -1
	dec := &d.dec
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return c, false
	}
	var version, method, params bool
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return c, false
		}
		switch name.String() {
		case "jsonrpc":
			version = d.stringIs(mcpgo.JSONRPC_VERSION)
		case "method":
			method = d.stringIs(string(mcpgo.MethodToolsCall))
		case "id":
			c.id = d.id()
		case "params":
			params = d.params(&c, body)
		default: // "_meta" and any other member: mcp-go's
			return c, false
		}
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return c, false
	}
	if _, err := dec.ReadToken(); err != io.EOF { // nothing after the object
		return c, false
	}
	return c, version && method && params && c.tool >= 0 && c.id != nil
}

// stringIs reads a value and reports whether it is the string want.
func (d *fastDecoder) stringIs(want string) bool {
	tok, err := d.dec.ReadToken()
	return err == nil && tok.Kind() == '"' && tok.String() == want
}

// id reads the request id as mcp-go does (see Call.id), or nil.
func (d *fastDecoder) id() any {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return nil
	}
	switch tok.Kind() {
	case '"':
		return tok.String()
	case '0':
		// As encoding/json/v2 decodes a number into any: strconv's float64,
		// refused when out of range.
		f, err := strconv.ParseFloat(tok.String(), 64)
		if err != nil {
			return nil
		}
		return f
	}
	return nil
}

// params reads {"name":..,"arguments":{..}}, arguments optional, into c.
func (d *fastDecoder) params(c *Call, body []byte) bool {
	dec := &d.dec
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return false
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return false
		}
		switch name.String() {
		case "name":
			tok, err := dec.ReadToken()
			if err != nil || tok.Kind() != '"' {
				return false
			}
			c.tool = -1
			for i := range Tools {
				if Tools[i].Name == tok.String() {
					c.tool = i
					break
				}
			}
		case "arguments":
			v, err := dec.ReadValue()
			if err != nil || v.Kind() != '{' {
				return false
			}
			// The value's own bytes in body, which outlive the decoder.
			end := int(dec.InputOffset())
			c.raw = jsontext.Value(body[end-len(v) : end])
			c.args = nil
			if json.Unmarshal(c.raw, &c.args) != nil {
				return false
			}
		default:
			return false
		}
	}
	tok, err := dec.ReadToken()
	return err == nil && tok.Kind() == '}'
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
func (f *fastTools) serve(w http.ResponseWriter, ctx context.Context, h http.Header, c Call) {
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
