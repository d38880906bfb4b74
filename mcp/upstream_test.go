package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// notesServer is an upstream MCP server for the tests: mcp-go's Streamable
// HTTP server with four tools, behind a recorder of every request it gets.
type notesServer struct {
	URL string
	// release lets the slow tool finish; it sends a progress notification
	// first, so its answer is an SSE stream.
	release chan struct{}

	mu   sync.Mutex
	seen []seenRequest
	// status, when not 0, answers every request with it (and a challenge).
	status int
}

type seenRequest struct {
	method string
	header http.Header
	body   string
}

func newNotesServer(t *testing.T) *notesServer {
	t.Helper()
	ns := &notesServer{release: make(chan struct{})}
	s := server.NewMCPServer("notes", "1.0.0", server.WithToolCapabilities(false), server.WithResourceCapabilities(false, false))
	text := func(s string) server.ToolHandlerFunc {
		return func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return mcpgo.NewToolResultText(s), nil
		}
	}
	s.AddTool(mcpgo.NewTool("search", mcpgo.WithDescription("search notes")), text("found"))
	s.AddTool(mcpgo.NewTool("add", mcpgo.WithDescription("add a note")), text("added"))
	s.AddTool(mcpgo.NewTool("admin-reset", mcpgo.WithDescription("not listed by the tenant")), text("reset"))
	s.AddTool(mcpgo.NewTool("slow", mcpgo.WithDescription("reports progress")),
		func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			srv := server.ServerFromContext(ctx)
			_ = srv.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
				"progressToken": req.Params.Meta.ProgressToken, "progress": 1, "total": 2, "message": "half way"})
			select {
			case <-ns.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return mcpgo.NewToolResultText("done"), nil
		})
	s.AddResource(mcpgo.NewResource("notes://readme", "readme"), func(context.Context, mcpgo.ReadResourceRequest) ([]mcpgo.ResourceContents, error) {
		return []mcpgo.ResourceContents{mcpgo.TextResourceContents{URI: "notes://readme", Text: "hello"}}, nil
	})
	h := server.NewStreamableHTTPServer(s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		ns.mu.Lock()
		ns.seen = append(ns.seen, seenRequest{method: r.Method, header: r.Header.Clone(), body: string(body)})
		status := ns.status
		ns.mu.Unlock()
		if status != 0 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="http://upstream.example/prm"`)
			http.Error(w, "go away", status)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	ns.URL = srv.URL + "/mcp"
	return ns
}

func (ns *notesServer) requests() []seenRequest {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]seenRequest(nil), ns.seen...)
}

// withSigner is a newEdgeBed tweak: the gateway signs assertions with a
// fresh key.
func withSigner(t *testing.T) func(*mcp.Options) {
	return func(o *mcp.Options) {
		k, err := upstream.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if o.Signer, err = upstream.NewSigner(nil, k); err != nil {
			t.Fatal(err)
		}
	}
}

// addUpstreamTenant applies the bed's tenants plus "notes", an upstream
// tenant in front of ns with the server block given (its url is filled
// in), on acme's issuer, answering missing permissions as missing says.
func (b *edgeBed) addUpstreamTenant(t *testing.T, ns *notesServer, serverBlock, missing string) string {
	t.Helper()
	cfg, err := tenants.Parse(fmt.Appendf(nil, `{"tenants": [{"id": "notes", "resource": "%s/notes",
		"provider": {"type": "logto", "issuer": %q}, "missing_permission": %q,
		"server": %s}]}`, b.URL, acmeIssuer, missing, strings.Replace(serverBlock, "URL", ns.URL, 1)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	b.reconfigure(t, func(c *tenants.Config) { c.Tenants = append(c.Tenants, cfg.Tenants[0]) })
	return b.URL + "/notes"
}

const notesServerBlock = `{"type": "upstream", "url": "URL",
	"permissions": {"tools": {"search": ["notes:read"], "add": ["notes:write"], "slow": []},
		"other_methods": ["notes:read"]}}`

var (
	notesReader = []providers.Permission{"notes:read"}
	notesWriter = []providers.Permission{"notes:read", "notes:write"}
)

// connectUpstream is an mcp-go client of url with token, initialized.
func connectUpstream(t *testing.T, url, token string, header ...string) *client.Client {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + token}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(h))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = mcpgo.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcpgo.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(t.Context(), init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

func toolNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(t.Context(), mcpgo.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

func callTool(t *testing.T, c *client.Client, name string) (*mcpgo.CallToolResult, error) {
	t.Helper()
	req := mcpgo.CallToolRequest{}
	req.Params.Name = name
	return c.CallTool(t.Context(), req)
}

func TestUpstreamToolsPerPermission(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "challenge")

	reader := connectUpstream(t, url, b.token("notes", "rita", notesReader...))
	if got, want := strings.Join(toolNames(t, reader), ","), "search,slow"; got != want {
		t.Errorf("reader's tools %s, want %s (add needs notes:write, admin-reset is not listed)", got, want)
	}
	writer := connectUpstream(t, url, b.token("notes", "will", notesWriter...))
	if got, want := strings.Join(toolNames(t, writer), ","), "add,search,slow"; got != want {
		t.Errorf("writer's tools %s, want %s", got, want)
	}
	res, err := callTool(t, writer, "add")
	if err != nil || res.IsError || res.Content[0].(mcpgo.TextContent).Text != "added" {
		t.Fatalf("writer's add: %v %+v", err, res)
	}
	if _, err := reader.ReadResource(t.Context(), mcpgo.ReadResourceRequest{Params: mcpgo.ReadResourceParams{URI: "notes://readme"}}); err != nil {
		t.Errorf("reader's resources/read (other_methods notes:read): %v", err)
	}

	// The reader's add: 403 step-up naming the scope, before the upstream.
	before := len(ns.requests())
	resp, body := post(t, url, b.token("notes", "rita", notesReader...), callBody(1, "add", `{}`))
	wantChallenge(t, resp, body, http.StatusForbidden, `error="insufficient_scope"`, `scope="notes:write notes:read"`, "the add tool requires the notes:write scope")
	// A tool the tenant does not list, and one that does not exist: the
	// same 403, never forwarded.
	for _, tool := range []string{"admin-reset", "no-such-tool"} {
		resp, body = post(t, url, b.token("notes", "will", notesWriter...), callBody(2, tool, `{}`))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "the "+tool+" tool is not available through this gateway") ||
			resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: %d %s, want 403 not available, no challenge", tool, resp.StatusCode, body)
		}
	}
	if n := len(ns.requests()); n != before {
		t.Errorf("the upstream saw %d refused requests", n-before)
	}
	logs := b.logs(t)
	for _, want := range []string{`"tool":"admin-reset","decision":"deny"`, `"tool":"add","decision":"deny"`, `"tool":"add","decision":"allow"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

// TestUpstreamDiscoverNeedsNoPermission: server/discover is 2026-07-28's
// initialize. A caller who holds none of the tenant-wide permissions
// (other_methods) still discovers the server and calls the tools open to
// all, on 2026-07-28 without falling back to the 2025 handshake, and no
// step-up asks them to consent to a scope they do not need.
func TestUpstreamDiscoverNeedsNoPermission(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "challenge")
	c := connectUpstream(t, url, b.token("notes", "nobody"))
	if v := c.ProtocolVersion(); v != mcpgo.ProtocolVersion20260728 {
		t.Errorf("protocol %q, want %s: the client fell back", v, mcpgo.ProtocolVersion20260728)
	}
	if got := strings.Join(toolNames(t, c), ","); got != "slow" {
		t.Errorf("tools %s, want slow alone (the one that needs nothing)", got)
	}
	audit := b.logLines(t, "audit")
	found := false
	for _, line := range audit {
		if line["method"] == "server/discover" {
			found = true
			if line["decision"] != "allow" {
				t.Errorf("server/discover: %v, want allowed", line)
			}
		}
		if line["method"] == "initialize" {
			t.Errorf("the client fell back to initialize: %v", line)
		}
	}
	if !found {
		t.Error("no server/discover in the audit log")
	}
}

