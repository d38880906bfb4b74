package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// tokenBed is a configuration file with one tenant per situation the token
// command explains, and the issuers behind them.
type tokenBed struct {
	config string
	logto  *providertest.Issuer // acme: Logto-shaped, ES384, resource strategy
	oauth  *providertest.Issuer // initech: RFC 8414, introspection, scope prefix
	down   *providertest.Issuer // offline: an issuer that drops every connection
	slow   *providertest.Issuer // sluggish: an issuer slower than any timeout
}

const (
	acmeResource    = "http://localhost:3001/acme"
	initechResource = "http://localhost:3001/initech"
	groupsResource  = "http://localhost:3001/groups"
	notesResource   = "http://localhost:3001/notes"
	tokenTestSecret = "gateway-secret" // providertest's default client secret
)

func newTokenBed(t *testing.T) *tokenBed {
	t.Helper()
	b := &tokenBed{
		logto: providertest.New(t, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384)),
		oauth: providertest.New(t, providertest.WithDiscovery(providertest.OAuthInserted), providertest.WithKeys(jose.ES256)),
		down:  providertest.New(t, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384)),
		slow:  providertest.New(t, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384)),
	}
	b.down.SetDown(true)
	b.slow.SetDelay(time.Minute)
	t.Setenv("TOKEN_TEST_SECRET", tokenTestSecret)
	b.config = writeFile(t, fmt.Sprintf(`{"tenants": [
  {"id": "acme", "resource": %q, "provider": {"type": "logto", "issuer": %q}, "audience": {"strategy": "resource"}},
  {"id": "initech", "resource": %q,
   "provider": {"type": "oauth", "issuer": %q, "token": "introspection",
                "introspection": {"client_id": "gateway", "client_secret_env": "TOKEN_TEST_SECRET"}},
   "audience": {"strategy": "scope", "prefix": "todo-api:"}},
  {"id": "groups", "resource": %q, "provider": {"type": "logto", "issuer": %q}, "audience": {"strategy": "resource"},
   "claims": {"roles": {"claim": "groups", "grants": {"todo-admins": ["create", "read", "delete"], "todo-users": ["create"]}}}},
  {"id": "offline", "resource": "http://localhost:3001/offline", "provider": {"type": "logto", "issuer": %q}, "audience": {"strategy": "resource"}},
  {"id": "sluggish", "resource": "http://localhost:3001/sluggish", "provider": {"type": "logto", "issuer": %q}, "audience": {"strategy": "resource"}},
  {"id": "notes", "resource": %q, "provider": {"type": "logto", "issuer": %q},
   "server": {"type": "upstream", "url": "http://notes.internal:8080/mcp",
              "permissions": {"tools": {"search": ["notes:read"], "add": ["notes:write"], "echo": []}}}},
  {"id": "unset", "resource": "http://localhost:3001/unset",
   "provider": {"type": "oauth", "issuer": %q, "token": "introspection",
                "introspection": {"client_id": "gateway", "client_secret_env": "TOKEN_TEST_UNSET_SECRET"}},
   "audience": {"strategy": "resource"}}
]}`, acmeResource, b.logto.Issuer(), initechResource, b.oauth.Issuer(), groupsResource, b.logto.Issuer(), b.down.Issuer(), b.slow.Issuer(), notesResource, b.logto.Issuer(), b.oauth.Issuer()))
	return b
}

// acme mints a token for the acme tenant, as its Logto would.
func (b *tokenBed) acme(sub, scopes string, edit func(c map[string]any), opts ...providertest.MintOption) string {
	c := b.logto.Claims(sub, acmeResource, scopes)
	if edit != nil {
		edit(c)
	}
	return b.logto.Mint(c, append([]providertest.MintOption{providertest.Alg(jose.ES384)}, opts...)...)
}

