package providers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// negativeCacheTTL is how long a refusal is remembered, so that a client
// retrying a dead token does not reach the authorization server each time.
const negativeCacheTTL = 10 * time.Second

// introspector is an RFC 7662 client with a cache. It answers for opaque
// tokens (and for JWTs in introspection mode).
type introspector struct {
	client   *http.Client // the provider's, minus redirects
	clientID string
	secret   string
	auth     string // basic, form or none (IntrospectionConfig.AuthMethod)
	ttl      time.Duration
	rules    claimRules
	// active holds the answers for tokens that work; refused, smaller and
	// shorter-lived, those for tokens that do not. Apart, so that a flood
	// of made-up tokens, each refused, only ever evicts other refusals and
	// never a working token's answer.
	active  *lru[introResult]
	refused *lru[introResult]
	// budget is the tenant's calls per second to the endpoint
	// (max_calls_per_second), spent only by tokens neither cache knows.
	budget *rate.Limiter
	calls  keyedCalls[[32]byte, introResult]

	// health is what /status shows of the endpoint.
	healthMu sync.Mutex
	health   IntrospectionStatus
	// overBudget and stale count the tokens answered 503 for want of
	// budget, and those answered from their last active answer instead.
	overBudget, stale atomic.Int64
	// sources holds each recent source address's share of the budget
	// (sourceShare), keyed by the address's SHA-256.
	sources *lru[*rate.Limiter]
}

// A source address (WithSource) may spend at most a sourceShare-th of the
// budget, so that a flood of made-up tokens from a few addresses leaves
// the rest to everyone else; sourcesKept bounds how many addresses are
// remembered, each for sourceMemory after its last call.
const (
	sourceShare  = 4
	sourcesKept  = 4096
	sourceMemory = time.Minute
)

type sourceKey struct{}

// WithSource records in ctx the address a request comes from (its client
// as the edge reads it), for the introspection budget's share per source.
func WithSource(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, sourceKey{}, addr)
}

// sourceAllows spends one call of source's share; "" (unknown) has no
// share of its own.
func (in *introspector) sourceAllows(source string, now time.Time) bool {
	if source == "" {
		return true
	}
	k := sha256.Sum256([]byte(source))
	lim, ok := in.sources.get(k, now)
	if !ok {
		share := max(1, in.budget.Burst()/sourceShare)
		lim = rate.NewLimiter(rate.Limit(share), share)
	}
	in.sources.put(k, lim, now.Add(sourceMemory))
	return lim.AllowN(now, 1)
}

// introResult is a definitive answer: a principal, or a refusal. Transient
// failures are never cached.
type introResult struct {
	pr  *Principal
	err *Error
	// fresh is until when an active answer is reused (cache_ttl, at most
	// the token's exp). Past it the answer is kept until the token's exp,
	// and serves only while the budget is spent (staleWhileOverBudget).
	fresh time.Time
}

