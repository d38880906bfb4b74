package providers

import (
	"context"
	"maps"
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
		{"leeway capped", Settings{Config: Config{Type: KindOIDC, Leeway: durationPtr(time.Hour)}}, func(s Settings) string {
			if time.Duration(*s.Config.Leeway) != 5*time.Minute {
				return "leeway " + time.Duration(*s.Config.Leeway).String()
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
		})
	}
}

func TestNewRefusesUnsafeSettings(t *testing.T) {
	base := func() Settings {
		return Settings{Tenant: "t", Resource: testResource, Config: Config{Type: KindOIDC, Issuer: "https://as.example"}}
	}
	env := SecretResolver{LookupEnv: func(string) (string, bool) { return "", false }}
	tests := []struct {
		name   string
		edit   func(*Settings)
		wantIn string
	}{
		{"unknown type", func(s *Settings) { s.Config.Type = "saml" }, "provider type"},
		{"relative issuer", func(s *Settings) { s.Config.Issuer = "as.example" }, "absolute"},
		{"http issuer", func(s *Settings) { s.Config.Issuer = "http://as.example" }, "plain http"},
		{"issuer with query", func(s *Settings) { s.Config.Issuer = "https://as.example/?x=1" }, "query"},
		{"HS256 allowed", func(s *Settings) { s.Config.Algorithms = []string{"HS256"} }, "HS256"},
		{"none allowed", func(s *Settings) { s.Config.Algorithms = []string{"none"} }, "none"},
		{"resource strategy without resource", func(s *Settings) { s.Resource = "" }, "resource URL"},
		{"audience strategy without values", func(s *Settings) { s.Audience.Strategy = AudienceValues }, "audience values"},
		{"scope strategy without prefix", func(s *Settings) { s.Audience.Strategy = AudienceScope }, "prefix"},
		{"scope map without the prefix", func(s *Settings) {
			s.Audience = Audience{Strategy: AudienceScope, Prefix: "api:"}
			s.Scopes = ScopeMap{PermRead: "read:todos"}
		}, "lacks the prefix"},
		{"inline secret", func(s *Settings) {
			s.Config.Introspection = &IntrospectionConfig{ClientID: "gw", ClientSecret: "s3cr3t"}
		}, "inline client_secret"},
		{"missing env secret", func(s *Settings) {
			s.Config.Introspection = &IntrospectionConfig{ClientID: "gw", ClientSecretEnv: "NOPE"}
		}, "NOPE is not set"},
		{"bad auth method", func(s *Settings) {
			s.Config.Introspection = &IntrospectionConfig{ClientID: "gw", AuthMethod: "jwt"}
		}, "auth_method"},
		{"http jwks override on https issuer", func(s *Settings) {
			s.Config.Metadata = &MetadataOverride{JWKSURI: "http://as.example/jwks"}
		}, "uses http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.edit(&s)
			_, err := New(s, WithSecretResolver(env))
			if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("got error %v, want one mentioning %q", err, tt.wantIn)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error %q leaks the secret", err)
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
	first.Permissions[PermDelete] = true // callers may scribble on their copy
	second := mustVerify(t, p, tok)
	if second.Has(PermDelete) {
		t.Fatal("got a cached principal sharing state with an earlier caller, want a copy")
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
	if got := p.bg.active.Load(); got != 1 {
		t.Fatalf("got %d background fetches, want the 1 the caller left behind", got)
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: a background fetch ignores cancellation")
	}
	if got := p.bg.active.Load(); got != 0 {
		t.Fatalf("got %d background goroutines after Close, want 0", got)
	}
	_, err = p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, "")))
	if ClassOf(err) != ClassUnavailable {
		t.Fatalf("got %v after Close, want ClassUnavailable", err)
	}
}

func TestProviderAccessors(t *testing.T) {
	s := Settings{Tenant: "t", Resource: testResource, Config: Config{Type: KindOAuth, Issuer: "https://as.example"},
		Audience: Audience{Strategy: AudienceScope, Prefix: "todo:"}}
	p, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := p.Scope(PermCreate); got != "todo:create" {
		t.Errorf("got scope %q, want todo:create", got)
	}
	m := p.ScopeMap()
	m[PermCreate] = "changed"
	if p.Scope(PermCreate) != "todo:create" {
		t.Error("ScopeMap returned the provider's own map, want a copy")
	}
	if p.Tenant() != "t" || p.Issuer() != "https://as.example" || p.Resource() != testResource {
		t.Errorf("got %q %q %q", p.Tenant(), p.Issuer(), p.Resource())
	}
}
