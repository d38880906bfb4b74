package mcp

import (
	"net/http"
	"testing"
)

// FuzzPeekCall: any body is either read or left to mcp-go, never a panic,
// and header agreement is decided for whatever was read.
func FuzzPeekCall(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"}}}`), "tools/call", "create-todo")
	f.Add([]byte(`[{"method":"tools/call"}]`), "", "")
	f.Add([]byte(`{"method":7,"params":"x"}`), "tools/list", "")
	f.Add([]byte(`null`), "", "")
	f.Fuzz(func(t *testing.T, body []byte, method, name string) {
		call, ok := peekCall(body)
		if !ok && call != (rpcCall{}) {
			t.Fatalf("unread body yielded %+v", call)
		}
		h := http.Header{}
		h.Set("Mcp-Method", method)
		h.Set("Mcp-Name", name)
		_ = checkHeaders(h, call)
	})
}
