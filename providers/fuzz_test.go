package providers

import (
	"context"
	"strings"
	"testing"
)

// FuzzVerify: whatever arrives as a bearer token, Verify answers with a
// typed error whose reason is safe for a header, or a principal; it never
// panics and never calls a bad token a server problem.
func FuzzVerify(f *testing.F) {
	clk := newClock()
	iss := newIssuer(f, clk)
	p := newProvider(f, iss, settings(iss, KindOIDC), clk)
	good := iss.Mint(iss.Claims("u", testResource, "read:todos"))
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c.d.e")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		pr, err := p.Verify(context.Background(), raw)
		if err == nil {
			if pr == nil || pr.Subject == "" {
				t.Fatalf("accepted without a subject: %+v", pr)
			}
			return
		}
		e, ok := err.(*Error)
		if !ok {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if e.Class == ClassInternal {
			t.Fatalf("a token made a server error: %v", err)
		}
		if strings.ContainsAny(e.Reason, "\\\"") || (len(raw) > 8 && strings.Contains(e.Reason, raw)) {
			t.Fatalf("unsafe reason %q", e.Reason)
		}
	})
}
