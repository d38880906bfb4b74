package bolt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/storetest"
)

// Each benchmark has a baseline measured in the same run, so results are read
// as ratios: creates against bare bbolt Update calls that each commit alone
// (what a store without group commit does), one owner's listing against a
// scan of the tenant (what a store without the owner index does).

const benchContent = "buy milk, then call the plumber about the kitchen sink"

func openBench(b *testing.B, opts Options) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "todos.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.EnsureTenants(context.Background(), "acme"); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkStore runs the benchmarks every backend runs (store/storetest),
// beside etcd's in "make bench".
func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, storetest.Factory{Open: func(t testing.TB) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "todos.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
}

// BenchmarkCreate measures Create with 1 and 32 concurrent writers, each
// write fsync'd, against bare bbolt Update calls of the same record.
func BenchmarkCreate(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("store/writers=%d", writers), func(b *testing.B) {
			s := openBench(b, Options{})
			ctx := context.Background()
			storetest.RunWriters(b, writers, func(i int) error {
				_, err := s.Create(ctx, "acme", fmt.Sprint("owner-", i%100), benchContent)
				return err
			})
		})
		b.Run(fmt.Sprintf("baseline-update/writers=%d", writers), func(b *testing.B) {
			s := openBench(b, Options{})
			storetest.RunWriters(b, writers, func(i int) error {
				todo, val, err := store.NewTodo("acme", fmt.Sprint("owner-", i%100), benchContent)
				if err != nil {
					return err
				}
				return s.db.Update(func(tx *bbolt.Tx) error {
					todos, owners, err := tenantBuckets(tx, "acme")
					if err != nil {
						return err
					}
					return put(todos, owners, todo, val)
				})
			})
		})
	}
}

// BenchmarkBatchDelay is the measurement behind DefaultBatchDelay and
// DefaultMaxBatchSize. It takes a minute, so it runs only when asked:
//
//	BOLT_BENCH_SWEEP=1 go test -run '^$' -bench BatchDelay ./store/bolt
func BenchmarkBatchDelay(b *testing.B) {
	if os.Getenv("BOLT_BENCH_SWEEP") == "" {
		b.Skip("set BOLT_BENCH_SWEEP=1 to sweep batch settings")
	}
	delays := []time.Duration{-1, 200 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
		2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond}
	for _, writers := range []int{1, 4, 32, 128} {
		for _, delay := range delays {
			for _, size := range []int{16, DefaultMaxBatchSize} {
				if size < DefaultMaxBatchSize && writers <= size {
					continue // the size limit is never reached
				}
				b.Run(fmt.Sprintf("writers=%d/delay=%v/maxbatch=%d", writers, max(delay, 0), size), func(b *testing.B) {
					s := openBench(b, Options{BatchDelay: delay, MaxBatchSize: size})
					ctx := context.Background()
					storetest.RunWriters(b, writers, func(i int) error {
						_, err := s.Create(ctx, "acme", fmt.Sprint("owner-", i%100), benchContent)
						return err
					})
				})
			}
		}
	}
}

// BenchmarkListOwner lists one owner's 10 todos in a tenant of 100,000
// (10,000 owners with 10 each, interleaved in time as real use would).
func BenchmarkListOwner(b *testing.B) {
	const owners, each = 10000, 10
	s := openBench(b, Options{})
	ctx := context.Background()

	// The fixture is written in 10 transactions of 10,000 todos rather than
	// through Create, which would take 100,000 commits.
	start := time.Now()
	for round := range each {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			todos, idx, err := tenantBuckets(tx, "acme")
			if err != nil {
				return err
			}
			for o := range owners {
				todo, val, err := store.NewTodo("acme", fmt.Sprint("owner-", o), fmt.Sprintf("%s (%d)", benchContent, round))
				if err != nil {
					return err
				}
				if err := put(todos, idx, todo, val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("fixture: %d todos in %v", owners*each, time.Since(start))
	const owner = "owner-4242"

	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			page, err := s.List(ctx, "acme", store.ListOptions{Owner: owner, Limit: 20})
			if err != nil || len(page.Todos) != each {
				b.Fatalf("List: got %d todos, %v; want %d", len(page.Todos), err, each)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("baseline-scan", func(b *testing.B) {
		for b.Loop() {
			var found []store.Todo
			err := s.db.View(func(tx *bbolt.Tx) error {
				todos, _, err := tenantBuckets(tx, "acme")
				if err != nil {
					return err
				}
				return todos.ForEach(func(_, v []byte) error {
					todo, err := store.DecodeRecord(v)
					if err == nil && todo.OwnerID == owner {
						found = append(found, todo)
					}
					return err
				})
			})
			if err != nil || len(found) != each {
				b.Fatalf("scan: got %d todos, %v; want %d", len(found), err, each)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	// For scale: the first page of the whole tenant, which needs no index.
	b.Run("tenant-first-10", func(b *testing.B) {
		for b.Loop() {
			page, err := s.List(ctx, "acme", store.ListOptions{Limit: 10})
			if err != nil || len(page.Todos) != 10 {
				b.Fatalf("List: got %d todos, %v; want 10", len(page.Todos), err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}