func tokenCLI(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = explainToken(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTokenExplains(t *testing.T) {
	b := newTokenBed(t)
	tests := []struct {
		name   string
		tenant string
		token  string
		stdin  func(tok string) string // how the token is pasted; default: tok + "\n"
		code   int
		want   []string // in this order in stdout
		miss   []string
	}{
		{
			name: "Admin token", tenant: "acme", token: b.acme("admin-1", "create:todos read:todos delete:todos", nil),
			code: 0,
			want: []string{
				"Tenant acme (" + acmeResource + ")",
				"✓ token ", "✓ header ", `alg "ES384"`, "✓ typ ", "✓ discovery ", "✓ algorithm ", "✓ keys ", "✓ key ", "✓ signature ",
				"✓ issuer ", "✓ expiry ", "); leeway 1m0s", "✓ not before ", "✓ issued at ", "✓ subject ", `sub "admin-1"`,
				"✓ audience ", "✓ scopes ", "✓ permissions ", "create:todos grants create; read:todos grants read; delete:todos grants delete", "✓ client ",
				"create-todo  allowed", "get-todos    all", "every todo of the tenant (read:todos)", "delete-todo  any", "any todo of the tenant (delete:todos)",
				`Decision: accepted, subject "admin-1", client "test-client", until `,
			},
			miss: []string{"✗"},
		},
		{
			name: "User token pasted as a header value", tenant: "acme", token: b.acme("user-1", "create:todos", nil),
			stdin: func(tok string) string { return "  Bearer " + tok + "\r\n\n" },
			code:  0,
			want: []string{
				"create-todo  allowed", "get-todos    own", `only the todos of "user-1" (no read:todos)`,
				"delete-todo  own", `only the todos of "user-1" (no delete:todos)`, `Decision: accepted, subject "user-1"`,
			},
			miss: []string{"✗"},
		},
		{
			name: "token without the create scope", tenant: "acme", token: b.acme("reader-1", "read:todos", nil),
			code: 0,
			want: []string{"create-todo  refused  403 insufficient_scope, scope=\"create:todos read:todos\" to clients before 2026-07-28, scope=\"create:todos\" from 2026-07-28", "get-todos    all", "delete-todo  own", "Decision: accepted"},
		},
		{
			name: "user by group", tenant: "groups",
			token: b.logto.Mint(withClaim(b.logto.Claims("user-1", groupsResource, ""), "groups", []string{"staff", "todo-users"}), providertest.Alg(jose.ES384)),
			code:  0,
			want: []string{"✓ scopes ", "✓ roles ", `groups ["staff" "todo-users"]`,
				`✓ permissions  groups "todo-users" grants create; no read:todos and no groups value granting it, so no read; no delete:todos and no groups value granting it, so no delete`,
				"create-todo  allowed", "get-todos    own", `Decision: accepted, subject "user-1"`},
			miss: []string{"✗"},
		},
		{
			name: "guest by group", tenant: "groups",
			token: b.logto.Mint(withClaim(b.logto.Claims("guest-1", groupsResource, ""), "groups", []string{"staff"}), providertest.Alg(jose.ES384)),
			code:  0,
			want: []string{"✓ roles ", `groups ["staff"]`,
				`create-todo  refused  403 insufficient_scope, scope="create:todos": the client must ask for create:todos (step-up), or the user needs groups todo-admins or todo-users`},
		},
		{
			name: "expired token", tenant: "acme",
			token: b.acme("user-1", "create:todos", func(c map[string]any) { c["exp"] = time.Now().Add(-2 * time.Hour).Unix() }),
			code:  1,
			want: []string{"✓ signature ", "✓ issuer ", "✗ expiry ", "token has expired: exp ", " ago), beyond the 1m0s leeway; now ",
				"Tools\n  none: the token is refused before any tool runs",
				"Decision: rejected: token has expired", "the gateway answers 401 invalid_token with WWW-Authenticate"},
			miss: []string{"✓ audience", "create-todo"},
		},
		{
			name: "token for another resource", tenant: "acme",
			token: b.acme("user-1", "create:todos", func(c map[string]any) { c["aud"] = "http://localhost:3001/globex" }),
			code:  1,
			want: []string{"✓ subject ", "✗ audience ", `aud ["http://localhost:3001/globex"]; strategy resource wants one of ["` + acmeResource + `"]`,
				"Decision: rejected: token audience does not include this resource", "401 invalid_token"},
		},
		{
			name: "typ JWT where Logto always sends at+jwt", tenant: "acme", token: b.acme("user-1", "create:todos", nil, providertest.Typ("JWT")),
			code: 1,
			want: []string{"✓ header ", "✗ typ ", "token type JWT is not accepted: the tenant accepts at+jwt", "401 invalid_token"},
		},
		{
			name: "opaque token by introspection", tenant: "initech",
			token: b.oauth.MintOpaque(b.oauth.Claims("svc-7", "", "todo-api:create todo-api:read")),
			code:  0,
			want: []string{"token mode introspection", "✓ discovery ", "introspection_endpoint " + b.oauth.IntrospectionURL(),
				"✓ introspection ", "POST " + b.oauth.IntrospectionURL() + ` as client "gateway" (client_secret_basic): HTTP 200`,
				"✓ active ", "✓ audience ", `strategy scope: aud is not checked; only scopes starting with "todo-api:" count`,
				"todo-api:create grants create; todo-api:read grants read; no todo-api:delete, so no delete",
				"create-todo  allowed", "get-todos    all", "delete-todo  own", `Decision: accepted, subject "svc-7"`},
		},
		{
			name: "revoked opaque token", tenant: "initech",
			token: func() string {
				tok := b.oauth.MintOpaque(b.oauth.Claims("svc-7", "", "todo-api:create"))
				b.oauth.Revoke(tok)
				return tok
			}(),
			code: 1,
			want: []string{"✓ introspection ", "✗ active ", "token is not active: active is false", "401 invalid_token"},
		},
		{
			name: "issuer unreachable", tenant: "offline", token: b.acme("user-1", "create:todos", nil),
			code: 1,
			want: []string{"✓ typ ", "✗ discovery ", "authorization server is temporarily unavailable",
				"Decision: rejected: authorization server is temporarily unavailable",
				"the gateway answers 503 temporarily_unavailable with Retry-After"},
		},
		{
			name: "introspection secret not set", tenant: "unset", token: "c29tZS1vcGFxdWUtdG9rZW4",
			code: 1,
			want: []string{"✗ configuration ", "environment variable TOKEN_TEST_UNSET_SECRET is not set",
				"Decision: rejected: this resource is misconfigured on the gateway", "503 temporarily_unavailable",
				"needs an operator (the failed step above says what)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin := tt.token + "\n"
			if tt.stdin != nil {
				stdin = tt.stdin(tt.token)
			}
			code, stdout, stderr := tokenCLI(stdin, "--config", b.config, "--tenant", tt.tenant)
			if code != tt.code || stderr != "" {
				t.Fatalf("got exit %d stderr %q, want %d and nothing; stdout:\n%s", code, stderr, tt.code, stdout)
			}
			rest := stdout
			for _, want := range tt.want {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in this order); stdout:\n%s", want, stdout)
				}
				rest = rest[i+len(want):]
			}
			for _, miss := range append(tt.miss, tt.token, tokenTestSecret) {
				if strings.Contains(stdout, miss) {
					t.Fatalf("stdout contains %q; stdout:\n%s", miss, stdout)
				}
			}
		})
	}
}

