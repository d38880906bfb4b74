package providers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxIntrospectTTL bounds the configured cache TTL: past it, a revoked
// token would stay usable for longer than operators expect.
const maxIntrospectTTL = 10 * time.Minute

// introspector is an RFC 7662 client with a cache. It answers for opaque
// tokens (and for JWTs in introspection mode).
type introspector struct {
	p        *Provider
	client   *http.Client // the provider's, minus redirects
	clientID string
	secret   string
	form     bool // client_secret_post instead of client_secret_basic
	ttl      time.Duration
	rules    claimRules
	cache    *lru[introResult]
	calls    keyedCalls[[32]byte, introResult]
}

// introResult is a definitive answer: a principal, or a refusal. Transient
// failures are never cached.
type introResult struct {
	pr  *Principal
	err *Error
}

func newIntrospector(p *Provider, c *IntrospectionConfig, sr SecretResolver) (*introspector, error) {
	// A redirect would re-send the form, token included, wherever the
	// Location header points: never follow one.
	client := *p.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	in := &introspector{
		p:      p,
		client: &client,
		ttl:    defaultIntrospectTTL,
		rules:  claimRules{introspection: true},
		cache:  newLRU[introResult](defaultIntrospectCacheSize),
	}
	if c == nil {
		return in, nil
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("tenant %q: introspection: "+format, append([]any{p.tenant}, args...)...)
	}
	in.clientID = c.ClientID
	in.rules.allowMissingIssuer = c.AllowMissingIssuer
	in.rules.allowMissingAudience = c.AllowMissingAudience
	switch c.AuthMethod {
	case "", "basic":
	case "form":
		in.form = true
	default:
		return nil, fail("auth_method %q is not basic or form", c.AuthMethod)
	}
	if c.CacheTTL != nil {
		in.ttl = min(max(time.Duration(*c.CacheTTL), 0), maxIntrospectTTL)
	}
	switch {
	case c.ClientSecret != "":
		return nil, fail("an inline client_secret is not accepted; use client_secret_env or client_secret_file")
	case c.ClientSecretEnv != "" && c.ClientSecretFile != "":
		return nil, fail("set client_secret_env or client_secret_file, not both")
	case c.ClientSecretEnv != "":
		v, ok := sr.LookupEnv(c.ClientSecretEnv)
		if !ok || v == "" {
			return nil, fail("environment variable %s is not set", c.ClientSecretEnv)
		}
		in.secret = v
	case c.ClientSecretFile != "":
		b, err := sr.ReadFile(c.ClientSecretFile)
		if err != nil {
			return nil, fail("cannot read client_secret_file: %v", err)
		}
		// Secret files usually end in a newline the secret does not contain.
		in.secret = strings.TrimRight(string(b), "\r\n")
		if in.secret == "" {
			return nil, fail("client_secret_file %s is empty", c.ClientSecretFile)
		}
	}
	if in.secret != "" && in.clientID == "" {
		return nil, fail("a client secret needs a client_id")
	}
	return in, nil
}

// introspect verifies a token by asking the authorization server. tr may
// be nil.
func (p *Provider) introspect(ctx context.Context, raw string, tr *Trace) (*Principal, error) {
	in := p.intro
	if in == nil {
		return nil, tr.fail(stepIntrospection, internal(reasonNoIntrospect, errors.New("token mode jwt has no introspection client")))
	}
	// The tenant is part of the key so that one tenant's cached answer can
	// never serve another, even if caches were ever shared.
	key := sha256.Sum256([]byte(p.tenant + "\x00" + raw))
	// A traced call asks the server: a cached answer would explain nothing.
	if tr == nil {
		r, ok := in.cache.get(key, p.now())
		p.metrics.introCacheLookup(p.issuer, ok)
		if ok {
			return r.unpack()
		}
	}
	ep, err := p.disc.get(ctx)
	if err != nil {
		return nil, tr.fail(stepDiscovery, err)
	}
	if ep.introspection == "" {
		return nil, tr.fail(stepDiscovery, internal(reasonNoIntrospect, errors.New("neither metadata nor configuration gives an introspection endpoint")))
	}
	if tr != nil {
		tr.add(stepDiscovery, true, ep.describe()+"; introspection_endpoint "+ep.introspection)
	}
	recorded := tr.count()
	r, err := in.calls.do(ctx, &p.bg, key, requestTimeout, func(ctx context.Context) (introResult, error) {
		// The call may run in the background for several waiters; the
		// trace is that of the caller who started it.
		r, err := in.call(ctx, ep.introspection, raw, tr)
		p.metrics.introspected(p.issuer, err)
		if err == nil {
			in.store(key, r)
		}
		return r, err
	})
	if err != nil {
		var pe *Error
		switch {
		case errors.As(err, &pe):
		case ctx.Err() != nil:
			pe = unavailable(reasonCancelled, err)
		default:
			pe = unavailable(reasonIntrospectDown, err)
		}
		return nil, tr.fail(stepIntrospection, pe)
	}
	if tr != nil && tr.count() == recorded {
		// Another request had already asked the server about this token
		// and this one waited for its answer.
		detail := "answered by an identical introspection already in flight"
		if r.err != nil {
			detail = r.err.Error() + ": " + detail
		}
		tr.add(stepIntrospection, r.err == nil, detail)
	}
	return r.unpack()
}

