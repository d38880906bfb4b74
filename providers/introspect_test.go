package providers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// introspectionTenant is an oauth tenant verifying opaque tokens at iss.
func introspectionTenant(iss *providertest.Issuer, edit func(*IntrospectionConfig)) Settings {
	s := settings(iss, KindOAuth)
	s.Config.Token = TokenIntrospection
	ic := &IntrospectionConfig{ClientID: "gateway", ClientSecretEnv: "SECRET"}
	if edit != nil {
		edit(ic)
	}
	s.Config.Introspection = ic
	return s
}

var testSecrets = WithSecretResolver(SecretResolver{
	LookupEnv: func(k string) (string, bool) { return "gateway-secret", k == "SECRET" },
})

func TestIntrospectionClientAuth(t *testing.T) {
	for _, method := range []string{"", "basic", "form"} {
		t.Run("method "+method, func(t *testing.T) {
			clk := newClock()
			iss := newIssuer(t, clk)
			p := newProvider(t, iss, introspectionTenant(iss, func(c *IntrospectionConfig) { c.AuthMethod = method }), clk, testSecrets)
			mustVerify(t, p, iss.MintOpaque(iss.Claims("u", testResource, "read:todos")))
			want := method
			if want == "" {
				want = "basic"
			}
			if got := iss.LastIntrospectionAuth(); got != want {
				t.Fatalf("got auth %q, want %q", got, want)
			}
		})
	}
}

func TestIntrospectionAnswers(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	tests := []struct {
		name    string
		edit    func(*IntrospectionConfig)
		resp    func(m map[string]any)
		reason  string // "" = accepted
		subject string // when accepted and set, the Principal's subject
	}{
		{name: "full answer", resp: func(map[string]any) {}},
		{name: "Logto-style minimal answer refused by default", resp: minimal, reason: reasonNoIssuer},
		{name: "minimal answer without audience permission", edit: func(c *IntrospectionConfig) { c.AllowMissingIssuer = true }, resp: minimal, reason: reasonNoAudience},
		{name: "minimal answer allowed", edit: func(c *IntrospectionConfig) { c.AllowMissingIssuer, c.AllowMissingAudience = true, true }, resp: minimal},
		{name: "present iss still checked", edit: func(c *IntrospectionConfig) { c.AllowMissingIssuer = true }, resp: func(m map[string]any) { m["iss"] = "https://evil.example" }, reason: reasonIssuer},
		{name: "present aud still checked", edit: func(c *IntrospectionConfig) { c.AllowMissingAudience = true }, resp: func(m map[string]any) { m["aud"] = "other" }, reason: reasonAudResource},
		{name: "not yet valid despite active", resp: func(m map[string]any) {
			m["exp"] = clk.Now().Add(time.Hour).Unix() // the issuer still says active...
			m["nbf"] = clk.Now().Add(2 * time.Hour).Unix()
		}, reason: reasonNotYetValid},
		{name: "refresh token", resp: func(m map[string]any) { m["token_use"] = "refresh_token" }, reason: reasonNotAccess},
		{name: "Cognito access token_use", resp: func(m map[string]any) { m["token_use"] = "access" }},
		{name: "no subject nor client", resp: func(m map[string]any) { delete(m, "sub"); delete(m, "client_id") }, reason: reasonNoSubject},
		{name: "client credentials: no subject, the client acts for itself", resp: func(m map[string]any) { delete(m, "sub"); m["client_id"] = "m2m" }, subject: "m2m"},
		{name: "a subject wins over the client", resp: func(m map[string]any) { m["client_id"] = "m2m" }, subject: "u"},
		{name: "scope of the wrong type", resp: func(m map[string]any) { m["scope"] = []int{1} }, reason: reasonClaimType("scope")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, iss, introspectionTenant(iss, tt.edit), clk, testSecrets)
			m := iss.Claims("u", testResource, "read:todos")
			tt.resp(m)
			pr, err := p.Verify(context.Background(), iss.MintOpaque(m))
			if tt.reason != "" {
				checkErr(t, err, ClassInvalidToken, tt.reason)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			if pr.Kind != TokenKindOpaque || pr.Issuer != iss.Issuer() {
				t.Fatalf("got kind %q issuer %q, want opaque and %q", pr.Kind, pr.Issuer, iss.Issuer())
			}
			if tt.subject != "" && pr.Subject != tt.subject {
				t.Errorf("got subject %q, want %q", pr.Subject, tt.subject)
			}
		})
	}
}

