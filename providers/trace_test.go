package providers

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// tracedVerify verifies tok with a trace and returns what both said.
func tracedVerify(p *Provider, tok string) (*Principal, []Step, error) {
	tr := &Trace{}
	pr, err := p.Verify(WithTrace(context.Background(), tr), tok)
	return pr, tr.Steps(), err
}

func stepNames(steps []Step) []string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Name
	}
	return names
}

// checkFailedTrace asserts the shape of a refusal's trace: every step but
// the last passed, the last failed and starts with the reason the client
// is told, and no step repeats the token.
func checkFailedTrace(t *testing.T, steps []Step, reason, tok string) {
	t.Helper()
	if len(steps) == 0 {
		t.Fatalf("got an empty trace, want the failed check %q", reason)
	}
	for i, s := range steps {
		last := i == len(steps)-1
		if s.OK == last {
			t.Fatalf("step %d %q got ok=%v, want ok=%v (trace %+v)", i, s.Name, s.OK, !last, steps)
		}
		if len(tok) > 16 && strings.Contains(s.Detail, tok) {
			t.Fatalf("step %q detail contains the token", s.Name)
		}
	}
	if last := steps[len(steps)-1]; !strings.HasPrefix(last.Detail, reason) {
		t.Fatalf("last step %q detail %q, want it to start with %q", last.Name, last.Detail, reason)
	}
}

var (
	jwtSteps = []string{stepToken, stepHeader, stepTyp, stepDiscovery, stepAlgorithm, stepKeys, stepKey, stepSignature, stepTokenUse,
		stepIssuer, stepExpiry, stepNotBefore, stepIssuedAt, stepSubject, stepAudience, stepScopes, stepPermissions, stepClient}
	opaqueSteps = []string{stepToken, stepDiscovery, stepIntrospection, stepActive,
		stepIssuer, stepExpiry, stepNotBefore, stepIssuedAt, stepSubject, stepAudience, stepScopes, stepPermissions, stepClient}
)

