package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// post sends a JSON-RPC body with an optional bearer token and headers.
func post(t *testing.T, url, token, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

// wantChallenge checks status, that WWW-Authenticate contains each of want,
// and that the JSON body names an error; it returns the header.
func wantChallenge(t *testing.T, resp *http.Response, status int, want ...string) string {
	t.Helper()
	body := readAll(t, resp)
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

func TestProtectedResourceMetadata(t *testing.T) {
	tb := newTestbed(t)
	resp := do(t, mustRequest(t, http.MethodGet, tb.base+"/.well-known/oauth-protected-resource/acme", nil))
	body := readAll(t, resp)
	want := `{"resource":"` + tb.tenants["acme"] + `","authorization_servers":["` + tb.logto.Issuer() +
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

	resp = do(t, mustRequest(t, http.MethodGet, tb.base+"/.well-known/oauth-protected-resource/initech", nil))
	if body := readAll(t, resp); !strings.Contains(body, `"scopes_supported":["todo-api:create","todo-api:read","todo-api:delete"]`) {
		t.Errorf("scope-strategy tenant metadata: %s", body)
	}
	resp = do(t, mustRequest(t, http.MethodGet, tb.base+"/.well-known/oauth-protected-resource/nobody", nil))
	if body := readAll(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error":"not_found"`) {
		t.Errorf("unknown tenant metadata: %d %s", resp.StatusCode, body)
	}
}

func TestChallenges(t *testing.T) {
	tb := newTestbed(t)
	acme := tb.tenants["acme"]
	metadata := `resource_metadata="` + tb.base + `/.well-known/oauth-protected-resource/acme"`

	t.Run("no credentials", func(t *testing.T) {
		h := wantChallenge(t, post(t, acme, "", toolsList, nil), http.StatusUnauthorized, metadata, `scope="create:todos read:todos delete:todos"`)
		if strings.Contains(h, "error=") {
			t.Errorf("a request without credentials got an error code: %s", h)
		}
	})
	t.Run("garbage token", func(t *testing.T) {
		wantChallenge(t, post(t, acme, "not-a-jwt", toolsList, nil), http.StatusUnauthorized, `error="invalid_token"`, `error_description="`, metadata)
	})
	t.Run("expired token", func(t *testing.T) {
		c := tb.logto.Claims("u", acme, allTodoScopes)
		c["exp"] = time.Now().Add(-time.Hour).Unix()
		h := wantChallenge(t, post(t, acme, tb.logto.Mint(c, providertest.Alg(jose.ES384)), toolsList, nil), http.StatusUnauthorized, `error="invalid_token"`)
		if !strings.Contains(strings.ToLower(h), "expired") {
			t.Errorf("expired token description does not say so: %s", h)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		tok := tb.logto.Mint(tb.logto.Claims("u", tb.tenants["umbrella"], allTodoScopes), providertest.Alg(jose.ES384))
		wantChallenge(t, post(t, acme, tok, toolsList, nil), http.StatusUnauthorized, `error="invalid_token"`)
	})
	t.Run("token in query", func(t *testing.T) {
		wantChallenge(t, post(t, acme+"?access_token=abc", "", toolsList, nil), http.StatusBadRequest, `error="invalid_request"`)
	})
	t.Run("not bearer", func(t *testing.T) {
		wantChallenge(t, post(t, acme, "", toolsList, map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}), http.StatusBadRequest, `error="invalid_request"`)
	})
	t.Run("bearer without token", func(t *testing.T) {
		wantChallenge(t, post(t, acme, "", toolsList, map[string]string{"Authorization": "Bearer "}), http.StatusBadRequest, `error="invalid_request"`)
	})
	t.Run("create without create scope is a step-up 403", func(t *testing.T) {
		tok := tb.token(t, "acme", "reader", "read:todos")
		h := wantChallenge(t, post(t, acme, tok, toolCall("create-todo"), nil), http.StatusForbidden,
			`error="insufficient_scope"`, `scope="create:todos"`, metadata)
		if strings.Contains(h, "read:todos") {
			t.Errorf("403 names scopes the call does not need: %s", h)
		}
	})
	t.Run("step-up names the tenant's own scope string", func(t *testing.T) {
		tok := tb.token(t, "initech", "reader", "read:todos")
		wantChallenge(t, post(t, tb.tenants["initech"], tok, toolCall("create-todo"), nil), http.StatusForbidden,
			`error="insufficient_scope"`, `scope="todo-api:create"`)
	})
	t.Run("2026-07-28 headers must agree with the body", func(t *testing.T) {
		tok := tb.token(t, "acme", "u", allTodoScopes)
		resp := post(t, acme, tok, toolCall("create-todo"), map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "get-todos"})
		if body := readAll(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Mcp-Name") {
			t.Errorf("mismatched Mcp-Name: %d %s", resp.StatusCode, body)
		}
		if h := resp.Header.Get("WWW-Authenticate"); h != "" {
			t.Errorf("a request error that is not about the token carries a challenge: %s", h)
		}
	})
	t.Run("descriptions are header-safe", func(t *testing.T) {
		h := wantChallenge(t, post(t, acme, `eyJhbGciOiJub25lIn0.eyJzdWIiOiJcIlwiXFwifQ.`, toolsList, nil), http.StatusUnauthorized, `error="invalid_token"`)
		desc := h[strings.Index(h, `error_description="`)+len(`error_description="`):]
		desc = desc[:strings.Index(desc, `"`)]
		if strings.ContainsAny(desc, `\`) {
			t.Errorf("description %q contains a backslash", desc)
		}
	})
}

func TestIssuerDownIs503(t *testing.T) {
	tb := newTestbed(t)
	tok := tb.token(t, "globex", "u", allTodoScopes)
	tb.oidc.SetDown(true)
	resp := post(t, tb.tenants["globex"], tok, toolsList, nil)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("issuer down: %d Retry-After %q %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	tb.oidc.SetDown(false)
	// Discovery retries with backoff; the first retry comes within seconds.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp = post(t, tb.tenants["globex"], tok, toolsList, nil)
		readAll(t, resp)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("issuer back, gateway still answers %d", resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestHTTPHygiene(t *testing.T) {
	tb := newTestbed(t)
	acme := tb.tenants["acme"]
	tok := tb.token(t, "acme", "u", allTodoScopes)

	t.Run("GET is 405", func(t *testing.T) {
		resp := do(t, mustRequest(t, http.MethodGet, acme, nil))
		if readAll(t, resp); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d, want 405", resp.StatusCode)
		}
	})
	t.Run("unknown route is JSON 404", func(t *testing.T) {
		resp := post(t, tb.base+"/nope", tok, toolsList, nil)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, `"error":"not_found"`) {
			t.Errorf("unknown route: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("foreign Origin is 403", func(t *testing.T) {
		resp := post(t, acme, tok, toolsList, map[string]string{"Origin": "http://evil.example"})
		if readAll(t, resp); resp.StatusCode != http.StatusForbidden {
			t.Errorf("foreign origin: %d, want 403", resp.StatusCode)
		}
	})
	t.Run("own Origin gets CORS", func(t *testing.T) {
		resp := post(t, acme, "", toolsList, map[string]string{"Origin": tb.base})
		readAll(t, resp)
		if resp.Header.Get("Access-Control-Allow-Origin") != tb.base || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Errorf("CORS headers: %v", resp.Header)
		}
	})
	t.Run("oversized body is 413", func(t *testing.T) {
		big := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"` + strings.Repeat("x", 2<<20) + `"}}`
		resp := post(t, acme, tok, big, nil)
		if readAll(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("oversized with Content-Length: %d %q, want 413 without a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		// Chunked: no Content-Length, the limit still holds.
		req := mustRequest(t, http.MethodPost, acme, io.MultiReader(strings.NewReader(big)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		req.ContentLength = -1
		resp = do(t, req)
		if readAll(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized chunked: %d, want 413", resp.StatusCode)
		}
	})
	t.Run("audit and access logs never hold the token", func(t *testing.T) {
		readAll(t, post(t, acme, tok, toolsList, nil))
		logs := tb.logBuf.String()
		if strings.Contains(logs, tok) || strings.Contains(logs, tok[:40]) {
			t.Fatal("a token reached the log")
		}
		if !strings.Contains(logs, `"msg":"audit"`) || !strings.Contains(logs, `"decision":"allow"`) || !strings.Contains(logs, `"subject":"u"`) {
			t.Errorf("no audit line for the allowed request:\n%s", logs)
		}
	})
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
