package upstream

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/todo-gateway/todo-gateway/providers"
)

// testClock is a clock the test sets.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rsaKey is made once: RSA key generation is slow.
var rsaKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func newRSA(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsaKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSigner(t *testing.T, now func() time.Time, keys ...crypto.Signer) *Signer {
	t.Helper()
	s, err := NewSigner(now, keys...)
	if err != nil {
		t.Fatalf("NewSigner() error = %v", err)
	}
	return s
}

func jwksOf(t *testing.T, s *Signer) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatalf("JWKS() is not a JSON Web Key Set (%v): %s", err, s.JWKS())
	}
	return set
}

// verified is an assertion the test has verified with the signer's JWKS.
type verified struct {
	header jose.Header
	claims AssertionClaims
	raw    map[string]any
}

// verifyAssertion parses token allowing only alg, and verifies it with the
// key of the signer's JWKS its kid names.
func verifyAssertion(t *testing.T, s *Signer, token string, alg jose.SignatureAlgorithm) verified {
	t.Helper()
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("jwt.ParseSigned(%s) error = %v", alg, err)
	}
	if len(tok.Headers) != 1 {
		t.Fatalf("%d signatures, want 1", len(tok.Headers))
	}
	h := tok.Headers[0]
	set := jwksOf(t, s)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("the JWKS has %d keys of kid %q, want 1", len(keys), h.KeyID)
	}
	var v verified
	v.header = h
	if err := tok.Claims(keys[0].Key, &v.claims, &v.raw); err != nil {
		t.Fatalf("the assertion does not verify with the JWKS key %q: %v", h.KeyID, err)
	}
	return v
}

func TestNewSignerRefuses(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		keys    []crypto.Signer
		wantErr string
	}{
		{"no key", nil, "no signing key"},
		{"RSA", []crypto.Signer{newRSA(t)}, "signing key 1: the key must be ECDSA P-256 (ES256) or Ed25519 (EdDSA)"},
		{"P-384", []crypto.Signer{p384}, "signing key 1: an ECDSA key must be on P-256"},
		{"P-521", []crypto.Signer{p521}, "P-256"},
		{"a good key then a P-384 key", []crypto.Signer{newP256(t), p384}, "signing key 2:"},
		{"a good key then an RSA key", []crypto.Signer{newEd25519(t), newRSA(t)}, "signing key 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(nil, tt.keys...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewSigner() error = %v, want one containing %q", err, tt.wantErr)
			}
			if s != nil {
				t.Errorf("NewSigner() = %v with its error, want nil", s)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	ec, ed := newP256(t), newEd25519(t)
	s := newSigner(t, nil, ec, ed)
	set := jwksOf(t, s)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2: %s", len(set.Keys), s.JWKS())
	}
	kidPattern := regexp.MustCompile(`^[0-9a-f]{24}$`)
	want := []struct {
		alg string
		pub crypto.PublicKey
	}{{"ES256", ec.Public()}, {"EdDSA", ed.Public()}}
	for i, k := range set.Keys {
		if k.Algorithm != want[i].alg {
			t.Errorf("key %d: alg = %q, want %q", i, k.Algorithm, want[i].alg)
		}
		if k.Use != "sig" {
			t.Errorf("key %d: use = %q, want sig", i, k.Use)
		}
		if !kidPattern.MatchString(k.KeyID) {
			t.Errorf("key %d: kid = %q, want 24 hex digits", i, k.KeyID)
		}
		if !k.IsPublic() || !k.Valid() {
			t.Errorf("key %d: public %v, valid %v; want a valid public key", i, k.IsPublic(), k.Valid())
		}
		type equaler interface{ Equal(crypto.PublicKey) bool }
		if eq, ok := k.Key.(equaler); !ok || !eq.Equal(want[i].pub) {
			t.Errorf("key %d: %T is not the signer's public key", i, k.Key)
		}
	}
	if set.Keys[0].KeyID == set.Keys[1].KeyID {
		t.Errorf("both keys have kid %q, want distinct kids", set.Keys[0].KeyID)
	}

	// Nothing private is published.
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(s.JWKS(), &raw); err != nil {
		t.Fatal(err)
	}
	for i, k := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("key %d has private member %q: %s", i, private, s.JWKS())
			}
		}
	}

	// A key keeps its kid from one signer to the next (rotation).
	again := jwksOf(t, newSigner(t, nil, ed, ec))
	if again.Keys[0].KeyID != set.Keys[1].KeyID || again.Keys[1].KeyID != set.Keys[0].KeyID {
		t.Errorf("kids changed with a new signer: %q, %q then %q, %q",
			set.Keys[0].KeyID, set.Keys[1].KeyID, again.Keys[0].KeyID, again.Keys[1].KeyID)
	}
}

