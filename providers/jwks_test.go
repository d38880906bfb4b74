package providers

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestUnknownKidFlood is the JWKS amplification check for one tenant (see
// checkUnknownKidFlood).
func TestUnknownKidFlood(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, ""))) // keys loaded
	checkUnknownKidFlood(t, clk, iss, func(int) *Provider { return p })
}

// checkUnknownKidFlood sends 10,000 forged tokens with random kids,
// concurrently and spread over 10 seconds of the clock (1ms each, so slow
// machines measure the same thing), token i to the provider at(i), whose
// keys are loaded: the authorization server must see at most 2 JWKS
// fetches in all.
func checkUnknownKidFlood(t *testing.T, clk *clock, iss *providertest.Issuer, at func(i int) *Provider) {
	t.Helper()
	const n = 10000
	toks := forgedKIDTokens(t, iss, n)
	start, clockStart := time.Now(), clk.Now()
	var wrong atomic.Int64
	inParallel(n, 64, func(i int) {
		clk.Advance(time.Millisecond)
		_, err := at(i).Verify(context.Background(), toks[i])
		var e *Error
		if !errors.As(err, &e) || e.Reason != reasonUnknownKey {
			wrong.Add(1)
		}
	})
	if span := clk.Now().Sub(clockStart); span != 10*time.Second {
		t.Fatalf("got the tokens spread over %v, want 10s", span)
	}
	if w := wrong.Load(); w != 0 {
		t.Fatalf("got %d tokens not refused as unknown key, want 0", w)
	}
	if got := iss.Hits(providertest.JWKS); got > 2 {
		t.Fatalf("got %d JWKS fetches for %d unknown kids in 10s, want at most 2", got, n)
	}
	t.Logf("%d forged tokens in %v of real time: %d JWKS fetches", n, time.Since(start), iss.Hits(providertest.JWKS))
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	forged := func() string {
		return iss.Mint(iss.Claims("u", testResource, ""), providertest.KID(randomKID()))
	}
	steps := []struct {
		advance   time.Duration
		wantFetch int
	}{
		{0, 2},                // the first miss refetches once, even just after the load
		{5 * time.Second, 2},  // inside the 10s interval: no more
		{6 * time.Second, 3},  // 11s after that miss: one refetch
		{1 * time.Second, 3},  // and then quiet again
		{10 * time.Second, 4}, // next interval
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		for range 20 {
			_, err := p.Verify(context.Background(), forged())
			checkErr(t, err, ClassInvalidToken, reasonUnknownKey)
		}
		if got := iss.Hits(providertest.JWKS); got != st.wantFetch {
			t.Fatalf("step %d: got %d JWKS fetches, want %d", i, got, st.wantFetch)
		}
	}
}

func TestBadSignatureRefetchIsRateLimited(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	tok := iss.Mint(iss.Claims("u", testResource, ""))
	mustVerify(t, p, tok)
	s := strings.Split(tok, ".")
	forged := func() string {
		fs := strings.Split(iss.Mint(iss.Claims("u", testResource, "read:todos delete:todos")), ".")
		return s[0] + "." + fs[1] + "." + s[2] // a known kid, a signature of other claims
	}
	for round, want := range []int{2, 3, 4} {
		for range 20 {
			_, err := p.Verify(context.Background(), forged())
			checkErr(t, err, ClassInvalidToken, reasonBadSignature)
		}
		if got := iss.Hits(providertest.JWKS); got != want {
			t.Fatalf("round %d: got %d JWKS fetches, want %d", round, got, want)
		}
		clk.Advance(11 * time.Second)
	}
}

