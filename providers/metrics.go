package providers

import "github.com/prometheus/client_golang/prometheus"

// Metrics count the traffic between the gateway and authorization servers.
// One value serves every tenant; the issuer label is bounded by the
// configuration.
type Metrics struct {
	discovery     *prometheus.CounterVec
	jwks          *prometheus.CounterVec
	introspection *prometheus.CounterVec
	introCache    *prometheus.CounterVec
	overBudget    *prometheus.CounterVec
}

// NewMetrics registers the providers' collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		discovery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_discovery_fetches_total",
			Help: "Metadata discoveries (each the issuer's list of well-known URLs, tried in order) by issuer and result (ok, error); tenants sharing an issuer share them.",
		}, []string{"issuer", "result"}),
		jwks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_jwks_fetches_total",
			Help: "JWKS fetches by issuer and result (ok, error); tenants sharing an issuer share them.",
		}, []string{"issuer", "result"}),
		introspection: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_introspection_requests_total",
			Help: "RFC 7662 introspection requests sent, by issuer and result (ok: the server answered, error: it could not be asked).",
		}, []string{"issuer", "result"}),
		introCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_introspection_cache_total",
			Help: "Introspection cache lookups by issuer and result (hit, miss; stale: an active answer past cache_ttl, served within the token's exp because the budget was spent).",
		}, []string{"issuer", "result"}),
		overBudget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "todo_gateway_introspection_over_budget_total",
			Help: "Tokens answered 503 without being introspected because the tenant's introspection budget (max_calls_per_second) was spent, by tenant.",
		}, []string{"tenant"}),
	}
	reg.MustRegister(m.discovery, m.jwks, m.introspection, m.introCache, m.overBudget)
	return m
}

// WithMetrics makes the provider count its fetches and introspections in
// m. Fetches are the issuer's (see Issuers), so each is counted once
// whatever the number of tenants that share it.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

func (m *Metrics) discoveryFetch(issuer string, err error) {
	if m != nil {
		m.discovery.WithLabelValues(issuer, result(err)).Inc()
	}
}

func (m *Metrics) jwksFetch(issuer string, err error) {
	if m != nil {
		m.jwks.WithLabelValues(issuer, result(err)).Inc()
	}
}

func (m *Metrics) introspected(issuer string, err error) {
	if m != nil {
		m.introspection.WithLabelValues(issuer, result(err)).Inc()
	}
}

func (m *Metrics) introCacheLookup(issuer string, hit bool) {
	r := "miss"
	if hit {
		r = "hit"
	}
	m.introCacheResult(issuer, r)
}

// introCacheResult counts an answer of the introspection cache: hit, miss,
// or stale (an expired active answer served while the budget is spent).
func (m *Metrics) introCacheResult(issuer, result string) {
	if m != nil {
		m.introCache.WithLabelValues(issuer, result).Inc()
	}
}

func (m *Metrics) introspectionOverBudget(tenant string) {
	if m != nil {
		m.overBudget.WithLabelValues(tenant).Inc()
	}
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