const (
	testIss    = "https://gateway.example/t/notes"
	testAud    = "https://notes-mcp.internal/mcp"
	testTenant = "notes"
)

func testPrincipal(expiry time.Time) *providers.Principal {
	return &providers.Principal{
		Tenant: testTenant, Issuer: "https://idp.example", Subject: "alice", ClientID: "notes-cli",
		Scopes:      []string{"notes.read", "notes.write"},
		Permissions: map[providers.Permission]bool{"notes:read": true, "notes:write": true},
		Expiry:      expiry,
	}
}

func TestAssertionClaims(t *testing.T) {
	clock := newTestClock()
	t0 := clock.Now()
	s := newSigner(t, clock.Now, newP256(t), newEd25519(t))

	tests := []struct {
		name      string
		p         *providers.Principal
		granted   []providers.Permission
		wantScope string
	}{
		{"two permissions", testPrincipal(t0.Add(time.Hour)), []providers.Permission{"notes:read", "notes:write"}, "notes:read notes:write"},
		{"one permission", testPrincipal(t0.Add(time.Hour)), []providers.Permission{"notes:read"}, "notes:read"},
		{"no permission, no client id", &providers.Principal{Issuer: "https://idp.example", Subject: "svc-1"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, err := s.Assertion(testIss, testAud, testTenant, tt.p, tt.granted)
			if err != nil {
				t.Fatalf("Assertion() error = %v", err)
			}
			v := verifyAssertion(t, s, token, jose.ES256)
			if typ := v.header.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
				t.Errorf("typ = %v, want at+jwt", typ)
			}
			if v.header.Algorithm != "ES256" {
				t.Errorf("alg = %q, want ES256", v.header.Algorithm)
			}
			c := v.claims
			checks := []struct {
				claim     string
				got, want any
			}{
				{"iss", c.Issuer, testIss},
				{"aud", strings.Join(c.Audience, ","), testAud},
				{"sub", c.Subject, tt.p.Subject},
				{"client_id", c.ClientID, tt.p.ClientID},
				{"tenant", c.Tenant, testTenant},
				{"scope", c.Scope, tt.wantScope},
				{"iat", c.IssuedAt.Time().UTC(), t0},
				{"exp", c.Expiry.Time().UTC(), t0.Add(5 * time.Minute)},
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("%s = %v, want %v", ch.claim, ch.got, ch.want)
				}
			}
			if len(c.ID) < 16 {
				t.Errorf("jti = %q, want a random id", c.ID)
			}
			if _, ok := v.raw["client_id"]; ok != (tt.p.ClientID != "") {
				t.Errorf("client_id present = %v, want it only when the principal has one", ok)
			}
			if _, ok := v.raw["scope"]; ok != (tt.wantScope != "") {
				t.Errorf("scope present = %v, want it only when a permission is granted", ok)
			}
			for _, leak := range []string{"notes.read", "https://idp.example"} {
				if strings.Contains(fmt.Sprint(v.raw), leak) {
					t.Errorf("claims %v carry %q, which is the client's token's, not the assertion's", v.raw, leak)
				}
			}
		})
	}
}

