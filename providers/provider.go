package providers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Settings is everything a tenant's verifier is built from. The tenants
// package validates the shapes and fills defaults first; New still applies
// its own defaults (see WithDefaults) so that a zero value never weakens a
// check.
type Settings struct {
	Tenant   string // tenant id, copied into every Principal
	Resource string // the tenant's canonical resource URL (RFC 8707 audience)
	Config   Config // the tenant's "provider" block
	Audience Audience
	Claims   Claims
	Scopes   ScopeMap
}

// Limits that are not configurable per tenant.
const (
	// MaxTokenBytes bounds a bearer token: anything larger is rejected before
	// it is parsed, so a huge header cannot buy CPU time.
	MaxTokenBytes = 16 << 10

	// maxResponseBytes caps every document read from an authorization server
	// (metadata, JWKS, introspection answers).
	maxResponseBytes = 1 << 20

	defaultLeeway         = 60 * time.Second
	maxLeeway             = 5 * time.Minute
	defaultJWKSMinRefresh = 10 * time.Second
	minJWKSMinRefresh     = time.Second
	defaultIntrospectTTL  = 60 * time.Second
	negativeCacheTTL      = 10 * time.Second

	// requestTimeout bounds one outbound HTTP exchange even when the injected
	// client has no timeout of its own.
	requestTimeout = 10 * time.Second

	defaultVerifiedCacheSize   = 10000
	defaultIntrospectCacheSize = 10000
	// verifiedCacheMaxTTL bounds how long a verified JWT is answered from the
	// cache, so that a key the issuer withdraws stops working within minutes
	// even for long-lived tokens.
	verifiedCacheMaxTTL = 10 * time.Minute
)

// SecretResolver reads secrets given by reference. Nil fields fall back to
// os.LookupEnv and os.ReadFile.
type SecretResolver struct {
	LookupEnv func(name string) (string, bool)
	ReadFile  func(path string) ([]byte, error)
}

type options struct {
	client        *http.Client
	now           func() time.Time
	secrets       SecretResolver
	log           *slog.Logger
	verifiedCache int
	metrics       *Metrics
}

// Option adjusts how a Provider talks to the outside world.
type Option func(*options)

// WithHTTPClient sets the client for discovery, JWKS and introspection. Every
// request also carries its own deadline, so a client without a timeout
// cannot hang verification.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithClock sets the clock used for exp/nbf/iat, caches, backoff and
// refresh schedules.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithSecretResolver sets how the introspection client secret is read.
func WithSecretResolver(r SecretResolver) Option { return func(o *options) { o.secrets = r } }

// WithLogger sets where discovery and key refresh problems are reported;
// default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithVerifiedTokenCache sets how many verified JWTs are remembered (keyed by
// the token's SHA-256, expiring at exp); 0 turns the cache off.
func WithVerifiedTokenCache(entries int) Option {
	return func(o *options) { o.verifiedCache = entries }
}

// sharedClient lets every provider built without WithHTTPClient share one
// connection pool.
var sharedClient = sync.OnceValue(DefaultHTTPClient)

// DefaultHTTPClient is the client used when none is injected: bounded dial,
// TLS and header times, and no more redirects than a metadata host needs.
func DefaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	tr.ResponseHeaderTimeout = requestTimeout
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{
		Timeout:   requestTimeout,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("stopped after 3 redirects")
			}
			return nil
		},
	}
}

// Provider verifies the bearer tokens of one tenant against its own
// authorization server. It is safe for concurrent use. Nothing touches the
// network until the first Verify (or Probe).
type Provider struct {
	tenant   string
	resource string
	issuer   string
	kind     Kind
	mode     TokenMode
	aud      Audience
	claims   Claims
	scopes   ScopeMap
	leeway   time.Duration
	jwtTypes []string // normalised: lower case, without "application/"
	// algs is the tenant's explicit allow-list; nil means "what discovery says".
	algs       []string
	minRefresh time.Duration
	override   MetadataOverride

	client *http.Client
	now    func() time.Time
	log    *slog.Logger
	// metrics is nil unless WithMetrics was given; its methods accept nil.
	metrics *Metrics

	bg bgRunner

	disc     discovery
	verified *lru[*Principal]
	intro    *introspector

	// knobs tests shorten; production uses the package defaults.
	tuning tuning
}

type tuning struct {
	backoffBase, backoffMax  time.Duration
	jwksMinTTL, jwksMaxTTL   time.Duration
	jwksDefaultTTL, maxStale time.Duration
	metadataTTL              time.Duration
}

var defaultTuning = tuning{
	backoffBase:    time.Second,
	backoffMax:     time.Minute,
	jwksMinTTL:     time.Minute,
	jwksMaxTTL:     24 * time.Hour,
	jwksDefaultTTL: 15 * time.Minute,
	maxStale:       24 * time.Hour,
	metadataTTL:    24 * time.Hour,
}

