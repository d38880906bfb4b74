package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Arguments are checked by the tools themselves: a bad call is a tool error
// with a message the model can act on, never a crash or a stored todo.
func TestToolArgumentErrors(t *testing.T) {
	tb := newTestbed(t)
	c := tb.connect(t, tb.tenants["acme"], tb.token(t, "acme", "admin", allTodoScopes), "")
	tests := []struct {
		tool string
		args map[string]any
		want string
	}{
		{"create-todo", nil, "content argument is required"},
		{"create-todo", map[string]any{"content": 42}, "content argument is required"},
		{"create-todo", map[string]any{"content": "   "}, "empty"},
		{"create-todo", map[string]any{"content": strings.Repeat("x", 10*1024+1)}, "10240"},
		{"delete-todo", nil, "id argument is required"},
		{"get-todos", map[string]any{"limit": 0}, "limit must be an integer from 1 to 1000"},
		{"get-todos", map[string]any{"limit": 1001}, "limit must be an integer from 1 to 1000"},
		{"get-todos", map[string]any{"limit": "many"}, "limit must be an integer from 1 to 1000"},
		{"get-todos", map[string]any{"cursor": 7}, "cursor must be"},
		{"get-todos", map[string]any{"cursor": "not-a-cursor"}, "cursor"},
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
	tb := newTestbed(t)
	c := tb.connect(t, tb.tenants["globex"], tb.token(t, "globex", "admin", allTodoScopes), "")
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
		text, isErr := call(t, c, "get-todos", args)
		if isErr {
			t.Fatalf("get-todos: %s", text)
		}
		var page struct {
			Todos      []todo `json:"todos"`
			NextCursor string `json:"nextCursor"`
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
