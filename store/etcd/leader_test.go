package etcd_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/todo-gateway/todo-gateway/store/etcd"
	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
)

// leaderOf is the endpoint of members whose member leads, "" when none
// answers as the leader.
func leaderOf(t *testing.T, c *clientv3.Client, members []*etcdtest.Member) string {
	t.Helper()
	for _, m := range members {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := c.Status(ctx, m.Endpoint)
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			return m.Endpoint
		}
	}
	return ""
}

// On three members, the cache's revision checks go to the leader's
// endpoint; when the leader stops, reads go on (through every endpoint
// until the new leader is found) and stay linearizable, and the checks
// follow the new leader.
func TestCacheChecksFollowTheLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three members")
	}
	members, err := etcdtest.StartCluster(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	var (
		endpoints []string
		stopped   *etcdtest.Member // closed by the test
	)
	for _, m := range members {
		t.Cleanup(func() {
			if m != stopped {
				m.Close()
			}
		})
		endpoints = append(endpoints, m.Endpoint)
	}
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()}
	reader, err := etcd.Open(cfg, "leader-test/", etcd.Options{RequestTimeout: 2 * time.Second}, &etcd.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close() })
	writer, err := etcd.Open(cfg, "leader-test/", etcd.Options{RequestTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { writer.Close() })
	status, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { status.Close() })

	ctx := context.Background()
	if err := writer.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	ready(t, reader)
	// Each write is seen by the next read, through the cache.
	readsOwnWrite := func(content string) {
		t.Helper()
		todo, err := writer.Create(ctx, "acme", "alice", content)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if _, err := reader.Get(ctx, "acme", todo.ID); err != nil {
			t.Fatalf("get after creating %s: %v", content, err)
		}
	}
	readsOwnWrite("first")
	leader := leaderOf(t, status, members)
	st := waitCache(t, reader, "checking at the leader "+leader, func(st etcd.CacheStats) bool {
		readsOwnWrite("while looking") // a check is what starts the search
		return st.CheckEndpoint == leader
	})
	served := st.Served

	for _, m := range members {
		if m.Endpoint == leader {
			stopped = m
		}
	}
	stopped.Close()
	// Reads go on once a new leader is elected (while the cluster has
	// none, writes fail and are tried again).
	deadline := time.Now().Add(15 * time.Second)
	for {
		todo, err := writer.Create(ctx, "acme", "alice", "after the leader stopped")
		if err == nil {
			if _, err = reader.Get(ctx, "acme", todo.ID); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no create listed within 15 s of stopping the leader: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	newLeader := ""
	for newLeader == "" || newLeader == leader {
		newLeader = leaderOf(t, status, members)
		if time.Now().After(deadline) {
			t.Fatal("no new leader within 15 s")
		}
	}
	st = waitCache(t, reader, "checking at the new leader "+newLeader, func(st etcd.CacheStats) bool {
		readsOwnWrite("after the election")
		return st.CheckEndpoint == newLeader
	})
	if st.Served <= served {
		t.Errorf("reads served from the cache: %d before the leader stopped, %d after", served, st.Served)
	}
	t.Logf("checks moved from %s to %s; %d reads served, %d checks", leader, newLeader, st.Served, st.Checks)
}
