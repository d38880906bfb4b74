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

// log writes the audit line. LogAttrs with typed attributes: two lines a
// request are on the hot path, and the variadic ...any form boxes every value.
// Latency is whole microseconds: slog's JSON handler writes a float through
// json.Marshal, which cost as much as the rest of the line.
func (a *auditRecord) log(log *slog.Logger, ctx context.Context, decision, reason string, status int) {
	log.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("tenant", a.tenant), slog.String("issuer", a.issuer),
		slog.String("subject", a.subject), slog.String("client", a.client),
		slog.String("method", a.method), slog.String("tool", a.tool),
		slog.String("decision", decision), slog.String("reason", reason), slog.Int("status", status),
		slog.Int64("latency_us", time.Since(a.start).Microseconds()),
		slog.String("request_id", RequestIDFrom(ctx)))
}

func (a *auditRecord) allow(log *slog.Logger, ctx context.Context) {
	a.log(log, ctx, "allow", "", http.StatusOK)
}

func (a *auditRecord) deny(log *slog.Logger, ctx context.Context, ch challenge) {
	reason := "no credentials"
	if ch.code != "" {
		reason = ch.code + ": " + ch.description
	}
	a.log(log, ctx, "deny", reason, ch.status)
}

// accessLog writes one line per request. It logs the path, never the query
// string (a misbehaving client may put a token there) nor any header value.
func (g *Gateway) accessLog() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogMethod: true, LogURIPath: true, LogHost: true,
		LogLatency: true, LogRemoteIP: true, LogRequestID: true, LogError: true,
		HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			attrs := make([]slog.Attr, 0, 8)
			attrs = append(attrs,
				slog.String("method", v.Method), slog.String("host", v.Host), slog.String("path", v.URIPath),
				slog.Int("status", v.Status), slog.Int64("latency_us", v.Latency.Microseconds()),
				slog.String("remote_ip", v.RemoteIP), slog.String("request_id", v.RequestID))
			if v.Error != nil {
				attrs = append(attrs, slog.String("err", v.Error.Error()))
			}
			g.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "access", attrs...)
			return nil
		},
	})
}
