package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/etcd"
	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
	"github.com/todo-gateway/todo-gateway/store/storetest"
)

// cached opens a store with a cache under prefix on c, closed with the test.
func cached(t testing.TB, c *clientv3.Client, prefix string, opts etcd.CacheOptions) *etcd.Store {
	t.Helper()
	s := etcd.NewCached(c.KV, c.Watcher, prefix, etcd.Options{}, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

// ready waits until the store's cache has loaded.
func ready(t testing.TB, s *etcd.Store) {
	t.Helper()
	waitCache(t, s, "loaded", func(st etcd.CacheStats) bool { return st.State == etcd.CacheReady })
}

func waitCache(t testing.TB, s *etcd.Store, what string, cond func(etcd.CacheStats) bool) etcd.CacheStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := s.CacheStats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache was not %s within 10s: %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The conformance suite, with every read answered by a cache (each store
// waits until its cache has loaded, so that the reads do not go to etcd).
func TestConformanceCached(t *testing.T) {
	var mu sync.Mutex
	prefixOf := map[store.Store]string{}
	open := func(t testing.TB, prefix string) store.Store {
		s := etcd.NewCached(cli.KV, cli.Watcher, prefix, etcd.Options{}, etcd.CacheOptions{})
		ready(t, s)
		mu.Lock()
		prefixOf[s] = prefix
		mu.Unlock()
		return s
	}
	storetest.Run(t, storetest.Factory{
		Open: func(t testing.TB) store.Store { return open(t, newPrefix()) },
		Reopen: func(t testing.TB, old store.Store) store.Store {
			mu.Lock()
			prefix := prefixOf[old]
			mu.Unlock()
			return open(t, prefix)
		},
	})
}

// sameAsEtcd compares the cache with etcd key by key: every record of the
// id index and of the owner index, and every tenant marker.
func sameAsEtcd(t *testing.T, c *clientv3.Client, prefix string, s *etcd.Store) {
	t.Helper()
	ctx := context.Background()
	// Caught up with the cluster first: a read waits for that.
	if _, err := s.Tenants(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, "probe-of-freshness", store.ListOptions{}); err != nil && !errors.Is(err, store.ErrUnknownTenant) {
		t.Fatal(err)
	}
	resp, err := c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	wantIDs, wantOwners := map[string][]string{}, map[string]map[string][]string{}
	var wantMarkers []string
	for _, kv := range resp.Kvs {
		key := strings.TrimPrefix(string(kv.Key), prefix)
		switch kind, rest, _ := strings.Cut(key, "/"); kind {
		case "t":
			wantMarkers = append(wantMarkers, rest)
		case "i":
			tenant, id, _ := strings.Cut(rest, "/")
			todo, err := store.DecodeRecord(kv.Value)
			if err != nil || todo.ID != id {
				t.Fatalf("etcd key %s: %+v, %v", key, todo, err)
			}
			wantIDs[tenant] = append(wantIDs[tenant], fmt.Sprintf("%s %s %s %s", todo.ID, todo.OwnerID, todo.Content, todo.CreatedAt.Format(store.TimeLayout)))
		case "o":
			tenant, ownerID, _ := strings.Cut(rest, "/")
			owner, id, _ := strings.Cut(ownerID, "\x00")
			if wantOwners[tenant] == nil {
				wantOwners[tenant] = map[string][]string{}
			}
			wantOwners[tenant][owner] = append(wantOwners[tenant][owner], id)
		}
	}
	todos, owners, markers := s.CachedTodos()
	slices.Sort(markers)
	if !slices.Equal(markers, wantMarkers) {
		t.Errorf("tenant markers: cache %v, etcd %v", markers, wantMarkers)
	}
	gotIDs := map[string][]string{}
	for tenant, ts := range todos {
		for _, todo := range ts {
			gotIDs[tenant] = append(gotIDs[tenant], fmt.Sprintf("%s %s %s %s", todo.ID, todo.OwnerID, todo.Content, todo.CreatedAt.Format(store.TimeLayout)))
		}
	}
	if fmt.Sprint(gotIDs) != fmt.Sprint(wantIDs) {
		t.Errorf("records differ:\ncache %v\netcd  %v", gotIDs, wantIDs)
	}
	gotOwners := map[string]map[string][]string{}
	for tenant, byOwner := range owners {
		gotOwners[tenant] = map[string][]string{}
		for owner, ts := range byOwner {
			for _, todo := range ts {
				gotOwners[tenant][owner] = append(gotOwners[tenant][owner], todo.ID)
			}
		}
	}
	if fmt.Sprint(gotOwners) != fmt.Sprint(wantOwners) {
		t.Errorf("owner index differs:\ncache %v\netcd  %v", gotOwners, wantOwners)
	}
}

// churn creates n todos for a few owners through s and deletes every third.
func churn(t *testing.T, s store.Store, tenant string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		todo, err := s.Create(ctx, tenant, fmt.Sprintf("owner-%d", i%4), fmt.Sprintf("todo %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := s.Delete(ctx, tenant, todo.ID, func(store.Todo) bool { return true }); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Two instances, each with its own connection and cache: whatever one
// acknowledges, the other lists in its next read, and deletes likewise.
func TestCacheReadsAcrossInstances(t *testing.T) {
	prefix := newPrefix()
	other, err := clientv3.New(clientv3.Config{Endpoints: cli.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	a, b := cached(t, cli, prefix, etcd.CacheOptions{}), cached(t, other, prefix, etcd.CacheOptions{})
	ctx := context.Background()
	if err := a.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	ready(t, a)
	ready(t, b)
	for i := range 100 {
		writer, reader := a, b
		if i%2 == 1 {
			writer, reader = b, a
		}
		todo, err := writer.Create(ctx, "acme", "alice", fmt.Sprintf("n%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := reader.Get(ctx, "acme", todo.ID); err != nil || got != todo {
			t.Fatalf("round %d: the other instance's Get gave %+v, %v; want %+v", i, got, err, todo)
		}
		page, err := reader.List(ctx, "acme", store.ListOptions{Owner: "alice", Limit: store.MaxLimit})
		if err != nil || len(page.Todos) == 0 || page.Todos[len(page.Todos)-1] != todo {
			t.Fatalf("round %d: the other instance's list misses the todo just acknowledged: %v", i, err)
		}
		if i%3 == 0 {
			if _, err := writer.Delete(ctx, "acme", todo.ID, func(store.Todo) bool { return true }); err != nil {
				t.Fatal(err)
			}
			if _, err := reader.Get(ctx, "acme", todo.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("round %d: a deleted todo is still served by the other instance: %v", i, err)
			}
		}
	}
	for _, s := range []*etcd.Store{a, b} {
		st, _ := s.CacheStats()
		if st.Fallbacks != 0 || st.Served < 100 {
			t.Errorf("every read should come from the cache: %+v", st)
		}
		sameAsEtcd(t, cli, prefix, s)
	}
}

// Writes outside the prefix (other keys of the cluster) move the
// cluster's revision but not the prefix's: reads still come from the
// cache, at once.
func TestCacheIgnoresWritesElsewhere(t *testing.T) {
	prefix := newPrefix()
	s := cached(t, cli, prefix, etcd.CacheOptions{Wait: 2 * time.Second})
	ctx := context.Background()
	if err := s.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	ready(t, s)
	for i := range 20 {
		if _, err := cli.Put(ctx, newPrefix()+"elsewhere", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.List(ctx, "acme", store.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := s.CacheStats()
	if st.Fallbacks != 0 || st.Served != 20 {
		t.Errorf("got %+v, want every read served by the cache", st)
	}
}

// A watch cut off (a broken connection) resumes from the revision the
// cache applied: nothing written meanwhile is missed.
func TestCacheWatchResumes(t *testing.T) {
	prefix := newPrefix()
	s := cached(t, cli, prefix, etcd.CacheOptions{})
	writer := etcd.New(cli.KV, prefix, etcd.Options{})
	ctx := context.Background()
	if err := writer.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	ready(t, s)
	release := make(chan struct{})
	s.HoldWatches(release)
	s.CutWatch()
	churn(t, writer, "acme", 30)
	close(release)
	sameAsEtcd(t, cli, prefix, s)
	if st, _ := s.CacheStats(); st.Reloads != 1 {
		t.Errorf("got %d loads, want 1: a resumed watch needs no new listing", st.Reloads)
	}
}

// An instance restarted (its cache closed, writes made meanwhile by
// others, a new cache loaded) holds what etcd holds.
func TestCacheInstanceRestart(t *testing.T) {
	prefix := newPrefix()
	writer := etcd.New(cli.KV, prefix, etcd.Options{})
	ctx := context.Background()
	if err := writer.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	first := etcd.NewCached(cli.KV, cli.Watcher, prefix, etcd.Options{}, etcd.CacheOptions{})
	churn(t, first, "acme", 15)
	ready(t, first)
	sameAsEtcd(t, cli, prefix, first)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	churn(t, writer, "acme", 15)
	again := cached(t, cli, prefix, etcd.CacheOptions{})
	ready(t, again)
	sameAsEtcd(t, cli, prefix, again)
}

// A compaction that overtook the watch while it was away: the cache lists
// the prefix again, and ends equal to etcd.
func TestCacheAfterCompaction(t *testing.T) {
	prefix := newPrefix()
	s := cached(t, cli, prefix, etcd.CacheOptions{})
	writer := etcd.New(cli.KV, prefix, etcd.Options{})
	ctx := context.Background()
	if err := writer.EnsureTenants(ctx, "acme", "globex"); err != nil {
		t.Fatal(err)
	}
	churn(t, writer, "acme", 10)
	ready(t, s)
	release := make(chan struct{})
	s.HoldWatches(release)
	s.CutWatch()
	churn(t, writer, "acme", 20)
	churn(t, writer, "globex", 20)
	resp, err := cli.Get(ctx, "any")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	// Behind, the cache answers nothing: reads go to etcd meanwhile.
	page, err := s.List(ctx, "globex", store.ListOptions{})
	if err != nil || len(page.Todos) != 13 {
		t.Fatalf("a read while the cache is behind: %d todos, %v; want the 13 in etcd", len(page.Todos), err)
	}
	close(release)
	waitCache(t, s, "reloaded", func(st etcd.CacheStats) bool { return st.Reloads == 2 && st.State == etcd.CacheReady })
	sameAsEtcd(t, cli, prefix, s)
}

// The only member stops, so the cluster cannot say its revision: reads
// fail, as etcd's would, rather than answer from a copy that may be stale.
// When it is back, the watch resumes and the cache equals etcd again.
func TestCacheMemberRestart(t *testing.T) {
	member, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	c, err := member.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prefix := newPrefix()
	s := etcd.NewCached(c.KV, c.Watcher, prefix, etcd.Options{RequestTimeout: 300 * time.Millisecond}, etcd.CacheOptions{})
	defer s.Close()
	ctx := context.Background()
	if err := s.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	churn(t, s, "acme", 10)
	ready(t, s)
	member.Stop()
	if _, err := s.List(ctx, "acme", store.ListOptions{}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a read with the cluster down: %v, want ErrUnavailable", err)
	}
	if err := member.Restart(); err != nil {
		t.Fatal(err)
	}
	churn(t, etcd.New(c.KV, prefix, etcd.Options{}), "acme", 10)
	sameAsEtcd(t, c, prefix, s)
	if st, _ := s.CacheStats(); st.State != etcd.CacheReady {
		t.Errorf("after the restart: %+v", st)
	}
}

// A cache past its ceiling is dropped; reads go to etcd and stay right.
func TestCacheOverLimit(t *testing.T) {
	prefix := newPrefix()
	s := cached(t, cli, prefix, etcd.CacheOptions{MaxBytes: 4096})
	ctx := context.Background()
	if err := s.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	ready(t, s)
	var made []store.Todo
	for i := range 30 {
		todo, err := s.Create(ctx, "acme", "alice", strings.Repeat("x", 100)+fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, todo)
	}
	waitCache(t, s, "dropped", func(st etcd.CacheStats) bool { return st.State == etcd.CacheOverLimit })
	page, err := s.List(ctx, "acme", store.ListOptions{Owner: "alice"})
	if err != nil || !slices.Equal(page.Todos, made) {
		t.Fatalf("List over the limit: %d todos, %v; want the 30 made", len(page.Todos), err)
	}
	if st, _ := s.CacheStats(); st.Fallbacks == 0 || st.Todos != 0 || st.Bytes != 0 {
		t.Errorf("over the limit: %+v, want nothing held and the read sent to etcd", st)
	}
}

// A record the cache cannot decode makes its tenant's reads go to etcd,
// which reports the damage, as it does without a cache.
func TestCacheDamagedRecord(t *testing.T) {
	prefix := newPrefix()
	s := cached(t, cli, prefix, etcd.CacheOptions{})
	ctx := context.Background()
	if err := s.EnsureTenants(ctx, "acme", "globex"); err != nil {
		t.Fatal(err)
	}
	todo, err := s.Create(ctx, "globex", "alice", "fine")
	if err != nil {
		t.Fatal(err)
	}
	put, err := cli.Put(ctx, prefix+"i/acme/"+"0123456789abcdefghijklmnop", "{not json")
	if err != nil {
		t.Fatal(err)
	}
	// Written around the store, the record does not move the key every
	// store write rewrites, so a read's freshness check does not wait for
	// it: wait until the copy has applied it.
	waitCache(t, s, "up to the damaged record", func(st etcd.CacheStats) bool { return st.Revision >= put.Header.Revision })
	if _, err := s.List(ctx, "acme", store.ListOptions{}); err == nil {
		t.Error("a damaged record was listed without an error")
	}
	if page, err := s.List(ctx, "globex", store.ListOptions{}); err != nil || len(page.Todos) != 1 || page.Todos[0] != todo {
		t.Errorf("another tenant: %+v, %v", page, err)
	}
}

// Concurrent reads share revision checks: many reads, few checks.
func TestCacheSharesChecks(t *testing.T) {
	prefix := newPrefix()
	s := cached(t, cli, prefix, etcd.CacheOptions{})
	ctx := context.Background()
	if err := s.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	churn(t, s, "acme", 10)
	ready(t, s)
	before, _ := s.CacheStats()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		reads time.Duration // every List call's own duration, summed
	)
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			for range 50 {
				t0 := time.Now()
				if _, err := s.List(ctx, "acme", store.ListOptions{Owner: "owner-1"}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				reads += time.Since(t0)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	st, _ := s.CacheStats()
	if st.Served != 1600 || st.Checks > st.Served/4 {
		t.Errorf("1,600 reads by 32 readers made %d revision checks (served %d): reads in flight together should share one", st.Checks, st.Served)
	}
	// The times: checks run one after another, so theirs fit in the wall
	// time; a read's wait is part of its call.
	checks, waits := st.CheckSeconds-before.CheckSeconds, st.WaitSeconds-before.WaitSeconds
	if checks <= 0 || checks > wall.Seconds() {
		t.Errorf("revision checks took %.6fs in all, in a run of %v", checks, wall)
	}
	if waits <= 0 || waits > reads.Seconds() {
		t.Errorf("the reads waited %.6fs in all, and took %v", waits, reads)
	}
	t.Logf("1,600 reads, %d revision checks of %.0f µs on average; a read waited %.0f µs on average and took %.0f µs",
		st.Checks-before.Checks, 1e6*checks/float64(st.Checks-before.Checks), 1e6*waits/1600, float64(reads.Microseconds())/1600)
}

// The size the ceiling counts is close to what the cache takes from the
// heap (within a quarter), for small todos and for large ones.
func TestCacheMemoryEstimate(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 20,000 todos")
	}
	for _, content := range []int{20, 1000} {
		t.Run(fmt.Sprintf("content=%d", content), func(t *testing.T) {
			prefix := newPrefix()
			writer := etcd.New(cli.KV, prefix, etcd.Options{})
			ctx := context.Background()
			if err := writer.EnsureTenants(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			const n = 10000
			todos := make([]store.Todo, n)
			for i := range todos {
				id := store.NewID()
				created, err := store.IDTime(id)
				if err != nil {
					t.Fatal(err)
				}
				todos[i] = store.Todo{ID: id, CreatedAt: created, OwnerID: fmt.Sprintf("user-%d", i%100), Content: strings.Repeat("x", content)}
			}
			if _, err := writer.Import(ctx, "acme", todos); err != nil {
				t.Fatal(err)
			}
			before := heap()
			s := cached(t, cli, prefix, etcd.CacheOptions{})
			ready(t, s)
			grown := heap() - before
			st, _ := s.CacheStats()
			ratio := float64(st.Bytes) / float64(grown)
			t.Logf("%d todos of %d bytes: estimate %d B, heap grew %d B (%.0f B per todo; estimate/heap %.2f)", n, content, st.Bytes, grown, float64(grown)/n, ratio)
			if ratio < 0.75 || ratio > 1.25 {
				t.Errorf("estimate %d B against %d B on the heap", st.Bytes, grown)
			}
			runtime.KeepAlive(s)
		})
	}
}

// heap is the live heap once it has settled: the embedded etcd server
// shares the process, and it frees memory on its own schedule (its
// backend's write buffer when the batch commits, every 100 ms; a closed
// cache's goroutines as they end). Readings 100 ms apart until two agree
// within 1 % (at most 3 s).
func heap() int64 {
	read := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	last := read()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		now := read()
		if diff := now - last; diff*100 < last && -diff*100 < last {
			return now
		}
		last = now
	}
	return last
}
