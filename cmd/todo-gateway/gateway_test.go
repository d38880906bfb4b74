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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// testbed is the real gateway on a loopback port with one test issuer per
// provider shape and the bbolt store in a temporary directory.
type testbed struct {
	base    string // http://127.0.0.1:PORT
	gw      *gateway
	logto   *providertest.Issuer // Logto-shaped: /oidc, ES384, at+jwt
	oidc    *providertest.Issuer // generic OIDC: audience strategy, permissions claim
	oauth   *providertest.Issuer // pure OAuth: RFC 8414, introspection, scope prefix
	logtoB  *providertest.Issuer // a second Logto-shaped issuer for tenant isolation
	logBuf  *lockedBuffer
	tenants map[string]string // id → resource URL
}

const (
	allTodoScopes = "create:todos read:todos delete:todos"
	userScopes    = "create:todos"
)

func newTestbed(t *testing.T) *testbed {
	t.Helper()
	tb := &testbed{
		logto:  providertest.New(t, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384)),
		oidc:   providertest.New(t, providertest.WithKeys(jose.RS256)),
		oauth:  providertest.New(t, providertest.WithDiscovery(providertest.OAuthInserted), providertest.WithKeys(jose.ES256)),
		logtoB: providertest.New(t, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384)),
		logBuf: &lockedBuffer{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tb.base = "http://" + ln.Addr().String()
	t.Setenv("TEST_INTROSPECTION_SECRET", "gateway-secret")
	tb.tenants = map[string]string{
		"acme":     tb.base + "/acme",
		"umbrella": tb.base + "/umbrella",
		"globex":   tb.base + "/globex",
		"initech":  tb.base + "/initech",
		"hooli":    "http://hooli.localhost:" + portOf(ln),
	}
	cfgJSON := fmt.Sprintf(`{
  "listen": "127.0.0.1:0", "admin": {"listen": "127.0.0.1:0"},
  "store": {"path": %q},
  "tenants": [
    {"id": "acme", "resource": %q, "provider": {"type": "logto", "issuer": %q}, "audience": {"strategy": "resource"}},
    {"id": "umbrella", "resource": %q, "provider": {"type": "logto", "issuer": %q}, "audience": {"strategy": "resource"}},
    {"id": "globex", "resource": %q, "provider": {"type": "oidc", "issuer": %q},
     "audience": {"strategy": "audience", "values": ["todo-api"]}, "claims": {"scopes": ["permissions", "scope"]}},
    {"id": "initech", "resource": %q,
     "provider": {"type": "oauth", "issuer": %q, "token": "introspection",
                  "introspection": {"client_id": "gateway", "client_secret_env": "TEST_INTROSPECTION_SECRET"}},
     "audience": {"strategy": "scope", "prefix": "todo-api:"}},
    {"id": "hooli", "resource": %q, "provider": {"type": "logto", "issuer": %q}, "audience": {"strategy": "resource"}}
  ]}`,
		filepath.Join(t.TempDir(), "todos.db"),
		tb.tenants["acme"], tb.logto.Issuer(),
		tb.tenants["umbrella"], tb.logtoB.Issuer(),
		tb.tenants["globex"], tb.oidc.Issuer(),
		tb.tenants["initech"], tb.oauth.Issuer(),
		tb.tenants["hooli"], tb.logto.Issuer(),
	)
	cfg, err := tenants.Parse([]byte(cfgJSON))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewJSONHandler(tb.logBuf, nil))
	gw, err := startGateway(context.Background(), cfg, "test", log, ln)
	if err != nil {
		t.Fatalf("startGateway: %v", err)
	}
	tb.gw = gw
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", tb.logBuf.String())
		}
	})
	return tb
}

func portOf(ln net.Listener) string { return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port) }

// token mints a valid access token for a tenant, as its provider would.
func (tb *testbed) token(t *testing.T, tenant, sub, scopes string) string {
	t.Helper()
	switch tenant {
	case "acme", "hooli":
		return tb.logto.Mint(tb.logto.Claims(sub, tb.tenants[tenant], scopes), providertest.Alg(jose.ES384))
	case "umbrella":
		return tb.logtoB.Mint(tb.logtoB.Claims(sub, tb.tenants[tenant], scopes), providertest.Alg(jose.ES384))
	case "globex":
		c := tb.oidc.Claims(sub, "todo-api", "")
		c["permissions"] = strings.Fields(scopes)
		return tb.oidc.Mint(c, providertest.Typ("JWT"))
	case "initech":
		var prefixed []string
		for _, s := range strings.Fields(scopes) {
			perm, _, _ := strings.Cut(s, ":")
			prefixed = append(prefixed, "todo-api:"+perm)
		}
		return tb.oauth.MintOpaque(map[string]any{
			"active": true, "iss": tb.oauth.Issuer(), "sub": sub, "client_id": "mcp-client",
			"scope": strings.Join(prefixed, " "), "exp": time.Now().Add(time.Hour).Unix(),
		})
	}
	t.Fatalf("no such tenant %q", tenant)
	return ""
}

