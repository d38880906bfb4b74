package providers

import (
	"context"
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

func TestLogtoES384UnderOIDCPath(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithPath("/oidc"),
		providertest.WithDiscovery(providertest.OpenIDAppended),
		providertest.WithKeys(jose.ES384))
	p := newProvider(t, iss, settings(iss, KindLogto), clk)

	c := iss.Claims("user-1", testResource, "create:todos read:todos")
	tok := iss.Mint(c, providertest.Alg(jose.ES384))
	pr := mustVerify(t, p, tok)

	want := &Principal{
		Tenant:      "acme",
		Issuer:      iss.Issuer(),
		Subject:     "user-1",
		ClientID:    "test-client",
		Scopes:      []string{"create:todos", "read:todos"},
		Permissions: map[Permission]bool{PermCreate: true, PermRead: true},
		Audience:    []string{testResource},
		Expiry:      time.Unix(c["exp"].(int64), 0),
		Kind:        TokenKindJWT,
	}
	if !reflect.DeepEqual(pr, want) {
		t.Fatalf("got %+v, want %+v", pr, want)
	}
	if !strings.HasSuffix(iss.Issuer(), "/oidc") {
		t.Fatalf("got issuer %q, want it to end in /oidc", iss.Issuer())
	}
	if got := iss.Hits(providertest.OpenIDAppended); got != 1 {
		t.Fatalf("got %d discovery requests, want 1", got)
	}
}

func TestOIDCAudienceAndPermissionsArray(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithPath("/"))
	s := settings(iss, KindOIDC)
	s.Audience = Audience{Strategy: AudienceValues, Values: []string{"todo-api", "other-api"}}
	s.Claims = Claims{Scopes: []string{"permissions", "scope"}}
	p := newProvider(t, iss, s, clk)

	c := iss.Claims("auth0|42", "", "openid profile")
	c["aud"] = []string{"todo-api", iss.Issuer() + "userinfo"}
	c["permissions"] = []string{"read:todos", "delete:todos"}
	delete(c, "client_id")
	c["azp"] = "spa-client"
	tok := iss.Mint(c, providertest.Typ("JWT"))
	pr := mustVerify(t, p, tok)

	if got, want := pr.Scopes, []string{"read:todos", "delete:todos", "openid", "profile"}; !slices.Equal(got, want) {
		t.Errorf("got scopes %q, want %q", got, want)
	}
	if got, want := pr.Permissions, map[Permission]bool{PermRead: true, PermDelete: true}; !maps.Equal(got, want) {
		t.Errorf("got permissions %v, want %v", got, want)
	}
	if pr.ClientID != "spa-client" {
		t.Errorf("got client id %q, want spa-client (from azp)", pr.ClientID)
	}
	if !strings.HasSuffix(pr.Issuer, "/") {
		t.Errorf("got issuer %q, want the configured trailing slash kept", pr.Issuer)
	}
}

func TestOAuthRFC8414IntrospectionScopePrefix(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithPath("/as"),
		providertest.WithDiscovery(providertest.OAuthInserted))
	s := settings(iss, KindOAuth)
	s.Config.Token = TokenIntrospection
	s.Config.Introspection = &IntrospectionConfig{ClientID: "gateway", ClientSecretEnv: "AS_SECRET"}
	s.Audience = Audience{Strategy: AudienceScope, Prefix: "todo-api:"}
	env := map[string]string{"AS_SECRET": "gateway-secret"}
	p := newProvider(t, iss, s, clk, WithSecretResolver(SecretResolver{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}))

	resp := iss.Claims("svc-7", "", "todo-api:create todo-api:read delete:todos other:delete")
	tok := iss.MintOpaque(resp)
	pr := mustVerify(t, p, tok)

	if got, want := pr.Permissions, map[Permission]bool{PermCreate: true, PermRead: true}; !maps.Equal(got, want) {
		t.Errorf("got permissions %v, want %v (unprefixed scopes must not count)", got, want)
	}
	if pr.Kind != TokenKindOpaque || pr.Subject != "svc-7" || pr.Issuer != iss.Issuer() {
		t.Errorf("got kind %q subject %q issuer %q, want opaque svc-7 %q", pr.Kind, pr.Subject, pr.Issuer, iss.Issuer())
	}
	if got := iss.Hits(providertest.OAuthInserted); got != 1 {
		t.Errorf("got %d RFC 8414 metadata requests, want 1", got)
	}
	if got := iss.LastIntrospectionAuth(); got != "basic" {
		t.Errorf("got introspection auth %q, want basic", got)
	}
}

