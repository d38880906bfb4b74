package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// rpcCall is what the gateway needs to know about a JSON-RPC request before
// mcp-go sees it: which method, and for tools/call which tool.
type rpcCall struct {
	Method string
	Tool   string
	// Version is the protocol version a 2026-07-28 request names in its
	// _meta, "" when none. Upstream tenants read it (readMessage) and
	// check it against the header (checkHeaders), since they decide by
	// it; for todo tenants mcp-go checks it itself.
	Version string
}

var errBodyTooLarge = errors.New("request body too large")

// readBody reads at most limit bytes of the body, whatever Content-Length
// says (a chunked body has none). mcp-go is handed these bytes (see
// serveMCP), so the body is read once; r.Body becomes http.NoBody, which
// tells closeUnread that the body was read. A body that could not be read
// whole is left as it is: the refusal closes the connection instead of
// reading on.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	// A declared length sizes the buffer (io.ReadAll starts at 512 bytes,
	// five times a typical tools/call); the byte beyond it lets the end of
	// the body be read without growing, and tells an overlong body from
	// one of exactly limit bytes.
	size := int64(512)
	if n := r.ContentLength; n >= 0 && n <= limit {
		size = n + 1
	}
	body := make([]byte, 0, size)
	in := io.LimitReader(r.Body, limit+1)
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := in.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(body)) > limit {
		return nil, errBodyTooLarge
	}
	r.Body.Close()
	r.Body = http.NoBody
	return body, nil
}

