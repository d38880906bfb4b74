package upstream

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
)

// RFC 8693 token exchange: the gateway trades the client's token, at the
// tenant's own issuer, for a token meant for the upstream. The client's
// token goes to the issuer that minted it and nowhere else; a refused or
// failed exchange is answered 502 or 503, never by sending the client's
// token on.

// Exchange is the identity block's "exchange": the gateway's client at the
// tenant's issuer and what it asks for.
type Exchange struct {
	// TokenEndpoint overrides the issuer's discovered token endpoint.
	TokenEndpoint    string `json:"token_endpoint,omitempty"`
	ClientID         string `json:"client_id"`
	ClientSecretEnv  string `json:"client_secret_env,omitempty"`
	ClientSecretFile string `json:"client_secret_file,omitempty"`
	// AuthMethod is how the client authenticates: "basic" (default,
	// client_secret_basic) or "form" (client_secret_post).
	AuthMethod string `json:"auth_method,omitempty"`
	// Audience is asked for as "audience"; default the upstream's URL.
	// The upstream's URL is also sent as "resource" (RFC 8707).
	Audience string `json:"audience,omitempty"`
	// Scope, when set, is asked for as "scope".
	Scope string `json:"scope,omitempty"`
}

// Token exchange parameters (RFC 8693 §2.1, §3).
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
	// exchangeMargin: a cached token is used while it has this long left.
	exchangeMargin = 15 * time.Second
	// defaultExchangeLifetime, for an answer without expires_in; never
	// past the client's own token.
	defaultExchangeLifetime = 5 * time.Minute
	exchangeTimeout         = 10 * time.Second
	maxExchangeAnswer       = 64 << 10
)

var exchangeAuthMethods = []string{"basic", "form"}

func (e *Exchange) validate() []Problem {
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, Problem{Path: "identity.exchange." + path, Message: fmt.Sprintf(format, args...)})
	}
	if e.ClientID == "" {
		add("client_id", "required: the gateway's client at the tenant's issuer")
	}
	probs = append(probs, providers.CheckSecretRef("identity.exchange", "client_secret", e.ClientSecretEnv, e.ClientSecretFile)...)
	if e.AuthMethod != "" && e.AuthMethod != "basic" && e.AuthMethod != "form" {
		add("auth_method", "unknown auth method %q (one of %s)", e.AuthMethod, strings.Join(exchangeAuthMethods, ", "))
	}
	if e.TokenEndpoint != "" {
		if u, err := url.Parse(e.TokenEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("token_endpoint", "must be an absolute http or https URL")
		}
	}
	if strings.ContainsAny(e.Scope, "\"\\\r\n") {
		add("scope", "must be space-separated scope tokens")
	}
	return probs
}

// exchangeError is a failed exchange, answered with its status.
type exchangeError struct {
	status int // 502: the issuer refused; 503: it could not answer
	reason string
}

func (e *exchangeError) Error() string { return "token exchange: " + e.reason }

// exchanger trades tokens and caches the answers per (client token,
// audience) until shortly before they expire.
type exchanger struct {
	cfg      Exchange
	audience string
	resource string
	secret   string
	endpoint func(context.Context) (string, error)
	client   *http.Client
	now      func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedToken
}

type cachedToken struct {
	token string
	exp   time.Time
}

// exchange returns a token for the upstream in place of subject, the
// client's token, which p is the verification of.
func (x *exchanger) exchange(ctx context.Context, subject string, p *providers.Principal) (string, error) {
	key := sha256.Sum256([]byte(x.audience + "\x00" + subject))
	now := x.now()
	x.mu.Lock()
	if c, ok := x.cache[key]; ok && now.Add(exchangeMargin).Before(c.exp) {
		x.mu.Unlock()
		return c.token, nil
	}
	x.mu.Unlock()

	endpoint, err := x.endpoint(ctx)
	if err != nil {
		return "", &exchangeError{http.StatusServiceUnavailable, "the issuer's token endpoint could not be discovered: " + err.Error()}
	}
	if endpoint == "" {
		return "", &exchangeError{http.StatusBadGateway, "the issuer publishes no token endpoint; set identity.exchange.token_endpoint"}
	}
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {subject},
		"subject_token_type":   {tokenTypeAccess},
		"requested_token_type": {tokenTypeAccess},
		"audience":             {x.audience},
		"resource":             {x.resource},
	}
	if x.cfg.Scope != "" {
		form.Set("scope", x.cfg.Scope)
	}
	if x.cfg.AuthMethod == "form" {
		form.Set("client_id", x.cfg.ClientID)
		form.Set("client_secret", x.secret)
	}
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &exchangeError{http.StatusBadGateway, err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if x.cfg.AuthMethod != "form" {
		req.SetBasicAuth(url.QueryEscape(x.cfg.ClientID), url.QueryEscape(x.secret))
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return "", &exchangeError{http.StatusServiceUnavailable, "the issuer could not be reached: " + err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxExchangeAnswer))
	if err != nil {
		return "", &exchangeError{http.StatusServiceUnavailable, "reading the issuer's answer: " + err.Error()}
	}
	var ans struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
		TokenType       string `json:"token_type"`
		ExpiresIn       *int64 `json:"expires_in"`
		Error           string `json:"error"`
		Description     string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &ans)
	switch {
	case resp.StatusCode >= 500:
		return "", &exchangeError{http.StatusServiceUnavailable, fmt.Sprintf("the issuer answered HTTP %d", resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return "", &exchangeError{http.StatusBadGateway, fmt.Sprintf("the issuer refused (HTTP %d, error %q: %q)", resp.StatusCode, bound(ans.Error), bound(ans.Description))}
	case ans.AccessToken == "":
		return "", &exchangeError{http.StatusBadGateway, "the issuer's answer has no access_token"}
	case !strings.EqualFold(ans.TokenType, "Bearer"):
		return "", &exchangeError{http.StatusBadGateway, fmt.Sprintf("the issuer issued a token of type %q, not Bearer", bound(ans.TokenType))}
	case ans.IssuedTokenType != tokenTypeAccess:
		return "", &exchangeError{http.StatusBadGateway, fmt.Sprintf("the issuer issued a %q, not an access token", bound(ans.IssuedTokenType))}
	case subtle.ConstantTimeCompare([]byte(ans.AccessToken), []byte(subject)) == 1:
		// An issuer that hands back the token it was given (a
		// misconfigured exchange policy) would make the gateway pass the
		// client's own token on: never.
		return "", &exchangeError{http.StatusBadGateway, "the issuer answered with the client's own token, not one for the upstream"}
	}
	life := defaultExchangeLifetime
	if ans.ExpiresIn != nil {
		life = time.Duration(*ans.ExpiresIn) * time.Second
	}
	exp := now.Add(life)
	if !p.Expiry.IsZero() && p.Expiry.Before(exp) {
		exp = p.Expiry
	}
	x.mu.Lock()
	if len(x.cache) >= maxCached {
		clear(x.cache)
	}
	x.cache[key] = cachedToken{token: ans.AccessToken, exp: exp}
	x.mu.Unlock()
	return ans.AccessToken, nil
}

// bound cuts what an issuer or an upstream said to a log line's size.
func bound(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

var errNoSubjectToken = errors.New("no client token to exchange")
