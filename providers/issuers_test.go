package providers

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

func tenantResource(i int) string { return fmt.Sprintf("http://gw.test/t%d", i) }

// tenantsOn builds n resource-strategy tenants of iss sharing reg; tenant i
// is "t<i>" at tenantResource(i).
func tenantsOn(t testing.TB, iss *providertest.Issuer, clk *clock, reg *Issuers, n int, opts ...Option) []*Provider {
	t.Helper()
	ps := make([]*Provider, n)
	for i := range ps {
		s := settings(iss, KindOIDC)
		s.Tenant, s.Resource = fmt.Sprintf("t%d", i), tenantResource(i)
		ps[i] = newProvider(t, iss, s, clk, append([]Option{WithIssuers(reg)}, opts...)...)
	}
	return ps
}

// verifyAll verifies, concurrently, toks[i] at ps[i] and fails the test
// unless every one is accepted.
func verifyAll(t *testing.T, ps []*Provider, toks []string) {
	t.Helper()
	var failed atomic.Int64
	var first atomic.Value
	inParallel(len(ps), 256, func(i int) {
		if _, err := ps[i].Verify(context.Background(), toks[i]); err != nil {
			failed.Add(1)
			first.CompareAndSwap(nil, fmt.Sprintf("tenant %d: %v", i, err))
		}
	})
	if n := failed.Load(); n > 0 {
		t.Fatalf("got %d of %d tokens refused (first: %v), want all accepted", n, len(ps), first.Load())
	}
}

// mintFor mints, for each tenant, a token meant for it.
func mintFor(iss *providertest.Issuer, n int, opts ...providertest.MintOption) []string {
	toks := make([]string, n)
	for i := range toks {
		toks[i] = iss.Mint(iss.Claims("u", tenantResource(i), ""), opts...)
	}
	return toks
}

// warmTenants builds n tenants of one issuer (an ES256 key: cheap to sign)
// sharing a registry, and has each verify a token, so their keys are
// loaded.
func warmTenants(t *testing.T, n int) (*clock, *providertest.Issuer, []*Provider) {
	t.Helper()
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithKeys(jose.ES256))
	ps := tenantsOn(t, iss, clk, NewIssuers(), n)
	verifyAll(t, ps, mintFor(iss, n))
	return clk, iss, ps
}

// TestTenThousandTenantsShareOneIssuer is issue 12's measure: 10,000
// tenants on one issuer, one token each, verified concurrently while the
// issuer is slow enough for them to pile up, cost at most 2 discovery and 2
// JWKS fetches (without the registry: 10,000 of each). Metrics count each
// fetch once, and every tenant's status is the issuer's.
func TestTenThousandTenantsShareOneIssuer(t *testing.T) {
	const n = 10000
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithKeys(jose.ES256)) // cheap to sign 10,000 times
	m := NewMetrics(prometheus.NewRegistry())
	reg := NewIssuers()
	ps := tenantsOn(t, iss, clk, reg, n, WithMetrics(m))
	toks := mintFor(iss, n)
	iss.SetDelay(20 * time.Millisecond)
	start := time.Now()
	verifyAll(t, ps, toks)
	md, jwks := iss.MetadataHits(), iss.Hits(providertest.JWKS)
	t.Logf("%d tenants verified in %v: %d metadata and %d JWKS requests", n, time.Since(start), md, jwks)
	if md > 2 || jwks > 2 {
		t.Fatalf("got %d metadata and %d JWKS requests for %d tenants on one issuer, want at most 2 and 2", md, jwks, n)
	}
	for _, c := range []struct {
		name string
		vec  *prometheus.CounterVec
		want int
	}{
		{"discovery", m.discovery, 1},
		{"JWKS", m.jwks, jwks},
	} {
		if got := testutil.ToFloat64(c.vec.WithLabelValues(iss.Issuer(), "ok")); got != float64(c.want) {
			t.Errorf("%s fetches counted: got %v, want %d", c.name, got, c.want)
		}
	}

	list := reg.List()
	if len(list) != 1 || list[0].Tenants != n || list[0].Issuer != iss.Issuer() || list[0].Type != KindOIDC {
		t.Fatalf("got issuers %+v, want one %s issuer with %d tenants", list, iss.Issuer(), n)
	}
	want := list[0].Status
	if !want.Discovered || want.Keys != 1 || want.IssuerID == "" {
		t.Fatalf("got issuer status %+v, want discovered with 1 key", want)
	}
	for i, p := range ps {
		if got := p.Status(); got != want {
			t.Fatalf("tenant %d: got status %+v, want the issuer's %+v", i, got, want)
		}
	}
}

