package mcp_test

import (
	"encoding/json"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
)

// The tutorial's checkpoint, on one tenant per provider shape and for each
// protocol generation: User (create only) sees and deletes only their own
// todos; Admin (all three) sees and deletes everyone's.
func TestTutorialRoles(t *testing.T) {
	b := newEdgeBed(t, nil)
	for _, tenant := range []string{"acme", "globex", "initech"} {
		for _, version := range []string{"", mcpgo.ProtocolVersion20251125, mcpgo.ProtocolVersion20250618} {
			t.Run(tenant+"/"+version, func(t *testing.T) {
				resource := b.resources[tenant]
				adminSub, userSub := "admin-"+version, "user-"+version
				admin := connect(t, resource, b.token(tenant, adminSub, adminPerms...), version)
				user := connect(t, resource, b.token(tenant, userSub, userPerms...), version)

				adminTodo := createTodo(t, admin, "admin's todo")
				userTodo := createTodo(t, user, "user's todo")
				if userTodo.OwnerID != userSub || userTodo.Content != "user's todo" || userTodo.ID == "" || userTodo.CreatedAt.IsZero() {
					t.Fatalf("created %+v, want owner %q and the content back", userTodo, userSub)
				}

				if got := ids(listTodos(t, user)); len(got) != 1 || got[0] != userTodo.ID {
					t.Errorf("user sees %v, want only their own %s", got, userTodo.ID)
				}
				text, isErr := call(t, user, todo.ToolDeleteTodo, map[string]any{"id": adminTodo.ID})
				if !isErr || !strings.Contains(text, "Failed to delete todo") {
					t.Errorf("user deleting admin's todo: %q (error %v), want Failed to delete todo", text, isErr)
				}
				text, isErr = call(t, user, todo.ToolDeleteTodo, map[string]any{"id": "no-such-id"})
				if !isErr || !strings.Contains(text, "Failed to delete todo") {
					t.Errorf("deleting an unknown id: %q, want the same Failed to delete todo", text)
				}

				seen := map[string]bool{}
				for _, id := range ids(listTodos(t, admin)) {
					seen[id] = true
				}
				if !seen[adminTodo.ID] || !seen[userTodo.ID] {
					t.Errorf("admin sees %v, want both %s and %s", seen, adminTodo.ID, userTodo.ID)
				}
				text, isErr = call(t, admin, todo.ToolDeleteTodo, map[string]any{"id": userTodo.ID})
				if isErr || !strings.Contains(text, "Todo "+userTodo.ID+" deleted") {
					t.Errorf("admin deleting user's todo: %q (error %v)", text, isErr)
				}
				text, isErr = call(t, admin, todo.ToolDeleteTodo, map[string]any{"id": adminTodo.ID})
				if isErr {
					t.Errorf("admin deleting own todo: %q", text)
				}
				if got := listTodos(t, admin); len(got) != 0 {
					t.Errorf("after deleting both, admin sees %v", ids(got))
				}
			})
		}
	}
}

// A user deletes their own todo without the delete scope.
func TestOwnerDeletesOwnTodo(t *testing.T) {
	b := newEdgeBed(t, nil)
	user := connect(t, b.resources["acme"], b.token("acme", "user", userPerms...), "")
	td := createTodo(t, user, "mine")
	text, isErr := call(t, user, todo.ToolDeleteTodo, map[string]any{"id": td.ID})
	if isErr {
		t.Fatalf("owner delete: %s", text)
	}
	var res struct {
		Message string     `json:"message"`
		Details todoRecord `json:"details"`
	}
	if err := json.Unmarshal([]byte(text), &res); err != nil || res.Details.ID != td.ID || res.Message != "Todo "+td.ID+" deleted" {
		t.Fatalf("delete result %q: %v", text, err)
	}
	if got := listTodos(t, user); len(got) != 0 {
		t.Errorf("after the delete, the owner sees %v", ids(got))
	}
}

// Arguments are checked by the tools themselves: a bad call is a tool error
// with a message the model can act on, never a crash or a stored todo.
func TestToolArgumentErrors(t *testing.T) {
	b := newEdgeBed(t, nil)
	c := connect(t, b.resources["acme"], b.token("acme", "admin", adminPerms...), "")
	tests := []struct {
		tool string
		args map[string]any
		want string
	}{
		{todo.ToolCreateTodo, nil, "content argument is required"},
		{todo.ToolCreateTodo, map[string]any{"content": 42}, "content argument is required"},
		{todo.ToolCreateTodo, map[string]any{"content": "   "}, "empty"},
		{todo.ToolCreateTodo, map[string]any{"content": strings.Repeat("x", 10*1024+1)}, "10240"},
		{todo.ToolDeleteTodo, nil, "id argument is required"},
		{todo.ToolGetTodos, map[string]any{"limit": 0}, "limit must be an integer from 1 to 1000"},
		{todo.ToolGetTodos, map[string]any{"limit": 1001}, "limit must be an integer from 1 to 1000"},
		{todo.ToolGetTodos, map[string]any{"limit": "many"}, "limit must be an integer from 1 to 1000"},
		// mcp-go's RequireInt would cut 1.5 to 1.
		{todo.ToolGetTodos, map[string]any{"limit": 1.5}, "limit must be an integer from 1 to 1000"},
		{todo.ToolGetTodos, map[string]any{"limit": 1e300}, "limit must be an integer from 1 to 1000"},
		{todo.ToolGetTodos, map[string]any{"cursor": 7}, "cursor must be"},
		{todo.ToolGetTodos, map[string]any{"cursor": "not-a-cursor"}, "cursor"},
	}
	for _, tt := range tests {
		text, isErr := call(t, c, tt.tool, tt.args)
		if !isErr || !strings.Contains(text, tt.want) {
			t.Errorf("%s %v: %q (error %v), want a tool error containing %q", tt.tool, tt.args, text, isErr, tt.want)
		}
	}
	if got := listTodos(t, c); len(got) != 0 {
		t.Errorf("bad calls stored %d todos", len(got))
	}
}

// get-todos pages with limit and nextCursor, oldest first, and the pages
// together hold every todo once.
func TestGetTodosPagination(t *testing.T) {
	b := newEdgeBed(t, nil)
	c := connect(t, b.resources["globex"], b.token("globex", "admin", adminPerms...), "")
	var want []string
	for i := range 7 {
		want = append(want, createTodo(t, c, "todo "+string(rune('a'+i))).ID)
	}
	var got []string
	args := map[string]any{"limit": 3}
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more pages than 7 todos in pages of 3 can fill")
		}
		text, isErr := call(t, c, todo.ToolGetTodos, args)
		if isErr {
			t.Fatalf("get-todos: %s", text)
		}
		var page struct {
			Todos      []todoRecord `json:"todos"`
			NextCursor string       `json:"nextCursor"`
		}
		if err := json.Unmarshal([]byte(text), &page); err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(page.Todos)...)
		if page.NextCursor == "" {
			break
		}
		args = map[string]any{"limit": 3, "cursor": page.NextCursor}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("pages hold %v, want %v in creation order", got, want)
	}
}
