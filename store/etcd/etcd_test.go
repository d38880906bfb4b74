package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/etcd"
	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
	"github.com/todo-gateway/todo-gateway/store/storetest"
)

// One embedded member serves every test of the package; each test works
// under a prefix of its own.
var cli *clientv3.Client

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "etcd-store-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	member, err := etcdtest.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer member.Close()
	if cli, err = member.Client(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cli.Close()
	return m.Run()
}

var prefixes atomic.Int64

// newPrefix is a deployment prefix no other test uses.
func newPrefix() string { return fmt.Sprintf("test-%d-%d/", time.Now().UnixNano(), prefixes.Add(1)) }

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	prefixOf := map[store.Store]string{}
	open := func(prefix string) store.Store {
		s := etcd.New(cli.KV, prefix, etcd.Options{})
		mu.Lock()
		prefixOf[s] = prefix
		mu.Unlock()
		return s
	}
	storetest.Run(t, storetest.Factory{
		Open: func(t testing.TB) store.Store { return open(newPrefix()) },
		Reopen: func(t testing.TB, old store.Store) store.Store {
			mu.Lock()
			prefix := prefixOf[old]
			mu.Unlock()
			return open(prefix)
		},
	})
}

// Stores under different prefixes share nothing.
func TestPrefixesAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := etcd.New(cli.KV, newPrefix(), etcd.Options{}), etcd.New(cli.KV, newPrefix(), etcd.Options{})
	if err := a.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Create(ctx, "acme", "alice", "mine"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.List(ctx, "acme", store.ListOptions{}); !errors.Is(err, store.ErrUnknownTenant) {
		t.Errorf("the other prefix sees the tenant: got %v, want ErrUnknownTenant", err)
	}
}

// More tenants than etcd allows operations in one transaction.
func TestEnsureManyTenants(t *testing.T) {
	ctx := context.Background()
	s := etcd.New(cli.KV, newPrefix(), etcd.Options{})
	var ids []string
	for i := range 300 {
		ids = append(ids, fmt.Sprintf("t%d", i))
	}
	if err := s.EnsureTenants(ctx, ids...); err != nil {
		t.Fatalf("EnsureTenants(300): %v", err)
	}
	if _, err := s.Create(ctx, "t299", "alice", "x"); err != nil {
		t.Errorf("the last tenant has no space: %v", err)
	}
}

// fault is what a faultKV does to one transaction's Commit.
type fault int

const (
	pass          fault = iota
	failBefore          // the request never reaches etcd
	failAfter           // etcd commits, the answer is lost
	failAfterStop       // as failAfter, and the caller gives up at that moment
)

// faultKV passes every call to etcd, but the commits of transactions meet
// the faults of its plan in order (then pass).
type faultKV struct {
	clientv3.KV
	mu      sync.Mutex
	plan    []fault
	commits int
	// stop is called on failAfter and failAfterStop.
	stop func()
	// afterFault, when set, runs after each injected fault, before the
	// caller sees it: another instance acting in that moment.
	afterFault func()
}

func (f *faultKV) Txn(ctx context.Context) clientv3.Txn {
	return &faultTxn{Txn: f.KV.Txn(ctx), kv: f}
}

func (f *faultKV) next() fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits++
	if len(f.plan) == 0 {
		return pass
	}
	ft := f.plan[0]
	f.plan = f.plan[1:]
	return ft
}

type faultTxn struct {
	clientv3.Txn
	kv *faultKV
}

func (t *faultTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.Txn = t.Txn.If(cs...); return t }
func (t *faultTxn) Then(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(ops...); return t }
func (t *faultTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }

var errInjected = status.Error(codes.Unavailable, "injected: connection reset")

func (t *faultTxn) Commit() (*clientv3.TxnResponse, error) {
	switch t.kv.next() {
	case failBefore:
		t.kv.after()
		return nil, errInjected
	case failAfter, failAfterStop:
		if _, err := t.Txn.Commit(); err != nil {
			return nil, err
		}
		if t.kv.stop != nil {
			t.kv.stop()
		}
		t.kv.after()
		return nil, errInjected
	}
	return t.Txn.Commit()
}

func (f *faultKV) after() {
	if f.afterFault != nil {
		f.afterFault()
	}
}