func TestTokenJSON(t *testing.T) {
	b := newTokenBed(t)
	tests := []struct {
		name     string
		token    string
		code     int
		accepted bool
		status   int
		lastStep string
		tools    []string // tool:access
	}{
		{name: "User", token: b.acme("user-1", "create:todos", nil), code: 0, accepted: true, lastStep: "client",
			tools: []string{"create-todo:allowed", "get-todos:own", "delete-todo:own"}},
		{name: "wrong issuer", token: b.acme("user-1", "create:todos", func(c map[string]any) { c["iss"] = "https://evil.example/oidc" }),
			code: 1, status: 401, lastStep: "issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tokenCLI(tt.token, "--config", b.config, "--tenant", "acme", "--format", "json")
			if code != tt.code || stderr != "" {
				t.Fatalf("got exit %d stderr %q, want %d and nothing", code, stderr, tt.code)
			}
			var rep tokenReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
			}
			if rep.Tenant != "acme" || rep.Decision.Accepted != tt.accepted || rep.Decision.Status != tt.status {
				t.Errorf("got tenant %q decision %+v, want acme, accepted %v, status %d", rep.Tenant, rep.Decision, tt.accepted, tt.status)
			}
			if n := len(rep.Steps); n == 0 || rep.Steps[n-1].Name != tt.lastStep || rep.Steps[n-1].OK != tt.accepted {
				t.Errorf("got steps %+v, want the last one %q with ok=%v", rep.Steps, tt.lastStep, tt.accepted)
			}
			var tools []string
			for _, v := range rep.Tools {
				tools = append(tools, v.Tool+":"+v.Access)
			}
			if !slices.Equal(tools, tt.tools) {
				t.Errorf("got tools %q, want %q", tools, tt.tools)
			}
			if strings.Contains(stdout, tt.token) {
				t.Errorf("stdout contains the token")
			}
		})
	}
}