func TestUpstreamOtherMethodsRefusedByDefault(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, `{"type": "upstream", "url": "URL", "permissions": {"tools": {"search": []}}}`, "challenge")
	c := connectUpstream(t, url, b.token("notes", "rita"))
	_, err := c.ReadResource(t.Context(), mcpgo.ReadResourceRequest{Params: mcpgo.ReadResourceParams{URI: "notes://readme"}})
	if err == nil {
		t.Fatal("resources/read went through without other_methods")
	}
	resp, body := post(t, url, b.token("notes", "rita"), `{"jsonrpc":"2.0","id":3,"method":"prompts/list"}`)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "the prompts/list method is not available") {
		t.Errorf("prompts/list: %d %s", resp.StatusCode, body)
	}
}

func TestUpstreamMissingPermissionAsToolError(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "tool_error")
	c := connectUpstream(t, url, b.token("notes", "rita", notesReader...))
	res, err := callTool(t, c, "add")
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(mcpgo.TextContent).Text, "requires the notes:write scope") {
		t.Fatalf("add without notes:write: %v %+v, want the tool error", err, res)
	}
	for _, r := range ns.requests() {
		if strings.Contains(r.body, `"add"`) {
			t.Errorf("the upstream saw the refused call: %s", r.body)
		}
	}
}

