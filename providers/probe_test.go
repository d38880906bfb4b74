package providers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

func TestProbeReportsCapabilities(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithPath("/as"),
		providertest.WithDiscovery(providertest.OAuthInserted, providertest.OpenIDAppended))
	s := settings(iss, KindOAuth)
	r, err := Probe(context.Background(), s, WithHTTPClient(iss.Client()), WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}

	var answered []string
	for _, a := range r.Discovery {
		if a.Status == 200 && a.Error == "" {
			answered = append(answered, a.URL)
		}
	}
	if want := []string{iss.MetadataURL(providertest.OAuthInserted), iss.MetadataURL(providertest.OpenIDAppended)}; !slices.Equal(answered, want) {
		t.Errorf("got answering URLs %q, want %q", answered, want)
	}
	if len(r.Discovery) != 4 {
		t.Errorf("got %d discovery attempts, want all 4 oauth locations tried", len(r.Discovery))
	}
	if r.MetadataURL != iss.MetadataURL(providertest.OAuthInserted) || !r.IssuerMatch {
		t.Errorf("got metadata %q match %v, want the RFC 8414 document and a match", r.MetadataURL, r.IssuerMatch)
	}
	e := r.Endpoints
	for name, v := range map[string]string{"authorization": e.Authorization, "token": e.Token, "jwks": e.JWKS,
		"introspection": e.Introspection, "revocation": e.Revocation, "registration": e.Registration} {
		if v == "" {
			t.Errorf("got no %s endpoint, want one", name)
		}
	}
	if !r.PKCES256 || !r.ClientIDMetadataDocument || !r.DynamicRegistration {
		t.Errorf("got PKCE %v CIMD %v DCR %v, want all true", r.PKCES256, r.ClientIDMetadataDocument, r.DynamicRegistration)
	}
	if !slices.Contains(r.GrantTypes, "client_credentials") {
		t.Errorf("got grant types %q, want client_credentials among them", r.GrantTypes)
	}
	if want := []string{"ES256", "ES384", "EdDSA", "RS256"}; !slices.Equal(r.SigningAlgs, want) {
		t.Errorf("got signing algs %q, want %q", r.SigningAlgs, want)
	}
	if len(r.Keys) != 4 {
		t.Fatalf("got %d keys, want 4", len(r.Keys))
	}
	for _, k := range r.Keys {
		if !k.Usable || k.KID == "" || k.Use != "sig" || k.Alg == "" {
			t.Errorf("got key %+v, want a usable signing key with kid, alg and use", k)
		}
		if k.Alg == "ES384" && (k.Curve != "P-384" || k.Bits != 384) {
			t.Errorf("got ES384 key %+v, want curve P-384 and 384 bits", k)
		}
		if k.Alg == "RS256" && k.Bits != 2048 {
			t.Errorf("got RS256 key of %d bits, want 2048", k.Bits)
		}
	}
	if !r.TenantScopesInScopesSupported || len(r.MissingScopes) != 0 {
		t.Errorf("got scopes listed %v missing %q, want all listed", r.TenantScopesInScopesSupported, r.MissingScopes)
	}
	if vs := Verdicts(s, r); len(vs) != 0 {
		t.Errorf("got verdicts %+v, want none", vs)
	}
}