func TestAssertionExpiry(t *testing.T) {
	clock := newTestClock()
	t0 := clock.Now()
	tests := []struct {
		name    string
		expiry  time.Time // the principal's
		wantExp time.Time // zero: an error
	}{
		{"no expiry", time.Time{}, t0.Add(5 * time.Minute)},
		{"token for an hour", t0.Add(time.Hour), t0.Add(5 * time.Minute)},
		{"token ending exactly with the lifetime", t0.Add(5 * time.Minute), t0.Add(5 * time.Minute)},
		{"token for 2 minutes", t0.Add(2 * time.Minute), t0.Add(2 * time.Minute)},
		{"token for 1 second", t0.Add(time.Second), t0.Add(time.Second)},
		{"token for 90.5 seconds (exp in whole seconds)", t0.Add(90500 * time.Millisecond), t0.Add(90 * time.Second)},
		{"token ending now", t0, time.Time{}},
		{"token ended a minute ago", t0.Add(-time.Minute), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSigner(t, clock.Now, newEd25519(t))
			token, err := s.Assertion(testIss, testAud, testTenant, testPrincipal(tt.expiry), nil)
			if tt.wantExp.IsZero() {
				if err == nil || !strings.Contains(err.Error(), "expired") {
					t.Errorf("Assertion() = %.20q…, %v; want an error saying the token expired", token, err)
				}
				if token != "" {
					t.Errorf("Assertion() = %q with its error, want \"\"", token)
				}
				return
			}
			if err != nil {
				t.Fatalf("Assertion() error = %v", err)
			}
			c := verifyAssertion(t, s, token, jose.EdDSA).claims
			if got := c.Expiry.Time().UTC(); !got.Equal(tt.wantExp) {
				t.Errorf("exp = %v, want %v", got, tt.wantExp)
			}
			if got := c.IssuedAt.Time().UTC(); !got.Equal(t0) {
				t.Errorf("iat = %v, want %v", got, t0)
			}
		})
	}
}