// TestUpstreamNeverSeesClientToken: whatever the client sends, the
// upstream never gets its token, cookies or a copy of the identity header,
// and gets an assertion it can verify with the gateway's JWKS.
func TestUpstreamNeverSeesClientToken(t *testing.T) {
	t.Setenv("NOTES_API_KEY", "static-secret")
	b := newEdgeBed(t, withSigner(t))
	// owned are the headers the gateway sets in the mode: a client's copy
	// must not pass (other headers of the client's do).
	for _, mode := range []struct {
		name, identity string
		owned          []string
	}{
		{"assertion", `{}`, []string{"Authorization"}},
		{"assertion-in-header", `{"header": "X-Gateway-Assertion", "static": {"header": "Authorization", "prefix": "Bearer ", "value_env": "NOTES_API_KEY"}}`,
			[]string{"X-Gateway-Assertion", "Authorization"}},
		{"static", `{"mode": "static", "static": {"header": "X-Api-Key", "value_env": "NOTES_API_KEY"}}`, []string{"X-Api-Key"}},
		{"none", `{"mode": "none"}`, nil},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ns := newNotesServer(t)
			url := b.addUpstreamTenant(t, ns, `{"type": "upstream", "url": "URL", "identity": `+mode.identity+`,
				"permissions": {"tools": {"search": ["notes:read"]}, "other_methods": []}}`, "challenge")
			token := b.token("notes", "rita", notesReader...)
			c := connectUpstream(t, url, token, "Cookie", "session="+token, "X-Gateway-Assertion", "forged", "X-Api-Key", "forged",
				"Proxy-Authorization", "Basic "+token, "X-Forwarded-For", "10.9.9.9")
			if res, err := callTool(t, c, "search"); err != nil || res.IsError {
				t.Fatalf("search: %v %+v", err, res)
			}
			seen := ns.requests()
			if len(seen) < 2 { // the handshake and the call
				t.Fatalf("upstream saw %d requests", len(seen))
			}
			for _, r := range seen {
				for name, vals := range r.header {
					for _, v := range vals {
						if strings.Contains(v, token) {
							t.Errorf("upstream got the token in %s: %q", name, v)
						}
					}
				}
				for _, name := range mode.owned {
					if slices.Contains(r.header.Values(name), "forged") {
						t.Errorf("the client's %s passed", name)
					}
				}
				if strings.Contains(r.body, token) {
					t.Errorf("upstream body holds the token")
				}
			}
			h := seen[len(seen)-1].header
			switch mode.name {
			case "assertion":
				checkAssertion(t, b, strings.TrimPrefix(h.Get("Authorization"), "Bearer "), ns.URL, "rita", "notes:read")
			case "assertion-in-header":
				checkAssertion(t, b, h.Get("X-Gateway-Assertion"), ns.URL, "rita", "notes:read")
				if got := h.Get("Authorization"); got != "Bearer static-secret" {
					t.Errorf("Authorization %q, want the static credential", got)
				}
			case "static":
				if h.Get("X-Api-Key") != "static-secret" || h.Get("Authorization") != "" {
					t.Errorf("X-Api-Key %q, Authorization %q", h.Get("X-Api-Key"), h.Get("Authorization"))
				}
			case "none":
				if h.Get("Authorization") != "" {
					t.Errorf("mode none sent Authorization %q", h.Get("Authorization"))
				}
			}
			if h.Get("Cookie") != "" || h.Get("Proxy-Authorization") != "" {
				t.Errorf("Cookie %q, Proxy-Authorization %q passed", h.Get("Cookie"), h.Get("Proxy-Authorization"))
			}
			if xff := h.Get("X-Forwarded-For"); strings.Contains(xff, "10.9.9.9") {
				t.Errorf("the client's X-Forwarded-For passed: %q", xff)
			}
		})
	}
}