func TestClaimShapes(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	tests := []struct {
		name      string
		claims    Claims
		set       map[string]any
		wantPerms []Permission
		wantSub   string
		wantCID   string
	}{
		{"scope string", Claims{Scopes: []string{"scope"}}, map[string]any{"scope": "read:todos create:todos"}, []Permission{PermCreate, PermRead}, "u", "test-client"},
		{"scp string", Claims{Scopes: []string{"scp"}}, map[string]any{"scp": "delete:todos"}, []Permission{PermDelete}, "u", "test-client"},
		{"scp array", Claims{Scopes: []string{"scp"}}, map[string]any{"scp": []string{"read:todos", "delete:todos"}}, []Permission{PermRead, PermDelete}, "u", "test-client"},
		{"scopes array", Claims{Scopes: []string{"scopes"}}, map[string]any{"scopes": []string{"create:todos"}}, []Permission{PermCreate}, "u", "test-client"},
		{"permissions array", Claims{Scopes: []string{"permissions"}}, map[string]any{"permissions": []string{"read:todos"}}, []Permission{PermRead}, "u", "test-client"},
		{"roles array", Claims{Scopes: []string{"roles"}}, map[string]any{"roles": []string{"delete:todos", "Admin"}}, []Permission{PermDelete}, "u", "test-client"},
		{"claims merged in order", Claims{Scopes: []string{"scp", "roles"}}, map[string]any{"scp": "read:todos", "roles": []string{"create:todos"}}, []Permission{PermCreate, PermRead}, "u", "test-client"},
		{"unlisted claim ignored", Claims{Scopes: []string{"scope"}}, map[string]any{"scp": "read:todos"}, nil, "u", "test-client"},
		{"null claim is absent", Claims{Scopes: []string{"scope"}}, map[string]any{"scope": nil}, nil, "u", "test-client"},
		{"custom subject claim", Claims{Subject: "oid"}, map[string]any{"oid": "object-9"}, nil, "object-9", "test-client"},
		{"client id from azp", Claims{}, map[string]any{"client_id": nil, "azp": "azp-client"}, nil, "u", "azp-client"},
		{"client id from cid", Claims{}, map[string]any{"client_id": nil, "cid": "okta-client"}, nil, "u", "okta-client"},
		{"custom client id claim", Claims{ClientID: []string{"appid"}}, map[string]any{"appid": "entra-app"}, nil, "u", "entra-app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settings(iss, KindOIDC)
			s.Claims = tt.claims
			p := newProvider(t, iss, s, clk)
			c := iss.Claims("u", testResource, "")
			for k, v := range tt.set {
				if v == nil {
					delete(c, k)
					if k == "scope" {
						c[k] = nil
					}
					continue
				}
				c[k] = v
			}
			pr := mustVerify(t, p, iss.Mint(c))
			for _, perm := range Permissions {
				if got, want := pr.Has(perm), slices.Contains(tt.wantPerms, perm); got != want {
					t.Errorf("got Has(%s) = %v, want %v (scopes %q)", perm, got, want, pr.Scopes)
				}
			}
			if pr.Subject != tt.wantSub {
				t.Errorf("got subject %q, want %q", pr.Subject, tt.wantSub)
			}
			if pr.ClientID != tt.wantCID {
				t.Errorf("got client id %q, want %q", pr.ClientID, tt.wantCID)
			}
		})
	}
}

func TestEveryKeyType(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			pr := mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "read:todos"), providertest.Alg(alg)))
			if !pr.Has(PermRead) {
				t.Fatalf("got permissions %v, want read", pr.Permissions)
			}
		})
	}
}

