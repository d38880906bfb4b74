package tenants

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/store/etcd"
)

func TestCanonicalResource(t *testing.T) {
	tests := []struct {
		raw        string
		host, path string // when valid
		problem    string // when not
	}{
		{raw: "http://localhost:3001/acme", host: "localhost:3001", path: "/acme"},
		{raw: "https://todo.acme.example", host: "todo.acme.example", path: ""},
		{raw: "http://localhost:3001/Acme/v1", host: "localhost:3001", path: "/Acme/v1"},
		{raw: "http://127.0.0.1:3001/acme", host: "127.0.0.1:3001", path: "/acme"},
		{raw: "http://[::1]:3001/acme", host: "[::1]:3001", path: "/acme"},
		{raw: "https://[2001:db8::1]/acme", host: "[2001:db8::1]", path: "/acme"},
		{raw: "https://todo.acme.example:8443/a.b_c~d-e", host: "todo.acme.example:8443", path: "/a.b_c~d-e"},

		{raw: "HTTP://LOCALHOST:80/acme", problem: `not canonical: write "http://localhost/acme"`},
		{raw: "http://localhost:80/acme", problem: `not canonical: write "http://localhost/acme"`},
		{raw: "https://x:443", problem: `not canonical: write "https://x"`},
		{raw: "https://x/", problem: `not canonical: write "https://x"`},
		{raw: "https://x:443/", problem: `not canonical: write "https://x"`},
		{raw: "http://localhost:3001/acme/", problem: `not canonical: write "http://localhost:3001/acme"`},
		{raw: "http://localhost:03001/acme", problem: `not canonical: write "http://localhost:3001/acme"`},
		{raw: "http://localhost:/acme", problem: `not canonical: write "http://localhost/acme"`},
		{raw: "https://Todo.Acme.Example/Acme", problem: `not canonical: write "https://todo.acme.example/Acme"`},
		{raw: "Https://todo.acme.example", problem: `not canonical: write "https://todo.acme.example"`},
		{raw: "http://[::1]:80/acme", problem: `not canonical: write "http://[::1]/acme"`},
		{raw: "http://[::1]:3001/acme/", problem: `not canonical: write "http://[::1]:3001/acme"`},
		{raw: "http://localhost:3001/a%2Fb", problem: `path may only contain letters, digits, "-", ".", "_", "~" and "/"`},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			r, probs := parseResource(tc.raw)
			if tc.problem != "" {
				if len(probs) != 1 || probs[0] != tc.problem {
					t.Errorf("got problems %q, want [%q]", probs, tc.problem)
				}
				return
			}
			if len(probs) != 0 {
				t.Fatalf("got problems %q, want none", probs)
			}
			if r.host != tc.host || r.path != tc.path || r.url.String() != tc.raw {
				t.Errorf("got host %q path %q url %q, want %q %q %q", r.host, r.path, r.url, tc.host, tc.path, tc.raw)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	data := apply(t, baseDoc("acme", "globex", "initech", "hooli", "scoped"),
		set("tenants.1.provider", obj{"type": "oidc", "issuer": "https://login.globex.example/"}),
		set("tenants.2.provider", obj{"type": "oauth", "issuer": "https://auth.initech.example", "introspection": introspection}),
		set("tenants.3.provider", obj{"type": "oauth", "issuer": "https://auth.hooli.example"}),
		set("tenants.3.resource_name", "Hooli"),
		set("tenants.3.scopes", obj{"read": "todos.read"}),
		set("tenants.4.audience", scopeAudience),
	)
	cfg := mustParse(t, data)
	if cfg.Listen != DefaultListen || cfg.Store.Driver != DriverBolt || cfg.Store.Bolt == nil || cfg.Store.Bolt.Path != bolt.DefaultPath {
		t.Errorf("got listen %q store %+v, want %q, %q, %q", cfg.Listen, cfg.Store, DefaultListen, DriverBolt, bolt.DefaultPath)
	}
	tests := []struct {
		id     string
		name   string
		token  providers.TokenMode
		scopes []string
	}{
		{"acme", "acme", providers.TokenJWT, []string{"create:todos", "read:todos", "delete:todos"}},
		{"globex", "globex", providers.TokenJWT, []string{"create:todos", "read:todos", "delete:todos"}},
		{"initech", "initech", providers.TokenAuto, []string{"create:todos", "read:todos", "delete:todos"}},
		{"hooli", "Hooli", providers.TokenJWT, []string{"create:todos", "todos.read", "delete:todos"}},
		{"scoped", "scoped", providers.TokenJWT, []string{"todo-api:create", "todo-api:read", "todo-api:delete"}},
	}
	for i, tc := range tests {
		ten := cfg.Tenants[i]
		if ten.ID != tc.id || ten.ResourceName != tc.name || ten.Provider.Token != tc.token {
			t.Errorf("tenant %d: got id %q name %q token %q, want %q %q %q", i, ten.ID, ten.ResourceName, ten.Provider.Token, tc.id, tc.name, tc.token)
		}
		if ten.MissingPermission != MissingPermissionChallenge {
			t.Errorf("%s: missing_permission got %q, want the default %q", tc.id, ten.MissingPermission, MissingPermissionChallenge)
		}
		if got := ten.ScopeList(); !slices.Equal(got, tc.scopes) {
			t.Errorf("%s: ScopeList got %q, want %q", tc.id, got, tc.scopes)
		}
		for j, p := range providers.Permissions {
			if got := ten.Scopes[p]; got != tc.scopes[j] {
				t.Errorf("%s: Scopes[%s] got %q, want %q", tc.id, p, got, tc.scopes[j])
			}
		}
	}
}

func TestTenantHelpers(t *testing.T) {
	cfg := mustParse(t, apply(t, baseDoc(), set("tenants.0.resource", "https://todo.acme.example")))
	ten := &cfg.Tenants[0]
	if ten.Host() != "todo.acme.example" || ten.Path() != "" {
		t.Errorf("got host %q path %q, want %q %q", ten.Host(), ten.Path(), "todo.acme.example", "")
	}

	// Scopes shared by several permissions are listed once.
	shared := &Tenant{Scopes: providers.ScopeMap{"create": "todos", "read": "todos", "delete": "todos:admin"}}
	if got, want := shared.ScopeList(), []string{"todos", "todos:admin"}; !slices.Equal(got, want) {
		t.Errorf("ScopeList got %q, want %q", got, want)
	}

	// A Tenant built by hand routes too; its scopes are what it was given
	// (the defaults come with loading, or with NewSnapshot).
	hand := &Tenant{ID: "acme", Resource: "http://localhost:3001/acme", Scopes: providers.ScopeMap{"read": "todos.read"}}
	if hand.Host() != "localhost:3001" || hand.Path() != "/acme" || hand.Scope(providers.PermRead) != "todos.read" {
		t.Errorf("hand-built: got host %q path %q read %q", hand.Host(), hand.Path(), hand.Scope(providers.PermRead))
	}
	if bad := (&Tenant{Resource: "::"}); bad.Host() != "" || bad.Path() != "" {
		t.Errorf("invalid resource: got host %q path %q, want empty", bad.Host(), bad.Path())
	}
}

// TestExampleConfig keeps tenants.example.json loadable and meaningful.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "tenants.example.json")
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if cfg.Listen != "127.0.0.1:3001" {
		t.Errorf("listen got %q, want 127.0.0.1:3001", cfg.Listen)
	}
	tests := []struct {
		id       string
		kind     providers.Kind
		token    providers.TokenMode
		strategy providers.AudienceStrategy
		scopes   []string
	}{
		{"acme", providers.KindLogto, providers.TokenJWT, providers.AudienceResource, []string{"create:todos", "read:todos", "delete:todos"}},
		{"globex", providers.KindOIDC, providers.TokenJWT, providers.AudienceValues, []string{"create:todos", "read:todos", "delete:todos"}},
		{"initech", providers.KindOAuth, providers.TokenIntrospection, providers.AudienceScope, []string{"todo-api:create", "todo-api:read", "todo-api:delete"}},
	}
	if len(cfg.Tenants) != len(tests) {
		t.Fatalf("got %d tenants, want %d", len(cfg.Tenants), len(tests))
	}
	for i, tc := range tests {
		ten := cfg.Tenants[i]
		if ten.ID != tc.id || ten.Provider.Type != tc.kind || ten.Provider.Token != tc.token || ten.Audience.Strategy != tc.strategy {
			t.Errorf("tenant %d: got %s %s %s %s, want %s %s %s %s", i,
				ten.ID, ten.Provider.Type, ten.Provider.Token, ten.Audience.Strategy, tc.id, tc.kind, tc.token, tc.strategy)
		}
		if want := "http://localhost:3001/" + tc.id; ten.Resource != want {
			t.Errorf("%s: resource got %q, want %q", tc.id, ten.Resource, want)
		}
		if got := ten.ScopeList(); !slices.Equal(got, tc.scopes) {
			t.Errorf("%s: scopes got %q, want %q", tc.id, got, tc.scopes)
		}
	}
	if got := cfg.Tenants[1].Claims.Scopes; !slices.Equal(got, []string{"permissions", "scope"}) {
		t.Errorf("globex claims.scopes got %q, want [permissions scope]", got)
	}
	if in := cfg.Tenants[2].Provider.Introspection; in == nil || in.ClientSecretEnv != "INITECH_SECRET" {
		t.Errorf("initech introspection got %+v, want client_secret_env INITECH_SECRET", in)
	}
	snap, err := NewSnapshot(cfg)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	if ten, ok := lookup(snap, "localhost:3001", "/globex"); !ok || ten.ID != "globex" {
		t.Errorf("Lookup globex: got %v %v, want globex", ten, ok)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\n  \"listen\": }"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), bad+": line 2, column 13: ") {
		t.Errorf("got %v, want %s: line 2, column 13: …", err, bad)
	}
}