// checkAssertion verifies jws with the keys the gateway publishes, as an
// upstream would, and checks its claims.
func checkAssertion(t *testing.T, b *edgeBed, jws, aud, sub, scope string) {
	t.Helper()
	resp, body := get(t, b.URL+upstream.JWKSPath, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d %s", resp.StatusCode, body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(jws, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("assertion %q: %v", jws, err)
	}
	if typ := tok.Headers[0].ExtraHeaders["typ"]; typ != "at+jwt" {
		t.Errorf("typ %v", typ)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", tok.Headers[0].KeyID)
	}
	var c upstream.AssertionClaims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if c.Issuer != b.URL || len(c.Audience) != 1 || c.Audience[0] != aud || c.Subject != sub || c.Scope != scope ||
		c.Tenant != "notes" || c.ClientID != "test-client" || c.ID == "" {
		t.Errorf("claims %+v", c)
	}
	if life := c.Expiry.Time().Sub(c.IssuedAt.Time()); life <= 0 || life > 5*time.Minute {
		t.Errorf("lifetime %s", life)
	}
}

// TestUpstreamStreamsEvents: a tool's progress notification reaches the
// client while the tool still runs: the SSE answer is passed on event by
// event, not buffered.
func TestUpstreamStreamsEvents(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "challenge")
	token := b.token("notes", "rita", notesReader...)
	sid := initSession(t, url, token)
	req := request(t, http.MethodPost, url, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow","_meta":{"progressToken":"p1"}}}`,
		"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "Authorization", bearer(token),
		"Mcp-Protocol-Version", "2025-06-18", "Mcp-Session-Id", sid)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	lines := bufio.NewReader(resp.Body)
	progress := make(chan string, 1)
	go func() {
		for {
			line, err := lines.ReadString('\n')
			if err != nil {
				close(progress)
				return
			}
			if strings.Contains(line, "notifications/progress") {
				progress <- line
				return
			}
		}
	}()
	select {
	case line, ok := <-progress:
		if !ok || !strings.Contains(line, "half way") {
			t.Fatalf("progress %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the progress notification did not arrive while the tool ran")
	}
	close(ns.release)
	rest, _ := io.ReadAll(lines)
	if !strings.Contains(string(rest), `"done"`) {
		t.Errorf("the result after the progress: %s", rest)
	}
}

// TestUpstreamInitializeStartsAfresh: an initialize starts a new session
// whatever Mcp-Session-Id the client sends with it (its own old one,
// another user's, garbage): the header never reaches the upstream, and
// the client gets a new session of its own, not a 404 it would answer by
// initializing again.
func TestUpstreamInitializeStartsAfresh(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "challenge")
	rita, will := b.token("notes", "rita", notesReader...), b.token("notes", "will", notesReader...)
	old := initSession(t, url, rita)
	wills := initSession(t, url, will)
	const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	for _, sent := range []string{old, wills, "garbage"} {
		before := len(ns.requests())
		resp, body := post(t, url, rita, initBody, "Mcp-Session-Id", sent)
		sid := resp.Header.Get("Mcp-Session-Id")
		if resp.StatusCode != http.StatusOK || sid == "" || sid == old || sid == wills {
			t.Errorf("initialize with %.20q…: %d, session %q, %s; want 200 and a new session", sent, resp.StatusCode, sid, body)
		}
		seen := ns.requests()
		if len(seen) != before+1 || seen[before].header.Get("Mcp-Session-Id") != "" {
			t.Errorf("initialize with %.20q…: the upstream saw %d requests, the last with session %q; want one, with none",
				sent, len(seen)-before, seen[len(seen)-1].header.Get("Mcp-Session-Id"))
		}
	}
	// Any other request still needs its own session's id.
	resp, _ := post(t, url, rita, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, "Mcp-Session-Id", wills, "Mcp-Protocol-Version", "2025-06-18")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("tools/list on another user's session: %d, want 404", resp.StatusCode)
	}
}