// TestRotationReachesEveryTenantAtOnce: a key rotated at the issuer is
// found by every tenant after one refetch, however many see it at once.
func TestRotationReachesEveryTenantAtOnce(t *testing.T) {
	const n = 200
	clk, iss, ps := warmTenants(t, n)
	for i, wait := range []time.Duration{0, 11 * time.Second} {
		// Right after the first fetch, and once the unknown-kid interval
		// has passed since the last refetch.
		clk.Advance(wait)
		newKID, _ := iss.Rotate(jose.ES256)
		verifyAll(t, ps, mintFor(iss, n, providertest.WithKey(newKID)))
		if got, want := iss.Hits(providertest.JWKS), i+2; got != want {
			t.Fatalf("rotation %d: got %d JWKS fetches, want %d (one per rotation)", i+1, got, want)
		}
	}
}

// TestMissSeesKeysAnotherTenantFetched: a tenant that read the keys just
// before another tenant's miss refetched them looks again, instead of being
// refused by the unknown-kid rate limit that refetch just armed. (Verify
// leaves that window too short for a test to hit it reliably.)
func TestMissSeesKeysAnotherTenantFetched(t *testing.T) {
	_, iss, ps := warmTenants(t, 2)
	ks := ps[0].disc.cur.Load().jwks
	_, seen, err := ks.current(context.Background()) // tenant 0 reads the keys
	if err != nil {
		t.Fatal(err)
	}
	newKID, _ := iss.Rotate(jose.ES256)
	mustVerify(t, ps[1], mintFor(iss, 2, providertest.WithKey(newKID))[1]) // tenant 1's miss refetches
	if !ks.refreshForMiss(context.Background(), seen) {
		t.Fatal("got no second look for keys read before another tenant's refetch, want one")
	}
	if got := iss.Hits(providertest.JWKS); got != 2 {
		t.Fatalf("got %d JWKS fetches, want 2 (the second look fetches nothing)", got)
	}
}

// TestUnknownKidLimitIsPerIssuer: the flood of forged kids spread over 100
// tenants of one issuer costs what it costs one tenant.
func TestUnknownKidLimitIsPerIssuer(t *testing.T) {
	const n = 100
	clk, iss, ps := warmTenants(t, n)
	checkUnknownKidFlood(t, clk, iss, func(i int) *Provider { return ps[i%n] })
}

