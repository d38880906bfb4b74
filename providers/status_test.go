package providers

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStatus(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	p := newProvider(t, iss, settings(iss, KindOIDC), clk)
	if s := p.Status(); s.Discovered || s.Reachable || s.Keys != 0 {
		t.Errorf("before any token: %+v, want nothing discovered, not reachable (never contacted)", s)
	}
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	s := p.Status()
	if !s.Discovered || !s.Reachable || s.Keys == 0 || s.KeysAt.IsZero() || s.MetadataAt.IsZero() || s.LastError != "" {
		t.Errorf("after a token: %+v, want discovered, keys cached, no error", s)
	}

	down := newIssuer(t, clk)
	q := newProvider(t, down, settings(down, KindOIDC), clk)
	tok := down.Mint(down.Claims("u", testResource, ""))
	down.SetDown(true)
	q.Verify(context.Background(), tok)
	if s := q.Status(); s.Discovered || s.Reachable || s.LastError == "" {
		t.Errorf("issuer down: %+v, want unreachable with the error", s)
	}
}

func TestMetrics(t *testing.T) {
	clk := newClock()
	iss := newIssuer(t, clk)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)

	p := newProvider(t, iss, settings(iss, KindOIDC), clk, WithMetrics(m))
	mustVerify(t, p, iss.Mint(iss.Claims("u", testResource, "")))
	if got := testutil.ToFloat64(m.jwks.WithLabelValues(iss.Issuer(), "ok")); got != 1 {
		t.Errorf("JWKS fetches ok: got %v, want 1", got)
	}

	q := newProvider(t, iss, introspectionTenant(iss, nil), clk, testSecrets, WithMetrics(m))
	tok := iss.MintOpaque(iss.Claims("u", testResource, "read:todos"))
	for range 3 {
		if _, err := q.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		vec    *prometheus.CounterVec
		result string
		want   float64
	}{
		{m.introspection, "ok", 1},
		{m.introCache, "miss", 1},
		{m.introCache, "hit", 2},
	} {
		if got := testutil.ToFloat64(c.vec.WithLabelValues(iss.Issuer(), c.result)); got != c.want {
			t.Errorf("%s: got %v, want %v", c.result, got, c.want)
		}
	}
}
