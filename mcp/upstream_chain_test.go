package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// TestGatewayInFrontOfGateway: the built-in todo server as the upstream of
// another gateway's tenant. The outer gateway verifies the client's token
// and sends its own assertion; the inner gateway's tenant is an "oauth"
// tenant whose issuer is the outer gateway, verifying the assertion with
// the JWKS the outer one publishes, with the real verifier (providers.New)
// and no other configuration. The tutorial's rules hold through both:
// the subject, create:todos checked at the outer door, read:todos and
// delete:todos forwarded for the inner server's ownership rules.
func TestGatewayInFrontOfGateway(t *testing.T) {
	outer := newEdgeBed(t, withSigner(t))

	st, err := bolt.Open(filepath.Join(t.TempDir(), "inner.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inner := mcp.New(st, mcp.Options{Logger: slog.New(slog.DiscardHandler)})
	innerSrv := httptest.NewServer(inner)
	t.Cleanup(func() {
		innerSrv.Close()
		inner.Close(context.Background())
		st.Close()
	})
	innerCfg, err := tenants.Parse(fmt.Appendf(nil, `{"tenants": [{"id": "todo", "resource": "%s/todo",
		"provider": {"type": "oauth", "issuer": %q, "metadata": {"jwks_uri": "%s%s"}}}]}`,
		innerSrv.URL, outer.URL, outer.URL, upstream.JWKSPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Apply(t.Context(), innerCfg, "inner"); err != nil {
		t.Fatal(err)
	}
	url := outer.addUpstreamTenant(t, &notesServer{URL: innerSrv.URL + "/todo"}, `{"type": "upstream", "url": "URL",
		"permissions": {"tools": {"create-todo": ["create:todos"], "get-todos": [], "delete-todo": []},
			"forward": ["read:todos", "delete:todos"]}}`, "challenge")

	perms := func(names ...string) []providers.Permission {
		var out []providers.Permission
		for _, n := range names {
			out = append(out, providers.Permission(n))
		}
		return out
	}
	admin := connectUpstream(t, url, outer.token("notes", "ann", perms("create:todos", "read:todos", "delete:todos")...))
	user := connectUpstream(t, url, outer.token("notes", "bob", perms("create:todos")...))
	guest := connectUpstream(t, url, outer.token("notes", "gus"))

	call := func(c interface {
		CallTool(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error)
	}, tool string, args map[string]any) (string, bool) {
		t.Helper()
		req := mcpgo.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = tool, args
		res, err := c.CallTool(t.Context(), req)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return res.Content[0].(mcpgo.TextContent).Text, res.IsError
	}
	text, isErr := call(admin, "create-todo", map[string]any{"content": "admin's"})
	var adminTodo struct{ ID, OwnerID string }
	if isErr || json.Unmarshal([]byte(text), &adminTodo) != nil || adminTodo.OwnerID != "ann" {
		t.Fatalf("admin's create: %s", text)
	}
	if text, isErr = call(user, "create-todo", map[string]any{"content": "user's"}); isErr || !strings.Contains(text, `"ownerId":"bob"`) {
		t.Fatalf("user's create: %s", text)
	}
	if _, err := callTool(t, guest, "create-todo"); err == nil {
		t.Error("the guest created a todo through two gateways")
	}
	if got, want := strings.Join(toolNames(t, guest), ","), "delete-todo,get-todos"; got != want {
		t.Errorf("the guest's tools %s, want %s", got, want)
	}
	if text, _ = call(user, "get-todos", nil); strings.Contains(text, "admin's") || !strings.Contains(text, "user's") {
		t.Errorf("the user's list (own only): %s", text)
	}
	if text, _ = call(admin, "get-todos", nil); !strings.Contains(text, "admin's") || !strings.Contains(text, "user's") {
		t.Errorf("the admin's list (read:todos forwarded): %s", text)
	}
	if text, _ = call(user, "delete-todo", map[string]any{"id": adminTodo.ID}); !strings.Contains(text, "Failed to delete todo") {
		t.Errorf("the user deleted the admin's todo: %s", text)
	}
	if text, isErr = call(admin, "delete-todo", map[string]any{"id": adminTodo.ID}); isErr || !strings.Contains(text, "deleted") {
		t.Errorf("the admin's delete: %s", text)
	}
}