// TestIssuerOutlivesItsFirstTenants: closing some tenants' providers (a
// reload that removes or replaces them) leaves the issuer working for the
// others; closing the last one stops its background work.
func TestIssuerOutlivesItsFirstTenants(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithKeys(jose.ES256))
	reg := NewIssuers()
	ps := tenantsOn(t, iss, clk, reg, 3)
	// A reload that changed tenant t0 builds a new provider for it before
	// the old one is retired: one tenant, two references.
	ps = append(ps, tenantsOn(t, iss, clk, reg, 1)...)
	toks := mintFor(iss, 3)
	verifyAll(t, ps, append(toks, toks[0]))
	is := ps[0].disc.iss
	tenantCount := func() int {
		t.Helper()
		list := reg.List()
		if len(list) == 0 {
			return 0
		}
		if len(list) != 1 {
			t.Fatalf("got %d issuers, want 1", len(list))
		}
		return list[0].Tenants
	}
	if got := tenantCount(); got != 3 {
		t.Fatalf("got %d tenants, want 3 (t0's two providers count once)", got)
	}

	ps[0].Close() // t0's old provider, after the grace period
	ps[1].Close() // t1, removed
	if got := tenantCount(); got != 2 {
		t.Fatalf("after closing two providers: got %d tenants, want 2", got)
	}
	// The survivors still fetch: a rotation is picked up.
	newKID, _ := iss.Rotate(jose.ES256)
	rotated := mintFor(iss, 3, providertest.WithKey(newKID))
	mustVerify(t, ps[2], rotated[2])
	mustVerify(t, ps[3], rotated[0])
	if got := iss.Hits(providertest.JWKS); got != 2 {
		t.Fatalf("got %d JWKS fetches, want 2 (the rotation refetched for the survivors)", got)
	}

	ps[2].Close()
	ps[3].Close()
	ps[3].Close() // twice: must not release another tenant's reference
	if got := tenantCount(); got != 0 {
		t.Fatalf("after closing every provider: got %d tenants, want none", got)
	}
	is.deps.bg.mu.Lock()
	closed := is.deps.bg.closed
	is.deps.bg.mu.Unlock()
	if !closed || is.deps.bg.active.Load() != 0 {
		t.Fatalf("got runner closed %t with %d goroutines, want closed with none", closed, is.deps.bg.active.Load())
	}
	// Nothing is fetched any more, even for a key only a fetch could find.
	clk.Advance(time.Minute)
	newKID, _ = iss.Rotate(jose.ES256)
	ps[2].Verify(context.Background(), iss.Mint(iss.Claims("u", tenantResource(2), ""), providertest.WithKey(newKID)))
	if got := iss.Hits(providertest.JWKS); got != 2 {
		t.Fatalf("got %d JWKS fetches after the last Close, want still 2", got)
	}
}

// TestSharedFetchSurvivesOneTenantsClose: a fetch one tenant started keeps
// running for the others when that tenant's provider closes, and is
// cancelled (without waiting for the issuer) when the last one closes.
func TestSharedFetchSurvivesOneTenantsClose(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	ps := tenantsOn(t, iss, clk, NewIssuers(), 2)
	iss.SetDelay(time.Hour) // the fetch hangs until it is cancelled
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := ps[0].Verify(ctx, iss.Mint(iss.Claims("u", tenantResource(0), "")))
	checkErr(t, err, ClassUnavailable, reasonCancelled)
	ps[0].Close()
	if got := background(ps[1]); got != 1 {
		t.Fatalf("after the first tenant closed: got %d background fetches, want the 1 the other tenant still needs", got)
	}
	done := make(chan struct{})
	go func() { ps[1].Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the last Close did not return: the shared fetch ignores cancellation")
	}
	if got := background(ps[1]); got != 0 {
		t.Fatalf("got %d background goroutines after the last Close, want 0", got)
	}
}