// TestTokenUpstreamTenant: for an upstream tenant, the permissions are its
// own and the tools its table's, each with the answer the gateway gives.
func TestTokenUpstreamTenant(t *testing.T) {
	b := newTokenBed(t)
	tok := b.logto.Mint(b.logto.Claims("rita", notesResource, "notes:read"), providertest.Alg(jose.ES384))
	code, stdout, stderr := tokenCLI(tok, "--config", b.config, "--tenant", "notes", "--format", "json")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var rep tokenReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if got := rep.Principal.Permissions; !slices.Equal(got, []string{"notes:read"}) {
		t.Errorf("permissions %q, want [notes:read]", got)
	}
	var tools []string
	for _, v := range rep.Tools {
		tools = append(tools, v.Tool+":"+v.Access)
		if v.Tool == "add" && (v.Status != 403 || !strings.Contains(v.Detail, `scope="notes:write notes:read"`)) {
			t.Errorf("add: %+v, want the 403 step-up naming notes:write", v)
		}
	}
	if want := []string{"add:refused", "echo:allowed", "search:allowed"}; !slices.Equal(tools, want) {
		t.Errorf("tools %q, want %q", tools, want)
	}
}

// TestTokenTimeout: a hanging authorization server costs --timeout, and
// the decision is the gateway's 503, not a refusal of the token.
func TestTokenTimeout(t *testing.T) {
	b := newTokenBed(t)
	start := time.Now()
	code, stdout, _ := tokenCLI(b.acme("user-1", "create:todos", nil), "--config", b.config, "--tenant", "sluggish", "--timeout", "300ms")
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %v with --timeout 300ms", elapsed)
	}
	if code != 1 || !strings.Contains(stdout, "✗ discovery ") || !strings.Contains(stdout, "the gateway answers 503 temporarily_unavailable") {
		t.Errorf("got exit %d stdout:\n%s\nwant 1, a failed discovery and a 503", code, stdout)
	}
}

func TestTokenUsage(t *testing.T) {
	b := newTokenBed(t)
	tests := []struct {
		name      string
		args      []string
		stdin     string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{"help", []string{"-h"}, "", 0, "Usage: todo-gateway token --config FILE --tenant ID", ""},
		{"no --config", []string{"--tenant", "acme"}, "x", 2, "", "todo-gateway token: --config FILE is required"},
		{"no --tenant", []string{"--config", b.config}, "x", 2, "", "todo-gateway token: --tenant ID is required"},
		{"unknown tenant", []string{"--config", b.config, "--tenant", "globex"}, "x", 2, "",
			`has no tenant "globex" (it has: acme, initech, groups, offline, sluggish, notes, unset)`},
		{"empty stdin", []string{"--config", b.config, "--tenant", "acme"}, " \n\t", 2, "", "todo-gateway token: no token on stdin"},
		{"only a Bearer scheme", []string{"--config", b.config, "--tenant", "acme"}, "Bearer  \n", 2, "", "no token on stdin"},
		{"token as an argument", []string{"--config", b.config, "--tenant", "acme", "eyJ"}, "", 2, "", `unexpected argument "eyJ" (the token is read from stdin)`},
		{"unknown format", []string{"--config", b.config, "--tenant", "acme", "--format", "yaml"}, "x", 2, "", `--format must be text or json, not "yaml"`},
		{"zero timeout", []string{"--config", b.config, "--tenant", "acme", "--timeout", "0s"}, "x", 2, "", "--timeout must be positive"},
		{"unknown flag", []string{"--cfg", b.config}, "x", 2, "", "flag provided but not defined: -cfg"},
		{"missing file", []string{"--config", "/nonexistent/tenants.json", "--tenant", "acme"}, "x", 2, "", "/nonexistent/tenants.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tokenCLI(tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("got exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stdout, tt.stdoutHas) || (tt.stdoutHas == "" && stdout != "") {
				t.Errorf("stdout got %q, want %q", stdout, tt.stdoutHas)
			}
			if !strings.Contains(stderr, tt.stderrHas) || (tt.stderrHas == "" && stderr != "") {
				t.Errorf("stderr got %q, want %q", stderr, tt.stderrHas)
			}
		})
	}

	// Through the command table, as a user runs it: flag errors come
	// before stdin is read.
	code, _, stderr := runCLI("token", "--config", b.config)
	if code != 2 || !strings.Contains(stderr, "--tenant ID is required") {
		t.Errorf("run token without --tenant: got exit %d stderr %q, want 2 and the missing flag", code, stderr)
	}
	if code, stdout, _ := runCLI("help", "token"); code != 0 || !strings.Contains(stdout, "-tenant id") {
		t.Errorf("help token: got exit %d stdout %q, want 0 and the flags", code, stdout)
	}
}

