package mcp

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/todo-gateway/todo-gateway/providers"
)

// readyTimeout bounds a readiness check so a stuck store cannot hang probes.
const readyTimeout = 2 * time.Second

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
	// be built, for example a secret's environment variable is unset).
	Problem string `json:"problem,omitempty"`
}

// statusDocument is the body of /status.
type statusDocument struct {
	// Config is the version (SHA-256 of the bytes) of the configuration
	// being served: instances showing the same one serve the same tenants.
	Config  string         `json:"config"`
	Tenants []tenantStatus `json:"tenants"`
}

// status describes the generation for /status.
func (gen *Generation) status() statusDocument {
	out := statusDocument{Tenants: []tenantStatus{}}
	if gen == nil {
		return out
	}
	out.Config = gen.version
	for _, st := range gen.states {
		t := st.tenant
		ts := tenantStatus{ID: t.ID, Resource: t.Resource, Type: string(t.Provider.Type), Issuer: t.Provider.Issuer, Problem: st.problem}
		if v, ok := st.verifier.(interface{ Status() providers.Status }); ok {
			ps := v.Status()
			ts.Provider = &ps
		}
		out.Tenants = append(out.Tenants, ts)
	}
	return out
}

// NewAdmin serves the operator's endpoints: /healthz (the process answers),
// /readyz (ready reports no error and tenants are loaded), /status (the
// configuration version, each tenant and its provider) and /metrics. They
// reveal internals, so they belong on a private listener, never on the
// public MCP one.
func NewAdmin(gw *Gateway, ready func(context.Context) error, metrics http.Handler) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		_ = jsonError(c, http.StatusNotFound, "not_found", "admin endpoints: /healthz, /readyz, /status, /metrics")
	}
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		defer cancel()
		if gen := gw.Current(); gen == nil || gen.Len() == 0 {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "no tenants loaded"})
		}
		if err := ready(ctx); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "store: " + err.Error()})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})
	e.GET("/status", func(c echo.Context) error {
		return c.JSON(http.StatusOK, gw.Current().status())
	})
	e.GET("/metrics", echo.WrapHandler(metrics))
	return e
}
