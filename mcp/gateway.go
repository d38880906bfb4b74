// Package mcp is the gateway's HTTP edge: it routes a request to its tenant,
// serves the tenant's protected resource metadata, verifies the bearer token
// and answers refusals with RFC 6750 / MCP challenges, checks the call's
// permissions against what the tenant's server requires (the step-up),
// writes the audit line and the metrics, then hands the call to the
// tenant's MCP server (tenantServer): the built-in todo server (package
// mcp/todo: the tools, their ownership policy, the fast path, mcp-go) or an
// upstream MCP server (package mcp/upstream). It keeps one generation of
// tenant states per tenant set (Apply).
package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/trace"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// Options tune the HTTP edge. Zero values take the defaults.
type Options struct {
	// NewVerifier builds each tenant's token verifier; default
	// ProviderVerifier() (providers.New with default options).
	NewVerifier NewVerifier
	// AllowedOrigins are browser origins (scheme://host[:port]) allowed to
	// call the MCP endpoints, besides each tenant's own origin. "*" allows any.
	AllowedOrigins []string
	// BodyLimit caps a request body; default 1 MiB.
	BodyLimit int64
	// RetryAfter is sent with 503 answers; default providers.RetryAfter,
	// the longest a failing issuer goes without a retry. A longer value
	// keeps clients away after the issuer is back; a shorter one makes them
	// return while the gateway still waits.
	RetryAfter time.Duration
	// RetireGrace is how long a replaced tenant's verifier and MCP server
	// stay open after a reload, so that requests which started before the
	// swap finish with working caches; default 30s.
	RetireGrace time.Duration
	// Logger receives the access, audit and error lines; default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts requests and decisions and times verification.
	Metrics *Metrics
	// Tracing, when set, traces requests (trace.go); nil: no tracing, at
	// no cost.
	Tracing trace.TracerProvider
	// TrustedProxies are the proxies whose X-Forwarded-For gives a
	// client's address (tenants.HTTPConfig.TrustedProxies); none: the
	// connection's peer is the client.
	TrustedProxies []netip.Prefix
	// Signer signs the identity assertions of upstream tenants and its
	// keys are served at upstream.JWKSPath; nil: no tenant may use mode
	// assertion (such a tenant answers 503 and says why in /status).
	Signer *upstream.Signer
}

const (
	defaultBodyLimit   = 1 << 20
	defaultRetireGrace = 30 * time.Second
	// metadataMaxAge lets clients cache the metadata; it changes only on reload.
	metadataMaxAge = "public, max-age=300"
)

// Gateway serves every tenant of its current generation.
type Gateway struct {
	// tracer makes the request spans; nil when not tracing.
	tracer trace.Tracer
	store  store.Store
	opts   Options
	log    *slog.Logger
	echo   *echo.Echo

	// writes is how the todo tools' writes went, for /status.
	writes todo.Writes

	current atomic.Pointer[Generation]

	// applyMu makes Apply one at a time and guards retiring and closed.
	applyMu sync.Mutex
	// retiring holds, per pending retirement, the function that closes what
	// a reload replaced; each entry removes itself when it runs, so nothing
	// outlives its grace period.
	retiring map[*time.Timer]func()
	closed   bool

	// stopping ends when the server shuts down (StopWaiting): every token
	// verification still waiting on an authorization server is cancelled.
	stopping    context.Context
	stopWaiting context.CancelFunc
}

// New builds the gateway, serving nothing until the first Apply. It makes
// no network call: providers discover their issuers lazily on the first
// token.
func New(st store.Store, opts Options) *Gateway {
	if opts.NewVerifier == nil {
		opts.NewVerifier = ProviderVerifier()
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = defaultBodyLimit
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = providers.RetryAfter
	}
	if opts.RetireGrace <= 0 {
		opts.RetireGrace = defaultRetireGrace
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{store: st, opts: opts, log: opts.Logger, retiring: make(map[*time.Timer]func())}
	if opts.Tracing != nil {
		g.tracer = opts.Tracing.Tracer("github.com/todo-gateway/todo-gateway/mcp")
	}
	g.stopping, g.stopWaiting = context.WithCancel(context.Background())
	g.echo = g.routes()
	return g
}

// Current is the generation being served (nil before the first Apply).
func (g *Gateway) Current() *Generation { return g.current.Load() }

// Apply makes cfg the tenant set being served, in one step each: build the
// next generation (carrying unchanged tenants over with their warm caches),
// ensure every tenant has its space in the store, swap it in, and retire
// what it replaced after the grace period. Any failure leaves the current
// generation serving, untouched. version names the configuration (its
// hash) in /status and the config metric.
func (g *Gateway) Apply(ctx context.Context, cfg *tenants.Config, version string) (Change, error) {
	return g.ApplyRevision(ctx, cfg, version, 0)
}

// ApplyRevision is Apply for a configuration read from etcd at revision,
// which /status and the config metrics show beside its version.
func (g *Gateway) ApplyRevision(ctx context.Context, cfg *tenants.Config, version string, revision int64) (Change, error) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	if g.closed {
		return Change{}, errors.New("the gateway is closed")
	}
	prev := g.current.Load()
	next, problems, err := g.build(cfg, version, prev)
	if err != nil {
		return Change{}, err
	}
	next.revision = revision
	fresh := next.replacedBy(prev) // built for next; closed again if next is not used
	if err := g.store.EnsureTenants(ctx, next.todoTenants()...); err != nil {
		_ = closeStates(ctx, fresh)
		return Change{}, fmt.Errorf("tenant storage: %w", err)
	}
	g.current.Store(next)
	g.opts.Metrics.configApplied(version, revision, next.servers())
	g.retire(prev.replacedBy(next))
	ch := diff(prev, next)
	ch.Problems = problems
	return ch, nil
}