// newIntrospector builds the client of a validated introspection block
// with its defaults applied (see Settings.Validate). It fails only when the
// secret cannot be read: that needs the environment, which Validate does
// not look at.
func newIntrospector(client *http.Client, c IntrospectionConfig, sr SecretResolver) (*introspector, error) {
	// A redirect would re-send the form, token included, wherever the
	// Location header points: never follow one.
	noRedirects := *client
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	in := &introspector{
		client:   &noRedirects,
		clientID: c.ClientID,
		auth:     c.AuthMethod,
		ttl:      time.Duration(*c.CacheTTL),
		rules: claimRules{introspection: true,
			allowMissingIssuer: c.AllowMissingIssuer, allowMissingAudience: c.AllowMissingAudience, acceptedClients: c.AcceptedClients},
		active:  newLRU[introResult](defaultIntrospectCacheSize),
		refused: newLRU[introResult](refusedIntrospectCacheSize),
		budget:  rate.NewLimiter(rate.Limit(*c.MaxCallsPerSecond), *c.MaxCallsPerSecond),
		sources: newLRU[*rate.Limiter](sourcesKept),
	}
	if in.auth == authNone {
		return in, nil
	}
	secret, err := sr.ReadSecret("client_secret", c.ClientSecretEnv, c.ClientSecretFile)
	if err != nil {
		return nil, err
	}
	in.secret = secret
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
	key := tokenKey(p.tenant+"\x00", raw)
	// A traced call asks the server: a cached answer would explain nothing.
	if tr == nil {
		r, ok := in.lookup(key, p.now())
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
	source, _ := ctx.Value(sourceKey{}).(string)
	r, err := in.calls.do(ctx, &p.bg, key, requestTimeout, func(ctx context.Context) (introResult, error) {
		// One call answers every request waiting for this token, so it
		// spends the budget once, from the share of the source that
		// asked first.
		if now := p.now(); !in.sourceAllows(source, now) || !in.budget.AllowN(now, 1) {
			if r, ok := in.active.get(key, p.now()); ok {
				// The token was active when last asked: while a flood
				// spends the budget, its holder keeps working on that
				// answer, never past the token's exp.
				in.stale.Add(1)
				p.metrics.introCacheResult(p.issuer, "stale")
				return r, nil
			}
			in.overBudget.Add(1)
			p.metrics.introspectionOverBudget(p.tenant)
			return introResult{}, overBudget()
		}
		// The call may run in the background for several waiters; the
		// trace is that of the caller who started it.
		r, err := p.askIntrospection(ctx, ep.introspection, raw, tr)
		p.metrics.introspected(p.issuer, err)
		in.noteHealth(p.now(), err)
		if err == nil {
			in.store(key, r, p.now())
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

// IntrospectionStatus is the health of a tenant's introspection endpoint,
// from the calls its tokens made.
type IntrospectionStatus struct {
	// LastSuccess is when the endpoint last gave a definitive answer
	// (active or not).
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError and LastErrorAt are its latest failure (unreachable, an
	// error status, credentials refused, an answer that is not JSON).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Budget is the state of the tenant's max_calls_per_second.
	Budget IntrospectionBudget `json:"budget"`
}

// IntrospectionBudget is the state of a tenant's introspection budget.
type IntrospectionBudget struct {
	// CallsPerSecond is max_calls_per_second; Available, the calls it
	// allows at once now (a full bucket holds one second's worth).
	CallsPerSecond int     `json:"calls_per_second"`
	Available      float64 `json:"available"`
	// OverBudget counts the tokens answered 503 for want of budget since
	// the tenant's verifier was built; Stale, those answered instead from
	// the answer that found them active, within their exp.
	OverBudget int64 `json:"over_budget"`
	Stale      int64 `json:"stale_answers"`
}

func (in *introspector) noteHealth(now time.Time, err error) {
	in.healthMu.Lock()
	defer in.healthMu.Unlock()
	if err == nil {
		in.health.LastSuccess = now
		return
	}
	in.health.LastError, in.health.LastErrorAt = err.Error(), now
}

func (in *introspector) status(now time.Time) IntrospectionStatus {
	in.healthMu.Lock()
	s := in.health
	in.healthMu.Unlock()
	s.Budget = IntrospectionBudget{CallsPerSecond: in.budget.Burst(), Available: math.Floor(in.budget.TokensAt(now)*10) / 10,
		OverBudget: in.overBudget.Load(), Stale: in.stale.Load()}
	return s
}

func (r introResult) unpack() (*Principal, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.pr, nil
}

// lookup returns the cached answer about the token with this key.
func (in *introspector) lookup(key [32]byte, now time.Time) (introResult, bool) {
	if r, ok := in.active.get(key, now); ok && now.Before(r.fresh) {
		return r, true
	}
	return in.refused.get(key, now)
}

func (in *introspector) store(key [32]byte, r introResult, now time.Time) {
	if r.err != nil {
		in.refused.put(key, r, now.Add(negativeCacheTTL))
		return
	}
	if in.ttl <= 0 {
		return
	}
	r.fresh = now.Add(in.ttl)
	kept := r.fresh
	if !r.pr.Expiry.IsZero() {
		r.fresh = earliest(r.fresh, r.pr.Expiry)
		kept = r.pr.Expiry
	}
	in.active.put(key, r, kept)
}

// overBudget is the answer to a token that would need an introspection
// call the tenant's budget has no room for. The budget allows at least one
// call a second, so a client may try again in a second (the gateway's
// default Retry-After, for an authorization server that is down, is 30 s).
func overBudget() *Error {
	e := unavailable(reasonIntrospectBusy, nil)
	e.RetryAfter = time.Second
	return e
}

// askIntrospection asks the endpoint about raw and applies the claim checks
// to an active answer. Its error is transient (network, 5xx) or a
// misconfiguration; a token that is refused comes back as an introResult
// with err set. tr may be nil; the caller records errors.
func (p *Provider) askIntrospection(ctx context.Context, endpoint, raw string, tr *Trace) (introResult, error) {
	m, refusal, err := p.intro.call(ctx, endpoint, raw, tr)
	switch {
	case err != nil:
		return introResult{}, err
	case refusal != nil:
		return introResult{err: refusal}, nil
	}
	pr, err := p.principal(m, TokenKindOpaque, p.intro.rules, tr)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return introResult{err: pe}, nil
		}
		return introResult{}, err
	}
	return introResult{pr: pr}, nil
}

// call performs one RFC 7662 request and returns the answer about an
// active access token, or why the token is refused (inactive, not an
// access token). Its error is transient or a misconfiguration.
func (in *introspector) call(ctx context.Context, endpoint, raw string, tr *Trace) (claimSet, *Error, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	if in.auth == authForm {
		form.Set("client_id", in.clientID)
		form.Set("client_secret", in.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, internal(reasonNoIntrospect, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if in.auth == authBasic {
		// RFC 6749 §2.3.1: form-encode id and secret before Basic.
		req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.secret))
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("POST %s: %w", endpoint, err)
	}
	se := &StatusError{Method: http.MethodPost, URL: endpoint, Status: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, nil, internal(reasonIntrospectBroken, se)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, nil, internal(reasonIntrospectDenied, se)
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests:
		return nil, nil, internal(reasonIntrospectBroken, se)
	default:
		return nil, nil, unavailable(reasonIntrospectDown, se)
	}
	m, err := decodeClaims(body)
	if err != nil {
		return nil, nil, unavailable(reasonIntrospectDown, fmt.Errorf("POST %s: answer is not a JSON object", endpoint))
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
		return nil, err, nil
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
		return nil, err, nil
	}
	if tr != nil && use != "" {
		tr.add(stepTokenUse, true, "token_use "+quoted(use))
	}
	return m, nil, nil
}

// describeAuth says how the gateway authenticated to the endpoint, for a
// trace: the client id, never the secret.
func (in *introspector) describeAuth() string {
	if in.auth == authNone {
		return "without client authentication (auth_method none)"
	}
	return "as client " + quoted(in.clientID) + " (" + authMethodName(in.auth) + ")"
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
