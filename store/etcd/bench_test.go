package etcd_test

import (
	"os"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/etcd"
	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
	"github.com/todo-gateway/todo-gateway/store/storetest"
)

// BenchmarkStore runs the benchmarks every backend runs (store/storetest)
// on one embedded member and on a cluster of three in this process, over
// loopback: what a quorum write costs against a single member's.
func BenchmarkStore(b *testing.B) {
	b.Run("members=1", func(b *testing.B) {
		storetest.Benchmark(b, storetest.Factory{Open: func(testing.TB) store.Store {
			return etcd.New(cli.KV, newPrefix(), etcd.Options{})
		}})
	})
	b.Run("members=3", func(b *testing.B) {
		dir, err := os.MkdirTemp("", "etcd-bench")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
		members, err := etcdtest.StartCluster(dir, 3)
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			for _, m := range members {
				m.Close()
			}
		}()
		var endpoints []string
		for _, m := range members {
			endpoints = append(endpoints, m.Endpoint)
		}
		c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		storetest.Benchmark(b, storetest.Factory{Open: func(testing.TB) store.Store {
			return etcd.New(c.KV, newPrefix(), etcd.Options{})
		}})
	})
}