// TestUpstreamSessionPassesThrough: the upstream's session id reaches the
// client, comes back on the next request, and DELETE ends the session.
func TestUpstreamSessionPassesThrough(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "challenge")
	token := b.token("notes", "rita", notesReader...)
	sid := initSession(t, url, token)
	resp, body := send(t, request(t, http.MethodDelete, url, "", "Authorization", bearer(token), "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-06-18"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	seen := ns.requests()
	last := seen[len(seen)-1]
	upstreamID, mac, _ := strings.Cut(sid, ".")
	if last.method != http.MethodDelete || last.header.Get("Mcp-Session-Id") != upstreamID || mac == "" {
		t.Errorf("upstream's last request %s with session %q; the client's id %q should be it with a MAC", last.method, last.header.Get("Mcp-Session-Id"), sid)
	}
	// The session is bound to rita: another user presenting its id, or
	// rita a forged one, gets 404 (as for an ended session), never
	// forwarded.
	before := len(ns.requests())
	for _, tc := range []struct{ token, id string }{
		{b.token("notes", "mallory", notesReader...), sid},
		{token, upstreamID},
		{token, upstreamID + ".AAAAAAAAAAAAAAAAAAAAAA"},
	} {
		resp, body := post(t, url, tc.token, callBody(5, "search", `{}`), "Mcp-Session-Id", tc.id, "Mcp-Protocol-Version", "2025-06-18")
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "session_not_found") {
			t.Errorf("session %q: %d %s, want 404", tc.id, resp.StatusCode, body)
		}
	}
	if n := len(ns.requests()); n != before {
		t.Errorf("the upstream got %d requests on sessions that were not the caller's", n-before)
	}
	// Without a token, GET and DELETE are refused before the upstream.
	resp, body = send(t, request(t, http.MethodGet, url, "", "Mcp-Session-Id", sid))
	wantChallenge(t, resp, body, http.StatusUnauthorized, `resource_metadata=`)
}

// TestUpstreamFailures: an upstream that refuses the gateway, is gone, or
// is slow is answered 502 / 504 with the gateway's JSON, never with the
// upstream's challenge.
func TestUpstreamFailures(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "challenge")
	token := b.token("notes", "rita", notesReader...)

	ns.mu.Lock()
	ns.status = http.StatusUnauthorized
	ns.mu.Unlock()
	resp, body := post(t, url, token, callBody(1, "search", `{}`))
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("WWW-Authenticate") != "" || !strings.Contains(body, "upstream_refused") {
		t.Errorf("upstream 401: %d %q %s, want 502 without a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}

	// Gone: a port nothing listens on.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	url = b.addUpstreamTenant(t, &notesServer{URL: gone.URL + "/mcp"}, notesServerBlock, "challenge")
	resp, body = post(t, url, token, callBody(1, "search", `{}`))
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "upstream_unavailable") {
		t.Errorf("upstream gone: %d %s", resp.StatusCode, body)
	}

	// A redirect (server.url naming the wrong place): 502, the Location
	// never shown to the client, the log naming it for the operator. It
	// points at the closed server, so a client that followed it would
	// still only knock on loopback.
	inside := gone.URL + "/internal/mcp/"
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inside, http.StatusTemporaryRedirect)
	}))
	defer moved.Close()
	url = b.addUpstreamTenant(t, &notesServer{URL: moved.URL + "/mcp"}, notesServerBlock, "challenge")
	resp, body = post(t, url, token, callBody(1, "search", `{}`))
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Location") != "" || !strings.Contains(body, "bad_upstream_answer") ||
		strings.Contains(body, "internal") {
		t.Errorf("upstream redirect: %d, Location %q, %s; want 502 without the redirect", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if logs := b.logs(t); !strings.Contains(logs, `redirected (HTTP 307) to \"`+inside+`\"`) {
		t.Errorf("no log line names the redirect:\n%s", logs)
	}

	// Slow: no header within first_byte.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	url = b.addUpstreamTenant(t, &notesServer{URL: slow.URL + "/mcp"},
		`{"type": "upstream", "url": "URL", "timeouts": {"first_byte": "200ms"}, "permissions": {"tools": {"search": []}}}`, "challenge")
	resp, body = post(t, url, token, callBody(1, "search", `{}`))
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "upstream_timeout") {
		t.Errorf("slow upstream: %d %s", resp.StatusCode, body)
	}
	// /status shows the last tenant's upstream and its failure.
	var draining atomic.Bool
	var status struct {
		Tenants []struct {
			ID       string
			Server   string
			Upstream *struct {
				URL       string
				Identity  string
				Requests  int64
				Failures  int64
				LastError string `json:"last_error"`
			}
		}
	}
	_, body = get(t, serveAdmin(t, b.gw, nil, &draining, nil)+"/status", "")
	if err := json.Unmarshal([]byte(body), &status); err != nil {
		t.Fatal(err)
	}
	for _, ts := range status.Tenants {
		switch {
		case ts.ID == "notes" && (ts.Server != "upstream" || ts.Upstream == nil || ts.Upstream.URL != slow.URL+"/mcp" ||
			ts.Upstream.Identity != "assertion" || ts.Upstream.Failures != 1 || ts.Upstream.LastError == ""):
			t.Errorf("/status of notes: %s", body)
		case ts.ID == "acme" && (ts.Server != "todo" || ts.Upstream != nil):
			t.Errorf("/status of acme: %s", body)
		}
	}
	for tenant, server := range map[string]string{"notes": "upstream", "acme": "todo"} {
		if n := metricValue(t, b.reg, "todo_gateway_tenant_server_info", map[string]string{"tenant": tenant, "server": server}); n != 1 {
			t.Errorf("todo_gateway_tenant_server_info of %s: %v, want 1 with server %s", tenant, n, server)
		}
	}
	for _, outcome := range []string{"credentials_refused", "unreachable", "bad_answer", "timeout"} {
		if n := metricValue(t, b.reg, "todo_gateway_upstream_requests_total", map[string]string{"tenant": "notes", "outcome": outcome}); n != 1 {
			t.Errorf("upstream requests with outcome %s: %v, want 1", outcome, n)
		}
	}
}

