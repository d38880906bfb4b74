package providers

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestIntrospectionWithoutClientAuth: auth_method none, as Hydra's admin
// endpoint wants, sends no credentials and needs no secret.
func TestIntrospectionWithoutClientAuth(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk, providertest.WithIntrospectionClient("", ""))
	s := introspectionTenant(iss, func(c *IntrospectionConfig) { *c = IntrospectionConfig{AuthMethod: "none"} })
	// No secret resolver: there is no secret to read.
	p := newProvider(t, iss, s, clk)
	pr := mustVerify(t, p, iss.MintOpaque(iss.Claims("u", testResource, "read:todos")))
	if !pr.Has(PermRead) {
		t.Fatalf("got %+v, want read", pr)
	}
	if got := iss.LastIntrospectionAuth(); got != "none" {
		t.Fatalf("got auth %q, want none", got)
	}
}

// TestStatusErrorNamesTheMethod: an introspection failure says POST, a
// metadata or key failure GET.
func TestStatusErrorNamesTheMethod(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	iss.SetStatus(providertest.Introspection, http.StatusBadGateway)
	p := newProvider(t, iss, introspectionTenant(iss, nil), clk, testSecrets)
	_, err := p.Verify(context.Background(), iss.MintOpaque(iss.Claims("u", testResource, "")))
	if want := "POST " + iss.IntrospectionURL() + ": HTTP 502"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want it to say %q", err, want)
	}

	iss.SetStatus(providertest.JWKS, http.StatusBadGateway)
	q := newProvider(t, iss, settings(iss, KindOIDC), clk)
	_, err = q.Verify(context.Background(), iss.Mint(iss.Claims("u", testResource, "")))
	if want := "GET " + iss.JWKSURL() + ": HTTP 502"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want it to say %q", err, want)
	}
}

// TestIntrospectionStatus: /status shows when introspection last answered
// and its latest failure; a JWT tenant shows none.
func TestIntrospectionStatus(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, introspectionTenant(iss, nil), clk, testSecrets)
	s := p.Status()
	if s.Introspection == nil || !s.Introspection.LastSuccess.IsZero() || s.Introspection.LastError != "" {
		t.Fatalf("before any token: %+v, want an empty introspection status", s.Introspection)
	}
	mustVerify(t, p, iss.MintOpaque(iss.Claims("u", testResource, "")))
	if in := p.Status().Introspection; !in.LastSuccess.Equal(clk.Now()) || in.LastError != "" {
		t.Fatalf("after an answer: %+v, want last success now and no error", in)
	}
	clk.Advance(5 * time.Second)
	iss.SetStatus(providertest.Introspection, http.StatusInternalServerError)
	_, err := p.Verify(context.Background(), iss.MintOpaque(iss.Claims("v", testResource, "")))
	checkErr(t, err, ClassUnavailable, reasonIntrospectDown)
	in := p.Status().Introspection
	if !in.LastErrorAt.Equal(clk.Now()) || !strings.Contains(in.LastError, "POST "+iss.IntrospectionURL()+": HTTP 500") || in.LastSuccess.IsZero() {
		t.Fatalf("after a failure: %+v, want the error now and the earlier success kept", in)
	}

	// With the endpoint configured nothing is fetched from the issuer:
	// the issuer's facts stay the issuer's (never contacted, configured,
	// not discovered), whatever the endpoint answered, which is the
	// introspection status's to say; the tenant shows what Issuers.List
	// shows for its issuer.
	iss.SetStatus(providertest.Introspection, 0)
	configured := introspectionTenant(iss, nil)
	configured.Config.Metadata = &MetadataOverride{IntrospectionEndpoint: iss.IntrospectionURL()}
	c := newProvider(t, iss, configured, clk, testSecrets)
	mustVerify(t, c, iss.MintOpaque(iss.Claims("w", testResource, "")))
	st := c.Status()
	if st.Reachable || st.Discovered || !st.MetadataAt.IsZero() || !st.Configured || st.Introspection.LastSuccess.IsZero() {
		t.Fatalf("configured endpoint after an answer: %+v (introspection %+v), want configured, neither discovered nor reachable, and the endpoint's success", st, st.Introspection)
	}

	q := newProvider(t, iss, settings(iss, KindOIDC), clk)
	if s := q.Status(); s.Introspection != nil {
		t.Fatalf("JWT tenant: got introspection status %+v, want none", s.Introspection)
	}
}

// TestStatusReachableOnlyAfterAnAnswer: an issuer nobody has asked yet is
// not reachable, and neither is one known only from the configuration.
func TestStatusReachableOnlyAfterAnAnswer(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	s := settings(iss, KindOIDC)
	s.Config.Metadata = &MetadataOverride{JWKSURI: iss.JWKSURL()}
	p := newProvider(t, iss, s, clk)
	if st := p.Status(); st.Reachable {
		t.Fatalf("never contacted: %+v, want not reachable", st)
	}
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	if st := p.Status(); !st.Reachable || st.Keys == 0 {
		t.Fatalf("after a key fetch: %+v, want reachable", st)
	}
}
