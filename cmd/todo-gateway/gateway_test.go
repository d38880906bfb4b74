package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// The binary's tests share one test bed: testConfig writes the configuration
// of the tenants they need, each on its test issuer, and startBed starts the
// gateway on it exactly as serve does, on a free loopback port. The HTTP
// edge's own behaviour is tested without the binary, in package mcp.

// bedTenant is one tenant of a test configuration.
type bedTenant struct {
	id string
	// host, when set, puts the tenant at the root of http://host:PORT, the
	// bed's port; otherwise the tenant is at base/id.
	host string
	// fields are the tenant's JSON members after id and resource: provider,
	// audience, claims…
	fields string
}

// onIssuer is tenant id of the provider kind ("logto", "oidc", "oauth") on
// issuer, with the resource audience strategy.
func onIssuer(id, kind, issuer string) bedTenant {
	return bedTenant{id: id, fields: fmt.Sprintf(`"provider": {"type": %q, "issuer": %q}, "audience": {"strategy": "resource"}`, kind, issuer)}
}

// onIssuers is n oidc tenants t0 … t<n-1>, tenant i on issuers[i % len(issuers)].
func onIssuers(n int, issuers ...string) []bedTenant {
	out := make([]bedTenant, n)
	for i := range out {
		out[i] = onIssuer(fmt.Sprintf("t%d", i), "oidc", issuers[i%len(issuers)])
	}
	return out
}

// testConfig builds the configuration of ts served at base
// (http://127.0.0.1:PORT): the store in a fresh temporary directory, the
// admin listener on a free loopback port.
func testConfig(t testing.TB, base string, ts ...bedTenant) *tenants.Config {
	t.Helper()
	return testConfigOn(t, base, "", ts...)
}

// testConfigOn is testConfig with the store block given as JSON; "" is a
// bbolt file in a temporary directory.
func testConfigOn(t testing.TB, base, store string, ts ...bedTenant) *tenants.Config {
	t.Helper()
	if store == "" {
		store = fmt.Sprintf(`{"driver": "bbolt", "bbolt": {"path": %q}}`, filepath.Join(t.TempDir(), "todos.db"))
	}
	port := base[strings.LastIndex(base, ":")+1:]
	docs := make([]string, len(ts))
	for i, tn := range ts {
		resource := base + "/" + tn.id
		if tn.host != "" {
			resource = "http://" + tn.host + ":" + port
		}
		docs[i] = fmt.Sprintf(`{"id": %q, "resource": %q, %s}`, tn.id, resource, tn.fields)
	}
	doc := fmt.Sprintf(`{"admin": {"listen": "127.0.0.1:0"}, "store": %s, "tenants": [%s]}`, store, strings.Join(docs, ",\n"))
	cfg, err := tenants.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("test configuration: %v\n%s", err, doc)
	}
	return cfg
}

func listen(t testing.TB) (net.Listener, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// bedSpec says what startBed starts.
type bedSpec struct {
	tenants []bedTenant
	// store, when set, is the store block as JSON (default: bbolt in a
	// temporary directory).
	store string
	// edit, when set, changes the configuration before the start.
	edit func(*tenants.Config)
	// log receives the gateway's JSON log; default a buffer that is shown
	// when the test fails.
	log io.Writer
}

// gatewayBed is the gateway started by startBed.
type gatewayBed struct {
	base      string // http://127.0.0.1:PORT
	gw        *gateway
	logs      *lockedBuffer     // the log, unless bedSpec.log was given
	resources map[string]string // tenant id → resource URL
}

// startBed starts the gateway on spec's configuration and shuts it down
// when the test ends.
func startBed(t testing.TB, spec bedSpec) *gatewayBed {
	t.Helper()
	ln, base := listen(t)
	cfg := testConfigOn(t, base, spec.store, spec.tenants...)
	b := &gatewayBed{base: base, resources: map[string]string{}}
	for _, tn := range cfg.Tenants {
		b.resources[tn.ID] = tn.Resource
	}
	if spec.edit != nil {
		spec.edit(cfg)
	}
	if spec.log == nil {
		b.logs = &lockedBuffer{}
		spec.log = b.logs
	}
	gw, err := startGateway(context.Background(), cfg, "test", 0, slog.New(slog.NewJSONHandler(spec.log, nil)), ln)
	if err != nil {
		t.Fatalf("startGateway: %v", err)
	}
	b.gw = gw
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() && b.logs != nil {
			t.Logf("gateway log:\n%s", b.logs.String())
		}
	})
	return b
}

const (
	allTodoScopes = "create:todos read:todos delete:todos"
	userScopes    = "create:todos"
)

