package providers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// clock is a settable time source shared by a provider and its issuer.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// quietLogger keeps expected warnings (outages are the point of several
// tests) out of the test output.
var quietLogger = slog.New(slog.DiscardHandler)

const testResource = "http://gw.test/acme"

// settings returns a resource-strategy tenant for iss.
func settings(iss *providertest.Issuer, kind Kind) Settings {
	return Settings{
		Tenant:   "acme",
		Resource: testResource,
		Config:   Config{Type: kind, Issuer: iss.Issuer()},
		Audience: Audience{Strategy: AudienceResource},
	}
}

// newProvider builds a provider talking to iss with clk, closed at the end
// of the test.
func newProvider(t testing.TB, iss *providertest.Issuer, s Settings, clk *clock, opts ...Option) *Provider {
	t.Helper()
	opts = append([]Option{WithHTTPClient(iss.Client()), WithClock(clk.Now), WithLogger(quietLogger)}, opts...)
	p, err := New(s, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func newIssuer(t testing.TB, clk *clock, opts ...providertest.Option) *providertest.Issuer {
	t.Helper()
	return providertest.New(t, append([]providertest.Option{providertest.WithClock(clk.Now)}, opts...)...)
}

// checkErr asserts err is an *Error of class with reason, and that the
// reason is fit for a WWW-Authenticate header.
func checkErr(t testing.TB, err error, class Class, reason string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v (%T), want *Error with reason %q", err, err, reason)
	}
	if e.Class != class || e.Reason != reason {
		t.Fatalf("got class %d reason %q (cause: %v), want class %d reason %q", e.Class, e.Reason, e.Err, class, reason)
	}
	checkSafeReason(t, e.Reason)
}

func checkSafeReason(t testing.TB, r string) {
	t.Helper()
	if r == "" || strings.ContainsAny(r, "\"\\\r\n") {
		t.Fatalf("reason %q is not safe for a WWW-Authenticate header", r)
	}
}

func mustVerify(t testing.TB, p *Provider, tok string) *Principal {
	t.Helper()
	pr, err := p.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return pr
}

// background counts the goroutines running for p: its own (introspection)
// and its issuer's (discovery and keys).
func background(p *Provider) int32 {
	return p.bg.active.Load() + p.disc.iss.deps.bg.active.Load()
}

// forgedKIDTokens returns n tokens for testResource with random kids. The
// signatures are random bytes: with an unknown kid no key is ever tried,
// and real signing would only slow the test down.
func forgedKIDTokens(t *testing.T, iss *providertest.Issuer, n int) []string {
	t.Helper()
	payload := base64.RawURLEncoding.EncodeToString(mustJSON(t, iss.Claims("u", testResource, "")))
	toks := make([]string, n)
	for i := range toks {
		hdr := base64.RawURLEncoding.EncodeToString(mustJSON(t, map[string]string{"alg": "ES256", "typ": "at+jwt", "kid": randomKID()}))
		sig := make([]byte, 64)
		rand.Read(sig)
		toks[i] = hdr + "." + payload + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	return toks
}

// inParallel calls fn(0) to fn(n-1) from the given number of goroutines.
// A bounded pool, not one goroutine per call: the race detector allows
// 8128 at once, fewer than the tenants some tests build.
func inParallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
