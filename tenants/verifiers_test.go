package tenants

import (
	"context"
	"testing"

	"github.com/todo-gateway/todo-gateway/providers"
)

// A reload keeps an unchanged tenant's *Tenant and verifier (and with them
// its caches), rebuilds a changed one, and closing the old snapshot spares
// what was carried over.
func TestBuildCarriesUnchangedTenants(t *testing.T) {
	doc := baseDoc("acme", "globex")
	old, problems, err := Build(mustParse(t, apply(t, doc)), nil)
	if err != nil || len(problems) > 0 {
		t.Fatalf("Build: %v %v", err, problems)
	}
	oldAcme, _ := old.Tenant("acme")
	oldGlobex, _ := old.Tenant("globex")

	changed := apply(t, doc, set("tenants.1.resource_name", "Globex, renamed"))
	next, problems, err := Build(mustParse(t, changed), old)
	if err != nil || len(problems) > 0 {
		t.Fatalf("Build: %v %v", err, problems)
	}
	acme, _ := next.Tenant("acme")
	globex, _ := next.Tenant("globex")
	if acme != oldAcme || next.Verifier(acme) != old.Verifier(oldAcme) {
		t.Error("unchanged tenant acme got a new tenant or verifier")
	}
	if globex == oldGlobex || next.Verifier(globex) == old.Verifier(oldGlobex) {
		t.Error("changed tenant globex kept its old tenant or verifier")
	}
	if !next.Contains(acme) || next.Contains(oldGlobex) || old.Contains(globex) {
		t.Error("Contains does not go by identity")
	}
	if next.Verifier(oldGlobex) != nil {
		t.Error("a snapshot answered a verifier for a tenant it does not hold")
	}

	next.Close()
	old.Close()
}

// CloseReplaced closes only the verifiers the next snapshot did not carry over.
func TestCloseReplacedSparesCarriedVerifiers(t *testing.T) {
	doc := baseDoc("acme", "globex")
	old, err := NewSnapshot(mustParse(t, apply(t, doc)))
	if err != nil {
		t.Fatal(err)
	}
	acmeV, globexV := &closeCounter{}, &closeCounter{}
	old.verifiers = []providers.Verifier{acmeV, globexV}
	next, _, err := Build(mustParse(t, apply(t, doc, set("tenants.1.resource_name", "renamed"))), old)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.CloseReplaced(next); err != nil {
		t.Fatal(err)
	}
	if acmeV.closes != 0 || globexV.closes != 1 {
		t.Errorf("closes: carried acme %d (want 0), replaced globex %d (want 1)", acmeV.closes, globexV.closes)
	}
	next.Close()
	if acmeV.closes != 1 {
		t.Errorf("closing the next snapshot closed acme %d times, want 1", acmeV.closes)
	}
}

type closeCounter struct{ closes int }

func (c *closeCounter) Verify(context.Context, string) (*providers.Principal, error) { return nil, nil }
func (c *closeCounter) Close() error                                                 { c.closes++; return nil }

// A tenant whose verifier cannot be built still routes, and refuses tokens
// as temporarily unavailable rather than as invalid.
func TestBuildIsolatesABrokenTenant(t *testing.T) {
	doc := baseDoc("acme")
	data := apply(t, doc, set("tenants.0.provider.token", "introspection"),
		set("tenants.0.provider.introspection", map[string]any{"client_id": "gw", "client_secret_env": "TODO_GATEWAY_TEST_UNSET_SECRET"}))
	s, problems, err := Build(mustParse(t, data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || problems[0].Path != "tenants[0].provider" {
		t.Fatalf("problems %v, want one at tenants[0].provider", problems)
	}
	acme, ok := s.Lookup("localhost:3001", "/acme")
	if !ok {
		t.Fatal("the broken tenant is not routed")
	}
	_, err = s.Verifier(acme).Verify(t.Context(), "x")
	if providers.ClassOf(err) != providers.ClassUnavailable {
		t.Errorf("broken tenant's verifier: %v, want ClassUnavailable", err)
	}
}