var _ Verifier = (*Provider)(nil)

// New builds a tenant's verifier. It validates what would make verification
// unsafe or impossible and reads the introspection secret, but makes no
// network call: discovery happens on first use.
func New(s Settings, opts ...Option) (*Provider, error) {
	o := options{verifiedCache: defaultVerifiedCacheSize}
	for _, opt := range opts {
		opt(&o)
	}
	if o.client == nil {
		o.client = sharedClient()
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.secrets.LookupEnv == nil {
		o.secrets.LookupEnv = os.LookupEnv
	}
	if o.secrets.ReadFile == nil {
		o.secrets.ReadFile = os.ReadFile
	}

	s = s.WithDefaults()
	if err := s.check(); err != nil {
		return nil, err
	}
	c := s.Config
	p := &Provider{
		tenant:     s.Tenant,
		resource:   s.Resource,
		issuer:     c.Issuer,
		kind:       c.Type,
		mode:       c.Token,
		aud:        s.Audience,
		claims:     s.Claims,
		scopes:     s.Scopes,
		leeway:     time.Duration(*c.Leeway),
		minRefresh: time.Duration(*c.JWKSMinRefresh),
		client:     noDowngrade(o.client),
		now:        o.now,
		log:        o.log.With("tenant", s.Tenant, "issuer", c.Issuer),
		metrics:    o.metrics,
		tuning:     defaultTuning,
	}
	for _, t := range c.JWTTypes {
		p.jwtTypes = append(p.jwtTypes, normaliseType(t))
	}
	if len(c.Algorithms) > 0 {
		p.algs = slices.Clone(c.Algorithms)
	}
	if c.Metadata != nil {
		p.override = *c.Metadata
	}
	p.bg.init()
	p.disc.p = p
	if o.verifiedCache > 0 {
		p.verified = newLRU[*Principal](o.verifiedCache)
	}
	if c.Token != TokenJWT {
		in, err := newIntrospector(p, c.Introspection, o.secrets)
		if err != nil {
			return nil, err
		}
		p.intro = in
	}
	return p, nil
}

// WithDefaults returns s with every unset field given its default. Defaults
// depend on the provider type:
//
//   - token mode: auto when an introspection block is present, else jwt;
//   - jwt_types: logto ["at+jwt"] (Logto always sends it); oidc and oauth
//     ["at+jwt", "JWT"], because Keycloak, Hydra, Entra and Okta send "JWT"
//     and Cognito sends no typ at all (a missing typ counts as "JWT");
//   - claims.scopes: logto ["scope"]; oidc ["scope", "scp", "permissions"]
//     (Auth0 puts API permissions in "permissions"); oauth ["scope", "scp"];
//   - claims.subject "sub"; claims.client_id ["client_id", "azp", "cid"];
//   - leeway 60s (capped at 5m); jwks_min_refresh 10s (at least 1s);
//   - audience strategy "resource";
//   - scopes: create:todos / read:todos / delete:todos, or under the scope
//     strategy prefix+"create" / prefix+"read" / prefix+"delete".
//
// Slices and maps in the result are copies, so callers may keep mutating s.
func (s Settings) WithDefaults() Settings {
	c := s.Config
	c.Issuer = strings.TrimSpace(c.Issuer)
	if c.Token == "" {
		c.Token = TokenJWT
		if c.Introspection != nil {
			c.Token = TokenAuto
		}
	}
	if len(c.JWTTypes) == 0 {
		c.JWTTypes = DefaultJWTTypes(c.Type)
	} else {
		c.JWTTypes = slices.Clone(c.JWTTypes)
	}
	c.Algorithms = slices.Clone(c.Algorithms)
	leeway := defaultLeeway
	if c.Leeway != nil && *c.Leeway >= 0 {
		leeway = min(time.Duration(*c.Leeway), maxLeeway)
	}
	c.Leeway = durationPtr(leeway)
	refresh := defaultJWKSMinRefresh
	if c.JWKSMinRefresh != nil && *c.JWKSMinRefresh > 0 {
		refresh = max(time.Duration(*c.JWKSMinRefresh), minJWKSMinRefresh)
	}
	c.JWKSMinRefresh = durationPtr(refresh)
	s.Config = c

	a := s.Audience
	if a.Strategy == "" {
		a.Strategy = AudienceResource
	}
	a.Values = slices.Clone(a.Values)
	s.Audience = a

	cl := s.Claims
	if len(cl.Scopes) == 0 {
		cl.Scopes = DefaultScopeClaims(c.Type)
	} else {
		cl.Scopes = slices.Clone(cl.Scopes)
	}
	if cl.Subject == "" {
		cl.Subject = "sub"
	}
	if len(cl.ClientID) == 0 {
		cl.ClientID = []string{"client_id", "azp", "cid"}
	} else {
		cl.ClientID = slices.Clone(cl.ClientID)
	}
	s.Claims = cl

	def := DefaultScopeMap(s.Audience)
	sm := make(ScopeMap, len(Permissions))
	for _, perm := range Permissions {
		if v := s.Scopes[perm]; v != "" {
			sm[perm] = v
		} else {
			sm[perm] = def[perm]
		}
	}
	s.Scopes = sm
	return s
}

// DefaultJWTTypes is the accepted typ list for a provider type (see
// Settings.WithDefaults for the reasoning).
func DefaultJWTTypes(k Kind) []string {
	if k == KindLogto {
		return []string{"at+jwt"}
	}
	return []string{"at+jwt", "JWT"}
}

// DefaultScopeClaims is the ordered list of claims scopes are read from.
func DefaultScopeClaims(k Kind) []string {
	switch k {
	case KindLogto:
		return []string{"scope"}
	case KindOAuth:
		return []string{"scope", "scp"}
	default:
		return []string{"scope", "scp", "permissions"}
	}
}

// DefaultScopeMap is the permission → scope mapping used when a tenant sets
// none.
func DefaultScopeMap(a Audience) ScopeMap {
	if a.Strategy == AudienceScope {
		return ScopeMap{PermCreate: a.Prefix + "create", PermRead: a.Prefix + "read", PermDelete: a.Prefix + "delete"}
	}
	return ScopeMap{PermCreate: "create:todos", PermRead: "read:todos", PermDelete: "delete:todos"}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func durationPtr(d time.Duration) *Duration { v := Duration(d); return &v }

// check rejects settings that would make verification unsafe. The tenants
// package reports these more kindly; this is the last line of defence.
func (s Settings) check() error {
	var errs []error
	c := s.Config
	switch c.Type {
	case KindLogto, KindOIDC, KindOAuth:
	default:
		errs = append(errs, fmt.Errorf("provider type %q is not one of logto, oidc, oauth", c.Type))
	}
	if err := checkIssuer(c.Issuer, c.AllowHTTPIssuer); err != nil {
		errs = append(errs, err)
	}
	switch c.Token {
	case TokenJWT, TokenIntrospection, TokenAuto:
	default:
		errs = append(errs, fmt.Errorf("token mode %q is not one of jwt, introspection, auto", c.Token))
	}
	for _, a := range c.Algorithms {
		if !isAsymmetricAlg(a) {
			errs = append(errs, fmt.Errorf("algorithm %q is not allowed: use RS*, PS*, ES* or EdDSA", a))
		}
	}
	for _, t := range c.JWTTypes {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, errors.New("jwt_types must not contain an empty type"))
		}
	}
	switch s.Audience.Strategy {
	case AudienceResource:
		if s.Resource == "" {
			errs = append(errs, errors.New("the resource audience strategy needs the tenant's resource URL"))
		}
	case AudienceValues:
		if len(s.Audience.Values) == 0 || slices.Contains(s.Audience.Values, "") {
			errs = append(errs, errors.New("the audience strategy needs non-empty audience values"))
		}
	case AudienceScope:
		if s.Audience.Prefix == "" {
			errs = append(errs, errors.New("the scope audience strategy needs a scope prefix"))
		}
	default:
		errs = append(errs, fmt.Errorf("audience strategy %q is not one of resource, audience, scope", s.Audience.Strategy))
	}
	if s.Claims.Subject == "" {
		errs = append(errs, errors.New("the subject claim name must not be empty"))
	}
	for perm, scope := range s.Scopes {
		if !slices.Contains(Permissions, perm) {
			errs = append(errs, fmt.Errorf("unknown permission %q in the scope map", perm))
		}
		if s.Audience.Strategy == AudienceScope && !strings.HasPrefix(scope, s.Audience.Prefix) {
			errs = append(errs, fmt.Errorf("scope %q for %s lacks the prefix %q the scope strategy requires", scope, perm, s.Audience.Prefix))
		}
	}
	if m := c.Metadata; m != nil {
		for _, u := range []string{m.JWKSURI, m.IntrospectionEndpoint} {
			if u == "" {
				continue
			}
			if err := checkEndpoint(u, c.Issuer); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("tenant %q: %w", s.Tenant, errors.Join(errs...))
	}
	return nil
}

func checkIssuer(issuer string, allowHTTP bool) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("issuer %q must be an absolute http(s) URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer %q must not have a query, fragment or user info", issuer)
	}
	if u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()) {
		return fmt.Errorf("issuer %q uses plain http on a non-loopback host; set allow_http_issuer to accept that", issuer)
	}
	return nil
}

