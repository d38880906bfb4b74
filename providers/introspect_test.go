package providers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
		{name: "minimal answer without audience permission", edit: func(c *IntrospectionConfig) { c.AllowMissingIssuer, c.AcceptedClients = true, []string{"test-client"} },
			resp: minimalWithClient, reason: reasonNoAudience},
		{name: "minimal answer allowed, from an accepted client", edit: func(c *IntrospectionConfig) {
			c.AllowMissingIssuer, c.AllowMissingAudience, c.AcceptedClients = true, true, []string{"test-client"}
		}, resp: minimalWithClient},
		{name: "minimal answer of another client", edit: func(c *IntrospectionConfig) {
			c.AllowMissingIssuer, c.AllowMissingAudience, c.AcceptedClients = true, true, []string{"todo-app"}
		}, resp: minimalWithClient, reason: reasonClientNotAccepted},
		{name: "minimal answer without a client", edit: func(c *IntrospectionConfig) {
			c.AllowMissingIssuer, c.AllowMissingAudience, c.AcceptedClients = true, true, []string{"test-client"}
		}, resp: minimal, reason: reasonClientNotAccepted},
		{name: "full answer of a client not accepted", edit: func(c *IntrospectionConfig) { c.AcceptedClients = []string{"todo-app"} },
			resp: func(map[string]any) {}, reason: reasonClientNotAccepted},
		{name: "present iss still checked", edit: func(c *IntrospectionConfig) { c.AllowMissingIssuer, c.AcceptedClients = true, []string{"test-client"} },
			resp: func(m map[string]any) { m["iss"] = "https://evil.example" }, reason: reasonIssuer},
		{name: "present aud still checked", edit: func(c *IntrospectionConfig) {
			c.AllowMissingAudience, c.AcceptedClients = true, []string{"test-client"}
		},
			resp: func(m map[string]any) { m["aud"] = "other" }, reason: reasonAudResource},
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

