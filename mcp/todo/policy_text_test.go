package todo

import (
	"strings"
	"testing"

	"github.com/todo-gateway/todo-gateway/providers"
)

// The refusal of a call without its permission tells the user what would
// grant it: the scope, and the groups or roles where the tenant grants the
// permission from a claim (at Dex, signing in again cannot help).
func TestMissingPermissionText(t *testing.T) {
	plain := MissingPermissionText("create-todo", "create:todos", nil, providers.PermCreate, "")
	if want := "Forbidden: the create-todo tool requires the create:todos scope, which this access token does not grant. Sign in again granting create:todos, or ask an administrator for it."; plain != want {
		t.Errorf("without roles:\n got %s\nwant %s", plain, want)
	}
	roles := &providers.RoleGrants{Claim: "groups", Grants: map[string][]providers.Permission{
		"todo-admins": {providers.PermCreate, providers.PermRead, providers.PermDelete}, "todo-users": {providers.PermCreate}, "todo-readers": {providers.PermRead}}}
	got := MissingPermissionText("create-todo", "create:todos", roles, providers.PermCreate, "")
	for _, want := range []string{"requires the create:todos scope or one of the groups todo-admins, todo-users,", "Ask an administrator to add you to todo-admins or todo-users"} {
		if !strings.Contains(got, want) {
			t.Errorf("with groups: %s\nlacks %q", got, want)
		}
	}
	if strings.Contains(got, "todo-readers") {
		t.Errorf("names a group that does not grant create: %s", got)
	}

	// A provider that does not issue the scope (zitadel's example OP strips
	// it): the text does not send the user to sign in for it.
	notIssued := "the authorization server does not list create:todos among the scopes it issues (its scopes_supported), so signing in again will not grant it"
	stripped := MissingPermissionText("create-todo", "create:todos", nil, providers.PermCreate, notIssued)
	if want := "Forbidden: the create-todo tool requires the create:todos scope, which this access token does not grant; " + notIssued + ". Ask an administrator to have it issued to you."; stripped != want {
		t.Errorf("scope not issued:\n got %s\nwant %s", stripped, want)
	}
	if got := MissingPermissionText("create-todo", "create:todos", roles, providers.PermCreate, notIssued); strings.Contains(got, "sign in granting") || !strings.HasSuffix(got, "then sign in again.") {
		t.Errorf("groups, scope not issued: %s", got)
	}
}