func TestProbeFindsMissingScopesAndMismatch(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetMetadata(func(_ providertest.Endpoint, m map[string]any) {
		m["issuer"] = "https://somewhere.else"
		delete(m, "code_challenge_methods_supported")
	})
	s := settings(iss, KindOIDC)
	s.Audience = Audience{Strategy: AudienceScope, Prefix: "todo-api:"}
	r, err := Probe(context.Background(), s, WithHTTPClient(iss.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if r.IssuerMatch || r.MetadataURL != "" {
		t.Errorf("got match %v metadata %q, want no match", r.IssuerMatch, r.MetadataURL)
	}
	if r.Discovery[0].Issuer != "https://somewhere.else" || !strings.Contains(r.Discovery[0].Error, iss.Issuer()) {
		t.Errorf("got attempt %+v, want the discovered issuer and an error naming the configured one", r.Discovery[0])
	}
	if want := []string{"todo-api:create", "todo-api:read", "todo-api:delete"}; !slices.Equal(r.MissingScopes, want) || r.TenantScopesInScopesSupported {
		t.Errorf("got missing %q, want %q", r.MissingScopes, want)
	}
	if !hasRule(Verdicts(s, r), RuleIssuerMismatch) {
		t.Errorf("got verdicts %+v, want the issuer mismatch reported", Verdicts(s, r))
	}
}

func TestProbeIsBounded(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithKeys(jose.ES256))
	iss.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	s := settings(iss, KindOAuth)
	r, err := Probe(ctx, s, WithHTTPClient(iss.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("got a probe of %v against a hanging server, want it to stop at the caller's deadline", d)
	}
	if r.IssuerMatch || !hasRule(Verdicts(s, r), RuleDiscovery) {
		t.Fatalf("got %+v, want a failed probe and a discovery verdict", r)
	}
}

// TestProbeNeedsNoSecret: the probe describes an introspection tenant's
// server even where serve could not read the secret; it then does not
// call introspection, and says why.
func TestProbeNeedsNoSecret(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	s := introspectionTenant(iss, nil)
	nothing := WithSecretResolver(SecretResolver{LookupEnv: func(string) (string, bool) { return "", false }})
	if _, err := New(s, nothing); err == nil {
		t.Fatal("New: got a verifier without its secret, want an error")
	}
	r, err := Probe(context.Background(), s, WithHTTPClient(iss.Client()), nothing)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if r.Introspection == nil || !strings.Contains(r.Introspection.NotProbed, "SECRET is not set") {
		t.Errorf("got introspection probe %+v, want it not probed for want of the secret", r.Introspection)
	}
	if !r.IssuerMatch || r.Endpoints.Introspection == "" || iss.Hits(providertest.Introspection) != 0 {
		t.Errorf("got match %v introspection %q and %d introspection calls, want the server described without a call",
			r.IssuerMatch, r.Endpoints.Introspection, iss.Hits(providertest.Introspection))
	}
}

func TestProbeRefusesInvalidSettings(t *testing.T) {
	s := Settings{Tenant: "t", Resource: testResource, Config: Config{Type: KindOIDC, Issuer: "ftp://as.example"}}
	_, err := Probe(context.Background(), s)
	var ise *InvalidSettingsError
	if !errors.As(err, &ise) || len(ise.Problems) != 1 || ise.Problems[0].Path != "provider.issuer" {
		t.Fatalf("got %v, want the issuer problem", err)
	}
}

func hasRule(vs []Verdict, rule string) bool {
	return slices.ContainsFunc(vs, func(v Verdict) bool { return v.Rule == rule })
}

// TestProbeCallsIntrospection: a random token must come back 200 with
// "active": false; a wrong path, refused credentials or a dead port are
// errors, each saying what answered.
func TestProbeCallsIntrospection(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	dead := newIssuer(t, clk)
	deadURL := dead.IntrospectionURL()
	dead.Close()
	for _, tc := range []struct {
		name     string
		endpoint string // the configured override; "" for the discovered one
		creds    func(*IntrospectionConfig)
		inactive bool
		status   int
		err      string
	}{
		{name: "working", inactive: true, status: 200},
		{name: "wrong path", endpoint: iss.URL() + "/introspect-typo", status: 404, err: "POST " + iss.URL() + "/introspect-typo: HTTP 404"},
		{name: "wrong credentials", creds: func(c *IntrospectionConfig) { c.ClientID = "someone" }, status: 401, err: "HTTP 401"},
		{name: "dead port", endpoint: deadURL, err: "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := introspectionTenant(iss, tc.creds)
			if tc.endpoint != "" {
				s.Config.Metadata = &MetadataOverride{IntrospectionEndpoint: tc.endpoint}
			}
			r, err := Probe(context.Background(), s, WithHTTPClient(iss.Client()), testSecrets)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			pr := r.Introspection
			if pr == nil || pr.Method != "POST" || pr.Inactive != tc.inactive || pr.Status != tc.status || !strings.Contains(pr.Error, tc.err) || (tc.err == "") != (pr.Error == "") {
				t.Fatalf("got %+v, want inactive %v, status %d, error containing %q", pr, tc.inactive, tc.status, tc.err)
			}
			// An error verdict exactly when the answer was not inactive.
			isError := slices.ContainsFunc(Verdicts(s, r), func(v Verdict) bool { return v.Rule == RuleIntrospectionProbe && v.Severity == SeverityError })
			if isError == tc.inactive {
				t.Fatalf("got error verdict %s %v, want %v", RuleIntrospectionProbe, isError, !tc.inactive)
			}
		})
	}
}

// TestRecogniseSoftware: Hydra and Dex by what their metadata says, on
// any host; other servers are not guessed at.
func TestRecogniseSoftware(t *testing.T) {
	const iss = "https://login.acme.example"
	for _, tc := range []struct {
		name string
		md   Metadata
		want string
	}{
		{"Hydra 2.2", Metadata{AuthorizationEndpoint: iss + "/oauth2/auth", CredentialsEndpointDraft00: iss + "/credentials"}, softwareHydra},
		{"Hydra before 2.2", Metadata{AuthorizationEndpoint: iss + "/oauth2/auth", TokenEndpoint: iss + "/oauth2/token",
			EndSessionEndpoint: iss + "/oauth2/sessions/logout"}, softwareHydra},
		{"Dex", Metadata{AuthorizationEndpoint: iss + "/auth", TokenEndpoint: iss + "/token", JWKSURI: iss + "/keys",
			DeviceAuthorizationEndpoint: iss + "/device/code"}, softwareDex},
		{"node-oidc-provider", Metadata{AuthorizationEndpoint: iss + "/auth", TokenEndpoint: iss + "/token", JWKSURI: iss + "/jwks"}, ""},
		{"Keycloak", Metadata{AuthorizationEndpoint: iss + "/protocol/openid-connect/auth", EndSessionEndpoint: iss + "/protocol/openid-connect/logout"}, ""},
	} {
		if got := recogniseSoftware(iss, &tc.md); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
