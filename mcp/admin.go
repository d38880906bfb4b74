package mcp

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
)

// storeCheckTimeout bounds the store check of /status, so a store that
// cannot answer cannot hang the operator's view of it.
const storeCheckTimeout = 2 * time.Second

// tenantStatus is one tenant in the status document.
type tenantStatus struct {
	ID       string `json:"id"`
	Resource string `json:"resource"`
	Type     string `json:"type"`
	Issuer   string `json:"issuer"`
	// Provider is what the tenant's verifier knows of its issuer; absent for
	// a tenant whose verifier could not be built.
	Provider *providers.Status `json:"provider,omitempty"`
	// Problem says why a tenant cannot verify tokens (its verifier could not
	// be built, for example a secret's environment variable is unset), or
	// why its upstream server could not be set up.
	Problem string `json:"problem,omitempty"`
	// Server is the tenant's MCP server: "todo" or "upstream".
	Server string `json:"server"`
	// Upstream is an upstream tenant's server as this instance sees it.
	Upstream *upstreamStatus `json:"upstream,omitempty"`
}

// upstreamStatus is an upstream tenant's server in /status.
type upstreamStatus struct {
	URL      string `json:"url"`
	Identity string `json:"identity"`
	upstream.Health
}

// statusDocument is the body of /status.
type statusDocument struct {
	// Config is the version (SHA-256 of the bytes) of the configuration
	// being served: instances showing the same one serve the same tenants.
	Config string `json:"config"`
	// Revision is the etcd revision of that configuration (tenants_from
	// "etcd"); absent for a file.
	Revision int64        `json:"revision,omitempty"`
	Store    *storeStatus `json:"store,omitempty"`
	// Issuers is each authorization server the tenants verify with, with
	// how many tenants share its discovery document and key set.
	Issuers []providers.IssuerStatus `json:"issuers,omitempty"`
	Tenants []tenantStatus           `json:"tenants"`
}

// storeStatus is the store as /status shows it.
type storeStatus struct {
	Backend string `json:"backend"`
	// OK: the store answered the read check and its latest write did not
	// fail. Error is the read check's failure; Writes says how the writes
	// went, which is what shows a full disk.
	OK     bool              `json:"ok"`
	Error  string            `json:"error,omitempty"`
	Writes todo.WritesStatus `json:"writes"`
	// Cache is the read cache's state, size and counts (etcd).
	Cache any `json:"cache,omitempty"`
}

// AdminOptions is what the operator's endpoints report besides the edge's
// generation.
type AdminOptions struct {
	// Draining reports that the process is shutting down; /readyz then
	// answers 503 so that load balancers stop sending it requests, while
	// the edge still serves those that arrive.
	Draining func() bool
	// StoreCheck tells whether the store answers (a linearizable read on
	// etcd). /status shows it, with how the latest writes went; /readyz
	// deliberately uses neither: every instance shares one etcd cluster,
	// so a store outage would make every instance unready at once and a
	// load balancer would then drop the answers that need no store
	// (metadata, 401 challenges) along with the tool calls, which tell
	// their clients to retry instead. A full disk under bbolt is no better
	// a reason: the single instance still answers reads, and an instance
	// taken out of rotation would get no write that could show the disk
	// has room again.
	StoreCheck func(context.Context) error
	// StoreName describes the store in /status ("bbolt data/todos.db").
	StoreName string
	// StoreCache describes the store's read cache in /status (etcd's
	// CacheStats); nil for a store without one.
	StoreCache func() any
	// Issuers lists the shared issuer state (providers.Issuers.List).
	Issuers func() []providers.IssuerStatus
	// Metrics serves /metrics.
	Metrics http.Handler
	// Backup writes a consistent copy of the store for /backup (bbolt's
	// Backup); nil for a store backed up by other means (etcd: etcdctl
	// snapshot save).
	Backup func(ctx context.Context, start func(size int64) io.Writer) (int64, error)
}

// status describes the generation for /status.
func (gen *Generation) status() statusDocument {
	out := statusDocument{Tenants: []tenantStatus{}}
	if gen == nil {
		return out
	}
	out.Config, out.Revision = gen.version, gen.revision
	for _, st := range gen.states {
		t := st.tenant
		ts := tenantStatus{ID: t.ID, Resource: t.Resource, Type: string(t.Provider.Type), Issuer: t.Provider.Issuer, Problem: st.problem,
			Server: t.Server.TypeOf()}
		if up, ok := st.server.(upstreamServer); ok && up.Server != nil {
			ts.Upstream = &upstreamStatus{URL: up.URL(), Identity: up.Mode(), Health: up.Health()}
		}
		if v, ok := st.verifier.(interface{ Status() providers.Status }); ok {
			ps := v.Status()
			ts.Provider = &ps
		}
		out.Tenants = append(out.Tenants, ts)
	}
	return out
}

// NewAdmin serves the operator's endpoints: /healthz (the process answers),
// /readyz (tenants are loaded and the process is not draining), /status
// (the configuration version, the store, each tenant and its provider),
// /metrics and /backup (a consistent copy of a bbolt store). They reveal internals, so they belong on a private listener,
// never on the public MCP one.
func NewAdmin(gw *Gateway, opts AdminOptions) http.Handler {
	if opts.Draining == nil {
		opts.Draining = func() bool { return false }
	}
	if opts.Metrics == nil {
		opts.Metrics = http.NotFoundHandler()
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		_ = jsonError(c, http.StatusNotFound, "not_found", "admin endpoints: /healthz, /readyz, /status, /metrics, /backup")
	}
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		if gen := gw.Current(); gen == nil || gen.Len() == 0 {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "no tenants loaded"})
		}
		if opts.Draining() {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "draining: shutting down"})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})
	e.GET("/status", func(c echo.Context) error {
		doc := gw.Current().status()
		if opts.Issuers != nil {
			doc.Issuers = opts.Issuers()
		}
		if opts.StoreCheck != nil {
			ctx, cancel := context.WithTimeout(c.Request().Context(), storeCheckTimeout)
			defer cancel()
			doc.Store = &storeStatus{Backend: opts.StoreName, Writes: gw.writes.Status()}
			if opts.StoreCache != nil {
				doc.Store.Cache = opts.StoreCache()
			}
			if err := opts.StoreCheck(ctx); err != nil {
				doc.Store.Error = err.Error()
			}
			doc.Store.OK = doc.Store.Error == "" && doc.Store.Writes.OK
		}
		return c.JSON(http.StatusOK, doc)
	})
	e.GET("/metrics", echo.WrapHandler(opts.Metrics))
	e.GET("/backup", func(c echo.Context) error {
		if opts.Backup == nil {
			return jsonError(c, http.StatusNotImplemented, "not_implemented",
				"this store is not backed up through the gateway: back up etcd with etcdctl snapshot save")
		}
		_, err := opts.Backup(c.Request().Context(), func(size int64) io.Writer {
			h := c.Response().Header()
			h.Set(echo.HeaderContentType, "application/octet-stream")
			h.Set(echo.HeaderContentDisposition, `attachment; filename="todos.db"`)
			h.Set(echo.HeaderContentLength, strconv.FormatInt(size, 10))
			c.Response().WriteHeader(http.StatusOK)
			return c.Response()
		})
		if err != nil && !c.Response().Committed {
			return jsonError(c, http.StatusServiceUnavailable, "unavailable", "the backup could not be taken: "+err.Error())
		}
		// Once the copy has begun the status is sent: a failure part-way
		// shows as a body shorter than its Content-Length.
		return nil
	})
	return e
}
