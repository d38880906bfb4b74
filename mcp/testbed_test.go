package mcp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// edgeBed is the HTTP edge alone: an mcp.Gateway over a bbolt store in a
// temporary directory, served by httptest on 127.0.0.1. Tokens are checked by
// a fake verifier that answers from the bed's table, so no issuer runs and
// no request leaves the test.
//
// Its tenants mirror the example configuration's shapes: acme and umbrella
// (Logto), globex (generic OIDC, audience strategy), initech (pure OAuth,
// scope strategy with the "todo-api:" prefix) and hooli (a host tenant at
// the root of hooli.localhost, on acme's issuer).
type edgeBed struct {
	URL       string // http://127.0.0.1:PORT
	gw        *mcp.Gateway
	store     *bolt.Store
	reg       *prometheus.Registry
	logPath   string            // the edge's JSON log
	resources map[string]string // tenant id → resource URL
	cfg       *tenants.Config   // the configuration applied

	mu     sync.Mutex
	tokens map[string]grant // token → what verifying it gives
}

// grant is what the fake verifier answers for one token: a principal at
// its tenant (refused as meant for another resource elsewhere), or err.
type grant struct {
	tenant, subject string
	perms           []providers.Permission
	// extraScopes are scopes the token carries besides its permissions'
	// (openid, offline_access, another API's).
	extraScopes []string
	err         error
}

// The tutorial's roles, as permissions.
var (
	adminPerms  = []providers.Permission{providers.PermCreate, providers.PermRead, providers.PermDelete}
	userPerms   = []providers.Permission{providers.PermCreate}
	readerPerms = []providers.Permission{providers.PermRead}
)

const allTodoScopes = "create:todos read:todos delete:todos"

// Issuers of the bed's tenants. They are never contacted: the fake verifier
// stands in for them.
const (
	acmeIssuer     = "https://acme.logto.app/oidc"
	umbrellaIssuer = "https://umbrella.logto.app/oidc"
	globexIssuer   = "https://login.globex.example"
	initechIssuer  = "https://auth.initech.example"
)

// newEdgeBed builds the edge and applies the bed's tenants. tweak, when not
// nil, changes the options first; its NewVerifier is the fake, which a test
// may wrap.
func newEdgeBed(t *testing.T, tweak func(*mcp.Options)) *edgeBed {
	t.Helper()
	return newEdgeBedOn(t, tweak, nil)
}

// newEdgeBedOn is newEdgeBed with the edge on wrap(the bed's store), when
// wrap is not nil.
func newEdgeBedOn(t *testing.T, tweak func(*mcp.Options), wrap func(store.Store) store.Store) *edgeBed {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "todos.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := &edgeBed{store: st, reg: prometheus.NewRegistry(), logPath: filepath.Join(t.TempDir(), "edge.log"), tokens: map[string]grant{}}
	// A file, so that the lines concurrent requests write can be read at
	// any time (the handler writes each line whole).
	logFile, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	opts := mcp.Options{
		NewVerifier: b.newVerifier,
		Logger:      slog.New(slog.NewJSONHandler(logFile, nil)),
		Metrics:     mcp.NewMetrics(b.reg),
	}
	if tweak != nil {
		tweak(&opts)
	}
	var edgeStore store.Store = st
	if wrap != nil {
		edgeStore = wrap(st)
	}
	b.gw = mcp.New(edgeStore, opts)
	srv := httptest.NewServer(b.gw) // httptest listens on 127.0.0.1 only
	b.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		if err := b.gw.Close(context.Background()); err != nil {
			t.Errorf("closing the edge: %v", err)
		}
		st.Close()
		logFile.Close()
		if t.Failed() {
			t.Logf("edge log:\n%s", b.logs(t))
		}
	})

	port := strings.TrimPrefix(b.URL, "http://127.0.0.1:")
	cfg, err := tenants.Parse(fmt.Appendf(nil, `{"tenants": [
  {"id": "acme", "resource": "%[1]s/acme", "provider": {"type": "logto", "issuer": %[3]q}, "audience": {"strategy": "resource"}},
  {"id": "umbrella", "resource": "%[1]s/umbrella", "provider": {"type": "logto", "issuer": %[4]q}, "audience": {"strategy": "resource"}},
  {"id": "globex", "resource": "%[1]s/globex", "provider": {"type": "oidc", "issuer": %[5]q},
   "audience": {"strategy": "audience", "values": ["todo-api"]}},
  {"id": "initech", "resource": "%[1]s/initech", "provider": {"type": "oauth", "issuer": %[6]q},
   "audience": {"strategy": "scope", "prefix": "todo-api:"}},
  {"id": "hooli", "resource": "http://hooli.localhost:%[2]s", "provider": {"type": "logto", "issuer": %[3]q}, "audience": {"strategy": "resource"}}
]}`, b.URL, port, acmeIssuer, umbrellaIssuer, globexIssuer, initechIssuer))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	b.cfg = cfg
	b.resources = map[string]string{}
	for _, tn := range cfg.Tenants {
		b.resources[tn.ID] = tn.Resource
	}
	if _, err := b.gw.Apply(context.Background(), cfg, "test"); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return b
}

