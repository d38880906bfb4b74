package upstream

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
)

func TestValidateExchange(t *testing.T) {
	base := func(id Identity) Config {
		return Config{Type: TypeUpstream, URL: "http://notes.internal/mcp", Identity: id,
			Permissions: Permissions{Tools: map[string][]providers.Permission{"search": nil}}}
	}
	ok := &Exchange{ClientID: "gw", ClientSecretEnv: "SECRET"}
	for _, tc := range []struct {
		name string
		id   Identity
		path string // "" for valid
		msg  string
	}{
		{"valid", Identity{Mode: ModeExchange, Exchange: ok}, "", ""},
		{"valid with endpoint, form auth, scope", Identity{Mode: ModeExchange, Exchange: &Exchange{ClientID: "gw", ClientSecretFile: "/run/s",
			TokenEndpoint: "https://as.example/token", AuthMethod: "form", Scope: "notes:read notes:write"}}, "", ""},
		{"mode without block", Identity{Mode: ModeExchange}, "identity.exchange", `required with mode "exchange"`},
		{"block without mode", Identity{Exchange: ok}, "identity.exchange", `only used with mode "exchange"`},
		{"no client id", Identity{Mode: ModeExchange, Exchange: &Exchange{ClientSecretEnv: "S"}}, "identity.exchange.client_id", "required"},
		{"no secret", Identity{Mode: ModeExchange, Exchange: &Exchange{ClientID: "gw"}}, "identity.exchange", "set client_secret_env or client_secret_file"},
		{"bad auth method", Identity{Mode: ModeExchange, Exchange: &Exchange{ClientID: "gw", ClientSecretEnv: "S", AuthMethod: "jwt"}},
			"identity.exchange.auth_method", `unknown auth method "jwt"`},
		{"bad endpoint", Identity{Mode: ModeExchange, Exchange: &Exchange{ClientID: "gw", ClientSecretEnv: "S", TokenEndpoint: "/token"}},
			"identity.exchange.token_endpoint", "absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probs := base(tc.id).Validate()
			if tc.path == "" {
				if len(probs) != 0 {
					t.Errorf("Validate() = %v, want none", probs)
				}
				return
			}
			if len(probs) != 1 || probs[0].Path != tc.path || !strings.Contains(probs[0].Message, tc.msg) {
				t.Errorf("Validate() = %v, want one problem at %s saying %q", probs, tc.path, tc.msg)
			}
		})
	}
	if c := base(Identity{Mode: ModeExchange, Exchange: ok}).WithDefaults(); c.Identity.Header != DefaultHeader {
		t.Errorf("exchange mode's header %q, want %s", c.Identity.Header, DefaultHeader)
	}
}

// TestExchangeAnswers: what the issuer answers decides the token or the
// error, never a token of another kind.
func TestExchangeAnswers(t *testing.T) {
	const typ = `"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"`
	for _, tc := range []struct {
		name, answer string
		status       int
		wantStatus   int // 0: a token
	}{
		{"bearer access token", `{"access_token":"t",` + typ + `,"token_type":"bearer","expires_in":60}`, 200, 0},
		{"N_A token type", `{"access_token":"t",` + typ + `,"token_type":"N_A"}`, 200, http.StatusBadGateway},
		{"an ID token issued", `{"access_token":"t","issued_token_type":"urn:ietf:params:oauth:token-type:id_token","token_type":"Bearer"}`, 200, http.StatusBadGateway},
		{"no issued_token_type", `{"access_token":"t","token_type":"Bearer"}`, 200, http.StatusBadGateway},
		{"no token", `{` + typ + `,"token_type":"Bearer"}`, 200, http.StatusBadGateway},
		{"refused", `{"error":"invalid_request"}`, 400, http.StatusBadGateway},
		{"issuer failing", `oops`, 500, http.StatusServiceUnavailable},
		{"the client's own token handed back", `{"access_token":"client-token",` + typ + `,"token_type":"Bearer","expires_in":60}`, 200, http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.answer)
			}))
			defer as.Close()
			x := &exchanger{cfg: Exchange{ClientID: "gw"}, audience: "a", resource: "r", secret: "s",
				endpoint: func(context.Context) (string, error) { return as.URL, nil }, client: as.Client(), now: time.Now,
				cache: map[[32]byte]cachedToken{}}
			tok, err := x.exchange(t.Context(), "client-token", &providers.Principal{Subject: "s", Expiry: time.Now().Add(time.Hour)})
			if tc.wantStatus == 0 {
				if err != nil || tok != "t" {
					t.Errorf("got %q, %v; want the token", tok, err)
				}
				return
			}
			xe, ok := err.(*exchangeError)
			if !ok || xe.status != tc.wantStatus {
				t.Errorf("got %q, %v; want an exchange error with status %d", tok, err, tc.wantStatus)
			}
		})
	}
}

func TestValidateBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		ok    bool
	}{{0, true}, {1024, true}, {64 << 20, true}, {1023, false}, {64<<20 + 1, false}, {-1, false}} {
		c := Config{Type: TypeUpstream, URL: "http://notes.internal/mcp", BodyLimit: tc.limit,
			Permissions: Permissions{Tools: map[string][]providers.Permission{"search": nil}}}
		probs := c.Validate()
		if ok := len(probs) == 0; ok != tc.ok || (!ok && probs[0].Path != "body_limit") {
			t.Errorf("body_limit %d: %v, want valid %v", tc.limit, probs, tc.ok)
		}
	}
}
