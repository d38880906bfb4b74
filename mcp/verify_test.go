package mcp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/todo-gateway/todo-gateway/providers"
)

// stubVerifier answers from its cache when it has a principal there, and
// counts the calls that reach Verify.
type stubVerifier struct {
	cached   *providers.Principal
	verified int
}

func (s *stubVerifier) Cached(string) (*providers.Principal, bool) { return s.cached, s.cached != nil }

func (s *stubVerifier) Verify(ctx context.Context, _ string) (*providers.Principal, error) {
	s.verified++
	if ctx.Done() == nil {
		return nil, errors.New("verified under a context that never ends")
	}
	return &providers.Principal{Subject: "verified"}, nil
}

// TestVerifyAnswersCachedTokensFirst: a cached token is answered by the
// cache, without a verification; any other is verified under a context the
// client or the shutdown can end.
func TestVerifyAnswersCachedTokensFirst(t *testing.T) {
	g := New(nil, Options{})
	req := httptest.NewRequest(http.MethodPost, "/acme", nil)
	c := g.echo.NewContext(req, httptest.NewRecorder())
	cached := &stubVerifier{cached: &providers.Principal{Subject: "cached"}}
	if p, _, err := g.verify(c, cached, "tok"); err != nil || p.Subject != "cached" || cached.verified != 0 {
		t.Errorf("cached token: got %v, %v after %d verifications, want the cached principal and none", p, err, cached.verified)
	}
	fresh := &stubVerifier{}
	if p, _, err := g.verify(c, fresh, "tok"); err != nil || p.Subject != "verified" || fresh.verified != 1 {
		t.Errorf("new token: got %v, %v after %d verifications, want one verification", p, err, fresh.verified)
	}
}
