package mcp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name      string
		url       string
		headers   []string
		wantToken string
		wantCode  string // "" with no token: no credentials
	}{
		{"no credentials", "/acme", nil, "", ""},
		{"bearer", "/acme", []string{"Bearer abc.def-ghi_~+/="}, "abc.def-ghi_~+/=", ""},
		{"scheme is case-insensitive", "/acme", []string{"bearer abc"}, "abc", ""},
		{"extra spaces before the token", "/acme", []string{"Bearer   abc"}, "abc", ""},
		{"basic", "/acme", []string{"Basic dXNlcjpwYXNz"}, "", errInvalidRequest},
		{"no token", "/acme", []string{"Bearer"}, "", errInvalidRequest},
		{"empty token", "/acme", []string{"Bearer "}, "", errInvalidRequest},
		{"token with a space", "/acme", []string{"Bearer abc def"}, "", errInvalidRequest},
		{"token with a quote", "/acme", []string{`Bearer ab"c`}, "", errInvalidRequest},
		{"only padding", "/acme", []string{"Bearer ==="}, "", errInvalidRequest},
		{"two headers", "/acme", []string{"Bearer a", "Bearer b"}, "", errInvalidRequest},
		{"token in the query", "/acme?access_token=abc", nil, "", errInvalidRequest},
		{"token in the query and the header", "/acme?access_token=abc", []string{"Bearer abc"}, "", errInvalidRequest},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, tt.url, nil)
		for _, h := range tt.headers {
			r.Header.Add("Authorization", h)
		}
		token, ch := bearerToken(r)
		code := ""
		if ch != nil {
			code = ch.code
			if ch.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", tt.name, ch.status)
			}
		}
		if token != tt.wantToken || code != tt.wantCode {
			t.Errorf("%s: got token %q code %q, want %q %q", tt.name, token, code, tt.wantToken, tt.wantCode)
		}
	}
}

func TestChallengeHeader(t *testing.T) {
	const md = "https://gw/.well-known/oauth-protected-resource/acme"
	tests := []struct {
		ch   challenge
		want string
	}{
		{challenge{status: 401, scope: "create:todos read:todos"},
			`Bearer resource_metadata="` + md + `", scope="create:todos read:todos"`},
		{challenge{status: 401, code: errInvalidToken, description: `token "x" has expired\`},
			`Bearer error="invalid_token", error_description="token 'x' has expired'", resource_metadata="` + md + `"`},
		{challenge{status: 403, code: errInsufficientScope, description: "needs create", scope: "create:todos"},
			`Bearer error="insufficient_scope", error_description="needs create", resource_metadata="` + md + `", scope="create:todos"`},
		{challenge{status: 400, code: errInvalidRequest, description: "line\nbreak é"},
			`Bearer error="invalid_request", error_description="line break ?", resource_metadata="` + md + `"`},
	}
	for _, tt := range tests {
		if got := tt.ch.header(md); got != tt.want {
			t.Errorf("header:\n got %s\nwant %s", got, tt.want)
		}
	}
}

func TestMetadataURL(t *testing.T) {
	tests := []struct{ resource, want string }{
		{"http://localhost:3001/acme", "http://localhost:3001/.well-known/oauth-protected-resource/acme"},
		{"https://gw.example/t/acme", "https://gw.example/.well-known/oauth-protected-resource/t/acme"},
		{"https://acme.example.com", "https://acme.example.com/.well-known/oauth-protected-resource"},
	}
	for _, tt := range tests {
		if got := metadataURL(tt.resource); got != tt.want {
			t.Errorf("metadataURL(%q) = %q, want %q", tt.resource, got, tt.want)
		}
	}
}

func TestPeekCallAndHeaders(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		headers  map[string]string
		wantOK   bool
		wantCall rpcCall
		wantErr  bool
	}{
		{"tools/call", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create-todo"}}`, nil, true, rpcCall{Method: "tools/call", Tool: "create-todo"}, false},
		{"tools/list", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, true, rpcCall{Method: "tools/list"}, false},
		{"not JSON is left to mcp-go", `{"jsonrpc":`, nil, false, rpcCall{}, false},
		{"a batch is left to mcp-go", `[{"method":"tools/call"}]`, nil, false, rpcCall{}, false},
		{"a non-string name names no tool", `{"method":"tools/call","params":{"name":7}}`, nil, true, rpcCall{Method: "tools/call"}, false},
		// encoding/json, which mcp-go dispatches with, takes the last of
		// the keys that match a field regardless of case.
		{"keys read as mcp-go reads them", `{"method":"tools/list","params":{"name":"get-todos","NAME":"create-todo"},"METHOD":"tools/call"}`, nil, true,
			rpcCall{Method: "tools/call", Tool: "create-todo"}, false},
		{"a repeated key: the last one counts", `{"method":"tools/call","params":{"name":"get-todos","name":"create-todo"}}`, nil, true,
			rpcCall{Method: "tools/call", Tool: "create-todo"}, false},
		{"params of another type are left to mcp-go", `{"method":"tools/call","params":"create-todo"}`, nil, false, rpcCall{}, false},
		{"headers agree", `{"method":"tools/call","params":{"name":"get-todos"}}`,
			map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "get-todos"}, true, rpcCall{Method: "tools/call", Tool: "get-todos"}, false},
		{"Mcp-Name disagrees", `{"method":"tools/call","params":{"name":"create-todo"}}`,
			map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "get-todos"}, true, rpcCall{Method: "tools/call", Tool: "create-todo"}, true},
		{"Mcp-Method disagrees", `{"method":"tools/call","params":{"name":"create-todo"}}`,
			map[string]string{"Mcp-Method": "tools/list"}, true, rpcCall{Method: "tools/call", Tool: "create-todo"}, true},
	}
	for _, tt := range tests {
		call, ok := peekCall([]byte(tt.body))
		if ok != tt.wantOK || call != tt.wantCall {
			t.Errorf("%s: peekCall = %+v, %v; want %+v, %v", tt.name, call, ok, tt.wantCall, tt.wantOK)
		}
		h := http.Header{}
		for k, v := range tt.headers {
			h.Set(k, v)
		}
		if err := checkHeaders(h, call); (err != nil) != tt.wantErr {
			t.Errorf("%s: checkHeaders = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