func (r introResult) unpack() (*Principal, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.pr.clone(), nil
}

func (in *introspector) store(key [32]byte, r introResult) {
	now := in.p.now()
	if r.err != nil {
		in.cache.put(key, r, now.Add(negativeCacheTTL))
		return
	}
	if in.ttl <= 0 {
		return
	}
	exp := now.Add(in.ttl)
	if !r.pr.Expiry.IsZero() {
		exp = earliest(exp, r.pr.Expiry)
	}
	in.cache.put(key, r, exp)
}

// call performs one RFC 7662 request. Its error is transient (network,
// 5xx) or a misconfiguration; a token that is refused comes back as an
// introResult with err set. tr may be nil; the caller records errors.
func (in *introspector) call(ctx context.Context, endpoint, raw string, tr *Trace) (introResult, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	if in.form && in.clientID != "" {
		form.Set("client_id", in.clientID)
		if in.secret != "" {
			form.Set("client_secret", in.secret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return introResult{}, internal(reasonNoIntrospect, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !in.form && in.clientID != "" {
		// RFC 6749 §2.3.1: form-encode id and secret before Basic.
		req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.secret))
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return introResult{}, err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body)
	if err != nil {
		return introResult{}, fmt.Errorf("POST %s: %w", endpoint, err)
	}
	se := &StatusError{URL: endpoint, Status: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return introResult{}, internal(reasonIntrospectBroken, se)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return introResult{}, internal(reasonIntrospectDenied, se)
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests:
		return introResult{}, internal(reasonIntrospectBroken, se)
	default:
		return introResult{}, unavailable(reasonIntrospectDown, se)
	}
	m, err := decodeClaims(body)
	if err != nil {
		return introResult{}, unavailable(reasonIntrospectDown, fmt.Errorf("POST %s: answer is not a JSON object", endpoint))
	}
	if tr != nil {
		tr.add(stepIntrospection, true, "POST "+endpoint+" "+in.describeAuth()+": HTTP 200, a JSON answer")
	}
	// RFC 7662 §2.2: active is REQUIRED; anything but a literal true is a no.
	if active, _, _ := m.boolean("active"); !active {
		err := invalid(reasonInactive, nil)
		if tr != nil {
			tr.failWith(stepActive, err, describeActive(m))
		}
		return introResult{err: err}, nil
	}
	tr.add(stepActive, true, "active is true")
	// Hydra and Cognito say which kind of token this is; a refresh token
	// must not pass as an access token.
	use, _, _ := m.str("token_use")
	if use != "" && use != "access_token" && use != "access" {
		err := invalid(reasonNotAccess, nil)
		if tr != nil {
			tr.failWith(stepTokenUse, err, "token_use "+quoted(use))
		}
		return introResult{err: err}, nil
	}
	if tr != nil && use != "" {
		tr.add(stepTokenUse, true, "token_use "+quoted(use))
	}
	pr, err := in.p.principal(m, TokenKindOpaque, in.rules, tr)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return introResult{err: pe}, nil
		}
		return introResult{}, err
	}
	return introResult{pr: pr}, nil
}

// describeAuth says how the gateway authenticated to the endpoint, for a
// trace: the client id, never the secret.
func (in *introspector) describeAuth() string {
	switch {
	case in.clientID == "":
		return "without client authentication"
	case in.form:
		return "as client " + quoted(in.clientID) + " (client_secret_post)"
	default:
		return "as client " + quoted(in.clientID) + " (client_secret_basic)"
	}
}

func describeActive(m claimSet) string {
	switch _, present, err := m.boolean("active"); {
	case !present:
		return "the answer has no active member"
	case err != nil:
		return "active is not a boolean"
	default:
		return "active is false"
	}
}
