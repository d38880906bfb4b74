package providers

import (
	"context"
	"strings"
	"testing"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// The claim sets of real providers' tokens (issue 23: LemonLDAP::NG 2.16,
// Dex, the zitadel/oidc example OP), with this tenant's issuer, resource
// and times: an ID token is refused whatever its header and audience say;
// the provider's access tokens, and access tokens with the claims RFC 9068
// allows (auth_time, acr, amr) or common providers add (azp), pass.
func TestIDTokensRefused(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	s := settings(iss, KindOIDC)
	s.Config.JWTTypes = []string{"at+jwt", "JWT"}
	p := newProvider(t, iss, s, clk)
	base := func(extra map[string]any, drop ...string) map[string]any {
		m := iss.Claims("alice", testResource, "")
		for _, k := range drop {
			delete(m, k)
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		typ    string
		reason string // "" for accepted
	}{
		{"LemonLDAP::NG ID token", base(map[string]any{"aud": []string{"rp-client", testResource}, "azp": "rp-client", "at_hash": "x3Q1mE", "acr": "loa-2", "auth_time": clk.Now().Unix()}, "client_id"),
			"JWT", reasonIDToken("at_hash")},
		{"LemonLDAP::NG access token", base(map[string]any{"aud": []string{"rp-client", testResource}, "scope": "openid read:todos", "client_id": "rp-client"}), "JWT", ""},
		{"Dex ID token (no typ)", base(map[string]any{"at_hash": "b2Xq", "email": "alice@example.com", "email_verified": true, "groups": []string{"admins"}}, "client_id"),
			"", reasonIDToken("at_hash")},
		{"zitadel example OP ID token", base(map[string]any{"nonce": "n-0S6_WzA2Mj", "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q", "c_hash": "LDktKdoQak3Pk0cnXxCltA"}),
			"JWT", reasonIDToken("nonce")},
		{"FAPI ID token (s_hash)", base(map[string]any{"s_hash": "5Ozb2lJc"}), "JWT", reasonIDToken("s_hash")},
		{"access token with RFC 9068 §2.2.3.1 claims", base(map[string]any{"auth_time": clk.Now().Unix(), "acr": "urn:mace:incommon:iap:silver", "amr": []string{"pwd", "otp"}, "azp": "rp-client"}), "at+jwt", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []providertest.MintOption
			if tc.typ == "" {
				opts = append(opts, providertest.Header("typ", nil))
			} else {
				opts = append(opts, providertest.Typ(tc.typ))
			}
			tok := iss.Mint(tc.claims, opts...)
			_, err := p.Verify(context.Background(), tok)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("an access token was refused: %v", err)
				}
				return
			}
			checkErr(t, err, ClassInvalidToken, tc.reason)
		})
	}
}

// A tenant whose provider puts an ID-token claim in its access tokens
// says so (allow_id_token_claims); the other claims still mark ID tokens.
func TestIDTokenClaimsAllowed(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	s := settings(iss, KindOIDC)
	s.Config.AllowIDTokenClaims = []string{"at_hash"}
	p := newProvider(t, iss, s, clk)
	withHash := iss.Claims("alice", testResource, "")
	withHash["at_hash"] = "b2Xq"
	if _, err := p.Verify(context.Background(), iss.Mint(withHash)); err != nil {
		t.Errorf("at_hash allowed, still refused: %v", err)
	}
	withHash["nonce"] = "n-1"
	_, err := p.Verify(context.Background(), iss.Mint(withHash))
	checkErr(t, err, ClassInvalidToken, reasonIDToken("nonce"))
}

// Dex puts at_hash in its access tokens too (quirks.go), recognised from
// its metadata on any host: at_hash does not mark its ID tokens, nonce does.
func TestIDTokenClaimsDexQuirk(t *testing.T) {
	issuer := "https://dex.example.com/dex"
	p := &Provider{issuer: issuer}
	dex := &endpoints{resolved: &resolved{md: &Metadata{Issuer: issuer,
		AuthorizationEndpoint: issuer + "/auth", TokenEndpoint: issuer + "/token", JWKSURI: issuer + "/keys"}}}
	other := &endpoints{resolved: &resolved{md: &Metadata{Issuer: issuer, AuthorizationEndpoint: issuer + "/authorize"}}}
	m := claimSet{"at_hash": []byte(`"b2Xq"`)}
	if got := p.idTokenClaim(m, dex); got != "" {
		t.Errorf("Dex: at_hash marks an ID token (%q), but Dex access tokens carry it too", got)
	}
	if got := p.idTokenClaim(m, other); got != "at_hash" {
		t.Errorf("another provider: got %q, want at_hash", got)
	}
	m["nonce"] = []byte(`"n"`)
	if got := p.idTokenClaim(m, dex); got != "nonce" {
		t.Errorf("Dex with nonce: got %q, want nonce", got)
	}
}

func TestAllowIDTokenClaimsValidated(t *testing.T) {
	v := &validation{}
	v.idTokenClaims("provider.allow_id_token_claims", []string{"at_hash", "azp"})
	if len(v.problems) != 1 || v.problems[0].Path != "provider.allow_id_token_claims[1]" || !strings.Contains(v.problems[0].Message, `"azp" is not a claim of ID tokens only`) {
		t.Errorf("got %v", v.problems)
	}
}

// The trace names the accepted typ values as the configuration spells
// them, not as they are compared.
func TestTraceTypSpelling(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	s := settings(iss, KindOIDC)
	s.Config.JWTTypes = []string{"at+jwt", "JWT"}
	p := newProvider(t, iss, s, clk)
	_, steps, err := tracedVerify(p, iss.Mint(iss.Claims("alice", testResource, ""), providertest.Typ("JWT")))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		if st.Name == stepTyp && !strings.HasSuffix(st.Detail, "the tenant accepts at+jwt, JWT") {
			t.Errorf("typ step: %q", st.Detail)
		}
	}
}

// An encrypted token's refusal tells the operator what to do instead.
func TestTraceJWESuggestsIntrospection(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	_, steps, err := tracedVerify(p, "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn")
	checkErr(t, err, ClassInvalidToken, reasonJWE)
	if last := steps[len(steps)-1]; last.OK || !strings.Contains(last.Detail, `verify them by introspection ("token": "introspection")`) {
		t.Errorf("last step %+v, want the JWE refused with the suggestion", last)
	}
}