func TestAssertionCacheReuse(t *testing.T) {
	clock := newTestClock()
	t0 := clock.Now()
	s := newSigner(t, clock.Now, newP256(t))
	p := testPrincipal(t0.Add(time.Hour))
	granted := []providers.Permission{"notes:read"}
	get := func(at time.Duration) string {
		t.Helper()
		clock.Set(t0.Add(at))
		tok, err := s.Assertion(testIss, testAud, testTenant, p, granted)
		if err != nil {
			t.Fatalf("Assertion() at +%v error = %v", at, err)
		}
		return tok
	}

	first := get(0)
	steps := []struct {
		at       time.Duration
		wantSame bool // the same token as the previous step
	}{
		{0, true},
		{time.Minute, true},
		{4*time.Minute + 29*time.Second, true},       // 31s left
		{4*time.Minute + 29*time.Second + 999, true}, // just over 30s left
		{4*time.Minute + 30*time.Second, false},      // 30s left: a new one
		{4*time.Minute + 30*time.Second, true},       // the new one is cached
		{9*time.Minute - time.Second, true},          // 31s left of the new one
		{9 * time.Minute, false},
	}
	prev := first
	for _, st := range steps {
		got := get(st.at)
		if (got == prev) != st.wantSame {
			t.Errorf("at +%v: same token as before = %v, want %v", st.at, got == prev, st.wantSame)
		}
		if !st.wantSame {
			c := verifyAssertion(t, s, got, jose.ES256).claims
			if iat := c.IssuedAt.Time().UTC(); !iat.Equal(t0.Add(st.at)) {
				t.Errorf("at +%v: new token's iat = %v, want %v", st.at, iat, t0.Add(st.at))
			}
			if exp := c.Expiry.Time().UTC(); !exp.Equal(t0.Add(st.at + 5*time.Minute)) {
				t.Errorf("at +%v: new token's exp = %v, want %v", st.at, exp, t0.Add(st.at+5*time.Minute))
			}
			if c.ID == verifyAssertion(t, s, prev, jose.ES256).claims.ID {
				t.Errorf("at +%v: the new token has the old one's jti %q", st.at, c.ID)
			}
		}
		prev = got
	}

	t.Run("capped by the principal's expiry", func(t *testing.T) {
		s := newSigner(t, clock.Now, newP256(t))
		p := testPrincipal(t0.Add(time.Minute))
		clock.Set(t0)
		a, _ := s.Assertion(testIss, testAud, testTenant, p, nil)
		clock.Set(t0.Add(29 * time.Second))
		b, _ := s.Assertion(testIss, testAud, testTenant, p, nil)
		clock.Set(t0.Add(30 * time.Second))
		c, err := s.Assertion(testIss, testAud, testTenant, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a == "" || b != a {
			t.Errorf("at +29s: a new token, want the cached one (31s left)")
		}
		if c == a {
			t.Errorf("at +30s: the cached token, want a new one (30s left)")
		}
		if exp := verifyAssertion(t, s, c, jose.ES256).claims.Expiry.Time().UTC(); !exp.Equal(t0.Add(time.Minute)) {
			t.Errorf("exp = %v, want the principal's %v", exp, t0.Add(time.Minute))
		}
	})
}

func TestAssertionCacheKey(t *testing.T) {
	clock := newTestClock()
	t0 := clock.Now()
	s := newSigner(t, clock.Now, newP256(t))
	type args struct {
		iss, aud, tenant string
		p                *providers.Principal
		granted          []providers.Permission
	}
	base := func() args {
		return args{testIss, testAud, testTenant, testPrincipal(t0.Add(time.Hour)), []providers.Permission{"notes:read", "notes:write"}}
	}
	sign := func(a args) string {
		t.Helper()
		tok, err := s.Assertion(a.iss, a.aud, a.tenant, a.p, a.granted)
		if err != nil {
			t.Fatalf("Assertion() error = %v", err)
		}
		return tok
	}
	baseToken := sign(base())

	tests := []struct {
		name     string
		change   func(a *args)
		wantSame bool
	}{
		{"the same inputs", func(*args) {}, true},
		{"the same principal, another copy", func(a *args) { a.p = testPrincipal(t0.Add(time.Hour)) }, true},
		{"other permissions held but the same granted", func(a *args) { a.p.Permissions = map[providers.Permission]bool{"x": true} }, true},
		{"another subject", func(a *args) { a.p.Subject = "bob" }, false},
		{"another client", func(a *args) { a.p.ClientID = "other-cli" }, false},
		{"another identity provider", func(a *args) { a.p.Issuer = "https://idp2.example" }, false},
		{"fewer permissions granted", func(a *args) { a.granted = a.granted[:1] }, false},
		{"no permission granted", func(a *args) { a.granted = nil }, false},
		{"another issuer", func(a *args) { a.iss = "https://gateway.example/t/other" }, false},
		{"another audience", func(a *args) { a.aud = "https://other-mcp.internal/mcp" }, false},
		{"another tenant", func(a *args) { a.tenant = "other" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := base()
			tt.change(&a)
			got := sign(a)
			if (got == baseToken) != tt.wantSame {
				t.Errorf("same token as the base call = %v, want %v", got == baseToken, tt.wantSame)
			}
			c := verifyAssertion(t, s, got, jose.ES256).claims
			if c.Subject != a.p.Subject || c.ClientID != a.p.ClientID || c.Issuer != a.iss || c.Tenant != a.tenant ||
				strings.Join(c.Audience, ",") != a.aud {
				t.Errorf("claims %+v are not the call's (%+v)", c, a)
			}
		})
	}

	t.Run("nil and empty granted are the same", func(t *testing.T) {
		a := base()
		a.granted = nil
		b := base()
		b.granted = []providers.Permission{}
		if sign(a) != sign(b) {
			t.Errorf("different tokens for no permission granted")
		}
	})
}

// The cache may not hand a principal an assertion that outlives its own
// token, nor hand one to a principal whose token has expired.
func TestAssertionCacheHonoursPrincipalExpiry(t *testing.T) {

	clock := newTestClock()
	t0 := clock.Now()
	s := newSigner(t, clock.Now, newP256(t))
	if _, err := s.Assertion(testIss, testAud, testTenant, testPrincipal(t0.Add(time.Hour)), nil); err != nil {
		t.Fatal(err)
	}

	clock.Set(t0.Add(10 * time.Second))
	short := testPrincipal(t0.Add(time.Minute)) // a later token of the same caller, for one minute
	tok, err := s.Assertion(testIss, testAud, testTenant, short, nil)
	if err != nil {
		t.Fatal(err)
	}
	if exp := verifyAssertion(t, s, tok, jose.ES256).claims.Expiry.Time(); exp.After(short.Expiry) {
		t.Errorf("exp = %v, after the principal's token's expiry %v", exp.UTC(), short.Expiry)
	}

	expired := testPrincipal(t0.Add(5 * time.Second))
	if tok, err := s.Assertion(testIss, testAud, testTenant, expired, nil); err == nil {
		t.Errorf("Assertion() for a principal expired 5s ago = %.20q…, want an error", tok)
	}
}

func TestAssertionSignsWithTheFirstKey(t *testing.T) {
	clock := newTestClock()
	ec, ed := newP256(t), newEd25519(t)
	tests := []struct {
		name       string
		keys       []crypto.Signer
		alg, other jose.SignatureAlgorithm
	}{
		{"P-256 first", []crypto.Signer{ec, ed}, jose.ES256, jose.EdDSA},
		{"Ed25519 first", []crypto.Signer{ed, ec}, jose.EdDSA, jose.ES256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSigner(t, clock.Now, tt.keys...)
			tok, err := s.Assertion(testIss, testAud, testTenant, testPrincipal(time.Time{}), nil)
			if err != nil {
				t.Fatal(err)
			}
			set := jwksOf(t, s)
			v := verifyAssertion(t, s, tok, tt.alg)
			if v.header.KeyID != set.Keys[0].KeyID {
				t.Errorf("kid = %q, want the first key's %q", v.header.KeyID, set.Keys[0].KeyID)
			}
			if v.header.Algorithm != string(tt.alg) {
				t.Errorf("alg = %q, want %q", v.header.Algorithm, tt.alg)
			}
			if _, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{tt.other}); err == nil {
				t.Errorf("the token parses as %s, want only %s", tt.other, tt.alg)
			}
			parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
			if err != nil {
				t.Fatal(err)
			}
			var c AssertionClaims
			if err := parsed.Claims(set.Keys[1].Key, &c); err == nil {
				t.Errorf("the token verifies with the second key, want only the first")
			}
		})
	}
}

