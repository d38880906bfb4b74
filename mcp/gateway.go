// Package mcp is the gateway's HTTP edge: it routes a request to its tenant,
// serves the tenant's protected resource metadata, verifies the bearer token
// and answers refusals with RFC 6750 / MCP challenges, then hands the call to
// the tenant's mcp-go server, whose tools apply the permission and ownership
// policy on the tenant's store.
package mcp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/mark3labs/mcp-go/server"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// Options tune the HTTP edge. Zero values take the defaults.
type Options struct {
	// AllowedOrigins are browser origins (scheme://host[:port]) allowed to
	// call the MCP endpoints, besides each tenant's own origin. "*" allows any.
	AllowedOrigins []string
	// BodyLimit caps a request body; default 1 MiB.
	BodyLimit int64
	// RetryAfter is sent with 503 answers; default 30s.
	RetryAfter time.Duration
	// Logger receives the access, audit and error lines; default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts requests and decisions and times verification.
	Metrics *Metrics
}

const (
	defaultBodyLimit  = 1 << 20
	defaultRetryAfter = 30 * time.Second
	// metadataMaxAge lets clients cache the metadata; it changes only on reload.
	metadataMaxAge = "public, max-age=300"
)

// Gateway serves every tenant of the registry's current snapshot.
type Gateway struct {
	registry *tenants.Registry
	store    store.Store
	opts     Options
	log      *slog.Logger
	echo     *echo.Echo

	// servers caches each tenant's mcp-go server and rendered metadata,
	// keyed by the *tenants.Tenant of the snapshot that holds it, so a
	// reloaded tenant gets fresh ones.
	servers sync.Map // *tenants.Tenant → *tenantServer
}

// tenantServer is what the gateway keeps per tenant.
type tenantServer struct {
	tenant      *tenants.Tenant
	verifier    providers.Verifier
	mcp         *server.StreamableHTTPServer
	metadata    []byte
	metadataURL string
	// allScopes is the scope parameter of a 401: every scope the tenant knows.
	allScopes string
	// origin is the resource's own origin, always allowed to call it.
	origin string
}

// New builds the gateway. It makes no network call: providers discover their
// issuers lazily on the first token.
func New(reg *tenants.Registry, st store.Store, opts Options) *Gateway {
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = defaultBodyLimit
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = defaultRetryAfter
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{registry: reg, store: st, opts: opts, log: opts.Logger}
	g.echo = g.routes()
	return g
}

// Close shuts every tenant's mcp-go server down. Stateless servers hold no
// streams, so this only releases what mcp-go keeps per server.
func (g *Gateway) Close(ctx context.Context) error {
	var errs []error
	g.servers.Range(func(_, v any) bool {
		errs = append(errs, v.(*tenantServer).mcp.Shutdown(ctx))
		return true
	})
	return errors.Join(errs...)
}

// ServeHTTP makes the gateway an http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.echo.ServeHTTP(w, r) }

func (g *Gateway) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// Client addresses come from the connection, never from headers anyone can set.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = g.errorHandler
	e.Pre(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		RequestIDHandler: func(c echo.Context, id string) {
			c.SetRequest(c.Request().WithContext(withRequestID(c.Request().Context(), id)))
		},
	}))
	e.Use(g.accessLog())
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			g.log.Error("panic", "request_id", RequestIDFrom(c.Request().Context()), "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Any(wellKnownPRM, g.serveMetadata)
	e.Any(wellKnownPRM+"/*", g.serveMetadata)
	e.Any("/", g.serveMCP)
	e.Any("/*", g.serveMCP)
	return e
}

// lookup finds the tenant whose resource is this request's host and path.
func (g *Gateway) lookup(c echo.Context, path string) *tenantServer {
	snap := g.registry.Load()
	t, ok := snap.Lookup(c.Request().Host, path)
	if !ok {
		return nil
	}
	return g.serverFor(snap, t)
}

func (g *Gateway) serverFor(snap *tenants.Snapshot, t *tenants.Tenant) *tenantServer {
	if ts, ok := g.servers.Load(t); ok {
		return ts.(*tenantServer)
	}
	ts := &tenantServer{
		tenant:   t,
		verifier: snap.Verifier(t),
		mcp: server.NewStreamableHTTPServer(newMCPServer(t.ID, g.store, g.log),
			server.WithStateLess(true),
			server.WithDisableStreaming(true),
			// Reached through Handle (serveMCP), which leaves CORS and the
			// loopback Host guard to the gateway: it validates Origin itself
			// and serves remote tenants by host name.
		),
		metadataURL: metadataURL(t.Resource),
		origin:      originOf(t.Resource),
		allScopes:   strings.Join(t.ScopeList(), " "),
	}
	ts.metadata = renderMetadata(protectedResourceMetadata{
		Resource:              t.Resource,
		AuthorizationServers:  []string{t.Provider.Issuer},
		ScopesSupported:       t.ScopeList(),
		ResourceName:          t.ResourceName,
		ResourceDocumentation: t.ResourceDocumentation,
	})
	// Two first requests may race to build it; one wins and both use it.
	actual, _ := g.servers.LoadOrStore(t, ts)
	return actual.(*tenantServer)
}

// serveMetadata answers RFC 9728 metadata requests, without authentication
// and for any origin: the document is public by design.
func (g *Gateway) serveMetadata(c echo.Context) error {
	path := strings.TrimPrefix(c.Request().URL.Path, wellKnownPRM)
	ts := g.lookup(c, path)
	if ts == nil {
		return notFound(c)
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

// Forget drops the cached servers of tenants that snap no longer holds (a
// reload removed or changed them), so they can be collected.
func (g *Gateway) Forget(snap *tenants.Snapshot) {
	g.servers.Range(func(k, _ any) bool {
		if !snap.Contains(k.(*tenants.Tenant)) {
			g.servers.Delete(k)
		}
		return true
	})
}