func TestLeewayBoundaries(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	leeway := Duration(30 * time.Second)
	s := settings(iss, KindOIDC)
	s.Config.Leeway = &leeway
	p := newProvider(t, iss, s, clk, WithVerifiedTokenCache(0))
	now := clk.Now()
	tests := []struct {
		name   string
		set    map[string]any
		reason string // "" = accepted
	}{
		{"exp just inside leeway", map[string]any{"exp": now.Add(-29 * time.Second).Unix()}, ""},
		{"exp just outside leeway", map[string]any{"exp": now.Add(-31 * time.Second).Unix()}, reasonExpired},
		{"nbf just inside leeway", map[string]any{"nbf": now.Add(29 * time.Second).Unix()}, ""},
		{"nbf just outside leeway", map[string]any{"nbf": now.Add(31 * time.Second).Unix()}, reasonNotYetValid},
		{"iat just inside leeway", map[string]any{"iat": now.Add(29 * time.Second).Unix()}, ""},
		{"iat just outside leeway", map[string]any{"iat": now.Add(31 * time.Second).Unix()}, reasonIssuedFuture},
		{"fractional exp", map[string]any{"exp": float64(now.Unix()) + 0.5}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := iss.Claims("u", testResource, "")
			maps.Copy(c, tt.set)
			_, err := p.Verify(context.Background(), iss.Mint(c))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			checkErr(t, err, ClassInvalidToken, tt.reason)
		})
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Settings
		want func(s Settings) string // "" when fine
	}{
		{"logto", Settings{Config: Config{Type: KindLogto}}, func(s Settings) string {
			if !slices.Equal(s.Config.JWTTypes, []string{"at+jwt"}) || !slices.Equal(s.Claims.Scopes, []string{"scope"}) || s.Config.Token != TokenJWT {
				return "logto defaults"
			}
			return ""
		}},
		{"oidc", Settings{Config: Config{Type: KindOIDC}}, func(s Settings) string {
			if !slices.Equal(s.Config.JWTTypes, []string{"at+jwt", "JWT"}) || !slices.Equal(s.Claims.Scopes, []string{"scope", "scp", "permissions"}) {
				return "oidc defaults"
			}
			return ""
		}},
		{"oauth with introspection is auto", Settings{Config: Config{Type: KindOAuth, Introspection: &IntrospectionConfig{}}}, func(s Settings) string {
			if s.Config.Token != TokenAuto || !slices.Equal(s.Claims.Scopes, []string{"scope", "scp"}) {
				return "oauth defaults"
			}
			return ""
		}},
		// The operator configured introspection to have it used, whatever
		// the kind (tenants once defaulted oidc to jwt and refused the file).
		{"oidc with introspection is auto", Settings{Config: Config{Type: KindOIDC, Introspection: &IntrospectionConfig{}}}, func(s Settings) string {
			in := s.Config.Introspection
			if s.Config.Token != TokenAuto || in.AuthMethod != "basic" || time.Duration(*in.CacheTTL) != time.Minute || *in.MaxCallsPerSecond != 100 {
				return "introspection defaults"
			}
			return ""
		}},
		{"explicit jwt with introspection stays jwt", Settings{Config: Config{Type: KindOIDC, Token: TokenJWT, Introspection: &IntrospectionConfig{}}}, func(s Settings) string {
			if s.Config.Token != TokenJWT {
				return "token mode"
			}
			return ""
		}},
		// Out-of-range values are kept for Validate to refuse, never
		// clamped into something the operator did not write.
		{"leeway kept as written", Settings{Config: Config{Type: KindOIDC, Leeway: durationPtr(time.Hour)}}, func(s Settings) string {
			if time.Duration(*s.Config.Leeway) != time.Hour {
				return "leeway " + time.Duration(*s.Config.Leeway).String()
			}
			return ""
		}},
		{"explicit empty scope and unknown permission kept", Settings{Config: Config{Type: KindOIDC}, Scopes: ScopeMap{PermRead: "", "write": "w"}}, func(s Settings) string {
			want := ScopeMap{PermCreate: "create:todos", PermRead: "", PermDelete: "delete:todos", "write": "w"}
			if !maps.Equal(s.Scopes, want) {
				return "scope map"
			}
			return ""
		}},
		{"unknown kind gets no kind defaults", Settings{Config: Config{Type: "saml"}}, func(s Settings) string {
			if s.Config.Token != "" || s.Config.JWTTypes != nil || s.Claims.Scopes != nil {
				return "kind defaults"
			}
			return ""
		}},
		{"leeway default", Settings{Config: Config{Type: KindOIDC}}, func(s Settings) string {
			if time.Duration(*s.Config.Leeway) != time.Minute || time.Duration(*s.Config.JWKSMinRefresh) != 10*time.Second {
				return "leeway or refresh"
			}
			return ""
		}},
		{"scope map default", Settings{Config: Config{Type: KindOIDC}}, func(s Settings) string {
			want := ScopeMap{PermCreate: "create:todos", PermRead: "read:todos", PermDelete: "delete:todos"}
			if !maps.Equal(s.Scopes, want) || s.Audience.Strategy != AudienceResource || s.Claims.Subject != "sub" {
				return "scope map"
			}
			return ""
		}},
		{"scope map under the scope strategy", Settings{Config: Config{Type: KindOAuth}, Audience: Audience{Strategy: AudienceScope, Prefix: "todo-api:"}}, func(s Settings) string {
			want := ScopeMap{PermCreate: "todo-api:create", PermRead: "todo-api:read", PermDelete: "todo-api:delete"}
			if !maps.Equal(s.Scopes, want) {
				return "scope map"
			}
			return ""
		}},
		{"partial scope map is completed", Settings{Config: Config{Type: KindOIDC}, Scopes: ScopeMap{PermRead: "todos.read"}}, func(s Settings) string {
			want := ScopeMap{PermCreate: "create:todos", PermRead: "todos.read", PermDelete: "delete:todos"}
			if !maps.Equal(s.Scopes, want) {
				return "scope map"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.WithDefaults()
			if problem := tt.want(got); problem != "" {
				t.Fatalf("got %+v: wrong %s", got, problem)
			}
			if again := got.WithDefaults(); !reflect.DeepEqual(again, got) {
				t.Fatalf("WithDefaults twice: got %+v, want %+v", again, got)
			}
		})
	}
}