// connect opens an MCP session as the holder of token; version "" lets the
// client negotiate (2026-07-28), otherwise the handshake is pinned.
func (tb *testbed) connect(t *testing.T, resource, token, version string) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(resource, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	var opts []client.ClientOption
	if version != "" {
		opts = append(opts, client.WithProtocolVersion(version))
	}
	c := client.NewClient(tr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	res, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
		ProtocolVersion: version, ClientInfo: mcpgo.Implementation{Name: "gateway-test", Version: "1"}}})
	if err != nil {
		t.Fatalf("initialize %s: %v", resource, err)
	}
	want := version
	if want == "" {
		want = mcpgo.LATEST_PROTOCOL_VERSION
	}
	if res.ProtocolVersion != want {
		t.Fatalf("negotiated protocol %q, want %q", res.ProtocolVersion, want)
	}
	return c
}

// call runs a tool and returns its text and whether it was a tool error.
func call(t *testing.T, c *client.Client, tool string, args map[string]any) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: tool, Arguments: args}})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: %d content items, want 1", tool, len(res.Content))
	}
	text, ok := res.Content[0].(mcpgo.TextContent)
	if !ok {
		t.Fatalf("%s: content %T, want text", tool, res.Content[0])
	}
	if !res.IsError && res.StructuredContent == nil {
		t.Fatalf("%s: no structuredContent", tool)
	}
	return text.Text, res.IsError
}

type todo struct {
	ID        string    `json:"id"`
	Content   string    `json:"content"`
	OwnerID   string    `json:"ownerId"`
	CreatedAt time.Time `json:"createdAt"`
}

func createTodo(t *testing.T, c *client.Client, content string) todo {
	t.Helper()
	text, isErr := call(t, c, "create-todo", map[string]any{"content": content})
	if isErr {
		t.Fatalf("create-todo failed: %s", text)
	}
	var td todo
	if err := json.Unmarshal([]byte(text), &td); err != nil {
		t.Fatalf("create-todo result %q: %v", text, err)
	}
	return td
}

func listTodos(t *testing.T, c *client.Client) []todo {
	t.Helper()
	text, isErr := call(t, c, "get-todos", nil)
	if isErr {
		t.Fatalf("get-todos failed: %s", text)
	}
	var out struct {
		Todos []todo `json:"todos"`
	}
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("get-todos result %q: %v", text, err)
	}
	return out.Todos
}

func ids(todos []todo) []string {
	var out []string
	for _, td := range todos {
		out = append(out, td.ID)
	}
	return out
}

