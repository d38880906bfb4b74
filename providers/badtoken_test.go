package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestBadTokens runs every token an attacker or a misconfigured client might
// send through a strict tenant (typ at+jwt only, resource audience), each
// with a fresh provider, and checks the precise refusal.
func TestBadTokens(t *testing.T) {
	clk := newClock()
	a := newIssuer(t, clk)
	b := newIssuer(t, clk)        // another tenant's authorization server
	attacker := newIssuer(t, clk) // serves a JWKS nobody should fetch
	enc := base64.RawURLEncoding

	claims := func(edit func(c map[string]any)) map[string]any {
		c := a.Claims("user-1", testResource, "read:todos")
		if edit != nil {
			edit(c)
		}
		return c
	}
	mint := func(edit func(c map[string]any), opts ...providertest.MintOption) func(t *testing.T) string {
		return func(t *testing.T) string { return a.Mint(claims(edit), opts...) }
	}
	fixed := func(s string) func(t *testing.T) string { return func(*testing.T) string { return s } }
	segments := func(tok string) []string { return strings.Split(tok, ".") }
	rsaKID := a.KeyID(jose.RS256)
	strangerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	tests := []struct {
		name     string
		settings func(s *Settings)
		before   func(t *testing.T, p *Provider)
		token    func(t *testing.T) string
		after    func(t *testing.T)
		reason   string
	}{
		// Algorithms.
		{name: "alg none", token: func(*testing.T) string {
			return providertest.Unsigned(map[string]any{"alg": "none", "typ": "at+jwt"}, claims(nil))
		}, reason: reasonAlgNone},
		{name: "alg none with a signature", token: func(*testing.T) string {
			return providertest.Unsigned(map[string]any{"alg": "none", "typ": "at+jwt", "kid": rsaKID}, claims(nil)) + "c2lnbmF0dXJl"
		}, reason: reasonAlgNone},
		{name: "alg None in another case", token: func(*testing.T) string {
			return providertest.Unsigned(map[string]any{"alg": "None", "typ": "at+jwt"}, claims(nil))
		}, reason: reasonUnsupported},
		{name: "HS256 keyed with the RSA public key (PEM)", token: func(t *testing.T) string {
			der, err := x509.MarshalPKIXPublicKey(a.Key(rsaKID).Public())
			if err != nil {
				t.Fatal(err)
			}
			pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			tok, err := providertest.Sign(pemKey, jose.HS256, claims(nil), providertest.KID(rsaKID))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, reason: reasonAlgHMAC},
		{name: "HS512 keyed with the public JWK", token: func(t *testing.T) string {
			jwk, _ := json.Marshal(jose.JSONWebKey{Key: a.Key(rsaKID).Public(), KeyID: rsaKID})
			tok, err := providertest.Sign(jwk, jose.HS512, claims(nil), providertest.KID(rsaKID))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, reason: reasonAlgHMAC},
		{name: "algorithm outside the tenant's list",
			settings: func(s *Settings) { s.Config.Algorithms = []string{"ES384"} },
			token:    mint(nil, providertest.Alg(jose.RS256)), reason: reasonAlgNotAllowed("RS256")},
		{name: "algorithm the issuer does not advertise", token: mint(nil, providertest.WithKey(rsaKID), providertest.Alg(jose.PS256)),
			reason: reasonAlgNotAllowed("PS256")},
		{name: "PS256 riding a key published for RS256",
			settings: func(s *Settings) { s.Config.Algorithms = []string{"RS256", "PS256"} },
			token:    mint(nil, providertest.WithKey(rsaKID), providertest.Alg(jose.PS256)), reason: reasonUnknownKey},
		{name: "empty alg", token: fixed(enc.EncodeToString([]byte(`{"typ":"at+jwt"}`)) + ".e30.c2ln"), reason: reasonUnsupported},

		// Issuer.
		{name: "wrong iss", token: mint(func(c map[string]any) { c["iss"] = "https://evil.example" }), reason: reasonIssuer},
		{name: "iss with a trailing slash", token: mint(func(c map[string]any) { c["iss"] = a.Issuer() + "/" }), reason: reasonIssuer},
		{name: "no iss", token: mint(func(c map[string]any) { delete(c, "iss") }), reason: reasonNoIssuer},
		{name: "iss of the wrong type", token: mint(func(c map[string]any) { c["iss"] = []string{a.Issuer()} }), reason: reasonClaimType("iss")},

		// Audience.
		{name: "wrong aud", token: mint(func(c map[string]any) { c["aud"] = "http://gw.test/other" }), reason: reasonAudResource},
		{name: "aud array without ours", token: mint(func(c map[string]any) { c["aud"] = []string{"a", "http://gw.test/other"} }), reason: reasonAudResource},
		{name: "aud with a trailing slash", token: mint(func(c map[string]any) { c["aud"] = testResource + "/" }), reason: reasonAudResource},
		{name: "aud of another case", token: mint(func(c map[string]any) { c["aud"] = strings.ToUpper(testResource) }), reason: reasonAudResource},
		{name: "no aud", token: mint(func(c map[string]any) { delete(c, "aud") }), reason: reasonNoAudience},
		{name: "aud of the wrong type", token: mint(func(c map[string]any) { c["aud"] = 42 }), reason: reasonClaimType("aud")},
		{name: "aud not among the configured values",
			settings: func(s *Settings) { s.Audience = Audience{Strategy: AudienceValues, Values: []string{"todo-api"}} },
			token:    mint(func(c map[string]any) { c["aud"] = "billing-api" }), reason: reasonAudValues},

		// Time.
		{name: "expired", token: mint(func(c map[string]any) { c["exp"] = clk.Now().Add(-time.Hour).Unix() }), reason: reasonExpired},
		{name: "no exp", token: mint(func(c map[string]any) { delete(c, "exp") }), reason: reasonNoExpiry},
		{name: "exp as a string", token: mint(func(c map[string]any) { c["exp"] = "9999999999" }), reason: reasonClaimType("exp")},
		{name: "exp out of range", token: mint(func(c map[string]any) { c["exp"] = 1e20 }), reason: reasonClaimType("exp")},
		{name: "nbf in the future", token: mint(func(c map[string]any) { c["nbf"] = clk.Now().Add(time.Hour).Unix() }), reason: reasonNotYetValid},
		{name: "nbf of the wrong type", token: mint(func(c map[string]any) { c["nbf"] = true }), reason: reasonClaimType("nbf")},
		{name: "iat far in the future", token: mint(func(c map[string]any) { c["iat"] = clk.Now().Add(24 * time.Hour).Unix() }), reason: reasonIssuedFuture},

		// Signature and keys.
		{name: "tampered payload", token: func(t *testing.T) string {
			s := segments(a.Mint(claims(nil)))
			s[1] = enc.EncodeToString(mustJSON(t, claims(func(c map[string]any) { c["scope"] = "read:todos delete:todos" })))
			return strings.Join(s, ".")
		}, reason: reasonBadSignature},
		{name: "tampered signature", token: func(t *testing.T) string {
			s := segments(a.Mint(claims(nil)))
			sig, _ := enc.DecodeString(s[2])
			sig[len(sig)/2] ^= 0x01
			s[2] = enc.EncodeToString(sig)
			return strings.Join(s, ".")
		}, reason: reasonBadSignature},
		{name: "empty signature", token: func(t *testing.T) string {
			s := segments(a.Mint(claims(nil)))
			return s[0] + "." + s[1] + "."
		}, reason: reasonBadSignature},
		{name: "signature spliced from another token", token: func(t *testing.T) string {
			s1 := segments(a.Mint(claims(nil)))
			s2 := segments(a.Mint(claims(func(c map[string]any) { c["sub"] = "user-2" })))
			return s1[0] + "." + s1[1] + "." + s2[2]
		}, reason: reasonBadSignature},
		{name: "unknown kid after a refresh",
			before: func(t *testing.T, p *Provider) {
				mustVerify(t, p, a.Mint(claims(nil))) // keys loaded
				clk.Advance(11 * time.Second)         // a refresh is allowed again
			},
			token: func(t *testing.T) string {
				tok, err := providertest.Sign(strangerKey, jose.ES256, claims(nil), providertest.KID("kid-nobody-published"))
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}, reason: reasonUnknownKey},
		{name: "no kid, signed by a stranger", token: func(t *testing.T) string {
			tok, err := providertest.Sign(strangerKey, jose.ES256, claims(nil))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, reason: reasonBadSignature},
		{name: "another issuer's key", token: func(*testing.T) string { return b.Mint(claims(nil)) }, reason: reasonUnknownKey},
		{name: "another issuer's key under our kid", token: func(*testing.T) string {
			return b.Mint(claims(nil), providertest.KID(rsaKID))
		}, reason: reasonBadSignature},
		{name: "tenant B's token at tenant A", token: func(*testing.T) string {
			return b.Mint(b.Claims("user-1", "http://gw.test/beta", "read:todos"))
		}, reason: reasonUnknownKey},
		{name: "jku pointing at the attacker's JWKS", token: func(*testing.T) string {
			return attacker.Mint(claims(nil), providertest.Header("jku", attacker.JWKSURL()))
		}, after: func(t *testing.T) {
			if n := attacker.Hits(providertest.JWKS); n != 0 {
				t.Fatalf("got %d fetches of a jku URL, want 0", n)
			}
		}, reason: reasonUnknownKey},
		{name: "embedded jwk header", token: func(t *testing.T) string {
			k := attacker.Key(attacker.KeyID(jose.ES256))
			return attacker.Mint(claims(nil), providertest.Alg(jose.ES256),
				providertest.Header("jwk", jose.JSONWebKey{Key: k.Public(), KeyID: k.KID, Algorithm: "ES256"}))
		}, reason: reasonUnknownKey},
		{name: "unknown critical header", token: mint(nil, providertest.Header("crit", []string{"urn:x"}), providertest.Header("urn:x", 1)), reason: reasonCrit},

		// Type.
		{name: "typ JWT at a strict tenant", token: mint(nil, providertest.Typ("JWT")), reason: reasonType("JWT")},
		{name: "typ dpop+jwt", token: mint(nil, providertest.Typ("dpop+jwt")), reason: reasonType("dpop+jwt")},
		{name: "no typ at a strict tenant", token: mint(nil, providertest.Typ("")), reason: reasonNoType},
		{name: "typ of the wrong type", token: mint(nil, providertest.Header("typ", 7)), reason: reasonType("(not a string)")},

		// Shape.
		{name: "garbage", token: fixed("this-is-not-a-token"), reason: reasonMalformed},
		{name: "empty", token: fixed(""), reason: reasonEmpty},
		{name: "whitespace", token: fixed(" \t "), reason: reasonEmpty},
		{name: "over 16 KiB", token: mint(func(c map[string]any) { c["pad"] = strings.Repeat("x", 16<<10) }), reason: reasonTooLarge},
		{name: "a quote inside", token: fixed(`eyJh"bGciOiJSUzI1NiJ9.e30.c2ln`), reason: reasonBadChars},
		{name: "surrounding space", token: func(t *testing.T) string { return " " + a.Mint(claims(nil)) }, reason: reasonBadChars},
		{name: "two segments", token: fixed("eyJhbGciOiJSUzI1NiJ9.e30"), reason: reasonMalformed},
		{name: "four segments", token: fixed("eyJhbGciOiJSUzI1NiJ9.e30.c2ln.c2ln"), reason: reasonMalformed},
		// Re-spellings: the same signed token with the unused low bits of
		// a segment's last character set. The JOSE libraries decode them
		// to the same bytes, so each would verify, and cost a verification
		// and a cache entry of its own.
		{name: "header re-spelled", token: func(t *testing.T) string {
			// A header parameter of the right length leaves unused bits.
			for n := range 4 {
				if tok := a.Mint(claims(nil), providertest.Header("pad", strings.Repeat("p", n))); len(segments(tok)[0])%4 > 1 {
					return respelled(t, tok, 0)
				}
			}
			t.Fatal("no header length leaves unused bits")
			return ""
		}, reason: reasonNotCanonical},
		{name: "payload re-spelled", token: func(t *testing.T) string {
			for n := range 4 {
				if tok := a.Mint(claims(func(c map[string]any) { c["pad"] = strings.Repeat("p", n) })); len(segments(tok)[1])%4 > 1 {
					return respelled(t, tok, 1)
				}
			}
			t.Fatal("no payload length leaves unused bits")
			return ""
		}, reason: reasonNotCanonical},
		{name: "RS256 signature re-spelled", token: func(t *testing.T) string { return respelled(t, a.Mint(claims(nil)), 2) }, reason: reasonNotCanonical},
		{name: "ES256 signature re-spelled", token: func(t *testing.T) string {
			return respelled(t, a.Mint(claims(nil), providertest.Alg(jose.ES256)), 2)
		}, reason: reasonNotCanonical},
		{name: "signature with padding", token: func(t *testing.T) string { return a.Mint(claims(nil)) + "==" }, reason: reasonMalformed},
		{name: "JWE", token: fixed("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn"), reason: reasonJWE},
		{name: "header not JSON", token: fixed(enc.EncodeToString([]byte("not json")) + ".e30.c2ln"), reason: reasonMalformed},
		{name: "payload not a JSON object", token: func(t *testing.T) string {
			return signRaw(t, a.Key(rsaKID), []byte(`["iss","sub"]`))
		}, reason: reasonClaims},

		// Claims.
		{name: "no sub", token: mint(func(c map[string]any) { delete(c, "sub") }), reason: reasonNoSubject},
		{name: "empty sub", token: mint(func(c map[string]any) { c["sub"] = "" }), reason: reasonNoSubject},
		{name: "sub of the wrong type", token: mint(func(c map[string]any) { c["sub"] = 42 }), reason: reasonClaimType("sub")},
		{name: "scope of the wrong type", token: mint(func(c map[string]any) { c["scope"] = 7 }), reason: reasonClaimType("scope")},
		{name: "scp array with a number", token: mint(func(c map[string]any) { c["scp"] = []any{"read:todos", 1} }), reason: reasonClaimType("scp")},
		{name: "permissions as an object", token: mint(func(c map[string]any) { c["permissions"] = map[string]any{"read:todos": true} }), reason: reasonClaimType("permissions")},
		{name: "client_id of the wrong type", token: mint(func(c map[string]any) { c["client_id"] = 7 }), reason: reasonClaimType("client_id")},
	}
	if len(tests) < 30 {
		t.Fatalf("got %d bad-token cases, want at least 30", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settings(a, KindOIDC)
			s.Config.JWTTypes = []string{"at+jwt"}
			if tt.settings != nil {
				tt.settings(&s)
			}
			p := newProvider(t, a, s, clk)
			if tt.before != nil {
				tt.before(t, p)
			}
			tok := tt.token(t)
			pr, err := p.Verify(context.Background(), tok)
			if err == nil {
				t.Fatalf("got principal %+v, want refusal %q", pr, tt.reason)
			}
			checkErr(t, err, ClassInvalidToken, tt.reason)
			if len(tok) > 16 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error %q contains the token", err)
			}
			// Traced, the same token gets the same refusal, and the trace
			// ends at the check that refused it.
			_, steps, err := tracedVerify(p, tok)
			checkErr(t, err, ClassInvalidToken, tt.reason)
			checkFailedTrace(t, steps, tt.reason, tok)
			if tt.after != nil {
				tt.after(t)
			}
		})
	}
}

// base64URL is the base64url alphabet, in the order of the values.
const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// spellings returns every spelling of segment seg of tok: its last
// character with each value of its unused low bits (none for a segment
// whose length is a multiple of 4), the canonical spelling first.
func spellings(t *testing.T, tok string, seg int) []string {
	t.Helper()
	parts := strings.Split(tok, ".")
	s := parts[seg]
	unused := map[int]uint{0: 0, 2: 4, 3: 2}[len(s)%4]
	if s == "" || unused == 0 {
		return []string{tok}
	}
	last := strings.IndexByte(base64URL, s[len(s)-1])
	if last < 0 || last&(1<<unused-1) != 0 {
		t.Fatalf("segment %d of the minted token is not canonical base64url: %q", seg, s)
	}
	var out []string
	for low := range 1 << unused {
		parts[seg] = s[:len(s)-1] + string(base64URL[last|low])
		out = append(out, strings.Join(parts, "."))
	}
	return out
}

// respelled returns tok with segment seg spelled otherwise; the test fails
// when that segment has no other spelling.
func respelled(t *testing.T, tok string, seg int) string {
	t.Helper()
	all := spellings(t, tok, seg)
	if len(all) < 2 {
		t.Fatalf("segment %d of the token (%d characters) has a single spelling", seg, len(strings.Split(tok, ".")[seg]))
	}
	return all[len(all)-1]
}

// allSpellings returns every spelling of tok, all segments combined, the
// canonical one first.
func allSpellings(t *testing.T, tok string) []string {
	t.Helper()
	out := []string{tok}
	for seg := range 3 {
		var next []string
		for _, s := range out {
			next = append(next, spellings(t, s, seg)...)
		}
		out = next
	}
	return out
}

// TestRespelledTokensAreRefused: of all the spellings of one signed token,
// only the canonical one verifies, and it is the only one cached. Every
// other is refused before the cache and the keys (256 spellings of an
// RS256 token all verified before).
func TestRespelledTokensAreRefused(t *testing.T) {
	clk := newClock()
	a := newIssuer(t, clk)
	for _, tc := range []struct {
		alg  jose.SignatureAlgorithm
		mode TokenMode
	}{{jose.RS256, TokenJWT}, {jose.ES384, TokenJWT}, {jose.RS256, TokenAuto}} {
		t.Run(string(tc.alg)+" "+string(tc.mode), func(t *testing.T) {
			s := settings(a, KindOIDC)
			if tc.mode == TokenAuto {
				s = introspectionTenant(a, nil)
				s.Config.Token = TokenAuto
			}
			p := newProvider(t, a, s, clk, testSecrets)
			tok := a.Mint(a.Claims("user-1", testResource, "read:todos"), providertest.Alg(tc.alg))
			all := allSpellings(t, tok)
			if len(all) < 4 {
				t.Fatalf("got %d spellings of the token, want several", len(all))
			}
			accepted := 0
			for _, sp := range all {
				if _, err := p.Verify(context.Background(), sp); err == nil {
					accepted++
				} else if sp != tok {
					checkErr(t, err, ClassInvalidToken, reasonNotCanonical)
				}
			}
			t.Logf("%d spellings: %d accepted, %d cache entries", len(all), accepted, p.verified.len())
			if accepted != 1 || p.verified.len() != 1 {
				t.Errorf("got %d of %d spellings accepted and %d cache entries, want 1 and 1", accepted, len(all), p.verified.len())
			}
			if n := a.Hits(providertest.Introspection); n != 0 {
				t.Errorf("got %d introspections of a re-spelled JWT, want 0", n)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signRaw signs an arbitrary payload (not necessarily a claim set).
func signRaw(t *testing.T, k *providertest.Key, payload []byte) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: jose.JSONWebKey{Key: k.Private, KeyID: k.KID}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