// TestWithDefaultsCopies: the result shares no slice or map with its
// input, so a caller's later edits cannot reach a running verifier.
func TestWithDefaultsCopies(t *testing.T) {
	in := Settings{
		Config:   Config{Type: KindOIDC, Algorithms: []string{"RS256"}, JWTTypes: []string{"JWT"}, Introspection: &IntrospectionConfig{ClientID: "gw"}},
		Audience: Audience{Strategy: AudienceValues, Values: []string{"api"}},
		Claims:   Claims{Scopes: []string{"scp"}, ClientID: []string{"azp"}},
		Scopes:   ScopeMap{PermRead: "r"},
	}
	out := in.WithDefaults()
	in.Config.Algorithms[0], in.Config.JWTTypes[0], in.Config.Introspection.ClientID = "x", "x", "x"
	in.Audience.Values[0], in.Claims.Scopes[0], in.Claims.ClientID[0], in.Scopes[PermRead] = "x", "x", "x", "x"
	if out.Config.Algorithms[0] != "RS256" || out.Config.JWTTypes[0] != "JWT" || out.Config.Introspection.ClientID != "gw" ||
		out.Audience.Values[0] != "api" || out.Claims.Scopes[0] != "scp" || out.Claims.ClientID[0] != "azp" || out.Scopes[PermRead] != "r" {
		t.Fatalf("got %+v after editing the input, want the defaults' own copies", out)
	}
}

// TestNewRefusesWhatValidateReports: New's refusal is exactly Validate's
// problems; the rules themselves are in validate_test.go.
func TestNewRefusesWhatValidateReports(t *testing.T) {
	s := Settings{Tenant: "t", Resource: testResource, Config: Config{Type: KindOIDC, Issuer: "http://as.example",
		Algorithms: []string{"none"}, Introspection: &IntrospectionConfig{ClientID: "gw", ClientSecret: "s3cr3t"}}}
	_, err := New(s)
	var ise *InvalidSettingsError
	if !errors.As(err, &ise) {
		t.Fatalf("got %v, want an *InvalidSettingsError", err)
	}
	if want := s.Validate(); ise.Tenant != "t" || len(want) != 4 || !slices.Equal(ise.Problems, want) {
		t.Fatalf("got tenant %q problems %v, want t and Validate's 4: %v", ise.Tenant, ise.Problems, want)
	}
	wantMsg := `tenant "t": provider.issuer: must use https (http is accepted only for a loopback host or with "allow_http_issuer": true); ` +
		`provider.introspection.client_secret: inline secrets are not allowed; use client_secret_env or client_secret_file; ` +
		`provider.introspection: set client_secret_env or client_secret_file; ` +
		`provider.algorithms[0]: "none" is never allowed: tokens must be signed`
	if err.Error() != wantMsg {
		t.Errorf("got message\n%s\nwant\n%s", err, wantMsg)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %q leaks the secret", err)
	}
}

