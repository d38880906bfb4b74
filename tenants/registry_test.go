package tenants

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/todo-gateway/todo-gateway/providers"
)

func hostedTenant(id, resource string) Tenant {
	return Tenant{
		ID:       id,
		Resource: resource,
		Provider: providers.Config{Type: providers.KindOIDC, Issuer: "https://login.example/"},
		Audience: providers.Audience{Strategy: providers.AudienceResource},
	}
}

func snapshotOf(t testing.TB, ts ...Tenant) *Snapshot {
	t.Helper()
	s, err := NewSnapshot(&Config{Tenants: ts})
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	return s
}

// lookup finds the tenant of host and path as the edge does, through Index.
func lookup(s *Snapshot, host, path string) (*Tenant, bool) {
	i, ok := s.Index(host, path)
	if !ok {
		return nil, false
	}
	return s.Tenants()[i], true
}

func TestLookup(t *testing.T) {
	s := snapshotOf(t,
		hostedTenant("acme", "http://localhost:3001/acme"),
		hostedTenant("root", "https://todo.example.com"),
		hostedTenant("beta", "https://todo.example.com/beta"),
		hostedTenant("v6", "http://[::1]:3001/v6"),
		hostedTenant("alt", "http://example.net:8080/acme"),
	)
	tests := []struct {
		host, path string
		want       string // tenant id, "" for no match
	}{
		{"localhost:3001", "/acme", "acme"},
		{"LOCALHOST:3001", "/acme", "acme"},
		{"LocalHost:3001", "/acme", "acme"},
		{"localhost:3001", "/ACME", ""}, // paths are case-sensitive
		{"localhost:3001", "/acme/", ""},
		{"localhost:3001", "/acme/mcp", ""},
		{"localhost:3001", "/", ""},
		{"localhost", "/acme", ""},
		{"localhost:3002", "/acme", ""},
		{"127.0.0.1:3001", "/acme", ""}, // exact: no aliasing of loopback names
		{"todo.example.com", "/", "root"},
		{"todo.example.com", "", "root"},
		{"todo.example.com:443", "/", "root"},
		{"todo.example.com:80", "/", "root"},
		{"Todo.Example.COM:443", "/beta", "beta"},
		{"todo.example.com", "/beta/", ""},
		{"todo.example.com:8443", "/beta", ""},
		{"[::1]:3001", "/v6", "v6"},
		{"example.net:8080", "/acme", "alt"},
		{"example.net", "/acme", ""},
		{"", "/acme", ""},
	}
	for _, tc := range tests {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			ten, ok := lookup(s, tc.host, tc.path)
			got := ""
			if ok {
				got = ten.ID
			}
			if got != tc.want {
				t.Errorf("Lookup(%q, %q) got %q, want %q", tc.host, tc.path, got, tc.want)
			}
		})
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	s := snapshotOf(t, hostedTenant("acme", "http://localhost:3001/acme"))
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := s.Index("localhost:3001", "/acme"); !ok {
			t.Fatal("not found")
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per Index, want 0", allocs)
	}
}

func TestSnapshot(t *testing.T) {
	scopes := providers.ScopeMap{providers.PermRead: "todos.read"}
	acme := hostedTenant("acme", "http://localhost:3001/acme")
	acme.Scopes = scopes
	cfg := &Config{Tenants: []Tenant{
		hostedTenant("zeta", "http://localhost:3001/zeta"),
		acme,
		hostedTenant("mid", "http://localhost:3001/mid"),
	}}
	s, err := NewSnapshot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ten := range s.Tenants() {
		ids = append(ids, ten.ID)
	}
	if want := []string{"zeta", "acme", "mid"}; !slices.Equal(ids, want) || s.Len() != 3 {
		t.Errorf("Tenants got %q (Len %d), want config order %q", ids, s.Len(), want)
	}
	if ten, ok := s.Tenant("acme"); !ok || ten.Scope(providers.PermCreate) != "create:todos" || ten.ResourceName != "acme" {
		t.Errorf("Tenant(acme) got %+v %v, want defaults applied", ten, ok)
	}
	if _, ok := s.Tenant("nobody"); ok {
		t.Error("Tenant(nobody) found, want not found")
	}
	// The caller's config is left as it was written.
	if len(scopes) != 1 || cfg.Tenants[1].ResourceName != "" || cfg.Tenants[1].Provider.Token != "" {
		t.Errorf("NewSnapshot modified its input: scopes %v, name %q, token %q", scopes, cfg.Tenants[1].ResourceName, cfg.Tenants[1].Provider.Token)
	}
	// Changing the returned slice does not change the snapshot.
	s.Tenants()[0] = nil
	if s.Tenants()[0] == nil {
		t.Error("Tenants returned the snapshot's own slice")
	}
}