// withClaim sets one claim of c and returns c.
func withClaim(c map[string]any, name string, v any) map[string]any {
	c[name] = v
	return c
}

// A token of a provider whose ID and access tokens cannot be told apart
// (Dex, recognised from its metadata) is accepted with that warning next
// to the decision; a token carrying nonce is refused as an ID token.
func TestTokenWarnsOfIndistinguishableIDTokens(t *testing.T) {
	dex := providertest.New(t, providertest.WithKeys(jose.RS256))
	dex.SetMetadata(func(_ providertest.Endpoint, m map[string]any) { m["jwks_uri"] = dex.Issuer() + "/keys" })
	const resource = "http://localhost:3001/dexter"
	config := writeFile(t, fmt.Sprintf(`{"tenants": [{"id": "dexter", "resource": %q, "provider": {"type": "oidc", "issuer": %q}, "audience": {"strategy": "resource"}}]}`, resource, dex.Issuer()))
	claims := dex.Claims("alice", resource, "create:todos")
	claims["at_hash"] = "b2Xq"
	code, out, errOut := tokenCLI(dex.Mint(claims, providertest.Header("typ", nil)), "--config", config, "--tenant", "dexter")
	if code != exitOK || !strings.Contains(out, "Decision: accepted") ||
		!strings.Contains(out, "  warning (token use): Dex signs ID and access tokens alike") {
		t.Errorf("exit %d, stderr %q; want accepted with the warning next to the decision:\n%s", code, errOut, out)
	}
	claims["nonce"] = "n-1"
	code, out, _ = tokenCLI(dex.Mint(claims, providertest.Header("typ", nil)), "--config", config, "--tenant", "dexter")
	if code != exitFail || !strings.Contains(out, "rejected: an ID token is not an access token: it carries nonce") {
		t.Errorf("exit %d; want the ID token refused:\n%s", code, out)
	}
}

// An introspection answer without aud, accepted for a listed client, is
// accepted with the trade-off named next to the decision; another
// client's is refused.
func TestTokenNamesMissingAudienceTradeOff(t *testing.T) {
	iss := providertest.New(t, providertest.WithDiscovery(providertest.OAuthInserted), providertest.WithKeys(jose.ES256))
	t.Setenv("TOKEN_TEST_SECRET", tokenTestSecret)
	const resource = "http://localhost:3001/lemon"
	config := writeFile(t, fmt.Sprintf(`{"tenants": [{"id": "lemon", "resource": %q,
  "provider": {"type": "oauth", "issuer": %q, "token": "introspection",
               "introspection": {"client_id": "gateway", "client_secret_env": "TOKEN_TEST_SECRET", "allow_missing_audience": true, "accepted_clients": ["todo-cli"]}},
  "audience": {"strategy": "resource"}},
  {"id": "strict", "resource": "http://localhost:3001/strict",
  "provider": {"type": "oauth", "issuer": %q, "token": "introspection",
               "introspection": {"client_id": "gateway", "client_secret_env": "TOKEN_TEST_SECRET"}},
  "audience": {"strategy": "resource"}}]}`, resource, iss.Issuer(), iss.Issuer()))
	claims := iss.Claims("alice", "", "read:todos")
	claims["client_id"] = "todo-cli"
	code, out, errOut := tokenCLI(iss.MintOpaque(claims), "--config", config, "--tenant", "lemon")
	if code != exitOK || !strings.Contains(out, "  warning (audience): the answer does not say which resource the token is for") {
		t.Errorf("exit %d, stderr %q; want accepted with the trade-off next to the decision:\n%s", code, errOut, out)
	}
	// Without the setting, the trace says which setting accepts such
	// answers, and at what price.
	code, out, _ = tokenCLI(iss.MintOpaque(claims), "--config", config, "--tenant", "strict")
	if code != exitFail || !strings.Contains(out, "the introspection answer has no aud") || !strings.Contains(out, "allow_missing_audience accepts such answers for the clients listed in accepted_clients") {
		t.Errorf("exit %d; want the refusal to name the setting and its price:\n%s", code, out)
	}
	claims["client_id"] = "other-api-client"
	code, out, _ = tokenCLI(iss.MintOpaque(claims), "--config", config, "--tenant", "lemon")
	if code != exitFail || !strings.Contains(out, "rejected: token was issued to a client this resource does not accept") {
		t.Errorf("exit %d; want another client's token refused:\n%s", code, out)
	}
}
