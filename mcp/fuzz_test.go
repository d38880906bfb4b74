package mcp

import (
	"context"
	"net/http"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
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
