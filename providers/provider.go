package providers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Sizes of the caches a Provider keeps.
const (
	defaultVerifiedCacheSize   = 10000
	defaultIntrospectCacheSize = 10000
	// refusedIntrospectCacheSize holds refused tokens for negativeCacheTTL:
	// enough for clients retrying a dead token, small because a flood of
	// made-up tokens fills it at once (and only it).
	refusedIntrospectCacheSize = 1000
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
	issuers       *Issuers
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

func newOptions(opts []Option) options {
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
	return o
}

// Provider verifies the bearer tokens of one tenant against its own
// authorization server. It is safe for concurrent use. Nothing touches the
// network until the first Verify.
type Provider struct {
	// deps is the tenant's own: its clock, metrics, introspection client,
	// and the runner of its introspection calls. Discovery and keys use
	// the issuer's (see Issuers).
	*deps

	tenant   string
	resource string
	issuer   string
	mode     TokenMode
	aud      Audience
	claims   Claims
	scopes   ScopeMap
	perms    []Permission // Settings.PermissionList
	leeway   time.Duration
	jwtTypes []string // normalised: lower case, without "application/"
	// jwtTypesWritten are the same as the configuration spells them, for
	// the trace.
	jwtTypesWritten []string
	// idClaimsAllowed are the ID-token-only claims the tenant accepts in
	// access tokens (Config.AllowIDTokenClaims).
	idClaimsAllowed []string

	disc     discovery
	verified *lru[*Principal]
	intro    *introspector // nil in token mode jwt

	// closed makes Close idempotent: a second Close must not release a
	// reference to the issuer that another tenant holds.
	closed atomic.Bool
}

// deps is how a Provider, or an issuer its tenants share, reaches the
// outside world. Its fields never change after it is made (tests shorten
// the tuning before the first Verify).
type deps struct {
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
	// metrics is nil unless WithMetrics was given; its methods accept nil.
	metrics *Metrics
	bg      bgRunner
	// tuning holds knobs tests shorten; production uses defaultTuning.
	tuning tuning
}

// RetryAfter is how long a client told "temporarily unavailable" should
// wait before it tries again: the gateway's 503 answers promise it in
// Retry-After, and it caps the backoff of a failing issuer's discovery and
// keys, so that a request arriving after that long retries the issuer
// (once, for all the requests waiting on it) instead of being answered from
// a backoff that outlasts the promise.
const RetryAfter = 30 * time.Second

type tuning struct {
	backoffBase, backoffMax  time.Duration
	jwksMinTTL, jwksMaxTTL   time.Duration
	jwksDefaultTTL, maxStale time.Duration
	metadataTTL              time.Duration
}

var defaultTuning = tuning{
	backoffBase:    time.Second,
	backoffMax:     RetryAfter,
	jwksMinTTL:     time.Minute,
	jwksMaxTTL:     24 * time.Hour,
	jwksDefaultTTL: 15 * time.Minute,
	maxStale:       24 * time.Hour,
	metadataTTL:    24 * time.Hour,
}

var _ Verifier = (*Provider)(nil)

// New builds a tenant's verifier from s with its defaults applied. It
// refuses exactly what s.Validate reports (as an *InvalidSettingsError),
// and an introspection secret that cannot be read; it makes no network
// call: discovery happens on first use.
func New(s Settings, opts ...Option) (*Provider, error) {
	if probs := s.Validate(); len(probs) > 0 {
		return nil, &InvalidSettingsError{Tenant: s.Tenant, Problems: probs}
	}
	s = s.WithDefaults()
	o := newOptions(opts)
	c := s.Config
	d := &deps{
		client:  noDowngrade(o.client),
		now:     o.now,
		log:     o.log.With("tenant", s.Tenant, "issuer", c.Issuer),
		metrics: o.metrics,
		tuning:  defaultTuning,
	}
	d.bg.init()
	p := &Provider{
		deps:     d,
		tenant:   s.Tenant,
		resource: s.Resource,
		issuer:   c.Issuer,
		mode:     c.Token,
		aud:      s.Audience,
		claims:   s.Claims,
		scopes:   s.Scopes,
		perms:    s.PermissionList(),
		leeway:   time.Duration(*c.Leeway),
		disc:     discovery{mode: c.Token, algs: c.Algorithms},
	}
	p.idClaimsAllowed, p.jwtTypesWritten = c.AllowIDTokenClaims, c.JWTTypes
	for _, t := range c.JWTTypes {
		p.jwtTypes = append(p.jwtTypes, normaliseType(t))
	}
	if o.verifiedCache > 0 {
		p.verified = newLRU[*Principal](o.verifiedCache)
	}
	if c.Token != TokenJWT {
		in, err := newIntrospector(d.client, *c.Introspection, o.secrets)
		if err != nil {
			d.bg.close()
			return nil, fmt.Errorf("tenant %q: introspection: %w", s.Tenant, err)
		}
		p.intro = in
	}
	// Last, so that a refused New holds no reference to the issuer.
	reg := o.issuers
	if reg == nil {
		reg = NewIssuers()
	}
	p.disc.iss = reg.acquire(keyOf(c, o.client), s.Tenant, o)
	return p, nil
}

// Close stops the tenant's background work, waits for it to finish and
// releases the tenant's share of its issuer; the issuer's own refreshes
// stop with the last Provider that uses it. Verify still works afterwards
// from what is cached, and through the issuer while other tenants keep it.
func (p *Provider) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.bg.close()
	p.disc.iss.reg.release(p.disc.iss, p.tenant)
	return nil
}

// bgRunner owns the goroutines a Provider or an issuer starts (fetches that
// outlive the request that triggered them), so that closing it can cancel
// and wait for them.
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
