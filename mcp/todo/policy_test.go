package todo

import (
	"testing"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
)

func principal(sub string, perms ...providers.Permission) *providers.Principal {
	p := &providers.Principal{Subject: sub, Permissions: map[providers.Permission]bool{}}
	for _, perm := range perms {
		p.Permissions[perm] = true
	}
	return p
}

func TestRequiredPermission(t *testing.T) {
	tests := []struct {
		tool     string
		wantPerm providers.Permission
		wantNeed bool
	}{
		{ToolCreateTodo, providers.PermCreate, true},
		{ToolGetTodos, "", false},
		{ToolDeleteTodo, "", false},
		{"unknown-tool", "", false},
	}
	for _, tt := range tests {
		perm, need := RequiredPermission(tt.tool)
		if perm != tt.wantPerm || need != tt.wantNeed {
			t.Errorf("RequiredPermission(%q) = %q, %v; want %q, %v", tt.tool, perm, need, tt.wantPerm, tt.wantNeed)
		}
	}
}

// The tutorial's role table: Admin holds all three scopes, User only create.
func TestOwnershipPolicy(t *testing.T) {
	admin := principal("admin", providers.PermCreate, providers.PermRead, providers.PermDelete)
	user := principal("user", providers.PermCreate)
	reader := principal("reader", providers.PermRead)
	adminsTodo := store.Todo{ID: "a", OwnerID: "admin"}
	usersTodo := store.Todo{ID: "u", OwnerID: "user"}

	tests := []struct {
		name string
		p    *providers.Principal
		todo store.Todo
		want bool
	}{
		{"admin deletes own", admin, adminsTodo, true},
		{"admin deletes another's", admin, usersTodo, true},
		{"user deletes own", user, usersTodo, true},
		{"user cannot delete admin's", user, adminsTodo, false},
		{"read permission does not grant delete", reader, usersTodo, false},
		{"nil principal", nil, usersTodo, false},
		{"empty subject owns nothing", principal(""), store.Todo{OwnerID: "x"}, false},
	}
	for _, tt := range tests {
		if got := CanDelete(tt.p, tt.todo); got != tt.want {
			t.Errorf("%s: CanDelete = %v, want %v", tt.name, got, tt.want)
		}
	}

	listAll := []struct {
		p    *providers.Principal
		want bool
	}{{admin, true}, {reader, true}, {user, false}, {nil, false}}
	for _, tt := range listAll {
		if got := CanListAll(tt.p); got != tt.want {
			t.Errorf("CanListAll(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
}