func TestAssertionSystemClock(t *testing.T) {
	s := newSigner(t, nil, newP256(t))
	before := time.Now().Truncate(time.Second)
	tok, err := s.Assertion(testIss, testAud, testTenant, testPrincipal(time.Time{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := verifyAssertion(t, s, tok, jose.ES256).claims
	if iat := c.IssuedAt.Time(); iat.Before(before) || iat.After(time.Now()) {
		t.Errorf("iat = %v, want about now (%v)", iat, before)
	}
	if life := c.Expiry.Time().Sub(c.IssuedAt.Time()); life != MaxAssertionLifetime {
		t.Errorf("exp - iat = %v, want %v", life, MaxAssertionLifetime)
	}
}

func TestAssertionConcurrent(t *testing.T) {
	clock := newTestClock()
	s := newSigner(t, clock.Now, newEd25519(t))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				p := testPrincipal(time.Time{})
				p.Subject = fmt.Sprintf("user-%d", (g*25+i)%10)
				tok, err := s.Assertion(testIss, testAud, testTenant, p, nil)
				if err != nil {
					errs <- err
					return
				}
				parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
				if err != nil {
					errs <- err
					return
				}
				var c AssertionClaims
				if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil || c.Subject != p.Subject {
					errs <- fmt.Errorf("sub = %q, want %q (%v)", c.Subject, p.Subject, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// writeKeyFile writes content to a new file and returns its path.
func writeKeyFile(t *testing.T, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestLoadKeyFile(t *testing.T) {
	ec, ed, rk := newP256(t), newEd25519(t), newRSA(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mustDER := func(der []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	pkcs8 := func(k any) []byte { return mustDER(x509.MarshalPKCS8PrivateKey(k)) }

	loads := []struct {
		name string
		file []byte
		pub  crypto.PublicKey
		alg  jose.SignatureAlgorithm
	}{
		{"PKCS #8 P-256", pemOf("PRIVATE KEY", pkcs8(ec)), ec.Public(), jose.ES256},
		{"SEC 1 P-256", pemOf("EC PRIVATE KEY", mustDER(x509.MarshalECPrivateKey(ec))), ec.Public(), jose.ES256},
		{"PKCS #8 Ed25519", pemOf("PRIVATE KEY", pkcs8(ed)), ed.Public(), jose.EdDSA},
		{"text before the PEM block", append([]byte("# the gateway's signing key\n"), pemOf("PRIVATE KEY", pkcs8(ec))...), ec.Public(), jose.ES256},
	}
	for _, tt := range loads {
		t.Run("loads "+tt.name, func(t *testing.T) {
			k, err := LoadKeyFile(writeKeyFile(t, tt.file))
			if err != nil {
				t.Fatalf("LoadKeyFile() error = %v", err)
			}
			type equaler interface{ Equal(crypto.PublicKey) bool }
			if eq, ok := k.Public().(equaler); !ok || !eq.Equal(tt.pub) {
				t.Errorf("LoadKeyFile() = a %T key, not the one written", k)
			}
			// The key signs assertions.
			s := newSigner(t, nil, k)
			tok, err := s.Assertion(testIss, testAud, testTenant, testPrincipal(time.Time{}), nil)
			if err != nil {
				t.Fatal(err)
			}
			verifyAssertion(t, s, tok, tt.alg)
		})
	}

	refuses := []struct {
		name    string
		file    []byte
		wantErr string
	}{
		{"RSA in PKCS #8", pemOf("PRIVATE KEY", pkcs8(rk)), "ECDSA P-256 (ES256) or Ed25519"},
		{"RSA in PKCS #1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), `"RSA PRIVATE KEY"`},
		{"P-384 in PKCS #8", pemOf("PRIVATE KEY", pkcs8(p384)), "P-256"},
		{"P-384 in SEC 1", pemOf("EC PRIVATE KEY", mustDER(x509.MarshalECPrivateKey(p384))), "P-256"},
		{"X25519 (no signing key)", pemOf("PRIVATE KEY", pkcs8(x25519)), "not a signing key"},
		{"a certificate", pemOf("CERTIFICATE", []byte("not really")), `"CERTIFICATE"`},
		{"a public key", pemOf("PUBLIC KEY", mustDER(x509.MarshalPKIXPublicKey(ec.Public()))), `"PUBLIC KEY"`},
		{"garbage", []byte("this is not a key\n"), "no PEM block"},
		{"empty file", nil, "no PEM block"},
		{"DER without PEM", pkcs8(ec), "no PEM block"},
		{"corrupt PKCS #8", pemOf("PRIVATE KEY", []byte("junk")), "key.pem"},
		{"corrupt SEC 1", pemOf("EC PRIVATE KEY", []byte("junk")), "key.pem"},
	}
	for _, tt := range refuses {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			path := writeKeyFile(t, tt.file)
			k, err := LoadKeyFile(path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("LoadKeyFile() error = %v, want one containing %q", err, tt.wantErr)
			} else if !strings.Contains(err.Error(), path) {
				t.Errorf("LoadKeyFile() error = %v, want it to name the file", err)
			}
			if k != nil {
				t.Errorf("LoadKeyFile() = %T with its error, want nil", k)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		k, err := LoadKeyFile(filepath.Join(t.TempDir(), "absent.pem"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadKeyFile() error = %v, want fs.ErrNotExist", err)
		}
		if k != nil {
			t.Errorf("LoadKeyFile() = %T with its error, want nil", k)
		}
	})
}

func TestGenerateKey(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("GenerateKey() = %T, want a P-256 ECDSA key", k.Public())
	}
	if alg, err := algorithmOf(k); err != nil || alg != jose.ES256 {
		t.Errorf("algorithmOf(GenerateKey()) = %q, %v; want ES256", alg, err)
	}
}
