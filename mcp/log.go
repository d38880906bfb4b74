package mcp

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/todo-gateway/todo-gateway/providers"
)

// auditRecord collects one authorization decision as the request goes
// through the bearer layer. It never holds the token.
type auditRecord struct {
	tenant, issuer, subject, client string
	method, tool                    string
	start                           time.Time
}

func (a *auditRecord) principal(p *providers.Principal) {
	a.subject, a.client = p.Subject, p.ClientID
}

func (a *auditRecord) attrs(decision, reason string, status int) []any {
	return []any{
		"tenant", a.tenant, "issuer", a.issuer, "subject", a.subject, "client", a.client,
		"method", a.method, "tool", a.tool, "decision", decision, "reason", reason,
		"status", status, "latency_ms", float64(time.Since(a.start).Microseconds()) / 1000,
	}
}

func (a *auditRecord) allow(log *slog.Logger, ctx context.Context) {
	log.InfoContext(ctx, "audit", append(a.attrs("allow", "", http.StatusOK), "request_id", RequestIDFrom(ctx))...)
}

func (a *auditRecord) deny(log *slog.Logger, ctx context.Context, ch challenge) {
	reason := "no credentials"
	if ch.code != "" {
		reason = ch.code + ": " + ch.description
	}
	log.InfoContext(ctx, "audit", append(a.attrs("deny", reason, ch.status), "request_id", RequestIDFrom(ctx))...)
}

// accessLog writes one line per request. It logs the path, never the query
// string (a misbehaving client may put a token there) nor any header value.
func (g *Gateway) accessLog() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogMethod: true, LogURIPath: true, LogHost: true,
		LogLatency: true, LogRemoteIP: true, LogRequestID: true, LogError: true,
		HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			attrs := []any{
				"method", v.Method, "host", v.Host, "path", v.URIPath, "status", v.Status,
				"latency_ms", float64(v.Latency.Microseconds()) / 1000, "remote_ip", v.RemoteIP,
				"request_id", v.RequestID,
			}
			if v.Error != nil {
				attrs = append(attrs, "err", v.Error.Error())
			}
			g.log.InfoContext(c.Request().Context(), "access", attrs...)
			return nil
		},
	})
}
