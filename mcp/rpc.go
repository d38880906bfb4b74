package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// rpcCall is what the gateway needs to know about a JSON-RPC request before
// mcp-go sees it: which method, and for tools/call which tool.
type rpcCall struct {
	Method string
	Tool   string
}

var errBodyTooLarge = errors.New("request body too large")

// readBody reads at most limit bytes of the body, whatever Content-Length
// says (a chunked body has none). mcp-go is handed these bytes (see
// serveMCP), so the body is read once.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, errBodyTooLarge
	}
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

// checkHeaders enforces that the 2026-07-28 routing headers, when sent,
// agree with the body: the permission check reads the body, and a proxy
// routing on the headers must not see a different call.
func checkHeaders(h http.Header, call rpcCall) error {
	if m := h.Get("Mcp-Method"); m != "" && m != call.Method {
		return fmt.Errorf("Mcp-Method header %q does not match the body's method", m)
	}
	if n := h.Get("Mcp-Name"); n != "" && call.Method == "tools/call" && n != call.Tool {
		return fmt.Errorf("Mcp-Name header %q does not match the body's tool name", n)
	}
	return nil
}
