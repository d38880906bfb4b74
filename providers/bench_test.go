package providers

import (
	"context"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// BenchmarkVerify measures one verification per algorithm:
//
//   - baseline: go-jose parse + signature check alone, the floor any
//     verifier pays;
//   - cold: a new provider's first token (discovery and JWKS over loopback
//     HTTP, then verification);
//   - warm: keys cached, verified-token cache off: parse, signature,
//     claims every time;
//   - cached: a hit in the verified-token cache.
//
// Run: go test -run '^$' -bench BenchmarkVerify -benchmem ./providers/
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384} {
		iss := providertest.New(b, providertest.WithKeys(alg))
		s := Settings{Tenant: "bench", Resource: testResource,
			Config: Config{Type: KindOIDC, Issuer: iss.Issuer()}}
		tok := iss.Mint(iss.Claims("user-1", testResource, "create:todos read:todos"), providertest.Alg(alg))
		opts := []Option{WithHTTPClient(iss.Client()), WithLogger(quietLogger)}
		ctx := context.Background()

		b.Run(string(alg)+"/baseline", func(b *testing.B) {
			pub := iss.Key(iss.KeyID(alg)).Public()
			for b.Loop() {
				jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{alg})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := jws.Verify(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(alg)+"/cold", func(b *testing.B) {
			for b.Loop() {
				p, err := New(s, opts...)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
		b.Run(string(alg)+"/warm", func(b *testing.B) {
			p, err := New(s, append(opts, WithVerifiedTokenCache(0))...)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			if _, err := p.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(alg)+"/cached", func(b *testing.B) {
			p, err := New(s, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			if _, err := p.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCachedParallel shows the cache under contention: many
// requests of one tenant presenting a handful of tokens.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	iss := providertest.New(b, providertest.WithKeys(jose.ES256))
	p, err := New(Settings{Tenant: "bench", Resource: testResource, Config: Config{Type: KindOIDC, Issuer: iss.Issuer()}},
		WithHTTPClient(iss.Client()), WithLogger(quietLogger))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	toks := make([]string, 64)
	for i := range toks {
		toks[i] = iss.Mint(iss.Claims("user", testResource, "read:todos"))
		if _, err := p.Verify(context.Background(), toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := p.Verify(context.Background(), toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