// TestUpstreamClientGoneCancelsUpstream: a client that leaves mid-stream
// ends the upstream's request.
func TestUpstreamClientGoneCancelsUpstream(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ended := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(ended)
	}))
	defer up.Close()
	url := b.addUpstreamTenant(t, &notesServer{URL: up.URL + "/mcp"}, notesServerBlock, "challenge")
	ctx, cancel := context.WithCancel(t.Context())
	req := request(t, http.MethodGet, url, "", "Authorization", bearer(b.token("notes", "rita")), "Accept", "text/event-stream")
	resp, err := httpClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if !strings.Contains(line, "notifications/message") {
		t.Fatalf("first line %q", line)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream's request went on after the client left")
	}
	// The stream the client closed is counted and has its access line
	// (the proxy's abort would have skipped both).
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, b.reg, "todo_gateway_upstream_requests_total", map[string]string{"tenant": "notes", "outcome": "canceled"}) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the closed stream was not counted as canceled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(b.logs(t), `"msg":"access","method":"GET"`) {
		t.Error("no access line for the closed stream")
	}
}

// initSession initializes an upstream session through the gateway by hand
// and returns its id, which the upstream chose.
func initSession(t *testing.T, url, token string) string {
	t.Helper()
	resp, body := post(t, url, token, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q, %s", resp.StatusCode, sid, body)
	}
	resp, body = post(t, url, token, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-06-18")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("initialized: %d %s", resp.StatusCode, body)
	}
	return sid
}

// TestUpstreamReloadLetsStreamsFinish: a reload that changes an upstream
// tenant keeps its open stream until the retire grace ends, then closes
// it; new requests meet the new configuration at once, and the other
// tenants are not touched.
func TestUpstreamReloadLetsStreamsFinish(t *testing.T) {
	const grace = 500 * time.Millisecond
	signer := withSigner(t)
	b := newEdgeBed(t, func(o *mcp.Options) { signer(o); o.RetireGrace = grace })
	ended := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "only the stream here", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(ended)
	}))
	defer up.Close()
	ns := &notesServer{URL: up.URL + "/mcp"}
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "challenge")
	req := request(t, http.MethodGet, url, "", "Authorization", bearer(b.token("notes", "rita")), "Accept", "text/event-stream")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	streamEnded := make(chan time.Time, 1)
	go func() {
		io.Copy(io.Discard, resp.Body)
		streamEnded <- time.Now()
	}()
	reloaded := time.Now()
	b.addUpstreamTenant(t, ns, `{"type": "upstream", "url": "URL", "permissions": {"tools": {"search": ["notes:admin"]}}}`, "challenge")
	// The new rule answers at once; another tenant serves as before.
	resp2, body := post(t, url, b.token("notes", "rita", notesReader...), callBody(1, "search", `{}`))
	wantChallenge(t, resp2, body, http.StatusForbidden, `scope="notes:admin"`)
	if resp2, body := post(t, b.resources["acme"], b.token("acme", "ann", adminPerms...), callBody(2, "get-todos", `{}`)); resp2.StatusCode != http.StatusOK {
		t.Errorf("acme after the reload: %d %s", resp2.StatusCode, body)
	}
	select {
	case at := <-streamEnded:
		if d := at.Sub(reloaded); d < grace*8/10 {
			t.Errorf("the stream ended %s after the reload, before the %s grace", d, grace)
		}
	case <-time.After(grace + 5*time.Second):
		t.Fatal("the old stream outlived the grace period")
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream's request was not ended")
	}
}

