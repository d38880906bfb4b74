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
	"github.com/todo-gateway/todo-gateway/store/etcd"
)

// metrics is the process's Prometheus registry and the collectors the
// packages report to. A registry of our own, not the global one, so two
// gateways in one test process do not collide.
type metrics struct {
	reg       *prometheus.Registry
	edge      *mcp.Metrics
	providers *providers.Metrics
	store     *prometheus.HistogramVec
	commits   prometheus.Histogram
	writes    prometheus.Histogram
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
	m.commits = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "todo_gateway_store_commit_seconds",
		Help:    "bbolt commits by duration: writing the transaction's pages and the fsyncs, the time every write of the commit waits for the disk.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	m.writes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "todo_gateway_store_commit_writes",
		Help:    "bbolt commits by the number of writes (creates, deletes) they held: writes arriving during a commit share the next one.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000},
	})
	reg.MustRegister(m.store, m.commits, m.writes)
	registerBuildInfo(reg, readBuild())
	return m
}

// handler serves the metrics; OpenMetrics to a scraper that asks for it,
// with the exemplars (trace ids) the text format cannot show.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

func (m *metrics) observeCommit(d time.Duration, writes int) {
	m.commits.Observe(d.Seconds())
	m.writes.Observe(float64(writes))
}

func (m *metrics) observeStore(ctx context.Context, op string, d time.Duration, err error) {
	mcp.ObserveInTrace(ctx, m.store.WithLabelValues(op, todo.StoreOutcome(err)), d)
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

// watchCache exports the etcd read cache's state, size and counts, read
// at each scrape.
func (m *metrics) watchCache(stats func() (etcd.CacheStats, bool)) {
	read := func(f func(etcd.CacheStats) float64) func() float64 {
		return func() float64 { st, _ := stats(); return f(st) }
	}
	for _, g := range []struct {
		name, help string
		value      func(etcd.CacheStats) float64
	}{
		{"todo_gateway_store_cache_ready", "1 when reads are answered from the etcd read cache; 0 while it loads, or after it passed its size limit (reads go to etcd).",
			func(st etcd.CacheStats) float64 {
				if st.State == etcd.CacheReady {
					return 1
				}
				return 0
			}},
		{"todo_gateway_store_cache_todos", "Todos held by the etcd read cache.", func(st etcd.CacheStats) float64 { return float64(st.Todos) }},
		{"todo_gateway_store_cache_bytes", "Estimated size of the etcd read cache, as its limit counts it.", func(st etcd.CacheStats) float64 { return float64(st.Bytes) }},
		{"todo_gateway_store_cache_max_bytes", "The etcd read cache's size limit (store.etcd.cache.max_bytes).", func(st etcd.CacheStats) float64 { return float64(st.MaxBytes) }},
		{"todo_gateway_store_cache_revision", "The etcd revision the read cache has applied.", func(st etcd.CacheStats) float64 { return float64(st.Revision) }},
	} {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: g.name, Help: g.help}, read(g.value)))
	}
	for _, c := range []struct {
		name, help string
		value      func(etcd.CacheStats) float64
	}{
		{"todo_gateway_store_cache_reads_total", "Reads answered from the etcd read cache.", func(st etcd.CacheStats) float64 { return float64(st.Served) }},
		{"todo_gateway_store_cache_fallbacks_total", "Reads sent to etcd because the read cache was not ready or did not catch up in time.", func(st etcd.CacheStats) float64 { return float64(st.Fallbacks) }},
		{"todo_gateway_store_cache_revision_checks_total", "Linearizable revision reads made for cached reads (one serves every read that arrived before it started).", func(st etcd.CacheStats) float64 { return float64(st.Checks) }},
		{"todo_gateway_store_cache_revision_check_seconds_total", "Time the revision checks took, one after another; over _revision_checks_total, a check's round trip through the leader.", func(st etcd.CacheStats) float64 { return st.CheckSeconds }},
		{"todo_gateway_store_cache_read_wait_seconds_total", "Time the reads answered from the etcd read cache waited for it to be fresh (a revision check, then the watch catching up); over _reads_total, what consistency adds to a read's latency.", func(st etcd.CacheStats) float64 { return st.WaitSeconds }},
		{"todo_gateway_store_cache_reloads_total", "Listings of the whole prefix by the read cache: at start, and after a compaction overtook its watch.", func(st etcd.CacheStats) float64 { return float64(st.Reloads) }},
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, read(c.value)))
	}
}
