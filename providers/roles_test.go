package providers

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
)

// tutorialRoles is the tutorial's role table as a group claim mapping:
// admins may do everything, users may create.
func tutorialRoles(claim string) *RoleGrants {
	return &RoleGrants{Claim: claim, Grants: map[string][]Permission{
		"todo-admins": {PermCreate, PermRead, PermDelete},
		"todo-users":  {PermCreate},
	}}
}

func TestRoleGrants(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	for _, tc := range []struct {
		name   string
		claim  string
		scope  string
		extra  map[string]any
		want   []Permission
		reason string // a refusal, when set
	}{
		{name: "admin by group", claim: "groups", extra: map[string]any{"groups": []string{"staff", "todo-admins"}},
			want: []Permission{PermCreate, PermRead, PermDelete}},
		{name: "user by group", claim: "groups", extra: map[string]any{"groups": []string{"todo-users"}},
			want: []Permission{PermCreate}},
		{name: "guest: no mapped group", claim: "groups", extra: map[string]any{"groups": []string{"staff"}}},
		{name: "no group claim", claim: "groups"},
		{name: "empty group list", claim: "groups", extra: map[string]any{"groups": []string{}}},
		{name: "one group as a string, not split", claim: "groups", extra: map[string]any{"groups": "todo-users"},
			want: []Permission{PermCreate}},
		{name: "a string is one value", claim: "groups", extra: map[string]any{"groups": "todo-users todo-admins"}},
		{name: "values are exact", claim: "groups", extra: map[string]any{"groups": []string{"TODO-ADMINS", "todo-admins "}}},
		{name: "scopes and groups combine", claim: "groups", scope: "read:todos", extra: map[string]any{"groups": []string{"todo-users"}},
			want: []Permission{PermCreate, PermRead}},
		{name: "scopes still count alone", claim: "groups", scope: "delete:todos",
			want: []Permission{PermDelete}},
		{name: "keycloak realm roles", claim: "realm_access.roles",
			extra: map[string]any{"realm_access": map[string]any{"roles": []string{"offline_access", "todo-admins"}}},
			want:  []Permission{PermCreate, PermRead, PermDelete}},
		{name: "keycloak client roles", claim: "resource_access.todo-api.roles",
			extra: map[string]any{"resource_access": map[string]any{"account": map[string]any{"roles": []string{"todo-admins"}},
				"todo-api": map[string]any{"roles": []string{"todo-users"}}}},
			want: []Permission{PermCreate}},
		{name: "keycloak client absent", claim: "resource_access.todo-api.roles",
			extra: map[string]any{"resource_access": map[string]any{"account": map[string]any{"roles": []string{"todo-admins"}}}}},
		{name: "a claim named with dots is found by its name", claim: "https://acme.example/roles",
			extra: map[string]any{"https://acme.example/roles": []string{"todo-admins"}},
			want:  []Permission{PermCreate, PermRead, PermDelete}},
		{name: "groups of the wrong type", claim: "groups", extra: map[string]any{"groups": []int{1, 2}},
			reason: reasonClaimType("groups")},
		{name: "a path through a non-object", claim: "realm_access.roles", extra: map[string]any{"realm_access": []string{"todo-admins"}},
			reason: reasonClaimType("realm_access")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := settings(iss, KindOIDC)
			s.Claims.Roles = tutorialRoles(tc.claim)
			p := newProvider(t, iss, s, clk)
			claims := iss.Claims("u", testResource, tc.scope)
			maps.Copy(claims, tc.extra)
			pr, err := p.Verify(context.Background(), iss.Mint(claims))
			if tc.reason != "" {
				checkErr(t, err, ClassInvalidToken, tc.reason)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			var got []Permission
			for _, perm := range Permissions {
				if pr.Has(perm) {
					got = append(got, perm)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got permissions %v, want %v (roles read: %q)", got, tc.want, pr.Roles)
			}
		})
	}
}

// TestRoleGrantsExplained: token's trace says which claim value granted
// what, and what nothing granted.
func TestRoleGrantsExplained(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	s := settings(iss, KindOIDC)
	s.Claims.Roles = tutorialRoles("groups")
	p := newProvider(t, iss, s, clk)
	claims := iss.Claims("u", testResource, "create:todos")
	claims["groups"] = []string{"todo-users", "staff"}
	_, steps, err := tracedVerify(p, iss.Mint(claims))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	detail := map[string]string{}
	for _, st := range steps {
		detail[st.Name] = st.Detail
	}
	if got, want := detail[stepRoles], `groups ["todo-users" "staff"]`; got != want {
		t.Fatalf("got roles step %q, want %q", got, want)
	}
	want := `create:todos and groups "todo-users" grant create; ` +
		`no read:todos and no groups value granting it, so no read; ` +
		`no delete:todos and no groups value granting it, so no delete`
	if got := detail[stepPermissions]; got != want {
		t.Fatalf("got permissions step\n%s\nwant\n%s", got, want)
	}
}

func TestRoleGrantsValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		roles *RoleGrants
		want  []string
	}{
		{"tutorial", tutorialRoles("groups"), nil},
		{"no claim", &RoleGrants{Grants: map[string][]Permission{"a": {PermRead}}},
			[]string{`claims.roles.claim: required: the claim whose values grant permissions, such as "groups" or "realm_access.roles"`}},
		{"empty segment", &RoleGrants{Claim: "realm_access..roles", Grants: map[string][]Permission{"a": {PermRead}}},
			[]string{`claims.roles.claim: "realm_access..roles" has an empty segment: a claim name or a dotted path such as "realm_access.roles"`}},
		{"empty map", &RoleGrants{Claim: "groups", Grants: map[string][]Permission{}},
			[]string{`claims.roles.grants: must map at least one claim value to permissions, such as {"todo-admins": ["create", "read", "delete"]}`}},
		{"no map", &RoleGrants{Claim: "groups"},
			[]string{`claims.roles.grants: must map at least one claim value to permissions, such as {"todo-admins": ["create", "read", "delete"]}`}},
		{"unknown and missing permissions", &RoleGrants{Claim: "groups", Grants: map[string][]Permission{
			"todo-writers": {"create", "write"}, "todo-nobody": {}, "": {PermRead}}},
			[]string{
				`claims.roles.grants[""]: a claim value must not be empty`,
				`claims.roles.grants["todo-nobody"]: must grant at least one permission (one of create, read, delete); remove the value to grant nothing`,
				`claims.roles.grants["todo-writers"][1]: unknown permission "write" (one of create, read, delete)`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Settings{Tenant: "acme", Resource: testResource, Config: Config{Type: KindOIDC, Issuer: "https://login.example"},
				Claims: Claims{Roles: tc.roles}}
			var got []string
			for _, p := range s.Validate() {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestRoleGrantsAreCopied: the settings a provider keeps share nothing
// with the caller's, who may mutate them after New.
func TestRoleGrantsAreCopied(t *testing.T) {
	in := tutorialRoles("groups")
	out := Settings{Claims: Claims{Roles: in}}.WithDefaults().Claims.Roles
	in.Grants["todo-users"][0] = PermDelete
	in.Grants["guests"] = []Permission{PermRead}
	if got := out.Grants["todo-users"]; !slices.Equal(got, []Permission{PermCreate}) || len(out.Grants) != 2 {
		t.Fatalf("got %v after the caller's edit, want the grants as given", out.Grants)
	}
}
