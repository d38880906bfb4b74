package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/store"
)

// tracing is the gateway's OpenTelemetry tracing, configured as every
// OpenTelemetry SDK is, by the standard environment variables:
//
//   - on when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or OTEL_TRACES_EXPORTER is
//     otlp; off when OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER is
//     none, and off by default;
//   - OTLP over HTTP (http/protobuf, the default) or gRPC
//     (OTEL_EXPORTER_OTLP_PROTOCOL, or its _TRACES_ form), with the
//     exporters' own variables (endpoint, headers, timeout, TLS);
//   - the sampler from OTEL_TRACES_SAMPLER (default parent-based, always
//     on), the batch from OTEL_BSP_*, the resource from OTEL_SERVICE_NAME
//     (default todo-gateway) and OTEL_RESOURCE_ATTRIBUTES.
//
// Its tracer provider is the gateway's own, not the process-wide one, so
// that two gateways in one test process trace apart.
type tracing struct {
	provider *sdktrace.TracerProvider
}

// startTracing starts tracing when the environment asks for it; nil
// otherwise.
func startTracing(ctx context.Context, version string) (*tracing, error) {
	if !tracingWanted(os.Getenv) {
		return nil, nil
	}
	protocol := firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	var exporter sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: the gateway exports traces over http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "todo-gateway"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithFromEnv()) // last: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return &tracing{provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))}, nil
}

// tracingWanted reads the environment as the OpenTelemetry specification
// says an SDK does, for traces over OTLP.
func tracingWanted(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return strings.ToLower(v)
		}
	}
	return ""
}

// tracerProvider is nil when not tracing, for mcp.Options.
func (t *tracing) tracerProvider() trace.TracerProvider {
	if t == nil {
		return nil
	}
	return t.provider
}

// client is c with every request a client span carrying the trace's
// context (the authorization servers' discovery, keys, introspection and
// token exchange).
func (t *tracing) client(c *http.Client) *http.Client {
	if t == nil {
		return c
	}
	traced := *c
	traced.Transport = mcp.TracedTransport(t.provider, c.Transport)
	return &traced
}

// storeSpan makes each store operation a span ("store list"); nil when
// not tracing.
func (t *tracing) storeSpan(system string) store.Span {
	if t == nil {
		return nil
	}
	return t.spans(system, "store ")
}

// storeHooks are the store's hooks: commits, and when tracing, the spans
// of a driver's steps (the bbolt commit, the etcd cache's wait) and the
// etcd client's gRPC requests as client spans.
func (t *tracing) storeHooks(commits func(time.Duration, int)) storeHooks {
	h := storeHooks{commits: commits}
	if t != nil {
		h.span = t.spans("", "")
		h.dial = []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(t.provider), otelgrpc.WithPropagators(mcp.TracePropagator)))}
	}
	return h
}

// spans makes a store.Span whose spans are named prefix+op, with the
// database system when known.
func (t *tracing) spans(system, prefix string) store.Span {
	tracer := t.provider.Tracer("github.com/todo-gateway/todo-gateway/store")
	return func(ctx context.Context, op string) (context.Context, func(error)) {
		attrs := []attribute.KeyValue{attribute.String("db.operation.name", op)}
		if system != "" {
			attrs = append(attrs, attribute.String("db.system.name", system))
		}
		ctx, span := tracer.Start(ctx, prefix+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		return ctx, func(err error) {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
	}
}

// shutdown sends what is left and stops.
func (t *tracing) shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}
