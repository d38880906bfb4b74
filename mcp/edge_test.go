package mcp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/providers"
)

func TestProtectedResourceMetadata(t *testing.T) {
	b := newEdgeBed(t, nil)
	resp, body := get(t, b.URL+"/.well-known/oauth-protected-resource/acme", "")
	want := `{"resource":"` + b.resources["acme"] + `","authorization_servers":["` + acmeIssuer +
		`"],"scopes_supported":["create:todos","read:todos","delete:todos"],"bearer_methods_supported":["header"],"resource_name":"acme"}`
	if resp.StatusCode != http.StatusOK || body != want {
		t.Errorf("metadata: %d\n got %s\nwant %s", resp.StatusCode, body, want)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q, want *", got)
	}
	if got := resp.Header.Get("Cache-Control"); !strings.Contains(got, "max-age=") {
		t.Errorf("Cache-Control %q, want a max-age", got)
	}

	if _, body := get(t, b.URL+"/.well-known/oauth-protected-resource/initech", ""); !strings.Contains(body, `"scopes_supported":["todo-api:create","todo-api:read","todo-api:delete"]`) {
		t.Errorf("scope-strategy tenant metadata: %s", body)
	}
	if resp, body := get(t, b.URL+"/.well-known/oauth-protected-resource/nobody", ""); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error":"not_found"`) {
		t.Errorf("unknown tenant metadata: %d %s", resp.StatusCode, body)
	}
	// The metadata is read, never written.
	resp, body = post(t, b.URL+"/.well-known/oauth-protected-resource/acme", "", "{}")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" || !strings.Contains(body, `"error":"method_not_allowed"`) {
		t.Errorf("POST to the metadata: %d Allow %q %s, want 405 allowing GET, HEAD, OPTIONS", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	resp, body = send(t, request(t, http.MethodHead, b.URL+"/.well-known/oauth-protected-resource/acme", ""))
	if resp.StatusCode != http.StatusOK || body != "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD of the metadata: %d %q %q, want 200 JSON without a body", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func TestChallenges(t *testing.T) {
	b := newEdgeBed(t, nil)
	acme := b.resources["acme"]
	metadata := `resource_metadata="` + b.URL + `/.well-known/oauth-protected-resource/acme"`
	allScopes := `scope="` + allTodoScopes + `"`

	t.Run("no credentials", func(t *testing.T) {
		resp, body := post(t, acme, "", toolsList)
		h := wantChallenge(t, resp, body, http.StatusUnauthorized, metadata, allScopes)
		if strings.Contains(h, "error=") {
			t.Errorf("a request without credentials got an error code: %s", h)
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
		}
	})
	t.Run("garbage token", func(t *testing.T) {
		resp, body := post(t, acme, "not-a-jwt", toolsList)
		wantChallenge(t, resp, body, http.StatusUnauthorized, `error="invalid_token"`, `error_description="`, metadata, allScopes)
	})
	t.Run("expired token", func(t *testing.T) {
		tok := b.failing(providers.ClassInvalidToken, "token has expired: exp 2026-12-03T07:00:00Z (1h0m0s ago), beyond the 1m0s leeway")
		resp, body := post(t, acme, tok, toolsList)
		h := wantChallenge(t, resp, body, http.StatusUnauthorized, `error="invalid_token"`, metadata)
		if !strings.Contains(strings.ToLower(h), "expired") || !strings.Contains(body, "token has expired") {
			t.Errorf("expired token description does not say so: %s %s", h, body)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		resp, body := post(t, acme, b.token("umbrella", "u", adminPerms...), toolsList)
		wantChallenge(t, resp, body, http.StatusUnauthorized, `error="invalid_token"`)
	})
	t.Run("token in query", func(t *testing.T) {
		resp, body := post(t, acme+"?access_token=abc", "", toolsList)
		wantChallenge(t, resp, body, http.StatusBadRequest, `error="invalid_request"`, metadata)
	})
	t.Run("not bearer", func(t *testing.T) {
		resp, body := post(t, acme, "", toolsList, "Authorization", "Basic dXNlcjpwYXNz")
		wantChallenge(t, resp, body, http.StatusBadRequest, `error="invalid_request"`)
	})
	t.Run("bearer without token", func(t *testing.T) {
		resp, body := post(t, acme, "", toolsList, "Authorization", "Bearer ")
		wantChallenge(t, resp, body, http.StatusBadRequest, `error="invalid_request"`)
	})
	t.Run("create without create scope is a step-up 403 for the request's protocol version", func(t *testing.T) {
		reader := b.token("acme", "reader", readerPerms...)
		for _, tc := range []struct{ version, scope string }{
			// Before 2026-07-28 clients replace their scopes with the
			// challenge's: it names what the token has too. No header is
			// 2025-03-26.
			{"", "create:todos read:todos"},
			{"2025-03-26", "create:todos read:todos"},
			{"2025-06-18", "create:todos read:todos"},
			{"2025-11-25", "create:todos read:todos"},
			{"not-a-version", "create:todos read:todos"},
			// From 2026-07-28 clients accumulate: only what the tool needs.
			{"2026-07-28", "create:todos"},
		} {
			resp, body := post(t, acme, reader, toolCall(todo.ToolCreateTodo), "Mcp-Protocol-Version", tc.version)
			h := wantChallenge(t, resp, body, http.StatusForbidden,
				`error="insufficient_scope"`, `error_description="the create-todo tool requires the create:todos scope"`, metadata)
			if !strings.HasSuffix(h, `scope="`+tc.scope+`"`) {
				t.Errorf("protocol %q: %s, want scope=%q", tc.version, h, tc.scope)
			}
		}
		// A token with no scope of the tenant is asked for the missing one.
		resp, body := post(t, acme, b.token("acme", "nobody"), toolCall(todo.ToolCreateTodo), "Mcp-Protocol-Version", "2025-06-18")
		if h := wantChallenge(t, resp, body, http.StatusForbidden); !strings.HasSuffix(h, `scope="create:todos"`) {
			t.Errorf("no scopes: %s, want scope=\"create:todos\"", h)
		}
	})
	t.Run("step-up names the tenant's own scope strings", func(t *testing.T) {
		resp, body := post(t, b.resources["initech"], b.token("initech", "reader", readerPerms...), toolCall(todo.ToolCreateTodo))
		wantChallenge(t, resp, body, http.StatusForbidden, `error="insufficient_scope"`, `scope="todo-api:create todo-api:read"`)
	})
	t.Run("tools without a required permission need no step-up", func(t *testing.T) {
		tok := b.token("acme", "nobody-special")
		for _, tool := range []string{todo.ToolGetTodos, todo.ToolDeleteTodo} {
			if resp, body := post(t, acme, tok, toolCall(tool)); resp.StatusCode != http.StatusOK {
				t.Errorf("%s without any permission: %d %s, want 200 (the tool narrows by ownership)", tool, resp.StatusCode, body)
			}
		}
	})
	t.Run("2026-07-28 headers must agree with the body", func(t *testing.T) {
		tok := b.token("acme", "u", adminPerms...)
		for _, headers := range [][]string{
			{"Mcp-Method", "tools/call", "Mcp-Name", "get-todos"},
			{"Mcp-Method", "tools/call", "Mcp-Name", "=?base64?Z2V0LXRvZG9z?="}, // get-todos, Base64-wrapped
			{"Mcp-Method", "tools/call", "Mcp-Name", "=?base64?***?="},
			{"Mcp-Method", "tools/list"},
		} {
			resp, body := post(t, acme, tok, toolCall(todo.ToolCreateTodo), headers...)
			var rpc struct {
				ID    any `json:"id"`
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &rpc); err != nil || resp.StatusCode != http.StatusBadRequest ||
				rpc.ID != float64(2) || rpc.Error.Code != -32020 || !strings.Contains(rpc.Error.Message, headers[len(headers)-2]) {
				t.Errorf("mismatched %s: %d %s, want 400 with JSON-RPC error -32020 (HeaderMismatch) for id 2", headers[len(headers)-2], resp.StatusCode, body)
			}
			if h := resp.Header.Get("WWW-Authenticate"); h != "" {
				t.Errorf("a request error that is not about the token carries a challenge: %s", h)
			}
		}
		for _, name := range []string{"get-todos", "=?base64?Z2V0LXRvZG9z?="} {
			if resp, body := post(t, acme, tok, toolCall(todo.ToolGetTodos), "Mcp-Method", "tools/call", "Mcp-Name", name); resp.StatusCode != http.StatusOK {
				t.Errorf("agreeing headers (Mcp-Name %s): %d %s, want 200", name, resp.StatusCode, body)
			}
		}
	})
	t.Run("descriptions are header-safe", func(t *testing.T) {
		tok := b.failing(providers.ClassInvalidToken, "the \"sub\" claim is \"\\\"\\\\\"\nand é")
		resp, body := post(t, acme, tok, toolsList)
		h := wantChallenge(t, resp, body, http.StatusUnauthorized, `error="invalid_token"`)
		desc := h[strings.Index(h, `error_description="`)+len(`error_description="`):]
		desc, rest, _ := strings.Cut(desc, `"`)
		if strings.ContainsAny(desc, "\\\n") || !strings.HasPrefix(rest, ", resource_metadata=") {
			t.Errorf("description %q breaks the header %s", desc, h)
		}
	})
	t.Run("an unreachable issuer is 503 with Retry-After", func(t *testing.T) {
		resp, body := post(t, acme, b.failing(providers.ClassUnavailable, "the issuer could not be reached"), toolsList)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" ||
			!strings.Contains(body, `"error":"temporarily_unavailable"`) || !strings.Contains(body, "the issuer could not be reached") {
			t.Fatalf("issuer down: %d Retry-After %q %s, want 503 with Retry-After 30", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if h := resp.Header.Get("WWW-Authenticate"); h != "" {
			t.Errorf("a 503 asks the client for other credentials: %s", h)
		}
	})
	t.Run("a spent introspection budget is 503 with the provider's shorter Retry-After", func(t *testing.T) {
		tok := b.register(grant{err: &providers.Error{Class: providers.ClassUnavailable, Reason: "too many new tokens to introspect", RetryAfter: 1500 * time.Millisecond}})
		resp, body := post(t, acme, tok, toolsList)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" || resp.Header.Get("WWW-Authenticate") != "" ||
			!strings.Contains(body, "too many new tokens to introspect") {
			t.Errorf("over budget: %d Retry-After %q %s, want 503 with Retry-After 2 (rounded up) and no challenge", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})
	t.Run("an operator's mistake is a 503 with Retry-After that tells the client nothing", func(t *testing.T) {
		resp, body := post(t, acme, b.failing(providers.ClassInternal, "secret internal detail"), toolsList)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(body, "this resource is misconfigured on the gateway") || strings.Contains(body, "secret") {
			t.Errorf("internal failure: %d Retry-After %q %s, want a generic 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if h := resp.Header.Get("WWW-Authenticate"); h != "" {
			t.Errorf("a 503 carries a challenge: %s", h)
		}
		if logs := b.logs(t); !strings.Contains(logs, "token verification failed") || !strings.Contains(logs, "secret internal detail") ||
			!strings.Contains(logs, "todo-gateway providers --config FILE --tenant acme") {
			t.Errorf("the operator is not told the cause and the fix:\n%s", logs)
		}
	})
}

// A tenant whose verifier could not be built keeps its route and metadata
// but answers every token 503; the other tenants serve.
func TestBrokenTenantAnswers503(t *testing.T) {
	b := newEdgeBed(t, brokenTenant("globex", "environment variable GLOBEX_SECRET is not set"))
	resp, body := post(t, b.resources["globex"], b.token("globex", "u", adminPerms...), toolsList)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || strings.Contains(body, "GLOBEX_SECRET") {
		t.Errorf("broken tenant: %d Retry-After %q %s, want 503 with Retry-After and no internals", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, body := get(t, b.URL+"/.well-known/oauth-protected-resource/globex", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("broken tenant's metadata: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, b.resources["acme"], b.token("acme", "u", adminPerms...), toolsList); resp.StatusCode != http.StatusOK {
		t.Errorf("another tenant: %d %s", resp.StatusCode, body)
	}
}

func TestHTTPHygiene(t *testing.T) {
	b := newEdgeBed(t, nil)
	acme := b.resources["acme"]
	tok := b.token("acme", "u", adminPerms...)

	t.Run("GET is 405", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodPatch} {
			resp, body := send(t, request(t, method, acme, ""))
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST, DELETE, OPTIONS" || !strings.Contains(body, `"error":"method_not_allowed"`) {
				t.Errorf("%s: %d Allow %q %s, want 405", method, resp.StatusCode, resp.Header.Get("Allow"), body)
			}
		}
	})
	t.Run("unknown route is JSON 404", func(t *testing.T) {
		resp, body := post(t, b.URL+"/nope", tok, toolsList)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, `"error":"not_found"`) {
			t.Errorf("unknown route: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("a Host that is no tenant's is 404", func(t *testing.T) {
		// A DNS-rebinding page reaches the port under its own name.
		evil := "evil.example:" + strings.TrimPrefix(b.URL, "http://127.0.0.1:")
		if resp, body := post(t, acme, tok, toolsList, "Host", evil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("foreign Host: %d %s, want 404", resp.StatusCode, body)
		}
	})
	t.Run("oversized body is 413", func(t *testing.T) {
		big := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"` + strings.Repeat("x", 2<<20) + `"}}`
		resp, body := post(t, acme, tok, big)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("WWW-Authenticate") != "" || !strings.Contains(body, "larger than 1048576 bytes") {
			t.Errorf("oversized with Content-Length: %d %q %s, want 413 without a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
		// Chunked: no Content-Length, the limit still holds.
		req := request(t, http.MethodPost, acme, big, "Content-Type", "application/json", "Authorization", bearer(tok))
		req.ContentLength = -1
		if resp, _ := send(t, req); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized chunked: %d, want 413", resp.StatusCode)
		}
	})
	t.Run("audit and access logs never hold the token", func(t *testing.T) {
		if resp, body := post(t, acme, tok, toolsList); resp.StatusCode != http.StatusOK {
			t.Fatalf("tools/list: %d %s", resp.StatusCode, body)
		}
		logs := b.logs(t)
		if strings.Contains(logs, tok) || strings.Contains(logs, tok[:40]) {
			t.Fatal("a token reached the log")
		}
		if !strings.Contains(logs, `"msg":"audit"`) || !strings.Contains(logs, `"decision":"allow"`) || !strings.Contains(logs, `"subject":"u"`) {
			t.Errorf("no audit line for the allowed request:\n%s", logs)
		}
	})
}

// Options.BodyLimit is the limit: a body one byte over it is refused, one at
// it is served.
func TestBodyLimitOption(t *testing.T) {
	const limit = 2048
	b := newEdgeBed(t, func(o *mcp.Options) { o.BodyLimit = limit })
	tok := b.token("acme", "u", adminPerms...)
	pad := func(n int) string {
		const head, tail = `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"`, `"}}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	if resp, body := post(t, b.resources["acme"], tok, pad(limit)); resp.StatusCode != http.StatusOK {
		t.Errorf("a body of exactly the limit: %d %s, want 200", resp.StatusCode, body)
	}
	if resp, body := post(t, b.resources["acme"], tok, pad(limit+1)); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "larger than 2048 bytes") {
		t.Errorf("a body one byte over the limit: %d %s, want 413 naming the limit", resp.StatusCode, body)
	}
}

// A browser page may call a tenant only from the tenant's own origin or an
// allowed one: the DNS-rebinding defence the MCP transport requires.
func TestOrigins(t *testing.T) {
	b := newEdgeBed(t, func(o *mcp.Options) { o.AllowedOrigins = []string{"http://localhost:6274"} })
	acme := b.resources["acme"]
	tok := b.token("acme", "u", adminPerms...)

	t.Run("foreign Origin is 403", func(t *testing.T) {
		resp, body := post(t, acme, tok, toolsList, "Origin", "http://evil.example")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"error":"forbidden_origin"`) || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("foreign origin: %d %s %v, want 403 without CORS headers", resp.StatusCode, body, resp.Header)
		}
		// Refused like every other refusal: an audit line and a counted decision.
		if !strings.Contains(b.logs(t), `"decision":"deny","reason":"forbidden_origin: requests from this Origin are not allowed","status":403`) {
			t.Error("no audit line for the foreign Origin")
		}
		if n := metricValue(t, b.reg, "todo_gateway_authorization_decisions_total", map[string]string{"tenant": "acme", "decision": "deny", "reason": "forbidden_origin"}); n != 1 {
			t.Errorf("forbidden_origin decisions %v, want 1", n)
		}

	})
	t.Run("own Origin gets CORS", func(t *testing.T) {
		resp, _ := post(t, acme, "", toolsList, "Origin", b.URL)
		if resp.Header.Get("Access-Control-Allow-Origin") != b.URL || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") ||
			!strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("CORS headers: %v", resp.Header)
		}
	})
	t.Run("allowed origins may call, others may not", func(t *testing.T) {
		for origin, want := range map[string]int{"http://localhost:6274": http.StatusUnauthorized, "http://localhost:9999": http.StatusForbidden} {
			if resp, _ := post(t, acme, "", toolsList, "Origin", origin); resp.StatusCode != want {
				t.Errorf("Origin %s: %d, want %d", origin, resp.StatusCode, want)
			}
		}
	})
	t.Run("preflight", func(t *testing.T) {
		resp, _ := send(t, request(t, http.MethodOptions, acme, "", "Origin", "http://localhost:6274", "Access-Control-Request-Method", "POST"))
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "http://localhost:6274" ||
			h.Get("Access-Control-Allow-Methods") != "POST, DELETE, OPTIONS" || h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight: %d %v", resp.StatusCode, h)
		}
		for _, name := range []string{"Authorization", "Content-Type", "Mcp-Protocol-Version", "Mcp-Method", "Mcp-Name"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), name) {
				t.Errorf("preflight does not allow the %s header: %q", name, h.Get("Access-Control-Allow-Headers"))
			}
		}
		if resp, _ := send(t, request(t, http.MethodOptions, acme, "", "Origin", "http://evil.example")); resp.StatusCode != http.StatusForbidden {
			t.Errorf("preflight from a foreign origin: %d, want 403", resp.StatusCode)
		}
	})
	t.Run("the metadata is public to every origin", func(t *testing.T) {
		resp, _ := send(t, request(t, http.MethodOptions, b.URL+"/.well-known/oauth-protected-resource/acme", "", "Origin", "http://evil.example"))
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
			t.Errorf("metadata preflight: %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run(`"*" allows any origin`, func(t *testing.T) {
		open := newEdgeBed(t, func(o *mcp.Options) { o.AllowedOrigins = []string{"*"} })
		resp, _ := post(t, open.resources["acme"], "", toolsList, "Origin", "http://evil.example")
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != "http://evil.example" {
			t.Errorf(`with "*": %d %v, want 401 with CORS for the origin`, resp.StatusCode, resp.Header)
		}
	})
}

// A tool name spelled twice, or in another case, is read before dispatch as
// mcp-go reads it, so the step-up challenge names the tool that would run.
func TestAmbiguousToolNameGetsTheRunningToolsChallenge(t *testing.T) {
	b := newEdgeBed(t, nil)
	tok := b.token("acme", "reader", readerPerms...)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","NAME":"create-todo","arguments":{"content":"x"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","name":"create-todo","arguments":{"content":"x"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"}}}`,
	} {
		resp, got := post(t, b.resources["acme"], tok, body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="create:todos read:todos"`) {
			t.Errorf("%s: got %d %q %s, want 403 insufficient_scope naming create:todos", body, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), got)
		}
	}
}

// Tenants are isolated: a token for A is refused at B, and A's todos never
// show at B even for the same subject.
func TestTenantIsolation(t *testing.T) {
	b := newEdgeBed(t, nil)
	acmeToken := b.token("acme", "same-sub", adminPerms...)
	acme := connect(t, b.resources["acme"], acmeToken, "")
	createTodo(t, acme, "acme secret")

	resp, body := post(t, b.resources["umbrella"], acmeToken, toolsList)
	wantChallenge(t, resp, body, http.StatusUnauthorized, `error="invalid_token"`,
		`resource_metadata="`+b.URL+`/.well-known/oauth-protected-resource/umbrella"`)

	// hooli is on acme's issuer, but it is another resource.
	resp, body = post(t, b.URL+"/", acmeToken, toolsList, "Host", strings.TrimPrefix(b.resources["hooli"], "http://"))
	wantChallenge(t, resp, body, http.StatusUnauthorized, `error="invalid_token"`,
		`resource_metadata="`+b.resources["hooli"]+`/.well-known/oauth-protected-resource"`)

	umbrella := connect(t, b.resources["umbrella"], b.token("umbrella", "same-sub", adminPerms...), "")
	if got := listTodos(t, umbrella); len(got) != 0 {
		t.Errorf("umbrella sees %v, want nothing of acme's", ids(got))
	}
}

// A host-based tenant (resource at the root of its host) is found through
// the Host header, case and default port folded, and serves MCP there.
func TestHostTenant(t *testing.T) {
	b := newEdgeBed(t, nil)
	host := strings.TrimPrefix(b.resources["hooli"], "http://")
	for _, h := range []string{host, strings.Replace(host, "hooli", "HOOLI", 1)} {
		resp, body := get(t, b.URL+"/.well-known/oauth-protected-resource", h)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"resource":"`+b.resources["hooli"]+`"`) {
			t.Errorf("Host %s: %d %s", h, resp.StatusCode, body)
		}
	}
	if resp, body := post(t, b.URL+"/", b.token("hooli", "u", userPerms...), toolCall(todo.ToolCreateTodo), "Host", host); resp.StatusCode != http.StatusOK || !strings.Contains(body, `\"ownerId\":\"u\"`) {
		t.Errorf("create-todo at the host tenant: %d %s", resp.StatusCode, body)
	}
	// Without the Host, the root of the listener is no tenant.
	if resp, _ := get(t, b.URL+"/.well-known/oauth-protected-resource", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("metadata at the root of 127.0.0.1: %d, want 404", resp.StatusCode)
	}
}

// Before 2026-07-28 a client replaces its scopes with a 403's: the
// challenge names every scope the token carries, the tenant's or not
// (offline_access keeps the client's refresh token), plus the missing one;
// a scope that could not stand in the header is left out. From 2026-07-28,
// only the missing one.
func TestStepUpKeepsEveryScopeOfTheToken(t *testing.T) {
	b := newEdgeBed(t, nil)
	tok := b.register(grant{tenant: "acme", subject: "reader", perms: readerPerms, extraScopes: []string{"openid", "offline_access", `bad"scope`, "calendar:read"}})
	create := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"}}}`
	for _, tc := range []struct{ version, want string }{
		{"", `scope="create:todos read:todos openid offline_access calendar:read"`},
		{"2025-11-25", `scope="create:todos read:todos openid offline_access calendar:read"`},
		{"2026-07-28", `scope="create:todos"`},
	} {
		var header []string
		if tc.version != "" {
			header = []string{"Mcp-Protocol-Version", tc.version}
		}
		resp, body := post(t, b.resources["acme"], tok, create, header...)
		if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusForbidden || !strings.Contains(got, tc.want) {
			t.Errorf("version %q: %d %q %s; want 403 with %s", tc.version, resp.StatusCode, got, body, tc.want)
		}
	}
}