func TestNewSnapshotValidates(t *testing.T) {
	_, err := NewSnapshot(&Config{Tenants: []Tenant{
		hostedTenant("acme", "http://localhost:3001/acme"),
		hostedTenant("acme", "http://localhost:3001/acme"),
	}})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("got %v, want a *ValidationError with the duplicate id and resource", err)
	}
}

func TestNilSnapshot(t *testing.T) {
	var s *Snapshot
	if _, ok := lookup(s, "localhost:3001", "/acme"); ok {
		t.Error("Lookup on a nil snapshot found a tenant")
	}
	if _, ok := s.Tenant("acme"); ok || s.Len() != 0 || s.Tenants() != nil || len(s.IDs()) != 0 {
		t.Error("nil snapshot is not empty")
	}
}

// BenchmarkLookup: tenants=1 is the baseline. tenants=10000 walks every
// tenant, so it also pays cache misses a single hot key never does;
// tenants=10000/one-key separates that memory cost from the algorithm.
func BenchmarkLookup(b *testing.B) {
	for _, bc := range []struct {
		name   string
		n      int
		oneKey bool
	}{
		{"tenants=1", 1, false},
		{"tenants=10000", 10_000, false},
		{"tenants=10000/one-key", 10_000, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts := make([]Tenant, bc.n)
			paths := make([]string, bc.n)
			for i := range ts {
				paths[i] = fmt.Sprintf("/t%d", i)
				ts[i] = hostedTenant(fmt.Sprintf("t%d", i), "http://localhost:3001"+paths[i])
			}
			if bc.oneKey {
				paths = paths[len(paths)-1:]
			}
			s := snapshotOf(b, ts...)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := s.Index("localhost:3001", paths[i]); !ok {
					b.Fatal("not found")
				}
				if i++; i == len(paths) {
					i = 0
				}
			}
		})
	}
}

// A URL that is no tenant's but differs from one only by trailing slashes,
// the case of its path or the loopback name finds that tenant for the 404's
// hint; anything further finds none.
func TestNear(t *testing.T) {
	s := snapshotOf(t,
		hostedTenant("acme", "http://localhost:3001/acme"),
		hostedTenant("root", "https://todo.example.com"),
		hostedTenant("v6", "http://[::1]:3001/v6"),
		hostedTenant("ip", "http://127.0.0.1:3002/ip"),
	)
	tests := []struct {
		host, path string
		want       string // tenant id, "" for none
	}{
		{"localhost:3001", "/acme/", "acme"},
		{"localhost:3001", "/acme//", "acme"},
		{"localhost:3001", "/ACME", "acme"},
		{"LOCALHOST:3001", "/Acme/", "acme"},
		{"127.0.0.1:3001", "/acme", "acme"},
		{"[::1]:3001", "/acme", "acme"},
		{"localhost:3001", "/v6", "v6"},
		{"localhost:3002", "/ip/", "ip"},
		{"todo.example.com", "/", "root"},
		{"todo.example.com:443", "//", "root"},
		{"localhost:3002", "/acme", ""}, // another port is another server
		{"localhost", "/acme", ""},
		{"localhost:3001", "/acme/mcp", ""},
		{"localhost:3001", "/acm", ""},
		{"evil.example:3001", "/acme", ""},
		{"", "", ""},
	}
	for _, tc := range tests {
		ten, ok := s.Near(tc.host, tc.path)
		got := ""
		if ok {
			got = ten.ID
		}
		if got != tc.want {
			t.Errorf("Near(%q, %q) got %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
	var nilSnap *Snapshot
	if _, ok := nilSnap.Near("localhost:3001", "/acme"); ok {
		t.Error("Near on a nil snapshot found a tenant")
	}
}
