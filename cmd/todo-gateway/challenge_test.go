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

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

const toolsList = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

func toolCall(name string) string {
	return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + name + `","arguments":{"content":"x"}}}`
}

// A real token is good at its own tenant only: the audience the provider
// checks is the tenant's resource, so a token of the right issuer for
// another resource (umbrella's, or hooli's on the same issuer) is refused,
// as is a token of another tenant's issuer. (How the edge answers a refused
// token is tested in package mcp.)
func TestTokensAreBoundToTheirTenant(t *testing.T) {
	s := startShapesBed(t)
	refused := func(what string, req *http.Request) {
		t.Helper()
		resp := do(t, req)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %q %s, want 401 invalid_token", what, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	request := func(url, host, token string) *http.Request {
		req := mustRequest(t, http.MethodPost, url, strings.NewReader(toolsList))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		return req
	}
	acmeToken := s.token(t, "acme", "same-sub", allTodoScopes)
	if body := readAll(t, post(t, s.resources["acme"], acmeToken, toolsList, nil)); !strings.Contains(body, `"create-todo"`) {
		t.Fatalf("acme's own token at acme: %s", body)
	}
	forUmbrella := s.logto.Mint(s.logto.Claims("u", s.resources["umbrella"], allTodoScopes), providertest.Alg(jose.ES384))
	refused("acme's issuer, umbrella's audience, at acme", request(s.resources["acme"], "", forUmbrella))
	refused("acme's token at umbrella", request(s.resources["umbrella"], "", acmeToken))
	refused("acme's token at hooli, on the same issuer", request(s.base+"/", strings.TrimPrefix(s.resources["hooli"], "http://"), acmeToken))
}

// An issuer that cannot be reached makes its tenant answer 503 with
// Retry-After, and the tenant serves again once the issuer is back:
// discovery retries with backoff.
func TestIssuerDownIs503(t *testing.T) {
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: onIssuers(1, iss.Issuer())})
	url := b.resources["t0"]
	tok := iss.Mint(iss.Claims("u", url, allTodoScopes))
	iss.SetDown(true)
	resp := post(t, url, tok, toolsList, nil)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("issuer down: %d Retry-After %q %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	iss.SetDown(false)
	// The first retry comes within seconds.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp = post(t, url, tok, toolsList, nil)
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

// A token spelled otherwise (the unused low bits of a segment's last
// base64url character set) decodes to the same signed bytes; the gateway
// refuses it with 401 invalid_token instead of verifying and caching it as
// a token of its own.
func TestRespelledTokenIs401(t *testing.T) {
	s := startShapesBed(t)
	tok := s.token(t, "acme", "u", allTodoScopes)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	segs := strings.Split(tok, ".")
	respelled := ""
	for i, seg := range segs {
		if n := len(seg) % 4; n == 2 || n == 3 {
			// The canonical last character has its unused bits clear:
			// the next one in the alphabet sets the lowest.
			last := strings.IndexByte(alphabet, seg[len(seg)-1])
			segs[i] = seg[:len(seg)-1] + string(alphabet[last+1])
			respelled = strings.Join(segs, ".")
			break
		}
	}
	if respelled == "" {
		t.Fatalf("no segment of the token has unused bits: %d, %d, %d characters", len(segs[0]), len(segs[1]), len(segs[2]))
	}
	resp := post(t, s.resources["acme"], respelled, toolsList, nil)
	body := readAll(t, resp)
	h := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(h, `error="invalid_token"`) || !strings.Contains(h, "canonical base64url") {
		t.Errorf("re-spelled token: %d %q %s, want 401 invalid_token saying it is not canonical", resp.StatusCode, h, body)
	}
	if body := readAll(t, post(t, s.resources["acme"], tok, toolsList, nil)); !strings.Contains(body, `"create-todo"`) {
		t.Errorf("the token as issued: %s, want the tools", body)
	}
}