// minimalWithClient is minimal and the client the token was issued to.
func minimalWithClient(m map[string]any) {
	minimal(m)
	m["client_id"] = "test-client"
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

// randomOpaqueTokens returns n made-up opaque tokens, which the issuer
// answers inactive.
func randomOpaqueTokens(n int) []string {
	toks := make([]string, n)
	for i := range toks {
		b := make([]byte, 24)
		rand.Read(b)
		toks[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	return toks
}

// A flood of made-up tokens, each refused by the authorization server,
// does not evict the cached answer of a token that works: refusals have a
// cache of their own. (Before, 12,000 of them pushed it out of the one
// cache of 10,000, and the next request with the good token was sent to
// the server again.)
func TestIntrospectionRefusalsDoNotEvictWorkingTokens(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	// A budget wide enough for the whole flood: this test is about the
	// caches alone.
	p := newProvider(t, iss, introspectionTenant(iss, func(c *IntrospectionConfig) { c.MaxCallsPerSecond = intPtr(maxIntrospectRate) }), clk, testSecrets)
	good := iss.MintOpaque(iss.Claims("u", testResource, "read:todos"))
	mustVerify(t, p, good)
	const flood = 12000
	var wrong atomic.Int32
	for range 2 { // two seconds of the budget
		inParallel(flood/2, 8, func(i int) {
			_, err := p.Verify(context.Background(), randomOpaqueTokens(1)[0])
			var e *Error
			if (!errors.As(err, &e) || e.Reason != reasonInactive) && wrong.Add(1) == 1 {
				t.Errorf("a made-up token: got %v, want %q", err, reasonInactive)
			}
		})
		clk.Advance(time.Second)
	}
	if t.Failed() {
		return
	}
	calls := iss.Hits(providertest.Introspection)
	mustVerify(t, p, good)
	if got := iss.Hits(providertest.Introspection); got != calls {
		t.Errorf("the working token was introspected again after %d refused tokens (%d calls, then %d), want a cache hit", flood, calls, got)
	}
	if n := p.intro.refused.len(); n != refusedIntrospectCacheSize {
		t.Errorf("got %d refusals cached, want the refusal cache full at %d", n, refusedIntrospectCacheSize)
	}
}

// Past its budget of calls per second, a tenant answers a token neither
// cache knows with "unavailable" and a Retry-After of a second, never with
// a refusal, and does not call the authorization server; cached answers
// keep working, and the budget refills with time.
func TestIntrospectionBudget(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	m := NewMetrics(prometheus.NewRegistry())
	p := newProvider(t, iss, introspectionTenant(iss, func(c *IntrospectionConfig) { c.MaxCallsPerSecond = intPtr(5) }), clk, testSecrets, WithMetrics(m))
	ctx := context.Background()
	cached := iss.MintOpaque(iss.Claims("cached", testResource, "read:todos"))
	mustVerify(t, p, cached) // 1 of the 5

	inactive, busy := 0, 0
	for _, tok := range randomOpaqueTokens(20) {
		_, err := p.Verify(ctx, tok)
		var e *Error
		switch {
		case !errors.As(err, &e):
			t.Fatalf("got %v, want an *Error", err)
		case e.Reason == reasonInactive:
			inactive++
		case e.Class == ClassUnavailable && e.Reason == reasonIntrospectBusy && e.RetryAfter == time.Second:
			busy++
		default:
			t.Fatalf("got %v (class %d, retry after %v), want inactive or over budget with a 1s Retry-After", err, e.Class, e.RetryAfter)
		}
	}
	if inactive != 4 || busy != 16 || iss.Hits(providertest.Introspection) != 5 {
		t.Errorf("got %d inactive, %d over budget and %d introspection calls, want 4, 16 and 5", inactive, busy, iss.Hits(providertest.Introspection))
	}
	if got := testutil.ToFloat64(m.overBudget.WithLabelValues("acme")); got != 16 {
		t.Errorf("got %v tokens counted over budget, want 16", got)
	}
	// A cached answer needs no call; a new good token waits for the budget
	// with a 503, not a 401.
	mustVerify(t, p, cached)
	fresh := iss.MintOpaque(iss.Claims("fresh", testResource, "read:todos"))
	_, err := p.Verify(ctx, fresh)
	checkErr(t, err, ClassUnavailable, reasonIntrospectBusy)
	clk.Advance(time.Second)
	mustVerify(t, p, fresh)
	if got := iss.Hits(providertest.Introspection); got != 6 {
		t.Errorf("got %d introspection calls, want 6", got)
	}
}

func intPtr(n int) *int { return &n }

// During a flood of made-up tokens from two addresses, the budget stays
// fair: each address spends at most a quarter of it, so a new user at
// another address gets their token introspected; and a token that was
// active, past its cache_ttl when the budget is spent, is answered from
// its last answer, within its exp, and never after (issue 24: new users got
// 503 on 6 of 7 tries, and cached users once their cache time ended).
func TestIntrospectionBudgetIsFair(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, introspectionTenant(iss, func(c *IntrospectionConfig) {
		c.MaxCallsPerSecond = intPtr(20)
		c.CacheTTL = durPtr(10 * time.Second)
	}), clk, testSecrets)
	from := func(addr string) context.Context { return WithSource(context.Background(), addr) }
	regular := iss.MintOpaque(iss.Claims("regular", testResource, "read:todos")) // exp: in an hour
	if _, err := p.Verify(from("192.0.2.9"), regular); err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Second) // past cache_ttl: the next use asks again

	busy := map[string]int{}
	for _, attacker := range []string{"198.51.100.1", "198.51.100.2"} {
		for _, tok := range randomOpaqueTokens(50) {
			if _, err := p.Verify(from(attacker), tok); err != nil && strings.Contains(err.Error(), reasonIntrospectBusy) {
				busy[attacker]++
			}
		}
	}
	// 20 a second, a quarter each: 5 calls, 45 tokens answered 503.
	if busy["198.51.100.1"] != 45 || busy["198.51.100.2"] != 45 {
		t.Errorf("over budget: %v, want 45 of 50 for each attacker (a share of 5)", busy)
	}
	newcomer := iss.MintOpaque(iss.Claims("newcomer", testResource, "read:todos"))
	if _, err := p.Verify(from("203.0.113.7"), newcomer); err != nil {
		t.Errorf("a new user elsewhere during the flood: %v, want verified", err)
	}
	// The attackers spend the rest of the budget from more addresses.
	for i := range 20 {
		for _, tok := range randomOpaqueTokens(5) {
			p.Verify(from(fmt.Sprintf("198.51.100.%d", 10+i)), tok)
		}
	}
	hits := iss.Hits(providertest.Introspection)
	if _, err := p.Verify(from("192.0.2.9"), regular); err != nil {
		t.Errorf("a token that was active, with the budget spent: %v, want its last answer", err)
	}
	if iss.Hits(providertest.Introspection) != hits {
		t.Error("the stale answer cost an introspection call")
	}
	st := p.Status().Introspection.Budget
	if st.CallsPerSecond != 20 || st.Stale != 1 || st.OverBudget < 90 || st.Available >= 1 {
		t.Errorf("budget status %+v, want 20 a second, 1 stale answer, at least 90 over budget, none available", st)
	}
	// Never past the token's exp.
	expiring := iss.MintOpaque(func() map[string]any {
		c := iss.Claims("expiring", testResource, "read:todos")
		c["exp"] = clk.Now().Add(30 * time.Second).Unix()
		return c
	}())
	clk.Advance(time.Second)
	if _, err := p.Verify(from("192.0.2.10"), expiring); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Second)
	for i := range 40 { // spend the refilled budget
		for _, tok := range randomOpaqueTokens(5) {
			p.Verify(from(fmt.Sprintf("198.51.100.%d", 100+i)), tok)
		}
	}
	if _, err := p.Verify(from("192.0.2.10"), expiring); err == nil {
		t.Error("a token past its exp was answered from its last answer")
	}
}

func durPtr(d time.Duration) *Duration { v := Duration(d); return &v }
