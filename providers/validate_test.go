package providers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// The rules one by one are tested where the configuration file is: the
// tenants package runs every rule through both "check" and what "serve"
// builds (tenants/agreement_test.go). Here: the mechanisms behind them.

// TestKindTable: every row is complete and its defaults satisfy the rules
// they are checked against, so a new row cannot ship a default that
// Validate would refuse.
func TestKindTable(t *testing.T) {
	seen := map[Kind]bool{}
	for _, row := range kindTable {
		t.Run(string(row.kind), func(t *testing.T) {
			if seen[row.kind] {
				t.Fatal("got the kind twice, want one row per kind")
			}
			seen[row.kind] = true
			if len(row.discovery) == 0 || len(row.jwtTypes) == 0 || len(row.scopeClaims) == 0 || !slices.Contains(tokenModes, row.token) {
				t.Fatalf("got row %+v, want discovery, jwt types, scope claims and a token mode", row)
			}
			if (row.issuerSuffix == "") != (row.issuerExample == "") || !strings.HasSuffix(row.issuerExample, row.issuerSuffix) {
				t.Fatalf("got issuer suffix %q example %q, want both or neither, the example ending in the suffix", row.issuerSuffix, row.issuerExample)
			}
			issuer := row.issuerExample
			if issuer == "" {
				issuer = "https://as.example"
			}
			s := Settings{Tenant: "t", Resource: testResource, Config: Config{Type: row.kind, Issuer: issuer}}
			if probs := s.Validate(); len(probs) != 0 {
				t.Fatalf("got problems %v with the kind's defaults, want none", probs)
			}
			if got := DiscoveryURLs(row.kind, issuer); len(got) == 0 {
				t.Fatal("got no discovery URLs, want some")
			}
		})
	}
	if got := kindNames(); got != "logto, oidc, oauth" {
		t.Errorf("kindNames: got %q, want the table's order", got)
	}
	if DiscoveryURLs("saml", "https://as.example") != nil {
		t.Error("got discovery URLs for an unknown kind, want none")
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "LocalHost": true,
		"127.0.0.1": true, "127.8.9.10": true, "::1": true, "::ffff:127.0.0.1": true,
		"localhost.example": false, "10.0.0.1": false, "::2": false, "": false, "example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q): got %v, want %v", host, got, want)
		}
	}
}

func TestValidTokenSyntax(t *testing.T) {
	for tok, want := range map[string]bool{
		"abc":                                true,
		"abc.def-ghi_~+/=":                   true,
		"YWJj==":                             true,
		"a":                                  true,
		"-":                                  true,
		"":                                   false,
		"=":                                  false,
		"===":                                false,
		"a=b":                                false, // padding only at the end
		"a b":                                false,
		"a\tb":                               false,
		`a"b`:                                false,
		"a,b":                                false,
		"\u00e9":                             false,
		strings.Repeat("a", MaxTokenBytes+1): true, // the length is Verify's business
	} {
		if got := ValidTokenSyntax(tok); got != want {
			t.Errorf("ValidTokenSyntax(%.20q): got %v, want %v", tok, got, want)
		}
	}
}

// TestValidateReportsEveryProblem: one call lists everything, in the order
// of the configuration file, each problem once.
func TestValidateReportsEveryProblem(t *testing.T) {
	s := Settings{
		Config: Config{Type: KindLogto, Issuer: "http://u@acme.example/x?q#f", Token: "opaque",
			Algorithms: []string{"HS256", "ES384", "none"}, Leeway: durationPtr(-1),
			Metadata: &MetadataOverride{JWKSURI: "http://localhost/jwks"}},
		Audience: Audience{Strategy: AudienceScope, Prefix: "api:", Values: []string{"x"}},
		Claims:   Claims{Scopes: []string{"groups"}},
		Scopes:   ScopeMap{PermCreate: "create:todos", "write": "w"},
	}
	var got []string
	for _, p := range s.Validate() {
		got = append(got, p.String())
	}
	want := []string{
		"provider.issuer: must not contain user information",
		"provider.issuer: must not have a query",
		"provider.issuer: must not have a fragment",
		`provider.issuer: must use https (http is accepted only for a loopback host or with "allow_http_issuer": true)`,
		`provider.issuer: a logto issuer ends in "/oidc", such as "https://acme.logto.app/oidc"`,
		`provider.token: unknown token mode "opaque" (one of jwt, introspection, auto)`,
		`provider.algorithms[0]: "HS256" is not allowed: HMAC needs a shared secret, and a resource server verifies with public keys`,
		`provider.algorithms[2]: "none" is never allowed: tokens must be signed`,
		"provider.leeway: must be between 0s and 5m0s",
		`audience.values: only used with strategy "audience"`,
		`scopes: unknown permission "write" (one of create, read, delete)`,
		`scopes.create: must start with the audience prefix "api:"`,
		`claims.scopes[0]: unknown scope claim "groups" (one of scope, scp, scopes, permissions, roles); to grant permissions from a group or role claim such as "groups", map its values in claims.roles ("roles": {"claim": "groups", "grants": {…}})`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDiscoveredEndpointMustNotDowngrade: the issuer's own metadata may
// not send the gateway to plain http for keys either.
func TestDiscoveredEndpointMustNotDowngrade(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": "http://127.0.0.1:1/jwks"})
	}))
	defer srv.Close()
	clk := newClock()
	iss := newIssuer(t, clk)
	s := Settings{Tenant: "t", Resource: testResource, Config: Config{Type: KindOIDC, Issuer: srv.URL}}
	p := newProvider(t, iss, s, clk, WithHTTPClient(srv.Client()))
	c := iss.Claims("u", testResource, "")
	c["iss"] = srv.URL
	_, err := p.Verify(context.Background(), iss.Mint(c))
	checkErr(t, err, ClassInternal, "authorization server metadata names an unusable endpoint")
	if !strings.Contains(err.Error(), "must use https like the issuer") {
		t.Errorf("got %v, want the downgrade named", err)
	}
}
