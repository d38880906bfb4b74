package mcp

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/trace"

	"github.com/todo-gateway/todo-gateway/providers"
)

// auditRecord collects one authorization decision as the request goes
// through the bearer layer. It never holds the token.
type auditRecord struct {
	tenant, issuer, subject, client string
	method, tool                    string
	start                           time.Time
}

// audit is a new audit record of a request to the tenant, for a refusal
// made before the request's own (admit).
func (ts *tenantState) audit() *auditRecord {
	return &auditRecord{tenant: ts.tenant.ID, issuer: ts.tenant.Provider.Issuer, start: time.Now()}
}

func (a *auditRecord) principal(p *providers.Principal) {
	a.subject, a.client = p.Subject, p.ClientID
}

// log writes the audit line, with typed attributes (infoLine): two lines a
// request are on the hot path, and the variadic ...any form boxes every value.
// Latency is whole microseconds: slog's JSON handler writes a float through
// json.Marshal, which cost as much as the rest of the line.
// The method and tool come from the body, the reason may quote the token,
// and the subject and client from a token's claims: each is bounded.
func (a *auditRecord) log(log *slog.Logger, ctx context.Context, decision, reason string, status int) {
	traceDecision(ctx, a, decision, status)
	infoLine(log, ctx, "audit",
		slog.String("tenant", a.tenant), slog.String("issuer", a.issuer),
		slog.String("subject", bounded(a.subject)), slog.String("client", bounded(a.client)),
		slog.String("method", bounded(a.method)), slog.String("tool", bounded(a.tool)),
		slog.String("decision", decision), slog.String("reason", bounded(reason)), slog.Int("status", status),
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
// string (a misbehaving client may put a token there) nor any header value
// but a kept client request id; the method, host and path the client chose
// are bounded. The request id is the gateway's (echo's LogRequestID would
// prefer the client's header).
func (g *Gateway) accessLog() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogMethod: true, LogURIPath: true, LogHost: true,
		LogLatency: true, LogRemoteIP: true, LogError: true,
		HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			ctx := c.Request().Context()
			attrs := make([]slog.Attr, 0, 9)
			attrs = append(attrs,
				slog.String("method", bounded(v.Method)), slog.String("host", bounded(v.Host)), slog.String("path", bounded(v.URIPath)),
				slog.Int("status", v.Status), slog.Int64("latency_us", v.Latency.Microseconds()),
				slog.String("remote_ip", v.RemoteIP), slog.String("request_id", RequestIDFrom(ctx)))
			if id := ClientRequestIDFrom(ctx); id != "" {
				attrs = append(attrs, slog.String("client_request_id", id))
			}
			if v.Error != nil {
				attrs = append(attrs, slog.String("err", bounded(v.Error.Error())))
			}
			infoLine(g.log, ctx, "access", attrs...)
			return nil
		},
	})
}

// infoLine writes an info line as LogAttrs does, less the caller's program
// counter: LogAttrs looks it up (runtime.Callers, a stack walk) for every
// line, for handlers that print the source, which the gateway's do not. On
// the access and audit lines that walk was a fiftieth of get-todos' CPU.
func infoLine(log *slog.Logger, ctx context.Context, msg string, attrs ...slog.Attr) {
	h := log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, msg, 0)
	r.AddAttrs(attrs...)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
	}
	_ = h.Handle(ctx, r) // as LogAttrs, which drops the handler's error
}

// maxLogged bounds a string a client chose (a path, a Host, a method, a
// tool name, an error quoting any of them) in a log line: a request of
// megabytes must not become a log line of megabytes.
const maxLogged = 256

// bounded is s for a log line: cut to maxLogged bytes, at a character
// boundary, and marked with the length cut off. Every string a client chose
// goes through it on its way to a log line.
func bounded(s string) string {
	if len(s) <= maxLogged {
		return s
	}
	cut := maxLogged
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)-cut) + " more bytes)"
}

// maxClientRequestID bounds the X-Request-Id kept for correlation.
const maxClientRequestID = 64

// clientRequestID reports whether id may be kept as the client's request
// id: at most maxClientRequestID letters, digits and "-_.:", which covers
// UUIDs, trace ids and most request ids, and cannot forge a log field.
func clientRequestID(id string) bool {
	if id == "" || len(id) > maxClientRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// assignRequestID gives each request an id of the gateway's own (128
// random bits, crypto/rand.Text), which the access, audit and error lines
// carry and the X-Request-Id response header returns. A client's
// X-Request-Id never becomes the request id, since a client could then
// choose the id an audit line shows, at any length; a short, plain one is
// kept apart as client_request_id in the access line.
func assignRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		ids := requestIDs{own: rand.Text()}
		if id := r.Header.Get(echo.HeaderXRequestID); clientRequestID(id) {
			ids.client = id
		}
		c.SetRequest(r.WithContext(withRequestIDs(r.Context(), ids)))
		c.Response().Header().Set(echo.HeaderXRequestID, ids.own)
		return next(c)
	}
}

// LibraryLogger is l for the lines a library writes (mcp-go's transport,
// and whatever writes to the standard log package or slog's default once
// serve has made this the default): each is one line in the gateway's
// format, marked with the library's name when it is known, and every
// string in it (the message, each attribute, an error's text) is bounded,
// since a library's error may quote what a client sent.
func LibraryLogger(l *slog.Logger, library string) *slog.Logger {
	out := slog.New(boundedHandler{l.Handler()})
	if library != "" {
		out = out.With("library", library)
	}
	return out
}

// boundedHandler bounds every string of a record, as bounded does.
type boundedHandler struct{ slog.Handler }

func (h boundedHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, bounded(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(boundedAttr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h boundedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	b := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		b[i] = boundedAttr(a)
	}
	return boundedHandler{h.Handler.WithAttrs(b)}
}

func (h boundedHandler) WithGroup(name string) slog.Handler {
	return boundedHandler{h.Handler.WithGroup(bounded(name))}
}

func boundedAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(bounded(a.Key), bounded(v.String()))
	case slog.KindGroup:
		g := v.Group()
		b := make([]any, len(g))
		for i, m := range g {
			b[i] = boundedAttr(m)
		}
		return slog.Group(bounded(a.Key), b...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(bounded(a.Key), bounded(err.Error()))
		}
		return slog.String(bounded(a.Key), bounded(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: bounded(a.Key), Value: v}
}
