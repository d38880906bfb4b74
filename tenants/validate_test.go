package tenants

import (
	"strings"
	"testing"
)

type obj = map[string]any
type arr = []any

var (
	introspection = obj{"client_id": "gw", "client_secret_env": "ACME_SECRET"}
	scopeAudience = obj{"strategy": "scope", "prefix": "todo-api:"}
)

// TestValidationRules breaks one rule per case and expects exactly that
// problem; cases with an empty path must validate.
func TestValidationRules(t *testing.T) {
	const tp = "tenants[0]"
	tests := []struct {
		name  string
		edits []edit
		path  string
		msg   string
	}{
		// listen
		{"listen without port", []edit{set("listen", "localhost")}, "listen", `must be host:port, such as "127.0.0.1:3001"`},
		{"listen named port", []edit{set("listen", "127.0.0.1:http")}, "listen", "port must be a number from 0 to 65535"},
		{"listen port too big", []edit{set("listen", "127.0.0.1:70000")}, "listen", "port must be a number from 0 to 65535"},
		{"listen bad host", []edit{set("listen", "bad host!:3001")}, "listen", `invalid host "bad host!"`},
		{"listen all interfaces", []edit{set("listen", ":3001")}, "", ""},
		{"listen port 0", []edit{set("listen", "127.0.0.1:0")}, "", ""},
		{"listen ipv6", []edit{set("listen", "[::1]:3001")}, "", ""},

		// store
		{"store unknown driver", []edit{set("store", obj{"driver": "redis"})}, "store.driver", `unknown driver "redis" (known: bbolt, etcd)`},
		{"etcd ok", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379", "https://etcd-1.etcd:2379/"},
			"prefix": "todo/prod/", "dial_timeout": "2s", "request_timeout": "1s", "tls": obj{"ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem"},
			"username": "gw", "password_file": "/run/secrets/etcd"}})}, "", ""},
		{"etcd without block", []edit{set("store", obj{"driver": "etcd"})}, "store.etcd", `required with driver "etcd": at least its "endpoints"`},
		{"etcd without endpoints", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{}}})}, "store.etcd.endpoints",
			`required: the members' client URLs, such as "https://etcd-0.etcd:2379"`},
		{"etcd endpoint without port", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://etcd"}}})}, "store.etcd.endpoints[0]",
			`must be a client URL with a port and nothing after it, such as "https://etcd-0.etcd:2379"`},
		{"etcd endpoint not a URL", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"127.0.0.1:2379"}}})}, "store.etcd.endpoints[0]",
			`must be a client URL with a port and nothing after it, such as "https://etcd-0.etcd:2379"`},
		{"etcd prefix without slash", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "prefix": "todo"}})}, "store.etcd.prefix",
			`must end in "/" (such as "todo-gateway/prod/"), so that no deployment's keys start another's`},
		{"etcd request timeout too short", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "request_timeout": "1ms"}})},
			"store.etcd.request_timeout", "must be between 100ms and 1m0s"},
		{"etcd cache off", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "cache": obj{"enabled": false}}})}, "", ""},
		{"etcd cache bounded", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "cache": obj{"max_bytes": 1 << 30, "wait": "200ms"}}})}, "", ""},
		{"etcd cache too small", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "cache": obj{"max_bytes": 1000}}})},
			"store.etcd.cache.max_bytes", `must be at least 1048576 (1 MiB); to read from etcd only, set "enabled": false`},
		{"etcd cache wait too long", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "cache": obj{"wait": "2m"}}})},
			"store.etcd.cache.wait", "must be between 10ms and 1m0s"},
		{"etcd cache unknown field", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "cache": obj{"size": 10}}})},
			"store.etcd.cache", `unknown field "size"`},
		{"etcd cert without key", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"https://127.0.0.1:2379"}, "tls": obj{"cert_file": "c.pem"}}})},
			"store.etcd.tls", "set cert_file and key_file together (a client certificate and its key)"},
		{"etcd tls over http", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "tls": obj{"ca_file": "ca.pem"}}})},
			"store.etcd.tls", "only used with https endpoints"},
		{"etcd password without user", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "password_env": "P"}})},
			"store.etcd.username", "required with a password"},
		{"etcd user without password", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "username": "gw"}})},
			"store.etcd", "set password_env or password_file"},
		{"etcd password env name", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "username": "gw", "password_env": "1X"}})},
			"store.etcd.password_env", `must be an environment variable name (letters, digits and "_", not starting with a digit)`},
		{"etcd inline password", []edit{set("store", obj{"driver": "etcd", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}, "password": "x"}})},
			"store.etcd", `unknown field "password"`},
		{"etcd with bbolt settings", []edit{set("store", obj{"driver": "etcd", "batch_delay": "1ms", "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}}})}, "store",
			`"path" and "batch_delay" are bbolt settings; driver "etcd" takes its settings from "etcd"`},
		{"etcd with bbolt block", []edit{set("store", obj{"driver": "etcd", "bbolt": obj{}, "etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}}})}, "store.bbolt",
			`only used with driver "bbolt"`},
		{"bbolt with etcd block", []edit{set("store", obj{"etcd": obj{"endpoints": arr{"http://127.0.0.1:2379"}}})}, "store.etcd",
			`only used with driver "etcd"`},
		{"store batch delay too long", []edit{set("store", obj{"batch_delay": "2s"})}, "store.batch_delay", "must be between 0s and 1s"},
		{"store batch delay negative", []edit{set("store", obj{"batch_delay": "-1ms"})}, "store.batch_delay", "must be between 0s and 1s"},
		{"store bbolt, older spelling", []edit{set("store", obj{"driver": "bbolt", "path": "/var/lib/todos.db", "batch_delay": "5ms"})}, "", ""},
		{"store bbolt block", []edit{set("store", obj{"driver": "bbolt", "bbolt": obj{"path": "/var/lib/todos.db", "batch_delay": "5ms"}})}, "", ""},
		{"store bbolt block without driver", []edit{set("store", obj{"bbolt": obj{"path": "/var/lib/todos.db"}})}, "", ""},
		{"store bbolt block batch delay too long", []edit{set("store", obj{"bbolt": obj{"batch_delay": "2s"}})}, "store.bbolt.batch_delay", "must be between 0s and 1s"},
		{"store bbolt block and older spelling", []edit{set("store", obj{"path": "a.db", "bbolt": obj{"path": "b.db"}})}, "store",
			`set the bbolt settings in "bbolt" only ("path" and "batch_delay" directly in "store" are the older spelling of the same settings)`},
		{"store bbolt block unknown field", []edit{set("store", obj{"bbolt": obj{"file": "b.db"}})}, "store.bbolt", `unknown field "file"`},

		// shutdown
		{"shutdown ok", []edit{set("shutdown", obj{"drain": "5s", "grace": "30s"})}, "", ""},
		{"shutdown drain too long", []edit{set("shutdown", obj{"drain": "10m"})}, "shutdown.drain", "must be between 0s and 5m0s"},
		{"shutdown grace zero", []edit{set("shutdown", obj{"grace": "0s"})}, "shutdown.grace", "must be between 1s and 5m0s"},

		// admin
		{"admin listen bad", []edit{set("admin", obj{"listen": "nowhere"})}, "admin.listen", `must be host:port, such as "127.0.0.1:3001"`},
		{"admin listen same as public", []edit{set("listen", "127.0.0.1:4000"), set("admin", obj{"listen": "127.0.0.1:4000"})}, "admin.listen",
			"must differ from listen: the admin endpoints never share the public listener"},
		{"admin listen ok", []edit{set("admin", obj{"listen": "127.0.0.1:0"})}, "", ""},

		// http
		{"http origin with path", []edit{set("http", obj{"allowed_origins": []any{"https://app.example.com/x"}})}, "http.allowed_origins[0]",
			`must be "*" or an origin as a browser sends it: lower-case scheme://host[:port], no path (such as "https://app.example.com")`},
		{"http origin upper case", []edit{set("http", obj{"allowed_origins": []any{"https://App.example.com"}})}, "http.allowed_origins[0]",
			`must be "*" or an origin as a browser sends it: lower-case scheme://host[:port], no path (such as "https://app.example.com")`},
		{"http origin not a URL", []edit{set("http", obj{"allowed_origins": []any{"app.example.com"}})}, "http.allowed_origins[0]",
			`must be "*" or an origin as a browser sends it: lower-case scheme://host[:port], no path (such as "https://app.example.com")`},
		{"http body limit too small", []edit{set("http", obj{"body_limit": 10})}, "http.body_limit", "must be from 1024 to 67108864 bytes"},
		{"http body limit too big", []edit{set("http", obj{"body_limit": 1 << 30})}, "http.body_limit", "must be from 1024 to 67108864 bytes"},
		{"http ok", []edit{set("http", obj{"allowed_origins": []any{"*", "http://localhost:6274"}, "body_limit": 65536, "max_connections": 500})}, "", ""},
		{"http max connections negative", []edit{set("http", obj{"max_connections": -1})}, "http.max_connections",
			"must be at least 1, or left out for a limit derived from the open-file limit"},
		{"http trusted proxies ok", []edit{set("http", obj{"trusted_proxies": []any{"10.0.0.0/8", "127.0.0.1", "::1"}})}, "", ""},
		{"http trusted proxy not an address", []edit{set("http", obj{"trusted_proxies": []any{"10.0.0.0/8", "proxy.internal"}})}, "http.trusted_proxies[1]",
			`must be an IP address or a CIDR range (such as "10.0.0.0/8" or "127.0.0.1")`},
		{"http max connections not an integer", []edit{set("http", obj{"max_connections": 1.5})}, "http.max_connections", "must be an integer, got 1.5"},

		// rate_limit
		{"rate limit ok", []edit{set("tenants.0.rate_limit", obj{"requests_per_second": 0.5, "burst": 3})}, "", ""},
		{"rate limit without burst", []edit{set("tenants.0.rate_limit", obj{"requests_per_second": 20})}, "", ""},
		{"rate limit zero", []edit{set("tenants.0.rate_limit", obj{"requests_per_second": 0})}, tp + ".rate_limit.requests_per_second",
			"must be from 0.001 (one tool call every 1000 s) to 1e+06 (0.5 is one call every two seconds)"},
		{"rate limit too low", []edit{set("tenants.0.rate_limit", obj{"requests_per_second": 1e-300})}, tp + ".rate_limit.requests_per_second",
			"must be from 0.001 (one tool call every 1000 s) to 1e+06 (0.5 is one call every two seconds)"},
		{"rate limit missing rate", []edit{set("tenants.0.rate_limit", obj{"burst": 5})}, tp + ".rate_limit.requests_per_second",
			"must be from 0.001 (one tool call every 1000 s) to 1e+06 (0.5 is one call every two seconds)"},
		{"rate limit negative burst", []edit{set("tenants.0.rate_limit", obj{"requests_per_second": 5, "burst": -1})}, tp + ".rate_limit.burst",
			"must be from 1 to 1000000, or left out for requests_per_second rounded up"},
		{"rate limit unknown field", []edit{set("tenants.0.rate_limit", obj{"rps": 5})}, tp + ".rate_limit", `unknown field "rps"`},
		// server: package upstream's rules, under the tenant's path
		{"todo server explicit", []edit{set("tenants.0.server", obj{"type": "todo"})}, "", ""},
		{"upstream ok", []edit{set("tenants.0.server", notesUpstream())}, "", ""},
		{"unknown server type", []edit{set("tenants.0.server", obj{"type": "proxy"})}, tp + ".server.type", `unknown server type "proxy" (one of todo, upstream)`},
		{"todo server with a url", []edit{set("tenants.0.server", obj{"url": "http://x/mcp"})}, tp + ".server", `only "type" may be set for the todo server; the other fields configure an upstream ("type": "upstream")`},
		{"upstream without url", []edit{set("tenants.0.server", obj{"type": "upstream", "permissions": obj{"tools": obj{"search": arr{}}}})},
			tp + ".server.url", `required: the upstream's MCP endpoint, such as "http://notes-mcp.internal:8080/mcp"`},
		{"upstream unknown field", []edit{set("tenants.0.server", obj{"type": "upstream", "url": "http://x/mcp", "tols": obj{}})},
			tp + ".server", `unknown field "tols" (did you mean "tls"?)`},
		{"upstream permission with a space", []edit{set("tenants.0.server", obj{"type": "upstream", "url": "http://x/mcp",
			"permissions": obj{"tools": obj{"search": arr{"notes read"}}}})}, tp + `.server.permissions.tools["search"][0]`,
			`permission "notes read" must be printable ASCII without spaces, quotes or backslashes (by default it is also the scope that grants it)`},
		{"upstream scope map of its own permission", []edit{set("tenants.0.server", notesUpstream()),
			set("tenants.0.scopes", obj{"notes:write": "api://notes/write"})}, "", ""},
		{"upstream scope map of a todo permission", []edit{set("tenants.0.server", notesUpstream()),
			set("tenants.0.scopes", obj{"create": "create:todos"})}, tp + ".scopes", `unknown permission "create" (one of notes:write, notes:read)`},
		{"upstream role grants of its permissions", []edit{set("tenants.0.server", notesUpstream()),
			set("tenants.0.claims", obj{"roles": obj{"claim": "groups", "grants": obj{"writers": arr{"notes:write"}}}})}, "", ""},
		{"upstream role grants of a todo permission", []edit{set("tenants.0.server", notesUpstream()),
			set("tenants.0.claims", obj{"roles": obj{"claim": "groups", "grants": obj{"admins": arr{"delete"}}}})},
			tp + `.claims.roles.grants["admins"][0]`, `unknown permission "delete" (one of notes:write, notes:read)`},
		{"assertion key file empty", []edit{set("assertion", obj{"key_files": arr{""}})}, "assertion.key_files[0]", "must name a PEM private key file"},
		{"rate limit rate a string", []edit{set("tenants.0.rate_limit", obj{"requests_per_second": "5"})}, tp + ".rate_limit.requests_per_second", "must be a number, got string"},
		{"body limit not an integer", []edit{set("http", obj{"body_limit": 2048.5})}, "http.body_limit", "must be an integer, got 2048.5"},

		// tenants list
		{"no tenants", []edit{set("tenants", []any{})}, "tenants", "at least one tenant is required"},

		// id
		{"id missing", []edit{del("tenants.0.id")}, tp + ".id", "required"},
		{"id upper case", []edit{set("tenants.0.id", "Acme")}, tp + ".id", `must be 1 to 63 characters from a-z, 0-9 and "-", starting with a letter or digit (it names the tenant's storage)`},
		{"id leading dash", []edit{set("tenants.0.id", "-acme")}, tp + ".id", `must be 1 to 63 characters from a-z, 0-9 and "-", starting with a letter or digit (it names the tenant's storage)`},
		{"id too long", []edit{set("tenants.0.id", strings.Repeat("a", 64))}, tp + ".id", `must be 1 to 63 characters from a-z, 0-9 and "-", starting with a letter or digit (it names the tenant's storage)`},
		{"id with slash", []edit{set("tenants.0.id", "a/b")}, tp + ".id", `must be 1 to 63 characters from a-z, 0-9 and "-", starting with a letter or digit (it names the tenant's storage)`},
		{"id 63 chars", []edit{set("tenants.0.id", "0"+strings.Repeat("a-", 31))}, "", ""},

		// resource
		{"resource missing", []edit{del("tenants.0.resource")}, tp + ".resource", "required"},
		{"resource relative", []edit{set("tenants.0.resource", "/acme")}, tp + ".resource", "must be an absolute http or https URL"},
		{"resource ftp", []edit{set("tenants.0.resource", "ftp://localhost/acme")}, tp + ".resource", "must be an absolute http or https URL"},
		{"resource opaque", []edit{set("tenants.0.resource", "http:acme")}, tp + ".resource", "must be an absolute http or https URL"},
		{"resource userinfo", []edit{set("tenants.0.resource", "http://u:p@localhost:3001/acme")}, tp + ".resource", "must not contain user information"},
		{"resource query", []edit{set("tenants.0.resource", "http://localhost:3001/acme?x=1")}, tp + ".resource", "must not have a query"},
		{"resource empty query", []edit{set("tenants.0.resource", "http://localhost:3001/acme?")}, tp + ".resource", "must not have a query"},
		{"resource fragment", []edit{set("tenants.0.resource", "http://localhost:3001/acme#top")}, tp + ".resource", "must not have a fragment"},
		{"resource empty fragment", []edit{set("tenants.0.resource", "http://localhost:3001/acme#")}, tp + ".resource", "must not have a fragment"},
		{"resource not canonical", []edit{set("tenants.0.resource", "HTTP://LOCALHOST:80/acme")}, tp + ".resource", `not canonical: write "http://localhost/acme"`},
		{"resource percent-encoded", []edit{set("tenants.0.resource", "http://localhost:3001/a%63me")}, tp + ".resource", `path may only contain letters, digits, "-", ".", "_", "~" and "/"`},
		{"resource space", []edit{set("tenants.0.resource", "http://localhost:3001/a cme")}, tp + ".resource", `path may only contain letters, digits, "-", ".", "_", "~" and "/"`},
		{"resource empty segment", []edit{set("tenants.0.resource", "http://localhost:3001/a//b")}, tp + ".resource", `path must not contain empty segments ("//")`},
		{"resource dot segment", []edit{set("tenants.0.resource", "http://localhost:3001/a/../b")}, tp + ".resource", `path must not contain "." or ".." segments`},
		{"resource under well-known", []edit{set("tenants.0.resource", "http://localhost:3001/.well-known/acme")}, tp + ".resource", "path must not be under /.well-known, where the gateway serves metadata"},
		{"resource http on 443", []edit{set("tenants.0.resource", "http://localhost:443/acme")}, tp + ".resource", "port 443 with http is not supported: the gateway treats :80 and :443 as default ports; use another port"},
		{"resource https on 80", []edit{set("tenants.0.resource", "https://localhost:80/acme")}, tp + ".resource", "port 80 with https is not supported: the gateway treats :80 and :443 as default ports; use another port"},
		{"resource port 0", []edit{set("tenants.0.resource", "http://localhost:0/acme")}, tp + ".resource", "port must be a number from 1 to 65535"},
		{"resource non-ascii host", []edit{set("tenants.0.resource", "https://bücher.example/acme")}, tp + ".resource", "host must be ASCII (write an internationalised name in punycode)"},
		{"resource at root", []edit{set("tenants.0.resource", "https://todo.acme.example")}, "", ""},
		{"resource ipv6", []edit{set("tenants.0.resource", "http://[::1]:3001/acme")}, "", ""},

		// resource_documentation
		{"documentation relative", []edit{set("tenants.0.resource_documentation", "docs/todos")}, tp + ".resource_documentation", "must be an absolute http or https URL"},
		{"documentation https", []edit{set("tenants.0.resource_documentation", "https://docs.acme.example/todos")}, "", ""},

		// missing_permission
		{"missing_permission unknown", []edit{set("tenants.0.missing_permission", "403")}, tp + ".missing_permission", `unknown value "403" (one of challenge, tool_error)`},
		{"missing_permission challenge", []edit{set("tenants.0.missing_permission", "challenge")}, "", ""},
		{"missing_permission tool_error", []edit{set("tenants.0.missing_permission", "tool_error")}, "", ""},

		// The provider, audience, claims and scopes blocks: providerRules
		// (agreement_test.go), which also runs them through serve.
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problemsOf(t, apply(t, baseDoc(), tc.edits...))
			if tc.path == "" {
				if len(got) != 0 {
					t.Fatalf("got problems %v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d problems %v, want exactly one at %s", len(got), got, tc.path)
			}
			if got[0].Path != tc.path || got[0].Message != tc.msg {
				t.Errorf("got %s: %s\nwant %s: %s", got[0].Path, got[0].Message, tc.path, tc.msg)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		want  Problem
	}{
		{
			"same id",
			[]edit{set("tenants.1.id", "acme")},
			Problem{Path: "tenants[1].id", Tenant: "acme", Message: `duplicate id "acme": tenants[0] already uses it`},
		},
		{
			"same resource",
			[]edit{set("tenants.1.resource", "http://localhost:3001/acme")},
			Problem{Path: "tenants[1].resource", Tenant: "globex", Message: `host and path already used by tenants[0] (id "acme")`},
		},
		{
			// Routing ignores the scheme, so these two could not be told apart.
			"same host and path, other scheme",
			[]edit{set("tenants.1.resource", "https://localhost:3001/acme")},
			Problem{Path: "tenants[1].resource", Tenant: "globex", Message: `host and path already used by tenants[0] (id "acme")`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problemsOf(t, apply(t, baseDoc("acme", "globex"), tc.edits...))
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got %#v, want [%#v]", got, tc.want)
			}
		})
	}
	// Different paths on one host, and the same path on other hosts, coexist.
	doc := baseDoc("acme", "globex", "initech")
	data := apply(t, doc,
		set("tenants.1.resource", "http://127.0.0.1:3001/acme"),
		set("tenants.2.resource", "http://localhost:3002/acme"))
	if got := problemsOf(t, data); len(got) != 0 {
		t.Errorf("got %v, want no problems", got)
	}
}

// TestEveryProblemAtOnce: one run must show everything there is to fix.
func TestEveryProblemAtOnce(t *testing.T) {
	data := apply(t, baseDoc("acme", "globex", "initech"),
		set("listen", "nowhere"),
		set("store", obj{"driver": "sqlite"}),
		set("tenants.0.resource", "http://localhost:3001/acme/"),
		set("tenants.0.provider.issuer", "https://acme.logto.app"),
		set("tenants.1.id", "Globex"),
		set("tenants.1.provider", obj{"type": "oidc", "issuer": "http://login.globex.example", "algorithms": []any{"HS256"}}),
		set("tenants.1.audience", obj{"strategy": "audience"}),
		set("tenants.2.resource", "http://localhost:3001/initech?x"),
		set("tenants.2.provider", obj{"type": "oauth", "issuer": "https://auth.initech.example", "token": "introspection",
			"introspection": obj{"client_id": "gw", "client_secret": "hunter2"}}),
		set("tenants.2.scopes", obj{"create": "todo:create"}),
		set("tenants.2.audience", scopeAudience),
	)
	want := []Problem{
		{"listen", "", `must be host:port, such as "127.0.0.1:3001"`},
		{"store.driver", "", `unknown driver "sqlite" (known: bbolt, etcd)`},
		{"tenants[0].resource", "acme", `not canonical: write "http://localhost:3001/acme"`},
		{"tenants[0].provider.issuer", "acme", `a logto issuer ends in "/oidc", such as "https://acme.logto.app/oidc"`},
		{"tenants[1].id", "Globex", `must be 1 to 63 characters from a-z, 0-9 and "-", starting with a letter or digit (it names the tenant's storage)`},
		{"tenants[1].provider.issuer", "Globex", `must use https (http is accepted only for a loopback host or with "allow_http_issuer": true)`},
		{"tenants[1].provider.algorithms[0]", "Globex", `"HS256" is not allowed: HMAC needs a shared secret, and a resource server verifies with public keys`},
		{"tenants[1].audience.values", "Globex", `required with strategy "audience": the accepted "aud" values`},
		{"tenants[2].resource", "initech", "must not have a query"},
		{"tenants[2].provider.introspection.client_secret", "initech", "inline secrets are not allowed; use client_secret_env or client_secret_file"},
		{"tenants[2].provider.introspection", "initech", "set client_secret_env or client_secret_file"},
		{"tenants[2].scopes.create", "initech", `must start with the audience prefix "todo-api:"`},
	}
	got := problemsOf(t, data)
	if len(got) != len(want) {
		t.Fatalf("got %d problems:\n%s\nwant %d", len(got), (&ValidationError{got}).Error(), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d: got %#v, want %#v", i, got[i], want[i])
		}
	}

	_, err := Parse(data)
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("Error(): got %d lines, want %d", len(lines), len(want))
	}
	for i, wantLine := range []string{
		`listen: must be host:port, such as "127.0.0.1:3001"`,
		`store.driver: unknown driver "sqlite" (known: bbolt, etcd)`,
		`tenants[0] (id "acme").resource: not canonical: write "http://localhost:3001/acme"`,
	} {
		if lines[i] != wantLine {
			t.Errorf("line %d: got %q, want %q", i, lines[i], wantLine)
		}
	}
	if wantLast := `tenants[2] (id "initech").scopes.create: must start with the audience prefix "todo-api:"`; lines[len(lines)-1] != wantLast {
		t.Errorf("last line: got %q, want %q", lines[len(lines)-1], wantLast)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q repeats the inline secret", err)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{"", "", "the configuration must be a JSON object, got array"}, "top level: the configuration must be a JSON object, got array"},
		{Problem{"listen", "", "bad"}, "listen: bad"},
		{Problem{"tenants[1]", "globex", `unknown field "issuer_url"`}, `tenants[1] (id "globex"): unknown field "issuer_url"`},
		{Problem{"tenants[12].provider.issuer", "x", "bad"}, `tenants[12] (id "x").provider.issuer: bad`},
		{Problem{"tenants[0].id", "", "required"}, "tenants[0].id: required"},
		{Problem{"tenants[0].id", "a\nb", "bad"}, `tenants[0] (id "a\nb").id: bad`},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// notesUpstream is a valid upstream server block.
func notesUpstream() obj {
	return obj{"type": "upstream", "url": "http://notes.internal:8080/mcp",
		"permissions": obj{"tools": obj{"search": arr{"notes:read"}, "add": arr{"notes:write"}}}}
}
