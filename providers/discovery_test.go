package providers

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

func TestDiscoveryURLs(t *testing.T) {
	tests := []struct {
		kind   Kind
		issuer string
		want   []string
	}{
		{KindLogto, "https://acme.logto.app/oidc", []string{
			"https://acme.logto.app/oidc/.well-known/openid-configuration",
		}},
		{KindOIDC, "https://login.example/realms/r1", []string{
			"https://login.example/realms/r1/.well-known/openid-configuration",
			"https://login.example/.well-known/openid-configuration/realms/r1",
			"https://login.example/.well-known/oauth-authorization-server/realms/r1",
		}},
		{KindOIDC, "https://tenant.auth0.com/", []string{
			"https://tenant.auth0.com/.well-known/openid-configuration",
			"https://tenant.auth0.com/.well-known/oauth-authorization-server",
		}},
		{KindOAuth, "https://auth.example/as", []string{
			"https://auth.example/.well-known/oauth-authorization-server/as",
			"https://auth.example/.well-known/openid-configuration/as",
			"https://auth.example/as/.well-known/openid-configuration",
			"https://auth.example/as/.well-known/oauth-authorization-server",
		}},
		{KindOAuth, "https://auth.example", []string{
			"https://auth.example/.well-known/oauth-authorization-server",
			"https://auth.example/.well-known/openid-configuration",
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+" "+tt.issuer, func(t *testing.T) {
			if got := DiscoveryURLs(tt.kind, tt.issuer); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDiscoveryFallbacks(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		served  providertest.Endpoint
		wantErr string // reason; "" for success
		tried   int    // metadata requests made
	}{
		{"oidc appended", KindOIDC, providertest.OpenIDAppended, "", 1},
		{"oidc falls back to openid inserted", KindOIDC, providertest.OpenIDInserted, "", 2},
		{"oidc falls back to RFC 8414", KindOIDC, providertest.OAuthInserted, "", 3},
		{"oauth RFC 8414 first", KindOAuth, providertest.OAuthInserted, "", 1},
		{"oauth falls back to openid appended", KindOAuth, providertest.OpenIDAppended, "", 3},
		{"oauth falls back to oauth appended", KindOAuth, providertest.OAuthAppended, "", 4},
		{"logto reads only its own location", KindLogto, providertest.OAuthInserted, reasonIssuerDown, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			iss := newIssuer(t, clk, providertest.WithPath("/tenant/oidc"), providertest.WithDiscovery(tt.served))
			p := newProvider(t, iss, settings(iss, tt.kind), clk)
			_, err := p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, "")))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
			} else {
				checkErr(t, err, ClassUnavailable, tt.wantErr)
			}
			if got := iss.Hits(tt.served); got != min(tt.tried, 1) {
				t.Errorf("got %d requests for the served document, want %d", got, min(tt.tried, 1))
			}
		})
	}
}

func TestIssuerMismatchNamesBoth(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetMetadata(func(_ providertest.Endpoint, m map[string]any) { m["issuer"] = iss.Issuer() + "/" })
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	_, err := p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, "")))
	checkErr(t, err, ClassInternal, reasonIssuerMismatch)
	var mm *IssuerMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("got %v, want an *IssuerMismatchError inside", err)
	}
	if mm.Configured != iss.Issuer() || mm.Discovered != iss.Issuer()+"/" {
		t.Fatalf("got configured %q discovered %q, want %q and %q", mm.Configured, mm.Discovered, iss.Issuer(), iss.Issuer()+"/")
	}
	msg := err.Error()
	if !strings.Contains(msg, `"`+iss.Issuer()+`"`) || !strings.Contains(msg, `"`+iss.Issuer()+`/"`) {
		t.Fatalf("got message %q, want both issuers named", msg)
	}
}

func TestNewMakesNoNetworkCall(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	newProvider(t, iss, settings(iss, KindOIDC), clk)
	if got := iss.MetadataHits() + iss.Hits(providertest.JWKS); got != 0 {
		t.Fatalf("got %d requests from New, want 0", got)
	}
}

func TestOutageThenRecovery(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	tok := iss.Mint(iss.Claims("u", testResource, ""))
	ctx := context.Background()

	iss.SetDown(true)
	_, err := p.Verify(ctx, tok)
	checkErr(t, err, ClassUnavailable, reasonIssuerDown)
	hits := iss.MetadataHits()

	// Within the backoff, the verifier answers at once without asking.
	iss.SetDown(false)
	_, err = p.Verify(ctx, tok)
	checkErr(t, err, ClassUnavailable, reasonIssuerDown)
	if got := iss.MetadataHits(); got != hits {
		t.Fatalf("got %d metadata requests during the backoff, want still %d", got, hits)
	}

	clk.Advance(2 * time.Second)
	if _, err := p.Verify(ctx, tok); err != nil {
		t.Fatalf("got %v after the issuer came back, want success", err)
	}
}

func TestBackoffGrows(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetStatus(providertest.OpenIDAppended, http.StatusBadGateway)
	iss.SetStatus(providertest.OAuthInserted, http.StatusBadGateway)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	tok := iss.Mint(iss.Claims("u", testResource, ""))
	var waits []time.Duration
	for range 5 {
		_, err := p.Verify(context.Background(), tok)
		checkErr(t, err, ClassUnavailable, reasonIssuerDown)
		p.disc.iss.mu.Lock()
		waits = append(waits, p.disc.iss.bo.retryAt.Sub(clk.Now()))
		p.disc.iss.mu.Unlock()
		clk.Advance(waits[len(waits)-1])
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] <= waits[i-1] {
			t.Fatalf("got waits %v, want each longer than the last", waits)
		}
	}
	if waits[0] < time.Second || waits[0] > 1100*time.Millisecond {
		t.Fatalf("got first wait %v, want about 1s", waits[0])
	}
}