// The tutorial's checkpoint, on one tenant per provider shape and for both
// protocol generations: User (create only) sees and deletes only their own
// todos; Admin (all three) sees and deletes everyone's.
func TestTutorialRoles(t *testing.T) {
	tb := newTestbed(t)
	for _, tenant := range []string{"acme", "globex", "initech"} {
		for _, version := range []string{"", mcpgo.ProtocolVersion20251125, mcpgo.ProtocolVersion20250618} {
			t.Run(tenant+"/"+version, func(t *testing.T) {
				resource := tb.tenants[tenant]
				adminSub, userSub := "admin-"+version, "user-"+version
				admin := tb.connect(t, resource, tb.token(t, tenant, adminSub, allTodoScopes), version)
				user := tb.connect(t, resource, tb.token(t, tenant, userSub, userScopes), version)

				adminTodo := createTodo(t, admin, "admin's todo")
				userTodo := createTodo(t, user, "user's todo")
				if userTodo.OwnerID != userSub || userTodo.Content != "user's todo" || userTodo.ID == "" || userTodo.CreatedAt.IsZero() {
					t.Fatalf("created %+v, want owner %q and the content back", userTodo, userSub)
				}

				if got := ids(listTodos(t, user)); len(got) != 1 || got[0] != userTodo.ID {
					t.Errorf("user sees %v, want only their own %s", got, userTodo.ID)
				}
				text, isErr := call(t, user, "delete-todo", map[string]any{"id": adminTodo.ID})
				if !isErr || !strings.Contains(text, "Failed to delete todo") {
					t.Errorf("user deleting admin's todo: %q (error %v), want Failed to delete todo", text, isErr)
				}
				text, isErr = call(t, user, "delete-todo", map[string]any{"id": "no-such-id"})
				if !isErr || !strings.Contains(text, "Failed to delete todo") {
					t.Errorf("deleting an unknown id: %q, want the same Failed to delete todo", text)
				}

				seen := map[string]bool{}
				for _, id := range ids(listTodos(t, admin)) {
					seen[id] = true
				}
				if !seen[adminTodo.ID] || !seen[userTodo.ID] {
					t.Errorf("admin sees %v, want both %s and %s", seen, adminTodo.ID, userTodo.ID)
				}
				text, isErr = call(t, admin, "delete-todo", map[string]any{"id": userTodo.ID})
				if isErr || !strings.Contains(text, "Todo "+userTodo.ID+" deleted") {
					t.Errorf("admin deleting user's todo: %q (error %v)", text, isErr)
				}
				text, isErr = call(t, admin, "delete-todo", map[string]any{"id": adminTodo.ID})
				if isErr {
					t.Errorf("admin deleting own todo: %q", text)
				}
				if got := listTodos(t, admin); len(got) != 0 {
					t.Errorf("after deleting both, admin sees %v", ids(got))
				}
			})
		}
	}
}

// A user deletes their own todo without the delete scope.
func TestOwnerDeletesOwnTodo(t *testing.T) {
	tb := newTestbed(t)
	user := tb.connect(t, tb.tenants["acme"], tb.token(t, "acme", "user", userScopes), "")
	td := createTodo(t, user, "mine")
	text, isErr := call(t, user, "delete-todo", map[string]any{"id": td.ID})
	if isErr {
		t.Fatalf("owner delete: %s", text)
	}
	var res struct {
		Message string `json:"message"`
		Details todo   `json:"details"`
	}
	if err := json.Unmarshal([]byte(text), &res); err != nil || res.Details.ID != td.ID {
		t.Fatalf("delete result %q: %v", text, err)
	}
}

// Tenants are isolated: a token minted for A is refused at B, and A's todos
// never show at B even for the same subject.
func TestTenantIsolation(t *testing.T) {
	tb := newTestbed(t)
	acmeToken := tb.token(t, "acme", "same-sub", allTodoScopes)
	acme := tb.connect(t, tb.tenants["acme"], acmeToken, "")
	createTodo(t, acme, "acme secret")

	// umbrella trusts another issuer: acme's token fails there.
	resp := post(t, tb.tenants["umbrella"], acmeToken, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	wantChallenge(t, resp, http.StatusUnauthorized, `error="invalid_token"`)

	// hooli trusts acme's issuer, but the audience is hooli's resource.
	req, _ := http.NewRequest(http.MethodPost, tb.base+"/", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Host = "hooli.localhost:" + strings.TrimPrefix(tb.base, "http://127.0.0.1:")
	req.Header.Set("Authorization", "Bearer "+acmeToken)
	req.Header.Set("Content-Type", "application/json")
	resp = do(t, req)
	wantChallenge(t, resp, http.StatusUnauthorized, `error="invalid_token"`)

	umbrella := tb.connect(t, tb.tenants["umbrella"], tb.token(t, "umbrella", "same-sub", allTodoScopes), "")
	if got := listTodos(t, umbrella); len(got) != 0 {
		t.Errorf("umbrella sees %v, want nothing of acme's", ids(got))
	}
}

// A host-based tenant (resource at the root of its host) is found through
// the Host header, case and default port folded.
func TestHostTenant(t *testing.T) {
	tb := newTestbed(t)
	port := strings.TrimPrefix(tb.base, "http://127.0.0.1:")
	for _, host := range []string{"hooli.localhost:" + port, "HOOLI.localhost:" + port} {
		req, _ := http.NewRequest(http.MethodGet, tb.base+"/.well-known/oauth-protected-resource", nil)
		req.Host = host
		resp := do(t, req)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"resource":"`+tb.tenants["hooli"]+`"`) {
			t.Errorf("Host %s: %d %s", host, resp.StatusCode, body)
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
