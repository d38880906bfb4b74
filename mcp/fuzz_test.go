package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
)

// FuzzPeekCall: any body is either read or left to mcp-go, never a panic;
// header agreement is decided for whatever was read; and whenever mcp-go
// itself runs a tool for the body, peekCall named that tool, so the
// permission checked before dispatch is the one of the tool that runs.
func FuzzPeekCall(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"}}}`), "tools/call", "create-todo")
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","NAME":"create-todo"}}`), "", "")
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"delete-todo","arguments":{"id":"x"}}}`), "", "")
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","name":"create-todo"}}`), "", "")
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"create-todo"}}`), "", "")
	f.Add([]byte(`[{"method":"tools/call"}]`), "", "")
	f.Add([]byte(`{"method":7,"params":"x"}`), "tools/list", "")
	f.Add([]byte(`null`), "", "")

	oracle := server.NewMCPServer("oracle", "1", server.WithToolCapabilities(false))
	var ran string
	for _, name := range []string{todo.ToolCreateTodo, todo.ToolGetTodos, todo.ToolDeleteTodo} {
		oracle.AddTool(mcpgo.NewTool(name), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			ran = name
			return mcpgo.NewToolResultText("ok"), nil
		})
	}
	f.Fuzz(func(t *testing.T, body []byte, method, name string) {
		call, ok := peekCall(body)
		if !ok && call != (rpcCall{}) {
			t.Fatalf("unread body yielded %+v", call)
		}
		h := http.Header{}
		h.Set("Mcp-Method", method)
		h.Set("Mcp-Name", name)
		_ = checkHeaders(h, call)

		ran = ""
		oracle.HandleMessage(context.Background(), body)
		if ran != "" && (!ok || call.Method != "tools/call" || call.Tool != ran) {
			t.Fatalf("mcp-go ran %s for %s, but peekCall read %+v (ok %v)", ran, body, call, ok)
		}
	})
}

// FuzzReadMessage: an upstream tenant's one read of a message
// (readMessage) refuses what messageProblem refuses, with the same code
// and, unless the message's members could be read apart (refused first),
// the same words; and of every other message it reads what peekCall reads,
// or refuses what peekCall cannot read.
func FuzzReadMessage(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":"x","result":{}}`,
		`{"jsonrpc":"2.0","id":1}`,
		`{"method":"","id":1}`,
		`{"method":null}`,
		`{"method":7,"params":"x"}`,
		`{"method":"ping","params":[1]}`,
		`{"method":"ping","params":null}`,
		`{"method":"tools/call","params":{"name":7}}`,
		`{"method":"tools/call","params":{"name":"e\u0063ho"}}`,
		"{\"method\":\"tools/call\",\"params\":{\"name\":\"e\xffcho\"}}",
		`{"method":"tools/call","params":{"name":"get-env","Name":"echo"}}`,
		`{"Method":"","method":"ping"}`,
		`[{"method":"ping"}]`,
		`"x"`,
		`{"method":"ping"} x`,
		`{"method":"resources/read","params":{"uri":"u","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`{"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":7}}}`,
		`{"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolversion":"2026-07-28"}}}`,
		`{"method":"ping","params":{"_meta":[],"_META":{}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rc, ch := readMessage(body)
		_, readErr := upstream.ReadMessage(body)
		ambiguous := readErr != nil && !errors.Is(readErr, upstream.ErrNotJSON) && !errors.Is(readErr, upstream.ErrNotObject)
		if want := messageProblem(body); want != nil {
			if ch == nil || ch.rpcCode != want.rpcCode || (!ambiguous && ch.description != want.description) {
				t.Fatalf("readMessage(%q) = %+v, messageProblem %+v", body, ch, want)
			}
			return
		}
		if ambiguous {
			if ch == nil || ch.rpcCode != mcpgo.INVALID_REQUEST {
				t.Fatalf("readMessage(%q) = %+v, %+v for a message readers read apart (%v)", body, rc, ch, readErr)
			}
			return
		}
		want, ok := peekCall(body)
		if ok {
			want.Version = metaVersion(body)
		}
		switch {
		case !ok && (ch == nil || ch.description != invalidParams):
			t.Fatalf("readMessage(%q) = %+v, %+v; peekCall could not read it", body, rc, ch)
		case ok && (ch != nil || rc != want):
			t.Fatalf("readMessage(%q) = %+v, %+v; peekCall and mcp-go's _meta read %+v", body, rc, ch, want)
		}
	})
}

// metaVersion is the protocol version a request names in params._meta, as
// mcp-go reads it (encoding/json; _meta's members into a map).
func metaVersion(body []byte) string {
	var msg struct {
		Params struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		} `json:"params"`
	}
	var v string
	if json.Unmarshal(body, &msg) == nil {
		_ = json.Unmarshal(msg.Params.Meta[mcpgo.MetaKeyProtocolVersion], &v)
	}
	return v
}
