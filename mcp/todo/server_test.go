package todo

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/todo-gateway/todo-gateway/providers"
)

// A server's mcp-go server is built on the first request the fast path
// does not answer, once, and not at all for a server never asked such a
// request: building one per tenant at start was most of the start-up cost
// with 10,000 tenants. Close stops only the servers that were built.
func TestMCPServerIsBuiltOnFirstUse(t *testing.T) {
	used, idle := New(Options{Tenant: "used"}), New(Options{Tenant: "idle"})
	if used.built.Load() != nil || idle.built.Load() != nil {
		t.Fatal("an mcp-go server was built with its todo server")
	}
	if used.fast == nil || len(used.fast.handlers) != len(Tools) {
		t.Fatal("the fast path has no handlers before the mcp-go server is built")
	}
	srv := used.mcp()
	if srv == nil || used.mcp() != srv || used.built.Load() != srv {
		t.Fatal("the mcp-go server is not built once and kept")
	}
	if idle.built.Load() != nil {
		t.Fatal("building one tenant's server built another's")
	}
	for _, s := range []*Server{used, idle} {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// What a call needs comes from the tool table; the server takes every call
// (mcp-go answers what it does not know), and MCPOnly never reads a message
// for the fast path.
func TestRequiresReadsTheToolTable(t *testing.T) {
	s := New(Options{Tenant: "acme"})
	tests := []struct {
		method, tool string
		want         []providers.Permission
	}{
		{"tools/call", ToolCreateTodo, []providers.Permission{providers.PermCreate}},
		{"tools/call", ToolGetTodos, nil},
		{"tools/call", ToolDeleteTodo, nil},
		{"tools/call", "unknown-tool", nil},
		{"tools/list", "", nil},
		{"resources/read", ToolCreateTodo, nil},
	}
	for _, tt := range tests {
		perms, exposed := s.Requires(tt.method, tt.tool)
		if !slices.Equal(perms, tt.want) || !exposed {
			t.Errorf("Requires(%q, %q) = %v, %v; want %v, true", tt.method, tt.tool, perms, exposed, tt.want)
		}
	}
	if !s.HasTool(ToolGetTodos) || s.HasTool("unknown-tool") {
		t.Error("HasTool does not follow the tool table")
	}

	h := http.Header{"Content-Type": {"application/json"}}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`)
	if c := s.Read(h, body); !c.Fast() || c.Tool() != ToolGetTodos {
		t.Errorf("Read: fast %v, tool %q; want the fast path to take get-todos", c.Fast(), c.Tool())
	}
	if c := New(Options{Tenant: "acme", MCPOnly: true}).Read(h, body); c.Fast() || c.Tool() != "" {
		t.Errorf("an MCPOnly server read a message for the fast path: tool %q", c.Tool())
	}
}