// faultStore is a store whose transactions meet plan, under a fresh prefix
// with tenant acme, and a plain store on the same data to check with.
func faultStore(t *testing.T, opts etcd.Options, plan ...fault) (*etcd.Store, *etcd.Store, *faultKV) {
	t.Helper()
	prefix := newPrefix()
	plain := etcd.New(cli.KV, prefix, etcd.Options{})
	if err := plain.EnsureTenants(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	kv := &faultKV{KV: cli.KV, plan: plan}
	return etcd.New(kv, prefix, opts), plain, kv
}

func list(t *testing.T, s store.Store, owner string) []store.Todo {
	t.Helper()
	page, err := s.List(context.Background(), "acme", store.ListOptions{Owner: owner, Limit: store.MaxLimit})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return page.Todos
}

// A create whose commit happened but whose answer was lost is retried with
// the same id and recognised: success, and the todo is there once, in both
// indexes.
func TestCreateAmbiguousCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		plan []fault
	}{
		{"committed, answer lost", []fault{failAfter}},
		{"never sent", []fault{failBefore}},
		{"lost twice", []fault{failAfter, failBefore}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, plain, kv := faultStore(t, etcd.Options{}, tc.plan...)
			todo, err := s.Create(context.Background(), "acme", "alice", "buy milk")
			if err != nil {
				t.Fatalf("Create: %v; the write committed or could be retried, so it must succeed", err)
			}
			for _, owner := range []string{"", "alice"} {
				got := list(t, plain, owner)
				if len(got) != 1 || got[0].ID != todo.ID {
					t.Errorf("list (owner %q) got %v, want exactly the created todo %s", owner, got, todo.ID)
				}
			}
			if kv.commits != len(tc.plan)+1 {
				t.Errorf("got %d commits, want %d (one per fault, then the one that answers)", kv.commits, len(tc.plan)+1)
			}
		})
	}
}

// The caller giving up right after an ambiguous commit does not stop its
// resolution: the create reports the todo it made.
func TestCreateResolvedAfterCallerGaveUp(t *testing.T) {
	s, plain, kv := faultStore(t, etcd.Options{}, failAfterStop)
	ctx, cancel := context.WithCancel(context.Background())
	kv.stop = cancel
	todo, err := s.Create(ctx, "acme", "alice", "buy milk")
	if err != nil {
		t.Fatalf("Create: %v; it committed, so it must be reported as done", err)
	}
	if got := list(t, plain, ""); len(got) != 1 || got[0].ID != todo.ID {
		t.Errorf("got %v, want exactly %s", got, todo.ID)
	}
}

// A cluster that never answers makes writes fail, within the write timeout,
// with ErrUnavailable, which the gateway answers as retryable.
func TestWritesUnavailable(t *testing.T) {
	plan := make([]fault, 1000)
	for i := range plan {
		plan[i] = failBefore
	}
	s, plain, _ := faultStore(t, etcd.Options{WriteTimeout: 300 * time.Millisecond}, plan...)
	start := time.Now()
	_, err := s.Create(context.Background(), "acme", "alice", "x")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Create got %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Create took %v with a write timeout of 300ms", took)
	}
	if got := list(t, plain, ""); len(got) != 0 {
		t.Errorf("got %v, want nothing written", got)
	}
}

func TestDeleteAmbiguousCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		plan []fault // Delete reads (one txn), then deletes (another)
	}{
		{"delete committed, answer lost", []fault{pass, failAfter}},
		{"delete never sent", []fault{pass, failBefore}},
		{"read lost", []fault{failBefore}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, plain, _ := faultStore(t, etcd.Options{}, tc.plan...)
			todo, err := plain.Create(context.Background(), "acme", "alice", "x")
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Delete(context.Background(), "acme", todo.ID, func(store.Todo) bool { return true })
			if err != nil || got.ID != todo.ID {
				t.Fatalf("Delete got %+v, %v; want the todo deleted", got, err)
			}
			if left := list(t, plain, ""); len(left) != 0 {
				t.Errorf("got %v left, want nothing", left)
			}
			if left := list(t, plain, "alice"); len(left) != 0 {
				t.Errorf("owner index still lists %v", left)
			}
		})
	}
}