func TestRotationReusingTheKid(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithKeys(jose.ES256))
	// Some providers keep one kid and swap the key behind it.
	iss.SetJWKS(func(set *jose.JSONWebKeySet) {
		for i := range set.Keys {
			set.Keys[i].KeyID = "static"
		}
	})
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, ""), providertest.KID("static")))
	// A rotation right after the first fetch is picked up at once.
	iss.Rotate(jose.ES256)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, ""), providertest.KID("static")))
	// Another one inside the interval waits for it: that refetch was a miss.
	iss.Rotate(jose.ES256)
	next := iss.Mint(iss.Claims("u", testResource, ""), providertest.KID("static"))
	_, err := p.Verify(context.Background(), next)
	checkErr(t, err, ClassInvalidToken, reasonBadSignature)
	clk.Advance(11 * time.Second)
	mustVerify(t, p, next)
}

func TestKeyRotation(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	ctx := context.Background()
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, ""), providertest.Alg(jose.ES256)))

	newKID, oldKID := iss.Rotate(jose.ES256)
	clk.Advance(11 * time.Second)

	// A token under the new key forces one refetch and then verifies.
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, ""), providertest.WithKey(newKID)))
	if got := iss.Hits(providertest.JWKS); got != 2 {
		t.Fatalf("got %d JWKS fetches, want 2 (initial + rotation)", got)
	}
	// The withdrawn key no longer verifies anything new.
	_, err := p.Verify(ctx, iss.Mint(iss.Claims("u", testResource, ""), providertest.WithKey(oldKID)))
	checkErr(t, err, ClassInvalidToken, reasonUnknownKey)
}

func TestKeyWithdrawalPickedUpByPeriodicRefresh(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetJWKSCacheControl("public, max-age=300")
	p := newProvider(t, iss, settings(iss, KindOIDC), clk, WithVerifiedTokenCache(0))
	kid := iss.KeyID(jose.RS256)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	iss.RemoveKey(kid)

	clk.Advance(299 * time.Second)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, ""))) // still fresh
	if got := iss.Hits(providertest.JWKS); got != 1 {
		t.Fatalf("got %d JWKS fetches inside max-age, want 1", got)
	}
	clk.Advance(2 * time.Second)
	// Past max-age the cached keys still answer while a refresh runs.
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	waitIdle(t, p)
	if got := iss.Hits(providertest.JWKS); got != 2 {
		t.Fatalf("got %d JWKS fetches after max-age, want 2", got)
	}
	_, err := p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, "")))
	checkErr(t, err, ClassInvalidToken, reasonUnknownKey)
}

func TestStaleIfError(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk, WithVerifiedTokenCache(0))
	tok := func() string { return iss.Mint(iss.Claims("u", testResource, "")) }
	mustVerify(t, p, tok())

	iss.SetStatus(providertest.JWKS, http.StatusServiceUnavailable)
	clk.Advance(16 * time.Minute) // past the default 15 minute freshness
	mustVerify(t, p, tok())       // cached keys serve; a refresh starts and fails
	waitIdle(t, p)
	if got := iss.Hits(providertest.JWKS); got != 2 {
		t.Fatalf("got %d JWKS fetches, want 2", got)
	}
	for range 10 {
		mustVerify(t, p, tok()) // within the backoff: no new fetch
	}
	if got := iss.Hits(providertest.JWKS); got != 2 {
		t.Fatalf("got %d JWKS fetches during the backoff, want 2", got)
	}

	// An unknown kid while the JWKS is failing may be a rotation we cannot
	// see: unavailable, not invalid.
	_, err := p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, ""), providertest.KID("next-key")))
	checkErr(t, err, ClassUnavailable, reasonKeysDown)

	// Stale keys are only trusted for so long.
	clk.Advance(25 * time.Hour)
	_, err = p.Verify(context.Background(), tok())
	checkErr(t, err, ClassUnavailable, reasonKeysDown)

	iss.SetStatus(providertest.JWKS, 0)
	clk.Advance(2 * time.Minute)
	mustVerify(t, p, tok())
}