// TestTraceAcceptedTokens: the trace of an accepted token lists every check
// in the order it is made, all passed, and the traced Verify returns what
// the untraced one does, even when the untraced one was answered from the
// cache the trace bypasses.
func TestTraceAcceptedTokens(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384))
	tests := []struct {
		name    string
		s       Settings
		token   func() string
		steps   []string
		details map[string][]string // step → substrings its detail must contain
		hits    providertest.Endpoint
	}{
		{
			name: "Logto JWT",
			s:    settings(iss, KindLogto),
			token: func() string {
				return iss.Mint(iss.Claims("admin-1", testResource, "create:todos read:todos"), providertest.Alg(jose.ES384))
			},
			steps: jwtSteps,
			details: map[string][]string{
				stepToken:       {"token mode jwt"},
				stepHeader:      {`alg "ES384"`, `kid "es384-`},
				stepTyp:         {`"at+jwt" is accepted: the tenant accepts at+jwt`},
				stepDiscovery:   {iss.Issuer() + "/.well-known/openid-configuration", "jwks_uri " + iss.JWKSURL()},
				stepAlgorithm:   {"ES384 is allowed: the issuer advertises ES384"},
				stepKeys:        {"1 signing key from " + iss.JWKSURL()},
				stepKey:         {"EC P-384"},
				stepIssuer:      {iss.Issuer()},
				stepExpiry:      {"(in 1h0m0s)", "leeway 1m0s"},
				stepIssuedAt:    {"(now)"},
				stepSubject:     {`sub "admin-1"`},
				stepAudience:    {testResource, "strategy resource"},
				stepScopes:      {`scope ["create:todos" "read:todos"]`},
				stepPermissions: {"create:todos grants create", "read:todos grants read", "no delete:todos, so no delete"},
				stepClient:      {`client_id "test-client"`},
			},
		},
		{
			name: "opaque token by introspection",
			s: func() Settings {
				s := introspectionTenant(iss, nil)
				s.Audience = Audience{Strategy: AudienceScope, Prefix: "todo-api:"}
				return s
			}(),
			token: func() string { return iss.MintOpaque(iss.Claims("svc-7", "", "todo-api:create delete:todos")) },
			steps: opaqueSteps,
			details: map[string][]string{
				stepToken:         {"token mode introspection"},
				stepDiscovery:     {"introspection_endpoint " + iss.IntrospectionURL()},
				stepIntrospection: {"POST " + iss.IntrospectionURL(), `as client "gateway" (client_secret_basic)`, "HTTP 200"},
				stepActive:        {"active is true"},
				stepAudience:      {"strategy scope", `"todo-api:"`},
				stepPermissions:   {"todo-api:create grants create", `ignored without the prefix: ["delete:todos"]`},
			},
			hits: providertest.Introspection,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, iss, tt.s, clk, testSecrets)
			tok := tt.token()
			want := mustVerify(t, p, tok) // now cached
			before := 0
			if tt.hits != "" {
				before = iss.Hits(tt.hits)
			}

			pr, steps, err := tracedVerify(p, tok)
			if err != nil {
				t.Fatalf("traced Verify: %v (trace %+v)", err, steps)
			}
			if !reflect.DeepEqual(pr, want) {
				t.Errorf("got principal %+v, want %+v (as without a trace)", pr, want)
			}
			if got := stepNames(steps); !slices.Equal(got, tt.steps) {
				t.Fatalf("got steps %q, want %q", got, tt.steps)
			}
			for _, s := range steps {
				if !s.OK {
					t.Errorf("step %q failed: %s", s.Name, s.Detail)
				}
				for _, want := range tt.details[s.Name] {
					if !strings.Contains(s.Detail, want) {
						t.Errorf("step %q detail %q, want it to contain %q", s.Name, s.Detail, want)
					}
				}
				if strings.Contains(s.Detail, tok) || strings.Contains(s.Detail, "gateway-secret") {
					t.Errorf("step %q detail %q contains the token or the secret", s.Name, s.Detail)
				}
			}
			if tt.hits != "" {
				if got := iss.Hits(tt.hits) - before; got != 1 {
					t.Errorf("got %d %s requests for the traced Verify, want 1 (the cache is bypassed)", got, tt.hits)
				}
			}
		})
	}
}

