package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/store"
)

// The same benchmarks for every backend, so that "make bench" puts bbolt
// and etcd side by side in one run: creates with 1 and 32 writers (every
// one acknowledged durable), and one owner's page of 10 among 100,000 todos.

const benchContent = "buy milk, then call the plumber about the kitchen sink"

// Benchmark runs the store benchmarks against the backend f opens. Each
// sub-benchmark opens its own store.
func Benchmark(b *testing.B, f Factory) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("create/writers=%d", writers), func(b *testing.B) {
			s := benchStore(b, f)
			ctx := context.Background()
			RunWriters(b, writers, func(i int) error {
				_, err := s.Create(ctx, "acme", fmt.Sprint("owner-", i%100), benchContent)
				return err
			})
		})
	}
	b.Run("list-owner-10-of-100000", func(b *testing.B) {
		const owners, each = 10000, 10
		s := benchStore(b, f)
		ctx := context.Background()
		start := time.Now()
		// Import, in pages of at most MaxLimit, writes the fixture in a few
		// hundred transactions instead of 100,000 creates.
		page := make([]store.Todo, 0, store.MaxLimit)
		for i := range owners * each {
			page = append(page, Importable(b, fmt.Sprint("owner-", i%owners), benchContent))
			if len(page) == cap(page) || i == owners*each-1 {
				if _, err := s.Import(ctx, "acme", page); err != nil {
					b.Fatalf("fixture: %v", err)
				}
				page = page[:0]
			}
		}
		b.Logf("fixture: %d todos in %v", owners*each, time.Since(start))
		b.ResetTimer()
		for b.Loop() {
			got, err := s.List(ctx, "acme", store.ListOptions{Owner: "owner-4242", Limit: 20})
			if err != nil || len(got.Todos) != each {
				b.Fatalf("List: got %d todos, %v; want %d", len(got.Todos), err, each)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

func benchStore(b *testing.B, f Factory) store.Store {
	b.Helper()
	s := f.Open(b)
	b.Cleanup(func() { s.Close() })
	if err := s.EnsureTenants(context.Background(), "acme"); err != nil {
		b.Fatal(err)
	}
	return s
}

// RunWriters shares b.N operations among writers goroutines and reports the
// throughput and the mean latency of one operation.
func RunWriters(b *testing.B, writers int, op func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := op(int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/secs, "ops/s")
	b.ReportMetric(secs*1e6*float64(min(writers, b.N))/float64(b.N), "µs-latency")
}
