package main

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/providers"
)

// metrics is the process's Prometheus registry and the collectors the
// packages report to. A registry of our own, not the global one, so two
// gateways in one test process do not collide.
type metrics struct {
	reg       *prometheus.Registry
	edge      *mcp.Metrics
	providers *providers.Metrics
	store     *prometheus.HistogramVec
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		reg:       reg,
		edge:      mcp.NewMetrics(reg),
		providers: providers.NewMetrics(reg),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "todo_gateway_store_operation_seconds",
			Help:    "Store operation latency by operation and outcome (ok, or the error kind).",
			Buckets: []float64{.00005, .0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1},
		}, []string{"op", "outcome"}),
	}
	reg.MustRegister(m.store)
	registerBuildInfo(reg, readBuild())
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

func (m *metrics) observeStore(op string, d time.Duration, err error) {
	m.store.WithLabelValues(op, todo.StoreOutcome(err)).Observe(d.Seconds())
}

// storeCheckTimeout bounds the store check behind todo_gateway_store_up, so
// that a store which cannot answer cannot hang a scrape.
const storeCheckTimeout = 2 * time.Second

// watchStore exports whether the store answers, checked at each scrape.
func (m *metrics) watchStore(check func(context.Context) error) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "todo_gateway_store_up",
		Help: "1 when the store answered a check at scrape time (on etcd, a linearizable read: the cluster has a quorum), else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), storeCheckTimeout)
		defer cancel()
		if check(ctx) != nil {
			return 0
		}
		return 1
	}))
}
