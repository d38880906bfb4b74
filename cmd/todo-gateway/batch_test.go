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

// A tool name spelled twice, or in another case, is read before dispatch as
// mcp-go reads it, so the step-up challenge names the tool that would run.
func TestAmbiguousToolNameGetsTheRunningToolsChallenge(t *testing.T) {
	tb := newTestbed(t)
	tok := tb.token(t, "acme", "reader", "read:todos")
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","NAME":"create-todo","arguments":{"content":"x"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","name":"create-todo","arguments":{"content":"x"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"}}}`,
	} {
		resp := post(t, tb.tenants["acme"], tok, body, nil)
		got := readAll(t, resp)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="create:todos"`) {
			t.Errorf("%s: got %d %q %s, want 403 insufficient_scope naming create:todos", body, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), got)
		}
	}
}