// The bbolt settings in the older spelling ("store": {"path": ...}) and in
// the driver's own block come out the same.
func TestStoreSpellings(t *testing.T) {
	for _, store := range []string{
		`{"path": "x/todos.db", "batch_delay": "5ms"}`,
		`{"driver": "bbolt", "bbolt": {"path": "x/todos.db", "batch_delay": "5ms"}}`,
	} {
		cfg, err := Parse([]byte(`{"store": ` + store + `, "tenants": [{"id": "acme", "resource": "http://localhost:3001/acme",
			"provider": {"type": "oidc", "issuer": "https://login.example/"}, "audience": {"strategy": "resource"}}]}`))
		if err != nil {
			t.Fatalf("%s: %v", store, err)
		}
		s := cfg.Store
		if s.Driver != DriverBolt || s.Bolt == nil || s.Bolt.Path != "x/todos.db" || s.Bolt.BatchDelay == nil ||
			time.Duration(*s.Bolt.BatchDelay) != 5*time.Millisecond || s.Path != "" || s.BatchDelay != nil {
			t.Errorf("%s: got %+v (bbolt %+v), want driver bbolt with path x/todos.db and batch delay 5ms in its block", store, s, s.Bolt)
		}
	}
}

func TestEtcdDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`{"store": {"driver": "etcd", "etcd": {"endpoints": ["http://127.0.0.1:2379"]}}, "tenants": [{"id": "acme",
		"resource": "http://localhost:3001/acme", "provider": {"type": "oidc", "issuer": "https://login.example/"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Store.Etcd
	if cfg.Store.Bolt != nil || e == nil || e.Prefix != etcd.DefaultPrefix || time.Duration(*e.DialTimeout) != etcd.DefaultDialTimeout ||
		time.Duration(*e.RequestTimeout) != etcd.DefaultRequestTimeout || e.Cache == nil || !*e.Cache.Enabled ||
		e.Cache.MaxBytes != etcd.DefaultCacheMaxBytes || time.Duration(*e.Cache.Wait) != etcd.DefaultCacheWait {
		t.Errorf("got store %+v (etcd %+v), want the etcd block with its defaults and no bbolt block", cfg.Store, e)
	}
}

// A rate limit without burst gets its rate rounded up (at least 1); one
// with a burst keeps it. No rate limit stays nil: no bound.
func TestRateLimitDefaults(t *testing.T) {
	cfg := mustParse(t, apply(t, baseDoc("a", "b", "c", "d"),
		set("tenants.0.rate_limit", obj{"requests_per_second": 2.5}),
		set("tenants.1.rate_limit", obj{"requests_per_second": 0.2}),
		set("tenants.2.rate_limit", obj{"requests_per_second": 10, "burst": 40}),
	))
	want := []*RateLimit{{RequestsPerSecond: 2.5, Burst: 3}, {RequestsPerSecond: 0.2, Burst: 1}, {RequestsPerSecond: 10, Burst: 40}, nil}
	for i, w := range want {
		got := cfg.Tenants[i].RateLimit
		if (got == nil) != (w == nil) || (got != nil && *got != *w) {
			t.Errorf("tenant %d: rate limit %+v, want %+v", i, got, w)
		}
	}
}

// The restart-only settings are compared as one block, and named by their
// JSON names; the tenants are not among them.
func TestProcessChanged(t *testing.T) {
	base := `{"listen": "127.0.0.1:3001", "store": {"path": "a.db"}, "tenants": [{"id": "a", "resource": "http://localhost:3001/a", "provider": {"type": "oidc", "issuer": "https://id.example.com"}}]}`
	running, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`"listen": "127.0.0.1:3001"`, `"listen": "127.0.0.1:3002"`, "[listen]"},
		{`"store": {"path": "a.db"}`, `"store": {"path": "b.db"}`, "[store]"},
		{`"store": {"path": "a.db"}`, `"store": {"path": "a.db"}, "assertion": {"key_files": ["k.pem"]}, "shutdown": {"drain": "1s"}`, "[shutdown assertion]"},
		{`"id": "a"`, `"id": "b"`, "[]"},
	} {
		cfg, err := Parse([]byte(strings.Replace(base, tc.from, tc.to, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(cfg.Process.Changed(running.Process)); got != tc.want {
			t.Errorf("%s → %s: changed %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
}