// checkEndpoint refuses endpoints that would downgrade the issuer's
// transport: keys fetched over http from an https issuer could be swapped.
func checkEndpoint(endpoint, issuer string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("endpoint %q must be an absolute http(s) URL", endpoint)
	}
	if u.Scheme == "http" && strings.HasPrefix(issuer, "https:") {
		return fmt.Errorf("endpoint %q uses http while the issuer uses https", endpoint)
	}
	return nil
}

// noDowngrade returns a copy of c that refuses redirects from https to
// http: a JWKS fetched in the clear could be swapped on the way.
func noDowngrade(c *http.Client) *http.Client {
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("refusing a redirect from https to %s", req.URL.Scheme)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Tenant returns the tenant id the provider was built for.
func (p *Provider) Tenant() string { return p.tenant }

// Issuer returns the configured issuer identifier.
func (p *Provider) Issuer() string { return p.issuer }

// Resource returns the tenant's resource URL.
func (p *Provider) Resource() string { return p.resource }

// Scope returns the provider scope string that grants perm.
func (p *Provider) Scope(perm Permission) string { return p.scopes[perm] }

// ScopeMap returns a copy of the effective permission → scope mapping.
func (p *Provider) ScopeMap() ScopeMap {
	m := make(ScopeMap, len(p.scopes))
	for k, v := range p.scopes {
		m[k] = v
	}
	return m
}

// Close stops background refreshes and waits for them to finish. Verify
// still works afterwards from what is cached, but fetches nothing new.
func (p *Provider) Close() error {
	p.bg.close()
	return nil
}

// Verify checks a raw bearer token and returns who it speaks for. Errors are
// always *Error: ClassInvalidToken for a token that must be refused,
// ClassUnavailable while the authorization server cannot be reached, and
// ClassInternal for a misconfiguration.
//
// With a Trace in ctx (WithTrace), every check is recorded as it is made.
func (p *Provider) Verify(ctx context.Context, raw string) (*Principal, error) {
	tr := traceFrom(ctx)
	if err := checkSyntax(raw); err != nil {
		return nil, tr.fail(stepToken, err)
	}
	var key [32]byte
	if p.verified != nil {
		key = sha256.Sum256([]byte(raw))
		// A traced call verifies from scratch: a cache hit would explain
		// nothing.
		if tr == nil {
			if pr, ok := p.verified.get(key, p.now()); ok {
				return pr.clone(), nil
			}
		}
	}
	var (
		pr  *Principal
		err error
	)
	switch p.mode {
	case TokenIntrospection:
		tr.add(stepToken, true, "token mode introspection: the authorization server is asked")
		pr, err = p.introspect(ctx, raw, tr)
	case TokenAuto:
		if jws := parseCompactJWS(raw); jws != nil {
			tr.add(stepToken, true, "token mode auto: a compact JWS, so verified as a JWT")
			pr, err = p.verifyJWT(ctx, raw, jws, tr)
		} else {
			tr.add(stepToken, true, "token mode auto: not a compact JWS, so the authorization server is asked")
			pr, err = p.introspect(ctx, raw, tr)
		}
	default:
		tr.add(stepToken, true, "token mode jwt: verified as a JWT against the issuer's keys")
		pr, err = p.verifyJWT(ctx, raw, nil, tr)
	}
	if err != nil {
		return nil, err
	}
	if p.verified != nil && pr.Kind == TokenKindJWT {
		p.verified.put(key, pr.clone(), earliest(pr.Expiry, p.now().Add(verifiedCacheMaxTTL)))
	}
	return pr, nil
}

func (pr *Principal) clone() *Principal {
	c := *pr
	c.Scopes = slices.Clone(pr.Scopes)
	c.Audience = slices.Clone(pr.Audience)
	c.Permissions = make(map[Permission]bool, len(pr.Permissions))
	for k, v := range pr.Permissions {
		c.Permissions[k] = v
	}
	return &c
}

// checkSyntax rejects what cannot be a bearer token before any parsing:
// empty, oversized, or characters outside RFC 6750's b64token.
func checkSyntax(raw string) error {
	if len(raw) > MaxTokenBytes {
		return invalid(reasonTooLarge, nil)
	}
	if strings.TrimSpace(raw) == "" {
		return invalid(reasonEmpty, nil)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=':
		default:
			return invalid(reasonBadChars, nil)
		}
	}
	return nil
}

// bgRunner owns the goroutines a Provider starts (fetches that outlive the
// request that triggered them), so Close can cancel and wait for them.
type bgRunner struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	active atomic.Int32
}

func (r *bgRunner) init() { r.ctx, r.cancel = context.WithCancel(context.Background()) }

// goFunc runs fn in the background unless the runner is closed.
func (r *bgRunner) goFunc(fn func(ctx context.Context)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	r.active.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.active.Add(-1)
		fn(r.ctx)
	}()
	return true
}

func (r *bgRunner) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
