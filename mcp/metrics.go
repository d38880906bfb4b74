package mcp

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Metrics are the edge's Prometheus collectors. Label values are bounded:
// tenant ids come from the configuration, tools from the three known names
// (anything else counts as "other"), reasons from the RFC 6750 codes.
type Metrics struct {
	requests     *prometheus.CounterVec
	decisions    *prometheus.CounterVec
	verification *prometheus.HistogramVec
	config       *prometheus.GaugeVec
	toolErrors   *prometheus.CounterVec
	revision     prometheus.Gauge
	connections  prometheus.Gauge
	connLimit    prometheus.Gauge
	connRefused  prometheus.Counter
	connSource   prometheus.Counter
	connEvicted  *prometheus.CounterVec
	lingering    prometheus.Gauge
	lingered     *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	upstreams    *prometheus.CounterVec
	servers      *prometheus.GaugeVec
}

// NewMetrics registers the edge's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_requests_total",
			Help: "MCP endpoint requests by tenant, tool (empty for non-tool calls) and HTTP status.",
		}, []string{"tenant", "tool", "status"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_authorization_decisions_total",
			Help: "Authorization decisions by tenant, decision (allow, deny) and reason (the RFC 6750 error code, no_credentials, or empty).",
		}, []string{"tenant", "decision", "reason"}),
		verification: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "todo_gateway_token_verification_seconds",
			Help:    "Time to verify a bearer token, by tenant and outcome (ok, invalid, unavailable, error).",
			Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"tenant", "outcome"}),
		config: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "todo_gateway_config_info",
			Help: "The configuration being served: 1 for its version (the SHA-256 of the configuration bytes), which changes on every applied reload.",
		}, []string{"version"}),
		toolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_tool_errors_total",
			Help: "Tool calls answered with a tool error (HTTP 200, isError: invalid arguments, an unknown todo, a store failure), by tenant and tool.",
		}, []string{"tenant", "tool"}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "todo_gateway_config_revision",
			Help: "The etcd revision of the configuration being served (tenants_from \"etcd\"); 0 for a file. Instances that differ have not all applied the latest push.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "todo_gateway_connections",
			Help: "Connections open on the public listener.",
		}),
		connLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "todo_gateway_connections_limit",
			Help: "The cap on open public connections (http.max_connections, or derived from the open-file limit).",
		}),
		connRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "todo_gateway_connections_refused_total",
			Help: "Public connections closed at once (answered 503) because the cap was reached.",
		}),
		connSource: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "todo_gateway_connections_source_refused_total",
			Help: "Public connections closed at once (answered 503) because their address held http.max_connections_per_source.",
		}),
		connEvicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_connections_evicted_total",
			Help: "Connections waiting for a request closed to make room for new ones, by reason: cap (the one idle the longest, at the cap), pressure (idle 5 s or more, near the cap).",
		}, []string{"reason"}),
		lingering: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "todo_gateway_connections_lingering",
			Help: "Public connections answered before their request body was read, now reading and discarding the rest of it before they close (counted in todo_gateway_connections too).",
		}),
		lingered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_lingering_closes_total",
			Help: "Lingering closes by how they ended: eof (the client closed: it had the answer), idle (no byte for the idle bound), time (the time bound), bytes (the byte bound), error.",
		}, []string{"outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_rate_limited_total",
			Help: "Requests answered 429 by the tenant's rate limit on this instance, by tenant.",
		}, []string{"tenant"}),
		upstreams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_upstream_requests_total",
			Help: "Requests forwarded to upstream MCP servers, by tenant and outcome (ok, busy, unreachable, timeout, idle, credentials_refused, bad_answer, canceled, closed, session_refused, exchange_refused, exchange_unavailable, identity).",
		}, []string{"tenant", "outcome"}),
	}
	m.servers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "todo_gateway_tenant_server_info",
		Help: "1 for each tenant served, with its server: todo or upstream.",
	}, []string{"tenant", "server"})
	reg.MustRegister(m.requests, m.decisions, m.verification, m.config, m.toolErrors, m.revision,
		m.connections, m.connLimit, m.connRefused, m.connSource, m.connEvicted, m.lingering, m.lingered, m.rateLimited, m.upstreams, m.servers)
	return m
}

func (m *Metrics) request(tenant, tool string, status int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(tenant, tool, strconv.Itoa(status)).Inc()
}

func (m *Metrics) toolError(tenant, tool string) {
	if m == nil {
		return
	}
	m.toolErrors.WithLabelValues(tenant, tool).Inc()
}

func (m *Metrics) decision(tenant, decision, reason string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(tenant, decision, reason).Inc()
}

// verified times a token's verification; when ctx's trace is sampled, the
// observation carries its trace id as an exemplar (shown to a scraper that
// asks for OpenMetrics), so a slow bucket leads to a trace.
func (m *Metrics) verified(ctx context.Context, tenant, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	ObserveInTrace(ctx, m.verification.WithLabelValues(tenant, outcome), d)
}

// ObserveInTrace observes d in seconds; when ctx's trace is sampled, with
// its trace id as the exemplar. Every latency histogram of the gateway
// observes this way.
func ObserveInTrace(ctx context.Context, obs prometheus.Observer, d time.Duration) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		if eo, ok := obs.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String()})
			return
		}
	}
	obs.Observe(d.Seconds())
}

// configApplied makes version the one configuration the info metric shows,
// and revision the revision metric's value.
func (m *Metrics) configApplied(version string, revision int64, servers map[string]string) {
	if m == nil {
		return
	}
	m.config.Reset()
	m.config.WithLabelValues(version).Set(1)
	m.revision.Set(float64(revision))
	m.servers.Reset()
	for tenant, server := range servers {
		m.servers.WithLabelValues(tenant, server).Set(1)
	}
}

func (m *Metrics) connectionLimit(n int) {
	if m == nil {
		return
	}
	m.connLimit.Set(float64(n))
}

func (m *Metrics) connectionOpened() {
	if m == nil {
		return
	}
	m.connections.Inc()
}

func (m *Metrics) connectionClosed() {
	if m == nil {
		return
	}
	m.connections.Dec()
}

func (m *Metrics) connectionRefused() {
	if m == nil {
		return
	}
	m.connRefused.Inc()
}

func (m *Metrics) connectionSourceRefused() {
	if m == nil {
		return
	}
	m.connSource.Inc()
}

func (m *Metrics) connectionsEvicted(reason string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.connEvicted.WithLabelValues(reason).Add(float64(n))
}

func (m *Metrics) lingerStarted() {
	if m == nil {
		return
	}
	m.lingering.Inc()
}

func (m *Metrics) lingerEnded(outcome string) {
	if m == nil {
		return
	}
	m.lingering.Dec()
	m.lingered.WithLabelValues(outcome).Inc()
}

func (m *Metrics) rateLimit(tenant string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(tenant).Inc()
}

func (m *Metrics) upstreamOutcome(tenant, outcome string) {
	if m == nil {
		return
	}
	m.upstreams.WithLabelValues(tenant, outcome).Inc()
}