// TestSharedIssuerKeepsTenantsApart: sharing keys changes nothing about
// which tenant accepts which token. A token for one tenant is refused at
// another of the same issuer by audience, and a tenant's algorithm
// allow-list narrows the shared keys for it alone.
func TestSharedIssuerKeepsTenantsApart(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithKeys(jose.ES256, jose.RS256))
	reg := NewIssuers()
	ps := tenantsOn(t, iss, clk, reg, 2)
	s := settings(iss, KindOIDC)
	s.Tenant, s.Resource = "rsa-only", tenantResource(2)
	s.Config.Algorithms = []string{"RS256"}
	ps = append(ps, newProvider(t, iss, s, clk, WithIssuers(reg)))

	forA := iss.Mint(iss.Claims("u", tenantResource(0), ""), providertest.Alg(jose.ES256))
	mustVerify(t, ps[0], forA)
	_, err := ps[1].Verify(context.Background(), forA)
	checkErr(t, err, ClassInvalidToken, reasonAudResource)

	_, err = ps[2].Verify(context.Background(), iss.Mint(iss.Claims("u", tenantResource(2), ""), providertest.Alg(jose.ES256)))
	checkErr(t, err, ClassInvalidToken, reasonAlgNotAllowed("ES256"))
	mustVerify(t, ps[2], iss.Mint(iss.Claims("u", tenantResource(2), ""), providertest.Alg(jose.RS256)))
	mustVerify(t, ps[1], iss.Mint(iss.Claims("u", tenantResource(1), ""), providertest.Alg(jose.ES256)))

	if list := reg.List(); len(list) != 1 || list[0].Tenants != 3 {
		t.Fatalf("got issuers %+v, want the three tenants on one", list)
	}
	if m, j := iss.MetadataHits(), iss.Hits(providertest.JWKS); m != 1 || j != 1 {
		t.Fatalf("got %d metadata and %d JWKS requests, want 1 and 1", m, j)
	}
}

// TestWhatTenantsShareAnIssuerBy: tenants share an issuer's state exactly
// when what is fetched, and how, is the same.
func TestWhatTenantsShareAnIssuerBy(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	otherClient := &http.Client{Transport: iss.Client().Transport}
	tests := []struct {
		name   string
		edit   func(*Settings)
		opts   []Option
		shared bool
	}{
		{name: "another audience", edit: func(s *Settings) {
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"todo-api"}}
		}, shared: true},
		{name: "algorithms", edit: func(s *Settings) { s.Config.Algorithms = []string{"ES256"} }, shared: true},
		{name: "leeway", edit: func(s *Settings) { l := Duration(2 * time.Minute); s.Config.Leeway = &l }, shared: true},
		{name: "jwt types", edit: func(s *Settings) { s.Config.JWTTypes = []string{"at+jwt"} }, shared: true},
		{name: "scopes", edit: func(s *Settings) { s.Scopes = ScopeMap{PermRead: "todos.read"} }, shared: true},
		{name: "metadata override", edit: func(s *Settings) {
			s.Config.Metadata = &MetadataOverride{JWKSURI: iss.JWKSURL()}
		}},
		{name: "introspection endpoint override", edit: func(s *Settings) {
			s.Config.Metadata = &MetadataOverride{IntrospectionEndpoint: iss.IntrospectionURL()}
		}},
		{name: "jwks_min_refresh", edit: func(s *Settings) { d := Duration(time.Minute); s.Config.JWKSMinRefresh = &d }},
		{name: "allow_http_issuer", edit: func(s *Settings) { s.Config.AllowHTTPIssuer = true }},
		{name: "type", edit: func(s *Settings) { s.Config.Type = KindOAuth }},
		{name: "HTTP client", opts: []Option{WithHTTPClient(otherClient)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewIssuers()
			a := tenantsOn(t, iss, clk, reg, 1)[0]
			s := settings(iss, KindOIDC)
			s.Tenant, s.Resource = "b", tenantResource(1)
			if tt.edit != nil {
				tt.edit(&s)
			}
			b := newProvider(t, iss, s, clk, append(tt.opts, WithIssuers(reg))...)
			ida, idb := a.Status().IssuerID, b.Status().IssuerID
			if got := ida == idb && len(reg.List()) == 1; got != tt.shared {
				t.Fatalf("got shared %t (issuer ids %q and %q, %d issuers), want %t", got, ida, idb, len(reg.List()), tt.shared)
			}
			// Shared or not, each verifies its own tokens.
			mustVerify(t, a, iss.Mint(iss.Claims("u", tenantResource(0), "")))
			c := iss.Claims("u", tenantResource(1), "")
			if s.Audience.Strategy == AudienceValues {
				c["aud"] = "todo-api"
			}
			mustVerify(t, b, iss.Mint(c, providertest.Alg(jose.ES256)))
		})
	}
}