func callBody(id int, tool, args string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, args)
}

// TestUpstreamTokenExchange: in mode exchange the upstream gets the token
// the tenant's issuer issued for it (RFC 8693), cached per client token;
// the client's token goes to the issuer alone; a refusal is a 502, an
// issuer that cannot answer a 503, and neither sends anything upstream.
func TestUpstreamTokenExchange(t *testing.T) {
	t.Setenv("EXCHANGE_SECRET", "s3cret")
	var mu sync.Mutex
	var exchanges []url.Values
	refuse, down := false, false
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		r.ParseForm()
		mu.Lock()
		exchanges = append(exchanges, r.PostForm)
		n, refusing, isDown := len(exchanges), refuse, down
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case isDown:
			w.WriteHeader(http.StatusBadGateway)
		case !ok || user != "gateway" || pass != "s3cret":
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
		case refusing:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_target","error_description":"no such audience"}`)
		default:
			fmt.Fprintf(w, `{"access_token":"exchanged-%d","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300}`, n)
		}
	}))
	defer as.Close()

	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	u := b.addUpstreamTenant(t, ns, fmt.Sprintf(`{"type": "upstream", "url": "URL",
		"identity": {"mode": "exchange", "exchange": {"token_endpoint": "%s/token", "client_id": "gateway", "client_secret_env": "EXCHANGE_SECRET", "scope": "notes"}},
		"permissions": {"tools": {"search": []}}}`, as.URL), "challenge")
	token := b.token("notes", "rita", notesReader...)
	c := connectUpstream(t, u, token)
	for range 2 {
		if res, err := callTool(t, c, "search"); err != nil || res.IsError {
			t.Fatalf("search: %v %+v", err, res)
		}
	}
	mu.Lock()
	if len(exchanges) != 1 {
		t.Errorf("%d exchanges for one client token, want 1 (cached)", len(exchanges))
	}
	f := exchanges[0]
	mu.Unlock()
	for k, want := range map[string]string{"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": token,
		"subject_token_type": "urn:ietf:params:oauth:token-type:access_token", "audience": ns.URL, "resource": ns.URL, "scope": "notes"} {
		if got := f.Get(k); got != want {
			t.Errorf("exchange %s = %q, want %q", k, got, want)
		}
	}
	for _, r := range ns.requests() {
		if got := r.header.Get("Authorization"); got != "Bearer exchanged-1" {
			t.Errorf("upstream got Authorization %q, want the exchanged token", got)
		}
		if strings.Contains(fmt.Sprint(r.header), token) || strings.Contains(r.body, token) {
			t.Error("the client's token reached the upstream")
		}
	}

	seen := len(ns.requests())
	mu.Lock()
	refuse = true
	mu.Unlock()
	resp, body := post(t, u, b.token("notes", "sam"), callBody(1, "search", `{}`))
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "exchange_refused") {
		t.Errorf("refused exchange: %d %s, want 502", resp.StatusCode, body)
	}
	mu.Lock()
	refuse, down = false, true
	mu.Unlock()
	resp, body = post(t, u, b.token("notes", "sue"), callBody(1, "search", `{}`))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "exchange_unavailable") {
		t.Errorf("issuer down: %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	if n := len(ns.requests()); n != seen {
		t.Errorf("the upstream got %d requests after failed exchanges", n-seen)
	}
	if !strings.Contains(b.logs(t), `invalid_target`) {
		t.Error("the log does not say why the exchange was refused")
	}
}