// TestTraceRefusals: a refused token's trace stops at the failed check,
// whose detail starts with the reason the client is told and adds what an
// operator needs (the times, the audience, the endpoint). The bad-token
// table checks the same shape for every JWT refusal.
func TestTraceRefusals(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	tests := []struct {
		name   string
		s      func() Settings
		token  func() string
		before func()
		class  Class
		reason string
		step   string
		detail []string
	}{
		{
			name: "expired JWT",
			s:    func() Settings { return settings(iss, KindOIDC) },
			token: func() string {
				c := iss.Claims("user-1", testResource, "read:todos")
				c["exp"] = clk.Now().Add(-2 * time.Hour).Unix()
				return iss.Mint(c)
			},
			class: ClassInvalidToken, reason: reasonExpired, step: stepExpiry,
			detail: []string{"(2h0m0s ago)", "beyond the 1m0s leeway", "now " + clk.Now().UTC().Format(time.RFC3339)},
		},
		{
			name:  "JWT for another resource",
			s:     func() Settings { return settings(iss, KindOIDC) },
			token: func() string { return iss.Mint(iss.Claims("user-1", "http://gw.test/other", "read:todos")) },
			class: ClassInvalidToken, reason: reasonAudResource, step: stepAudience,
			detail: []string{`aud ["http://gw.test/other"]`, `wants one of ["` + testResource + `"]`},
		},
		{
			name:   "issuer unreachable",
			s:      func() Settings { return settings(iss, KindOIDC) },
			token:  func() string { return iss.Mint(iss.Claims("user-1", testResource, "read:todos")) },
			before: func() { iss.SetDown(true) },
			class:  ClassUnavailable, reason: reasonIssuerDown, step: stepDiscovery,
			detail: []string{"no authorization server metadata found"},
		},
		{
			name:  "inactive opaque token",
			s:     func() Settings { return introspectionTenant(iss, nil) },
			token: func() string { return "c29tZS1vcGFxdWUtdG9rZW4" },
			class: ClassInvalidToken, reason: reasonInactive, step: stepActive,
			detail: []string{"active is false"},
		},
		{
			name:  "refresh token at introspection",
			s:     func() Settings { return introspectionTenant(iss, nil) },
			token: func() string { return iss.MintOpaque(map[string]any{"sub": "u", "token_use": "refresh_token"}) },
			class: ClassInvalidToken, reason: reasonNotAccess, step: stepTokenUse,
			detail: []string{`token_use "refresh_token"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { iss.SetDown(false) })
			p := newProvider(t, iss, tt.s(), clk, testSecrets)
			tok := tt.token()
			if tt.before != nil {
				tt.before()
			}
			_, steps, err := tracedVerify(p, tok)
			checkErr(t, err, tt.class, tt.reason)
			checkFailedTrace(t, steps, tt.reason, tok)
			last := steps[len(steps)-1]
			if last.Name != tt.step {
				t.Fatalf("got failed step %q, want %q (trace %+v)", last.Name, tt.step, steps)
			}
			for _, want := range tt.detail {
				if !strings.Contains(last.Detail, want) {
					t.Errorf("step %q detail %q, want it to contain %q", last.Name, last.Detail, want)
				}
			}
		})
	}
}

// TestTraceAbsent: without a trace, or with a nil one, Verify answers from
// its cache as it always has.
func TestTraceAbsent(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	tok := iss.Mint(iss.Claims("user-1", testResource, "read:todos"))
	mustVerify(t, p, tok)
	iss.SetDown(true) // only the cache can answer now
	for _, ctx := range []context.Context{context.Background(), WithTrace(context.Background(), nil)} {
		if _, err := p.Verify(ctx, tok); err != nil {
			t.Fatalf("got %v, want the cached answer", err)
		}
	}
	if got := iss.Hits(providertest.JWKS); got != 1 {
		t.Fatalf("got %d JWKS fetches, want 1", got)
	}
}

// TestTraceJoinsIntrospectionInFlight: a traced Verify that waits for an
// introspection another request started says so, rather than leaving a
// gap where the call's steps would be.
func TestTraceJoinsIntrospectionInFlight(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, introspectionTenant(iss, nil), clk, testSecrets)
	mustVerify(t, p, iss.MintOpaque(iss.Claims("u", testResource, ""))) // discovery done
	tok := iss.MintOpaque(iss.Claims("u", testResource, "read:todos"))

	iss.SetDelay(300 * time.Millisecond)
	before := iss.Hits(providertest.Introspection)
	done := make(chan error, 1)
	go func() {
		_, err := p.Verify(context.Background(), tok)
		done <- err
	}()
	for iss.Hits(providertest.Introspection) == before {
		time.Sleep(time.Millisecond)
	}
	_, steps, err := tracedVerify(p, tok)
	if err != nil {
		t.Fatalf("traced Verify: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("untraced Verify: %v", err)
	}
	if got := iss.Hits(providertest.Introspection) - before; got != 1 {
		t.Fatalf("got %d introspection calls, want 1 shared by both", got)
	}
	if got, want := stepNames(steps), []string{stepToken, stepDiscovery, stepIntrospection}; !slices.Equal(got, want) {
		t.Fatalf("got steps %q, want %q", got, want)
	}
	if last := steps[len(steps)-1]; !last.OK || !strings.Contains(last.Detail, "already in flight") {
		t.Fatalf("got last step %+v, want an ok introspection answered by the call in flight", last)
	}
}