// shapesBed is the gateway with one test issuer per provider shape:
// acme (Logto: /oidc, ES384, at+jwt), umbrella (a second Logto), globex
// (generic OIDC: audience strategy, permissions claim), initech (pure OAuth:
// RFC 8414, introspection, scope prefix) and hooli (a host tenant on acme's
// issuer).
type shapesBed struct {
	*gatewayBed
	logto, logtoB, oidc, oauth *providertest.Issuer
}

func startShapesBed(t *testing.T) *shapesBed {
	t.Helper()
	s := &shapesBed{
		logto:  providertest.New(t, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384)),
		logtoB: providertest.New(t, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384)),
		oidc:   providertest.New(t, providertest.WithKeys(jose.RS256)),
		oauth:  providertest.New(t, providertest.WithDiscovery(providertest.OAuthInserted), providertest.WithKeys(jose.ES256)),
	}
	t.Setenv("TEST_INTROSPECTION_SECRET", "gateway-secret")
	s.gatewayBed = startBed(t, bedSpec{tenants: []bedTenant{
		onIssuer("acme", "logto", s.logto.Issuer()),
		onIssuer("umbrella", "logto", s.logtoB.Issuer()),
		{id: "globex", fields: fmt.Sprintf(`"provider": {"type": "oidc", "issuer": %q},
			"audience": {"strategy": "audience", "values": ["todo-api"]}, "claims": {"scopes": ["permissions", "scope"]}`, s.oidc.Issuer())},
		{id: "initech", fields: fmt.Sprintf(`"provider": {"type": "oauth", "issuer": %q, "token": "introspection",
			"introspection": {"client_id": "gateway", "client_secret_env": "TEST_INTROSPECTION_SECRET"}},
			"audience": {"strategy": "scope", "prefix": "todo-api:"}`, s.oauth.Issuer())},
		{id: "hooli", host: "hooli.localhost", fields: onIssuer("", "logto", s.logto.Issuer()).fields},
	}})
	return s
}

// token mints a valid access token for a tenant, as its provider would.
func (s *shapesBed) token(t *testing.T, tenant, sub, scopes string) string {
	t.Helper()
	switch tenant {
	case "acme", "hooli":
		return s.logto.Mint(s.logto.Claims(sub, s.resources[tenant], scopes), providertest.Alg(jose.ES384))
	case "umbrella":
		return s.logtoB.Mint(s.logtoB.Claims(sub, s.resources[tenant], scopes), providertest.Alg(jose.ES384))
	case "globex":
		c := s.oidc.Claims(sub, "todo-api", "")
		c["permissions"] = strings.Fields(scopes)
		return s.oidc.Mint(c, providertest.Typ("JWT"))
	case "initech":
		var prefixed []string
		for _, sc := range strings.Fields(scopes) {
			perm, _, _ := strings.Cut(sc, ":")
			prefixed = append(prefixed, "todo-api:"+perm)
		}
		return s.oauth.MintOpaque(map[string]any{
			"active": true, "iss": s.oauth.Issuer(), "sub": sub, "client_id": "mcp-client",
			"scope": strings.Join(prefixed, " "), "exp": time.Now().Add(time.Hour).Unix(),
		})
	}
	t.Fatalf("no such tenant %q", tenant)
	return ""
}