// reconfigure applies the bed's configuration as edit changes it.
func (b *edgeBed) reconfigure(t *testing.T, edit func(*tenants.Config)) {
	t.Helper()
	cfg := *b.cfg
	cfg.Tenants = append([]tenants.Tenant(nil), b.cfg.Tenants...)
	edit(&cfg)
	if _, err := b.gw.Apply(context.Background(), &cfg, "test-edited"); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// logs is what the edge has logged so far.
func (b *edgeBed) logs(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// newVerifier is the bed's mcp.NewVerifier: a fakeVerifier for the tenant.
func (b *edgeBed) newVerifier(tn *tenants.Tenant) (providers.Verifier, error) {
	return &fakeVerifier{bed: b, tenant: tn}, nil
}

// brokenTenant is a tweak for newEdgeBed: the verifier of tenant id cannot
// be built, for the reason given.
func brokenTenant(id, reason string) func(*mcp.Options) {
	return func(o *mcp.Options) {
		fake := o.NewVerifier
		o.NewVerifier = func(tn *tenants.Tenant) (providers.Verifier, error) {
			if tn.ID == id {
				return nil, errors.New(reason)
			}
			return fake(tn)
		}
	}
}

// token registers a fresh token that verifies at tenant as sub holding perms.
func (b *edgeBed) token(tenant, sub string, perms ...providers.Permission) string {
	return b.register(grant{tenant: tenant, subject: sub, perms: perms})
}

// failing registers a fresh token whose verification fails, anywhere, with
// a *providers.Error of class and reason.
func (b *edgeBed) failing(class providers.Class, reason string) string {
	return b.register(grant{err: &providers.Error{Class: class, Reason: reason}})
}

func (b *edgeBed) register(g grant) string {
	raw := make([]byte, 24)
	rand.Read(raw)
	tok := hex.EncodeToString(raw) // 48 characters of token68
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens[tok] = g
	return tok
}

// fakeVerifier verifies a tenant's tokens from the bed's table, as a
// provider would: an unknown token is invalid, one registered for another
// tenant is refused as meant for another resource (the audience check).
type fakeVerifier struct {
	bed    *edgeBed
	tenant *tenants.Tenant
}

func (v *fakeVerifier) Verify(_ context.Context, raw string) (*providers.Principal, error) {
	v.bed.mu.Lock()
	g, ok := v.bed.tokens[raw]
	v.bed.mu.Unlock()
	switch {
	case !ok:
		return nil, &providers.Error{Class: providers.ClassInvalidToken, Reason: "the token is not one the issuer signed"}
	case g.err != nil:
		return nil, g.err
	case g.tenant != v.tenant.ID:
		return nil, &providers.Error{Class: providers.ClassInvalidToken, Reason: "the token is meant for another resource"}
	}
	p := &providers.Principal{
		Tenant: v.tenant.ID, Issuer: v.tenant.Provider.Issuer, Subject: g.subject, ClientID: "test-client",
		Permissions: map[providers.Permission]bool{}, Audience: []string{v.tenant.Resource},
		Expiry: time.Now().Add(time.Hour), Kind: providers.TokenKindJWT,
	}
	p.Scopes = append(p.Scopes, g.extraScopes...)
	for _, perm := range g.perms {
		p.Permissions[perm] = true
		p.Scopes = append(p.Scopes, v.tenant.Scope(perm))
	}
	return p, nil
}

// --- HTTP ---

var httpClient = &http.Client{Timeout: 10 * time.Second}

// send does req and returns the response with its body read and closed.
func send(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// request builds a request with body (none when "") and the header pairs
// given (name, value, …); the pair "Host", h sends h as the Host header, and
// a pair with the value "" is left out.
func request(t *testing.T, method, url, body string, header ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		switch name, value := header[i], header[i+1]; {
		case value == "":
		case name == "Host":
			req.Host = value
		default:
			req.Header.Set(name, value)
		}
	}
	return req
}

// bearer is the Authorization header value for token, or "" for none.
func bearer(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

// post sends a JSON-RPC body as an MCP client does, with token as the
// bearer unless it is "", and then the header pairs given (name, value, …).
func post(t *testing.T, url, token, body string, header ...string) (*http.Response, string) {
	t.Helper()
	header = append([]string{"Content-Type", "application/json", "Accept", "application/json, text/event-stream",
		"Authorization", bearer(token)}, header...)
	return send(t, request(t, http.MethodPost, url, body, header...))
}

// get sends a GET, with the Host header host unless it is "".
func get(t *testing.T, url, host string) (*http.Response, string) {
	t.Helper()
	return send(t, request(t, http.MethodGet, url, "", "Host", host))
}

// wantChallenge checks the status, that WWW-Authenticate contains each of
// want and that the JSON body names an error; it returns the header.
func wantChallenge(t *testing.T, resp *http.Response, body string, status int, want ...string) string {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	h := resp.Header.Get("WWW-Authenticate")
	for _, w := range want {
		if !strings.Contains(h, w) {
			t.Errorf("WWW-Authenticate %q lacks %q", h, w)
		}
	}
	if !strings.Contains(body, `"error":`) || !strings.Contains(body, `"error_description":`) {
		t.Errorf("body %s lacks error and error_description", body)
	}
	return h
}

const toolsList = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

func toolCall(name string) string {
	return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + name + `","arguments":{"content":"x"}}}`
}

// --- MCP, through mcp-go's client ---

// connect opens an MCP session as the holder of token; version "" lets the
// client negotiate (the latest, stateless protocol), otherwise the handshake
// is pinned to it.
func connect(t *testing.T, resource, token, version string) *client.Client {
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
		ProtocolVersion: version, ClientInfo: mcpgo.Implementation{Name: "edge-test", Version: "1"}}})
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

type todoRecord struct {
	ID        string    `json:"id"`
	Content   string    `json:"content"`
	OwnerID   string    `json:"ownerId"`
	CreatedAt time.Time `json:"createdAt"`
}

func createTodo(t *testing.T, c *client.Client, content string) todoRecord {
	t.Helper()
	text, isErr := call(t, c, todo.ToolCreateTodo, map[string]any{"content": content})
	if isErr {
		t.Fatalf("create-todo failed: %s", text)
	}
	var td todoRecord
	if err := json.Unmarshal([]byte(text), &td); err != nil {
		t.Fatalf("create-todo result %q: %v", text, err)
	}
	return td
}

func listTodos(t *testing.T, c *client.Client) []todoRecord {
	t.Helper()
	text, isErr := call(t, c, todo.ToolGetTodos, nil)
	if isErr {
		t.Fatalf("get-todos failed: %s", text)
	}
	var out struct {
		Todos []todoRecord `json:"todos"`
	}
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("get-todos result %q: %v", text, err)
	}
	return out.Todos
}

func ids(todos []todoRecord) []string {
	var out []string
	for _, td := range todos {
		out = append(out, td.ID)
	}
	return out
}