func minimal(m map[string]any) {
	for k := range m {
		if k != "sub" {
			delete(m, k)
		}
	}
}

func TestIntrospectionInactiveAndRevoked(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, introspectionTenant(iss, nil), clk, testSecrets)
	ctx := context.Background()

	// Unknown token: inactive, and the answer is cached briefly.
	_, err := p.Verify(ctx, "c29tZS1vcGFxdWUtdG9rZW4")
	checkErr(t, err, ClassInvalidToken, reasonInactive)
	_, err = p.Verify(ctx, "c29tZS1vcGFxdWUtdG9rZW4")
	checkErr(t, err, ClassInvalidToken, reasonInactive)
	if got := iss.Hits(providertest.Introspection); got != 1 {
		t.Fatalf("got %d introspection calls, want 1 (negative cache)", got)
	}
	clk.Advance(negativeCacheTTL + time.Second)
	_, err = p.Verify(ctx, "c29tZS1vcGFxdWUtdG9rZW4")
	checkErr(t, err, ClassInvalidToken, reasonInactive)
	if got := iss.Hits(providertest.Introspection); got != 2 {
		t.Fatalf("got %d introspection calls, want 2 after the negative TTL", got)
	}

	// Revocation shows once the positive answer expires from the cache.
	tok := iss.MintOpaque(iss.Claims("u", testResource, ""))
	mustVerify(t, p, tok)
	iss.Revoke(tok)
	mustVerify(t, p, tok) // cached
	clk.Advance(61 * time.Second)
	_, err = p.Verify(ctx, tok)
	checkErr(t, err, ClassInvalidToken, reasonInactive)
}

func TestIntrospectionCacheTTLBoundedByExp(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, introspectionTenant(iss, nil), clk, testSecrets)
	m := iss.Claims("u", testResource, "")
	m["exp"] = clk.Now().Add(20 * time.Second).Unix()
	tok := iss.MintOpaque(m)
	mustVerify(t, p, tok)
	clk.Advance(10 * time.Second)
	mustVerify(t, p, tok)
	if got := iss.Hits(providertest.Introspection); got != 1 {
		t.Fatalf("got %d introspection calls before exp, want 1", got)
	}
	clk.Advance(11 * time.Second) // past exp, well inside the 60s TTL
	_, err := p.Verify(context.Background(), tok)
	checkErr(t, err, ClassInvalidToken, reasonInactive)
	if got := iss.Hits(providertest.Introspection); got != 2 {
		t.Fatalf("got %d introspection calls after exp, want 2", got)
	}
}

func TestIntrospectionSingleFlight(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, introspectionTenant(iss, nil), clk, testSecrets)
	mustVerify(t, p, iss.MintOpaque(iss.Claims("warm", testResource, ""))) // discovery done
	iss.SetDelay(30 * time.Millisecond)
	tok := iss.MintOpaque(iss.Claims("u", testResource, ""))
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := p.Verify(context.Background(), tok); err != nil {
				t.Errorf("got %v, want success", err)
			}
		})
	}
	wg.Wait()
	if got := iss.Hits(providertest.Introspection); got != 2 {
		t.Fatalf("got %d introspection calls, want 2 (1 warm-up + 1 for 50 concurrent callers)", got)
	}
}

func TestIntrospectionFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(iss *providertest.Issuer)
		creds  func(*IntrospectionConfig)
		class  Class
		reason string
	}{
		{"server error", func(iss *providertest.Issuer) { iss.SetStatus(providertest.Introspection, 500) }, nil, ClassUnavailable, reasonIntrospectDown},
		{"rate limited", func(iss *providertest.Issuer) { iss.SetStatus(providertest.Introspection, 429) }, nil, ClassUnavailable, reasonIntrospectDown},
		{"wrong credentials", nil, func(c *IntrospectionConfig) { c.ClientID = "someone-else" }, ClassInternal, reasonIntrospectDenied},
		{"bad request", func(iss *providertest.Issuer) { iss.SetStatus(providertest.Introspection, 400) }, nil, ClassInternal, reasonIntrospectBroken},
		{"no introspection endpoint", func(iss *providertest.Issuer) {
			iss.SetMetadata(func(_ providertest.Endpoint, m map[string]any) { delete(m, "introspection_endpoint") })
		}, nil, ClassInternal, reasonNoIntrospect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			iss := newIssuer(t, clk)
			if tt.setup != nil {
				tt.setup(iss)
			}
			p := newProvider(t, iss, introspectionTenant(iss, tt.creds), clk, testSecrets)
			tok := iss.MintOpaque(iss.Claims("u", testResource, ""))
			_, err := p.Verify(context.Background(), tok)
			checkErr(t, err, tt.class, tt.reason)
			if strings.Contains(err.Error(), "gateway-secret") || strings.Contains(err.Error(), tok) {
				t.Fatalf("error %q leaks the secret or the token", err)
			}
		})
	}
}

func TestIntrospectionOutageRecovers(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, introspectionTenant(iss, nil), clk, testSecrets)
	mustVerify(t, p, iss.MintOpaque(iss.Claims("warm", testResource, "")))
	tok := iss.MintOpaque(iss.Claims("u", testResource, ""))
	iss.SetDown(true)
	_, err := p.Verify(context.Background(), tok)
	checkErr(t, err, ClassUnavailable, reasonIntrospectDown)
	iss.SetDown(false)
	mustVerify(t, p, tok) // transient failures are not cached
}

func TestIntrospectionAnswerCap(t *testing.T) {
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"active":true,"pad":"` + strings.Repeat("x", 2<<20) + `"}`))
	}))
	defer big.Close()
	clk := newClock()
	iss := newIssuer(t, clk)
	s := introspectionTenant(iss, nil)
	s.Config.Metadata = &MetadataOverride{IntrospectionEndpoint: big.URL + "/introspect"}
	p := newProvider(t, iss, s, clk, testSecrets, WithHTTPClient(big.Client()))
	_, err := p.Verify(context.Background(), "b3BhcXVl")
	checkErr(t, err, ClassUnavailable, reasonIntrospectDown)
}

func TestAutoMode(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	s := introspectionTenant(iss, nil)
	s.Config.Token = TokenAuto
	p := newProvider(t, iss, s, clk, testSecrets)

	pr := mustVerify(t, p, iss.Mint(iss.Claims("jwt-user", testResource, "")))
	if pr.Kind != TokenKindJWT || iss.Hits(providertest.Introspection) != 0 {
		t.Fatalf("got kind %q and %d introspection calls for a JWT, want jwt and 0", pr.Kind, iss.Hits(providertest.Introspection))
	}
	pr = mustVerify(t, p, iss.MintOpaque(iss.Claims("opaque-user", testResource, "")))
	if pr.Kind != TokenKindOpaque || iss.Hits(providertest.Introspection) != 1 {
		t.Fatalf("got kind %q and %d introspection calls for an opaque token, want opaque and 1", pr.Kind, iss.Hits(providertest.Introspection))
	}
	// A JWT that fails is refused as a JWT: never retried by introspection.
	_, err := p.Verify(context.Background(), iss.Mint(iss.Claims("u", "http://gw.test/other", "")))
	checkErr(t, err, ClassInvalidToken, reasonAudResource)
	if got := iss.Hits(providertest.Introspection); got != 1 {
		t.Fatalf("got %d introspection calls, want still 1", got)
	}
}

func TestIntrospectionNeverFollowsRedirects(t *testing.T) {
	var leaked atomic.Bool
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(true)
		w.Write([]byte(`{"active":true,"sub":"u"}`))
	}))
	defer sink.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, sink.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	clk := newClock()
	iss := newIssuer(t, clk)
	s := introspectionTenant(iss, nil)
	s.Config.Metadata = &MetadataOverride{IntrospectionEndpoint: redirector.URL + "/introspect"}
	p := newProvider(t, iss, s, clk, testSecrets, WithHTTPClient(redirector.Client()))
	_, err := p.Verify(context.Background(), "b3BhcXVl")
	checkErr(t, err, ClassInternal, reasonIntrospectBroken)
	if leaked.Load() {
		t.Fatal("got the token re-posted to the redirect target, want the redirect refused")
	}
}