func TestJWKSOutageOnFirstLoad(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetStatus(providertest.JWKS, http.StatusInternalServerError)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	tok := iss.Mint(iss.Claims("u", testResource, ""))
	_, err := p.Verify(context.Background(), tok)
	checkErr(t, err, ClassUnavailable, reasonKeysDown)

	iss.SetStatus(providertest.JWKS, 0)
	clk.Advance(2 * time.Second)
	mustVerify(t, p, tok)
}

func TestColdStartIsSingleFlight(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetDelay(50 * time.Millisecond) // make the callers pile up
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	tok := iss.Mint(iss.Claims("u", testResource, ""))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			_, err := p.Verify(context.Background(), tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
	}
	if m, j := iss.MetadataHits(), iss.Hits(providertest.JWKS); m != 1 || j != 1 {
		t.Fatalf("got %d metadata and %d JWKS requests, want 1 and 1", m, j)
	}
}

func TestMetadataOverrideSkipsDiscovery(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithDiscovery()) // publishes nothing
	s := settings(iss, KindOAuth)
	s.Config.Metadata = &MetadataOverride{JWKSURI: iss.JWKSURL()}
	p := newProvider(t, iss, s, clk)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	if got := iss.MetadataHits(); got != 0 {
		t.Fatalf("got %d metadata requests, want 0", got)
	}
}

func TestMetadataWithoutJWKS(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetMetadata(func(_ providertest.Endpoint, m map[string]any) { delete(m, "jwks_uri") })
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	_, err := p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, "")))
	checkErr(t, err, ClassInternal, reasonNoJWKS)
}

func TestMetadataRefreshKeepsKeys(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetJWKSCacheControl("max-age=86400") // keys outlive the metadata
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	p.disc.iss.deps.tuning.metadataTTL = time.Hour
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	clk.Advance(50 * time.Minute)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	clk.Advance(20 * time.Minute)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, ""))) // starts the refresh
	waitIdle(t, p)
	if m, j := iss.MetadataHits(), iss.Hits(providertest.JWKS); m != 2 || j != 1 {
		t.Fatalf("got %d metadata and %d JWKS requests, want 2 and 1 (keys kept across the refresh)", m, j)
	}
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	if j := iss.Hits(providertest.JWKS); j != 1 {
		t.Fatalf("got %d JWKS requests after the refresh, want 1", j)
	}
}

// waitIdle waits until the provider's background fetches, and its
// issuer's, are done.
func waitIdle(t testing.TB, p *Provider) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for background(p) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("background fetches still running after 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRecoveryWithinRetryAfter is an outage of at least 70 s on the
// provider's clock, with a request every second, of discovery and then of
// the keys alone:
// the first request more than RetryAfter after the issuer is back must
// succeed (the 503s promised Retry-After: RetryAfter), while the outage
// itself costs a handful of fetches, not one per request.
func TestRecoveryWithinRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		down   func(iss *providertest.Issuer, down bool)
		reason string
		hits   func(iss *providertest.Issuer) int
	}{
		{"discovery", func(iss *providertest.Issuer, down bool) { iss.SetDown(down) }, reasonIssuerDown,
			func(iss *providertest.Issuer) int { return iss.MetadataHits() }},
		{"keys", func(iss *providertest.Issuer, down bool) {
			status := 0
			if down {
				status = http.StatusServiceUnavailable
			}
			iss.SetStatus(providertest.JWKS, status)
		}, reasonKeysDown, func(iss *providertest.Issuer) int { return iss.Hits(providertest.JWKS) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			iss := newIssuer(t, clk)
			p := newProvider(t, iss, settings(iss, KindOIDC), clk)
			tok := iss.Mint(iss.Claims("u", testResource, ""))

			tc.down(iss, true)
			// The worst case: the issuer comes back just after a retry
			// failed, at least 70 s into the outage.
			const outage = 70 * time.Second
			for elapsed := time.Duration(0); ; elapsed += time.Second {
				before := tc.hits(iss)
				_, err := p.Verify(context.Background(), tok)
				checkErr(t, err, ClassUnavailable, tc.reason)
				retried := tc.hits(iss) > before
				clk.Advance(time.Second)
				if elapsed >= outage && retried {
					break
				}
			}
			// Doubling from 1 s to the 30 s cap: about 7 rounds in 70 s.
			if got := tc.hits(iss); got > 8*len(DiscoveryURLs(KindOIDC, iss.Issuer())) {
				t.Fatalf("got %d fetches in a %v outage with a request a second, want a handful: the issuer is hammered", got, outage)
			}
			tc.down(iss, false)
			clk.Advance(RetryAfter + time.Second)
			if _, err := p.Verify(context.Background(), tok); err != nil {
				t.Fatalf("got %v %v after the issuer came back (Retry-After promised %v), want success", err, RetryAfter+time.Second, RetryAfter)
			}
		})
	}
}

// TestTokenEndpoint: an upstream tenant's token exchange posts to the
// token endpoint of the tenant's issuer, discovered with the metadata.
func TestTokenEndpoint(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOAuth), clk)
	got, err := p.TokenEndpoint(context.Background())
	if err != nil || got != iss.Issuer()+"/token" {
		t.Errorf("TokenEndpoint() = %q, %v; want %q", got, err, iss.Issuer()+"/token")
	}
}