// callTool calls a tool with one stateless JSON-RPC request, as the
// 2026-07-28 protocol allows, and returns the result's text and whether it
// is a tool error.
func callTool(t *testing.T, url, token, tool string, args map[string]any) (string, bool) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args}})
	resp := post(t, url, token, string(req), nil)
	body := readAll(t, resp)
	var rpc struct {
		Result struct {
			Content []struct{ Text string } `json:"content"`
			IsError bool                    `json:"isError"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &rpc); resp.StatusCode != http.StatusOK || err != nil || len(rpc.Result.Content) != 1 {
		t.Fatalf("%s at %s: %d %s", tool, url, resp.StatusCode, body)
	}
	return rpc.Result.Content[0].Text, rpc.Result.IsError
}

// The tutorial's roles end to end: each provider shape's real tokens carry
// the role's permissions through the running binary. User (create only)
// sees and deletes only their own todos; Admin sees and deletes everyone's.
// (Every protocol generation and tool answer is tested in package mcp.)
func TestTutorialRolesEndToEnd(t *testing.T) {
	s := startShapesBed(t)
	for _, tenant := range []string{"acme", "globex", "initech"} {
		t.Run(tenant, func(t *testing.T) {
			url := s.resources[tenant]
			admin, user := s.token(t, tenant, "admin", allTodoScopes), s.token(t, tenant, "user", userScopes)
			var created [2]struct{ ID, OwnerID string }
			for i, tok := range []string{admin, user} {
				text, isErr := callTool(t, url, tok, "create-todo", map[string]any{"content": "x"})
				if err := json.Unmarshal([]byte(text), &created[i]); isErr || err != nil {
					t.Fatalf("create-todo: %s", text)
				}
			}
			if created[1].OwnerID != "user" {
				t.Errorf("the user's todo is owned by %q", created[1].OwnerID)
			}
			if text, _ := callTool(t, url, user, "get-todos", nil); strings.Contains(text, created[0].ID) || !strings.Contains(text, created[1].ID) {
				t.Errorf("user lists %s, want only their own todo", text)
			}
			if text, isErr := callTool(t, url, user, "delete-todo", map[string]any{"id": created[0].ID}); !isErr {
				t.Errorf("user deleted admin's todo: %s", text)
			}
			if text, _ := callTool(t, url, admin, "get-todos", nil); !strings.Contains(text, created[0].ID) || !strings.Contains(text, created[1].ID) {
				t.Errorf("admin lists %s, want both todos", text)
			}
			if text, isErr := callTool(t, url, admin, "delete-todo", map[string]any{"id": created[1].ID}); isErr {
				t.Errorf("admin could not delete the user's todo: %s", text)
			}
		})
	}
}

// Under missing_permission "tool_error", the refusal tells the user what
// would help: at a provider whose scopes_supported leaves the scope out
// (zitadel's example provider strips every scope it does not define), not
// to sign in again for it.
func TestToolErrorSaysTheProviderDoesNotIssueTheScope(t *testing.T) {
	issues := providertest.New(t, providertest.WithScopes("openid", "profile", "create:todos"))
	strips := providertest.New(t, providertest.WithScopes("openid", "profile"))
	toolError := `, "missing_permission": "tool_error"`
	b := startBed(t, bedSpec{tenants: []bedTenant{
		{id: "issues", fields: onIssuer("", "oidc", issues.Issuer()).fields + toolError},
		{id: "strips", fields: onIssuer("", "oidc", strips.Issuer()).fields + toolError},
	}})
	for _, tc := range []struct {
		tenant string
		iss    *providertest.Issuer
		want   string
	}{
		{"issues", issues, "Sign in again granting create:todos, or ask an administrator for it."},
		{"strips", strips, "the authorization server does not list create:todos among the scopes it issues (its scopes_supported), so signing in again will not grant it. Ask an administrator"},
	} {
		tok := tc.iss.Mint(tc.iss.Claims("reader", b.resources[tc.tenant], "read:todos"))
		if text, isErr := callTool(t, b.resources[tc.tenant], tok, "create-todo", map[string]any{"content": "x"}); !isErr || !strings.Contains(text, tc.want) {
			t.Errorf("%s: %v %s\nwant a tool error saying %q", tc.tenant, isErr, text, tc.want)
		}
	}
}

// lockedBuffer collects the gateway's log lines from concurrent requests.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mcp-go's own lines (here: a response-shaped body, which any valid token
// can send) are lines of the gateway's JSON log, marked as mcp-go's, with
// their strings bounded: issue 24 found them as plain text between the
// JSON lines.
func TestLibraryLinesAreJSON(t *testing.T) {
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: []bedTenant{onIssuer("t0", "oidc", iss.Issuer())}})
	tok := iss.Mint(iss.Claims("u", b.resources["t0"], "read:todos"))
	resp := post(t, b.resources["t0"], tok, `{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"`+strings.Repeat("x", 5000)+`"}}`, nil)
	readAll(t, resp)
	eventually(t, "mcp-go's line in the log", func() bool { return strings.Contains(b.logs.String(), `"library":"mcp-go"`) })
	for line := range strings.Lines(b.logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not a JSON line: %q", line)
		}
		if len(line) > 2048 {
			t.Errorf("a line of %d bytes: %.200s…", len(line), line)
		}
	}
}

// Each bbolt commit is timed in /metrics (the writes to disk and the
// fsyncs every write of the commit waits for), with its number of writes.
func TestCommitTimesInMetrics(t *testing.T) {
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: []bedTenant{onIssuer("t0", "oidc", iss.Issuer())}})
	commits := func() int {
		_, body := get(t, "http://"+b.gw.AdminAddr()+"/metrics")
		for line := range strings.Lines(body) {
			if n, ok := strings.CutPrefix(strings.TrimSpace(line), "todo_gateway_store_commit_seconds_count "); ok {
				v, _ := strconv.Atoi(n)
				return v
			}
		}
		t.Fatalf("no todo_gateway_store_commit_seconds in:\n%s", body)
		return 0
	}
	before := commits()
	tok := iss.Mint(iss.Claims("u", b.resources["t0"], "create:todos"))
	if text, isErr := callTool(t, b.resources["t0"], tok, "create-todo", map[string]any{"content": "x"}); isErr {
		t.Fatalf("create-todo: %s", text)
	}
	if after := commits(); after != before+1 {
		t.Errorf("commits counted %d, then %d after one create, want one more", before, after)
	}
}