// peekCall reads the method and tool name from a JSON-RPC body the way
// mcp-go will when it dispatches the call: encoding/json into struct fields
// of the same names, so the same rules pick the value when a key repeats or
// differs only in case ({"name":"get-todos","NAME":"create-todo"} runs
// create-todo, and is checked as create-todo). FuzzPeekCall holds this
// against mcp-go itself. A body that is not a single JSON-RPC request is
// left for mcp-go to reject with the proper JSON-RPC error, so ok is false
// and nothing is decided here.
func peekCall(body []byte) (call rpcCall, ok bool) {
	var msg struct {
		Method string `json:"method"`
		Params struct {
			// Raw, so that a name of another type names no tool rather
			// than hiding the method; mcp-go rejects such calls.
			Name json.RawMessage `json:"name"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil {
		return rpcCall{}, false
	}
	call.Method = msg.Method
	_ = json.Unmarshal(msg.Params.Name, &call.Tool)
	return call, true
}

// messageProblem says why body, one message, is no JSON-RPC message a
// server can answer, or returns nil: bytes that are not JSON (-32700
// Parse error), JSON that is no object, or an object that is neither a
// request or notification (a method) nor a response (an id with a result
// or an error) (-32600 Invalid Request). mcp-go calls any JSON that is no
// object "not valid json" (-32700), and answers an object with an id and
// no method 202 with no body, as if it were a response, which leaves a
// client waiting for an answer forever.
func messageProblem(body []byte) *challenge {
	if !json.Valid(body) {
		return notJSON()
	}
	if !jsonStartsWith(body, '{') {
		return notAnObject()
	}
	var msg messageKind
	_ = json.Unmarshal(body, &msg) // valid JSON, an object: the raw fields always decode
	return msg.problem(body)
}

func notJSON() *challenge {
	return invalidMessage(mcpgo.PARSE_ERROR, nil, "Parse error: the body is not JSON")
}

func notAnObject() *challenge {
	return invalidMessage(mcpgo.INVALID_REQUEST, nil, "Invalid Request: the body must be a JSON-RPC message, an object (or, under protocol version 2025-03-26, a batch: an array of them)")
}

// messageKind are the members of a message that say what kind of message
// it is, as written (nil when absent).
type messageKind struct {
	ID     json.RawMessage `json:"id"`
	Method json.RawMessage `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// problem is messageProblem for a message, body, whose members are msg.
func (msg messageKind) problem(body []byte) *challenge {
	var method string
	switch {
	case msg.Method != nil && (json.Unmarshal(msg.Method, &method) != nil || method == ""):
		return invalidMessage(mcpgo.INVALID_REQUEST, requestID(body), "Invalid Request: method must be a non-empty string")
	case msg.Method != nil:
		return nil
	case msg.ID != nil && (msg.Result != nil || msg.Error != nil):
		return nil // a response to a request of the server's
	}
	return invalidMessage(mcpgo.INVALID_REQUEST, requestID(body),
		"Invalid Request: a JSON-RPC message has a method (a request or a notification) or, with the id of a request it answers, a result or an error (a response)")
}

// checkHeaders enforces that the 2026-07-28 routing headers, when sent,
// agree with the body: the permission check reads the body, and a proxy
// routing on the headers must not see a different call. Mcp-Name is
// compared decoded (a name outside printable ASCII travels Base64-wrapped),
// as mcp-go compares it. The error is mcp-go's HeaderMismatchError, answered
// as JSON-RPC -32020 (headerMismatch); that a header a 2026-07-28 request
// needs is missing is mcp-go's to say, with the same error, but for
// Mcp-Protocol-Version beside a version read from the body: the gateway
// decides by that pair (upstream.FilterAnswer), so they must agree, as
// mcp-go requires of them.
func checkHeaders(h http.Header, call rpcCall) error {
	if v := call.Version; v != "" {
		switch hv := h.Get(mcpgo.HeaderProtocolVersion); {
		case hv == "" && mcpgo.IsModernProtocol(v):
			return mcpgo.HeaderMismatchError{Header: mcpgo.HeaderProtocolVersion,
				Reason: "the header is required beside _meta " + mcpgo.MetaKeyProtocolVersion}
		case hv != "" && hv != v:
			return mcpgo.HeaderMismatchError{Header: mcpgo.HeaderProtocolVersion,
				Reason: fmt.Sprintf("header value %s does not match body value %s", quoteBounded(hv), quoteBounded(v))}
		}
	}
	if m := h.Get(mcpgo.HeaderMethod); m != "" && m != call.Method {
		return mcpgo.HeaderMismatchError{Header: mcpgo.HeaderMethod,
			Reason: fmt.Sprintf("header value %s does not match body value %s", quoteBounded(m), quoteBounded(call.Method))}
	}
	if n := h.Get(mcpgo.HeaderName); n != "" && call.Method == string(mcpgo.MethodToolsCall) {
		name, ok := mcpgo.DecodeHeaderValue(n)
		if !ok {
			return mcpgo.HeaderMismatchError{Header: mcpgo.HeaderName, Reason: "invalid Base64 encoding"}
		}
		if name != call.Tool {
			return mcpgo.HeaderMismatchError{Header: mcpgo.HeaderName,
				Reason: fmt.Sprintf("header value %s does not match body value %s", quoteBounded(name), quoteBounded(call.Tool))}
		}
	}
	return nil
}

// maxQuoted bounds what of a client's value an answer or a log line quotes.
const maxQuoted = 64

// quoteBounded quotes s, cut to maxQuoted bytes: a header value can be
// as long as the header limit allows, and it reaches the audit log.
func quoteBounded(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "…"
	}
	return strconv.Quote(s)
}

// requestID is the id of a JSON-RPC request as mcp-go reads it (a string, a
// float64 for any number), nil when there is none or the body is not a
// request object: what a JSON-RPC error about it carries.
func requestID(body []byte) any {
	var msg struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(body, &msg) != nil {
		return nil
	}
	switch msg.ID.(type) {
	case string, float64:
		return msg.ID
	}
	return nil
}

// rpcError is a JSON-RPC error response as mcp-go writes it, one line.
func rpcError(id any, code int, message string) []byte {
	b, err := json.Marshal(mcpgo.JSONRPCError{JSONRPC: mcpgo.JSONRPC_VERSION, ID: mcpgo.NewRequestId(id),
		Error: mcpgo.JSONRPCErrorDetails{Code: code, Message: message}})
	if err != nil { // an id is a string or float64: never
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	return b
}

// writeRPCError answers with a JSON-RPC error and an HTTP status, as mcp-go
// answers the errors of the transport.
func writeRPCError(w http.ResponseWriter, status int, id any, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(rpcError(id, code, message), '\n'))
}