func TestCacheTTL(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 15 * time.Minute},
		{"max-age=600", 10 * time.Minute},
		{"public, max-age=7200, must-revalidate", 2 * time.Hour},
		{"max-age=5", time.Minute},
		{"no-cache", time.Minute},
		{"no-store", time.Minute},
		{"max-age=31536000", 24 * time.Hour},
		{"max-age=garbage", 15 * time.Minute},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Cache-Control", tt.header)
		}
		if got := cacheTTL(h, defaultTuning); got != tt.want {
			t.Errorf("Cache-Control %q: got %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestJWKSKeyHygiene(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	ecKID := iss.KeyID(jose.ES256)
	edKID := iss.KeyID(jose.EdDSA)
	iss.SetJWKS(func(set *jose.JSONWebKeySet) {
		for i := range set.Keys {
			switch set.Keys[i].KeyID {
			case ecKID: // many providers omit alg and use
				set.Keys[i].Algorithm, set.Keys[i].Use = "", ""
			case edKID: // an encryption key is not for signatures
				set.Keys[i].Use = "enc"
			}
		}
		// A symmetric key in a public JWKS must never be used.
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct-1", Algorithm: "HS256"})
	})
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, ""), providertest.Alg(jose.ES256)))
	_, err := p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, ""), providertest.Alg(jose.EdDSA)))
	checkErr(t, err, ClassInvalidToken, reasonUnknownKey)
	ks := p.disc.cur.Load().jwks
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, k := range ks.keys {
		if k.KeyID == "oct-1" || k.KeyID == edKID {
			t.Fatalf("got key %q in the usable set, want it skipped", k.KeyID)
		}
	}
}

func TestJWKSResponseCap(t *testing.T) {
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"keys":[` + strings.Repeat(" ", 2<<20) + `]}`))
	}))
	defer big.Close()
	clk := newClock()
	iss := newIssuer(t, clk)
	s := settings(iss, KindOIDC)
	s.Config.Metadata = &MetadataOverride{JWKSURI: big.URL + "/jwks"}
	p := newProvider(t, iss, s, clk, WithHTTPClient(big.Client()))
	_, err := p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, "")))
	checkErr(t, err, ClassUnavailable, reasonKeysDown)
	if !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("got %v, want the size cap named", err)
	}
}

func TestJWKSWithNoUsableKeys(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetJWKS(func(set *jose.JSONWebKeySet) { set.Keys = nil })
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	_, err := p.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, "")))
	checkErr(t, err, ClassUnavailable, reasonKeysDown)
}

func TestJWKSIgnoresMalformedEntries(t *testing.T) {
	raw := []json.RawMessage{
		json.RawMessage(`{"kty":"EC","crv":"P-999","x":"AA","y":"AA"}`),
		json.RawMessage(`{"kty":"weird"}`),
		json.RawMessage(`"not an object"`),
	}
	keys, skipped := parseJWKS(raw)
	if len(keys) != 0 || skipped != 3 {
		t.Fatalf("got %d keys and %d skipped, want 0 and 3", len(keys), skipped)
	}
}

func randomKID() string { return rand.Text() }

func TestJWKSRedirectToPlainHTTPRefused(t *testing.T) {
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		plainHits.Add(1)
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
	}))
	defer secure.Close()
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithKeys(jose.ES256))
	s := Settings{Tenant: "t", Resource: testResource, Config: Config{Type: KindOIDC, Issuer: secure.URL,
		Metadata: &MetadataOverride{JWKSURI: secure.URL + "/jwks"}}}
	p := newProvider(t, iss, s, clk, WithHTTPClient(secure.Client()))
	c := iss.Claims("u", testResource, "")
	c["iss"] = secure.URL
	_, err := p.Verify(context.Background(), iss.Mint(c))
	checkErr(t, err, ClassUnavailable, reasonKeysDown)
	if !strings.Contains(err.Error(), "refusing a redirect") || plainHits.Load() != 0 {
		t.Fatalf("got %v and %d plain-http requests, want the downgrade refused before any request", err, plainHits.Load())
	}
}