// A read the cluster could not answer (a leader election, a reset
// connection) is tried again within the request timeout: the reader gets
// its answer, not an error.
func TestReadsRetried(t *testing.T) {
	var logs strings.Builder
	s, plain, kv := faultStore(t, etcd.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, failBefore, failBefore)
	todo, err := plain.Create(context.Background(), "acme", "alice", "x")
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.List(context.Background(), "acme", store.ListOptions{})
	if err != nil || len(page.Todos) != 1 || page.Todos[0].ID != todo.ID {
		t.Fatalf("List after two lost answers: got %+v, %v; want the todo", page, err)
	}
	if kv.commits != 3 {
		t.Errorf("got %d reads, want 3 (two lost, one answered)", kv.commits)
	}
	// The stall is logged once, and its end.
	if got := logs.String(); strings.Count(got, "etcd did not answer; retrying") != 1 || !strings.Contains(got, "etcd answered after retries") {
		t.Errorf("got log %q, want one warning and the recovery", got)
	}
	// Within the request timeout only: a cluster that never answers is an
	// error, and a retryable one.
	plan := make([]fault, 1000)
	for i := range plan {
		plan[i] = failBefore
	}
	slow, _, _ := faultStore(t, etcd.Options{RequestTimeout: 200 * time.Millisecond}, plan...)
	if _, err := slow.Get(context.Background(), "acme", todo.ID); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Get with no answer: got %v, want ErrUnavailable", err)
	}
}

// A create whose answer was lost, and whose todo another instance listed
// and deleted before the retry: the retry finds the tombstone and reports
// the create done; the todo stays deleted.
func TestCreateAmbiguousThenDeleted(t *testing.T) {
	s, plain, kv := faultStore(t, etcd.Options{}, failAfter)
	ctx := context.Background()
	var deletedID string
	kv.afterFault = func() {
		for _, todo := range list(t, plain, "alice") {
			if _, err := plain.Delete(ctx, "acme", todo.ID, func(store.Todo) bool { return true }); err != nil {
				t.Errorf("the other instance's delete: %v", err)
			}
			deletedID = todo.ID
		}
	}
	todo, err := s.Create(ctx, "acme", "alice", "buy milk")
	if err != nil || todo.ID != deletedID {
		t.Fatalf("Create: %+v, %v; want the todo it made (%s), which was then deleted", todo, err, deletedID)
	}
	for _, owner := range []string{"", "alice"} {
		if got := list(t, plain, owner); len(got) != 0 {
			t.Errorf("list (owner %q): %v; the deleted todo came back", owner, got)
		}
	}
}

// Two deletes of one todo: one's attempt fails ambiguously (it never
// reached etcd) and the other deletes the todo meanwhile. Only the other
// succeeds; the first finds another call's tombstone: not found.
func TestDeleteAmbiguousRacingAnother(t *testing.T) {
	s, plain, kv := faultStore(t, etcd.Options{}, pass, failBefore)
	ctx := context.Background()
	todo, err := plain.Create(ctx, "acme", "alice", "x")
	if err != nil {
		t.Fatal(err)
	}
	var otherErr error
	kv.afterFault = func() {
		_, otherErr = plain.Delete(ctx, "acme", todo.ID, func(store.Todo) bool { return true })
	}
	_, err = s.Delete(ctx, "acme", todo.ID, func(store.Todo) bool { return true })
	if otherErr != nil {
		t.Fatalf("the other delete: %v", otherErr)
	}
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the delete whose attempt failed: %v; want ErrNotFound (the other call deleted the todo)", err)
	}
}

// A tombstone expires on its own: it is put on a lease that outlives every
// retry that must find it (a minute and twice the write timeout), and one
// lease serves many deletes.
func TestTombstonesExpire(t *testing.T) {
	prefix := newPrefix()
	s := etcd.New(cli.KV, prefix, etcd.Options{Lease: cli.Lease})
	ctx := context.Background()
	if err := s.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	leases := map[int64]bool{}
	for range 3 {
		todo, err := s.Create(ctx, "acme", "alice", "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Delete(ctx, "acme", todo.ID, func(store.Todo) bool { return true }); err != nil {
			t.Fatal(err)
		}
		resp, err := cli.Get(ctx, prefix+"d/acme/"+todo.ID)
		if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
			t.Fatalf("tombstone of %s: %v, %v; want one on a lease", todo.ID, resp, err)
		}
		leases[resp.Kvs[0].Lease] = true
		ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
		if err != nil || ttl.GrantedTTL != int64((time.Minute+2*etcd.DefaultWriteTimeout)/time.Second) || ttl.TTL < 60 {
			t.Errorf("tombstone lease: %+v, %v; want granted for 90s, at least a minute left", ttl, err)
		}
	}
	if len(leases) != 1 {
		t.Errorf("3 deletes used %d leases, want 1", len(leases))
	}
}