// TestNewReadsTheSecret: what only New checks, because it needs the
// environment.
func TestNewReadsTheSecret(t *testing.T) {
	base := func() Settings {
		return Settings{Tenant: "t", Resource: testResource, Config: Config{Type: KindOAuth, Issuer: "https://as.example", Token: TokenIntrospection}}
	}
	resolver := WithSecretResolver(SecretResolver{
		LookupEnv: func(name string) (string, bool) { return "", name == "EMPTY" },
		ReadFile: func(path string) ([]byte, error) {
			if path == "/run/empty" {
				return []byte("\n"), nil
			}
			return nil, os.ErrNotExist
		},
	})
	tests := []struct {
		name string
		in   IntrospectionConfig
		want string
	}{
		{"unset variable", IntrospectionConfig{ClientID: "gw", ClientSecretEnv: "NOPE"}, `tenant "t": introspection: environment variable NOPE is not set`},
		{"empty variable", IntrospectionConfig{ClientID: "gw", ClientSecretEnv: "EMPTY"}, `tenant "t": introspection: environment variable EMPTY is not set`},
		{"missing file", IntrospectionConfig{ClientID: "gw", ClientSecretFile: "/run/nope"}, `tenant "t": introspection: cannot read client_secret_file: file does not exist`},
		{"empty file", IntrospectionConfig{ClientID: "gw", ClientSecretFile: "/run/empty"}, `tenant "t": introspection: client_secret_file /run/empty is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			s.Config.Introspection = &tt.in
			if probs := s.Validate(); len(probs) != 0 {
				t.Fatalf("Validate: got %v, want nothing (the environment is New's business)", probs)
			}
			_, err := New(s, resolver)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestSecretFromFile(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithIntrospectionClient("gw id", "s&cret"))
	s := settings(iss, KindOAuth)
	s.Config.Token = TokenIntrospection
	s.Config.Introspection = &IntrospectionConfig{ClientID: "gw id", ClientSecretFile: "/run/secrets/as"}
	files := SecretResolver{ReadFile: func(path string) ([]byte, error) {
		if path != "/run/secrets/as" {
			t.Fatalf("got path %q, want /run/secrets/as", path)
		}
		return []byte("s&cret\n"), nil
	}}
	p := newProvider(t, iss, s, clk, WithSecretResolver(files))
	// The id and secret need form-encoding inside Basic (RFC 6749 §2.3.1):
	// the issuer decodes them and would refuse otherwise.
	mustVerify(t, p, iss.MintOpaque(iss.Claims("u", testResource, "")))
}

func TestVerifiedTokenCache(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	c := iss.Claims("u", testResource, "read:todos")
	c["exp"] = clk.Now().Add(2 * time.Minute).Unix()
	tok := iss.Mint(c)

	first := mustVerify(t, p, tok)
	second := mustVerify(t, p, tok)
	if second != first {
		// Principals are read-only: a hit hands out the cached one, with
		// no copy per request.
		t.Fatal("got a fresh principal for a cached token, want the cached one")
	}
	if got := p.verified.len(); got != 1 {
		t.Fatalf("got %d cached tokens, want 1", got)
	}
	// Past exp (plus leeway) the cache must not answer for the token.
	clk.Advance(4 * time.Minute)
	_, err := p.Verify(context.Background(), tok)
	checkErr(t, err, ClassInvalidToken, reasonExpired)
}

func TestCloseWaitsForBackgroundWork(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p, err := New(settings(iss, KindOIDC), WithHTTPClient(iss.Client()), WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	iss.SetDelay(time.Hour) // the fetch hangs until Close cancels it
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = p.Verify(ctx, iss.Mint(iss.Claims("u", testResource, "")))
	checkErr(t, err, ClassUnavailable, reasonCancelled)
	if got := background(p); got != 1 {
		t.Fatalf("got %d background fetches, want the 1 the caller left behind", got)
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: a background fetch ignores cancellation")
	}
	if got := background(p); got != 0 {
		t.Fatalf("got %d background goroutines after Close, want 0", got)
	}
	_, err = p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, "")))
	if ClassOf(err) != ClassUnavailable {
		t.Fatalf("got %v after Close, want ClassUnavailable", err)
	}
}

// TestNewKeepsItsOwnSettings: a caller editing its settings after New
// changes nothing in the verifier.
func TestNewKeepsItsOwnSettings(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	s := settings(iss, KindOIDC)
	s.Scopes = ScopeMap{PermRead: "read:todos"}
	p := newProvider(t, iss, s, clk)
	s.Scopes[PermRead] = "changed"
	if pr := mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "read:todos"))); !pr.Has(PermRead) {
		t.Fatalf("got permissions %v, want read granted by the scope map New was given", pr.Permissions)
	}
}