// retire closes states after the grace period. The timer's function holds
// only the states to close, never a generation, and removes itself from
// retiring when it runs; applyMu is held by the caller.
func (g *Gateway) retire(states []*tenantState) {
	if len(states) == 0 {
		return
	}
	var t *time.Timer
	closeNow := func() {
		if err := closeStates(context.Background(), states); err != nil {
			g.log.Warn("closing replaced tenants", "err", err)
		}
	}
	t = time.AfterFunc(g.opts.RetireGrace, func() {
		g.applyMu.Lock()
		_, pending := g.retiring[t]
		delete(g.retiring, t)
		g.applyMu.Unlock()
		if pending { // else Close ran it already
			closeNow()
		}
	})
	g.retiring[t] = closeNow
}

// StopWaiting is for the start of a shutdown (http.Server.RegisterOnShutdown):
// every request waiting on an authorization server (discovery, keys,
// introspection), now or later, stops waiting and is answered 503 with
// Retry-After, so that an issuer which hangs cannot hold the shutdown for
// the whole grace period. Requests past verification are not touched: a
// tool call in flight finishes. Call it once the listener stops accepting.
func (g *Gateway) StopWaiting() { g.stopWaiting() }

// Close closes everything the gateway holds: pending retirements at once,
// then the current generation's verifiers and MCP servers. Call it after the
// HTTP server has stopped; a later Apply fails.
func (g *Gateway) Close(ctx context.Context) error {
	g.applyMu.Lock()
	g.closed = true
	pending := g.retiring
	g.retiring = map[*time.Timer]func(){}
	g.applyMu.Unlock()
	g.stopWaiting()
	for t, closeNow := range pending {
		t.Stop()
		closeNow()
	}
	if cur := g.current.Load(); cur != nil {
		return closeStates(ctx, cur.states)
	}
	return nil
}

// ServeHTTP makes the gateway an http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.echo.ServeHTTP(w, r) }

func (g *Gateway) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// Client addresses come from the connection, or from X-Forwarded-For
	// as far as the proxies the operator trusts wrote it: never from
	// headers anyone can set.
	e.IPExtractor = echo.ExtractIPDirect()
	if len(g.opts.TrustedProxies) > 0 {
		trust := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, p := range g.opts.TrustedProxies {
			trust = append(trust, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(trust...)
	}
	e.HTTPErrorHandler = g.errorHandler
	e.Pre(assignRequestID)
	if g.tracer != nil {
		e.Use(g.traceRequests) // outside the access log, which names the trace
	}
	e.Use(g.accessLog())
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			g.log.Error("panic", "request_id", RequestIDFrom(c.Request().Context()), "err", bounded(err.Error()), "stack", string(stack))
			return err
		},
	}))
	e.GET(upstream.JWKSPath, g.serveJWKS)
	e.Any(wellKnownPRM, g.serveMetadata)
	e.Any(wellKnownPRM+"/*", g.serveMetadata)
	e.Any("/", g.serveMCP)
	e.Any("/*", g.serveMCP)
	return e
}

// lookup finds the tenant whose resource is this request's host and path,
// in the current generation.
func (g *Gateway) lookup(c echo.Context, path string) *tenantState {
	gen := g.current.Load()
	if gen == nil {
		return nil
	}
	return gen.lookup(c.Request().Host, path)
}

// serveMetadata answers RFC 9728 metadata requests, without authentication
// and for any origin: the document is public by design.
func (g *Gateway) serveMetadata(c echo.Context) error {
	path := strings.TrimPrefix(c.Request().URL.Path, wellKnownPRM)
	ts := g.lookup(c, path)
	if ts == nil {
		return g.notFoundNear(c, path, func(t *tenants.Tenant) string { return metadataURL(t.Resource) })
	}
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch c.Request().Method {
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Mcp-Protocol-Version")
		h.Set("Access-Control-Max-Age", "86400")
		return c.NoContent(http.StatusNoContent)
	case http.MethodGet, http.MethodHead:
		h.Set("Cache-Control", metadataMaxAge)
		return c.JSONBlob(http.StatusOK, ts.metadata)
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		return jsonError(c, http.StatusMethodNotAllowed, "method_not_allowed", "the metadata is read with GET")
	}
}

// serveJWKS publishes the public keys of the identity assertions that
// upstream MCP servers verify, on every host the gateway answers; 404 when
// the gateway signs none.
func (g *Gateway) serveJWKS(c echo.Context) error {
	if g.opts.Signer == nil {
		return notFound(c)
	}
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Origin", "*")
	// Short: a key added in front is fetched by upstreams within a minute.
	h.Set("Cache-Control", "public, max-age=60")
	return c.Blob(http.StatusOK, "application/jwk-set+json", g.opts.Signer.JWKS())
}
