package main

import (
	"net/http"
	"strings"
	"testing"
)

// A JSON-RPC batch (removed from MCP in 2025-06-18) cannot slip a
// create-todo past the permission check.
func TestBatchCannotBypassStepUp(t *testing.T) {
	tb := newTestbed(t)
	tok := tb.token(t, "acme", "reader", "read:todos")
	batch := `[` + toolCall("create-todo") + `]`
	resp := post(t, tb.tenants["acme"], tok, batch, nil)
	body := readAll(t, resp)
	c := tb.connect(t, tb.tenants["acme"], tb.token(t, "acme", "admin", allTodoScopes), "")
	if got := listTodos(t, c); len(got) != 0 {
		t.Fatalf("a batch created %d todos without the create scope", len(got))
	}
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
		t.Errorf("batch answered %d %s, want a 400 JSON-RPC error", resp.StatusCode, body)
	}
}
