package mcp

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracing: with Options.Tracing set, each request to the public listener is
// a server span (its parent from the client's W3C traceparent), named and
// marked, once authorization has decided, with the MCP method, the tool,
// the tenant, the protocol version and the decision; token verification is
// a child span, and an upstream tenant's request to its server a client
// span whose context the server receives. Without a tracer nothing is
// installed: the request path pays for none of it.

// traceRequests is the middleware of the server span.
func (g *Gateway) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		ctx := TracePropagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		if trace.SpanContextFromContext(ctx).IsValid() {
			c.Set(tracedByHeaders, true)
		}
		ctx, span := g.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("url.path", bounded(r.URL.Path)),
				attribute.String("server.address", bounded(r.Host)),
				attribute.String("client.address", c.RealIP()),
				attribute.String("mcp.protocol.version", bounded(r.Header.Get("Mcp-Protocol-Version")))))
		defer span.End()
		c.SetRequest(r.WithContext(ctx))
		err := next(c)
		status := c.Response().Status
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, strconv.Itoa(status))
		}
		return err
	}
}

// traceDecision names the request's span after what it asked (as the
// semantic conventions of MCP do: "tools/call create-todo") and marks it
// with the decision on it; a no-op without a span.
func traceDecision(ctx context.Context, a *auditRecord, decision string, status int) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if a.method != "" {
		name := a.method
		if a.tool != "" {
			name += " " + a.tool
		}
		span.SetName(bounded(name))
	}
	span.SetAttributes(
		attribute.String("mcp.method.name", bounded(a.method)),
		attribute.String("gen_ai.tool.name", bounded(a.tool)),
		attribute.String("todo_gateway.tenant", a.tenant),
		attribute.String("todo_gateway.decision", decision),
		attribute.Int("todo_gateway.decision_status", status))
}

// traceVerification wraps a token verification in a child span; cached
// says it was answered from the verifier's cache.
func (g *Gateway) traceVerification(ctx context.Context) (context.Context, func(cached bool, err error)) {
	if g.tracer == nil {
		return ctx, func(bool, error) {}
	}
	ctx, span := g.tracer.Start(ctx, "verify token")
	return ctx, func(cached bool, err error) {
		span.SetAttributes(attribute.Bool("todo_gateway.token.cached", cached))
		if err != nil {
			span.SetStatus(codes.Error, bounded(err.Error()))
		}
		span.End()
	}
}

// tracedTransport makes rt's requests client spans carrying the trace's
// context (an upstream tenant's requests to its server).
func (g *Gateway) tracedTransport(rt http.RoundTripper) http.RoundTripper {
	return TracedTransport(g.opts.Tracing, rt)
}

// TracedTransport makes rt's requests client spans of tp carrying the
// trace's context (TracePropagator): the gateway's every outgoing HTTP
// request when tracing.
func TracedTransport(tp trace.TracerProvider, rt http.RoundTripper) http.RoundTripper {
	return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(TracePropagator))
}

// TracePropagator reads and writes the W3C trace context (traceparent,
// tracestate) and baggage, in every request the gateway receives or sends.
var TracePropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// tracedByHeaders marks, in the echo context, a request whose HTTP headers
// carried a trace context (the span's parent).
const tracedByHeaders = "todo-gateway.traced-by-headers"

// traceFromMeta links the request's span to the trace context an MCP
// message carries in its params._meta (traceparent, tracestate), when the
// HTTP headers carried none: the span began before the body was read, so
// that context is a link, not its parent. A no-op when not tracing.
func (g *Gateway) traceFromMeta(c echo.Context, body []byte) {
	if g.tracer == nil {
		return
	}
	span := trace.SpanFromContext(c.Request().Context())
	if !span.IsRecording() || c.Get(tracedByHeaders) != nil {
		return
	}
	var msg struct {
		Params struct {
			Meta map[string]any `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Params.Meta == nil {
		return
	}
	carrier := propagation.MapCarrier{}
	for _, k := range []string{"traceparent", "tracestate"} {
		if v, ok := msg.Params.Meta[k].(string); ok {
			carrier[k] = v
		}
	}
	if sc := trace.SpanContextFromContext(TracePropagator.Extract(context.Background(), carrier)); sc.IsValid() {
		span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("todo_gateway.trace.from", "_meta")}})
	}
}
