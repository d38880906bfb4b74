package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/todo-gateway/todo-gateway/store"
)

func testConcurrentCreate(t *testing.T, f Factory) {
	s := open(t, f)
	const writers, each = 64, 4
	created := make(chan store.Todo, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				owner := fmt.Sprint("owner-", w%8)
				todo, err := s.Create(context.Background(), acme, owner, fmt.Sprintf("writer %d todo %d", w, i))
				if err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				created <- todo
			}
		})
	}
	wg.Wait()
	close(created)

	var want []store.Todo
	byOwner := map[string][]store.Todo{}
	for todo := range created {
		want = append(want, todo)
	}
	if len(want) != writers*each {
		t.Fatalf("acknowledged creates: got %d, want %d", len(want), writers*each)
	}
	slices.SortFunc(want, func(a, b store.Todo) int { return strings.Compare(a.ID, b.ID) })
	for _, todo := range want {
		byOwner[todo.OwnerID] = append(byOwner[todo.OwnerID], todo)
	}
	checkTodos(t, "List", listAll(t, s, acme, "", store.MaxLimit), want)
	for owner, todos := range byOwner {
		checkTodos(t, fmt.Sprintf("List(owner %q)", owner), listAll(t, s, acme, owner, 0), todos)
	}
}

func testDelete(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	todo := mustCreate(t, s, acme, "alice", "buy milk")
	other := mustCreate(t, s, acme, "alice", "buy bread")

	var offered []store.Todo
	got, err := s.Delete(ctx, acme, todo.ID, func(td store.Todo) bool {
		offered = append(offered, td)
		return td.OwnerID == "bob"
	})
	if !errors.Is(err, store.ErrDenied) {
		t.Errorf("Delete refused: got %+v, %v; want ErrDenied", got, err)
	}
	if len(offered) == 0 || !equalTodo(offered[len(offered)-1], todo) {
		t.Errorf("condition: got offered %+v, want the stored %+v", offered, todo)
	}
	if kept, err := s.Get(ctx, acme, todo.ID); err != nil || !equalTodo(kept, todo) {
		t.Errorf("Get after a refused delete: got %+v, %v; want the todo kept", kept, err)
	}
	checkTodos(t, "List(alice) after a refused delete", listAll(t, s, acme, "alice", 0), []store.Todo{todo, other})

	got, err = s.Delete(ctx, acme, todo.ID, func(td store.Todo) bool { return td.OwnerID == "alice" })
	if err != nil || !equalTodo(got, todo) {
		t.Errorf("Delete allowed: got %+v, %v; want the deleted %+v", got, err, todo)
	}
	if got, err := s.Get(ctx, acme, todo.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after delete: got %+v, %v; want ErrNotFound", got, err)
	}
	checkTodos(t, "List after delete", listAll(t, s, acme, "", 0), []store.Todo{other})
	checkTodos(t, "List(alice) after delete", listAll(t, s, acme, "alice", 0), []store.Todo{other})

	always := func(store.Todo) bool { return true }
	for _, id := range []string{todo.ID, store.NewID(), "no-such-id"} {
		if got, err := s.Delete(ctx, acme, id, always); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delete(%q): got %+v, %v; want ErrNotFound", id, got, err)
		}
	}
	checkTodos(t, "List at the end", listAll(t, s, acme, "", 0), []store.Todo{other})
}

func testConcurrentDeleteOnce(t *testing.T, f Factory) {
	s := open(t, f)
	todo := mustCreate(t, s, acme, "alice", "buy milk")
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Delete(context.Background(), acme, todo.ID, func(store.Todo) bool { return true })
		})
	}
	wg.Wait()
	var ok, notFound int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrNotFound):
			notFound++
		default:
			t.Errorf("Delete: got %v, want nil or ErrNotFound", err)
		}
	}
	if ok != 1 || notFound != n-1 {
		t.Errorf("concurrent deletes of one todo: got %d successes and %d ErrNotFound, want 1 and %d", ok, notFound, n-1)
	}
}

func testCanceledContext(t *testing.T, f Factory) {
	s := open(t, f)
	todo := mustCreate(t, s, acme, "alice", "buy milk")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	always := func(store.Todo) bool { return true }
	calls := []struct {
		name string
		call func() error
	}{
		{"EnsureTenant", func() error { return s.EnsureTenants(ctx, unknown) }},
		{"Create", func() error { _, err := s.Create(ctx, acme, "alice", "buy bread"); return err }},
		{"Get", func() error { _, err := s.Get(ctx, acme, todo.ID); return err }},
		{"List", func() error { _, err := s.List(ctx, acme, store.ListOptions{}); return err }},
		{"Delete", func() error { _, err := s.Delete(ctx, acme, todo.ID, always); return err }},
		{"Tenants", func() error { _, err := s.Tenants(ctx); return err }},
		{"Import", func() error { _, err := s.Import(ctx, acme, []store.Todo{Importable(t, "alice", "x")}); return err }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
		})
	}
	checkTodos(t, "List after canceled calls", listAll(t, s, acme, "", 0), []store.Todo{todo})
	if _, err := s.List(context.Background(), unknown, store.ListOptions{}); !errors.Is(err, store.ErrUnknownTenant) {
		t.Errorf("List of the tenant a canceled EnsureTenant named: got %v, want ErrUnknownTenant", err)
	}
}

func testReopen(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("backend has no Reopen")
	}
	s := open(t, f)
	ctx := context.Background()
	a1 := mustCreate(t, s, acme, "alice", "one")
	b1 := mustCreate(t, s, acme, "bob", "two")
	gone := mustCreate(t, s, acme, "alice", "three")
	g1 := mustCreate(t, s, globex, "alice", "four")
	if _, err := s.Delete(ctx, acme, gone.ID, func(store.Todo) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	r := f.Reopen(t, s)
	t.Cleanup(func() { r.Close() })
	checkTodos(t, "List(acme) after reopen", listAll(t, r, acme, "", 0), []store.Todo{a1, b1})
	checkTodos(t, "List(acme, alice) after reopen", listAll(t, r, acme, "alice", 0), []store.Todo{a1})
	checkTodos(t, "List(globex) after reopen", listAll(t, r, globex, "", 0), []store.Todo{g1})
	if got, err := r.Get(ctx, acme, gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(deleted) after reopen: got %+v, %v; want ErrNotFound", got, err)
	}
	if got, err := r.Get(ctx, acme, b1.ID); err != nil || !equalTodo(got, b1) {
		t.Errorf("Get after reopen: got %+v, %v; want %+v", got, err, b1)
	}
	a2 := mustCreate(t, r, acme, "alice", "after reopen")
	checkTodos(t, "List(acme, alice) after reopen and create", listAll(t, r, acme, "alice", 0), []store.Todo{a1, a2})
}

func testClosed(t *testing.T, f Factory) {
	s := open(t, f)
	todo := mustCreate(t, s, acme, "alice", "buy milk")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	always := func(store.Todo) bool { return true }
	calls := []struct {
		name string
		call func() error
	}{
		{"EnsureTenant", func() error { return s.EnsureTenants(ctx, acme) }},
		{"Create", func() error { _, err := s.Create(ctx, acme, "alice", "buy bread"); return err }},
		{"Get", func() error { _, err := s.Get(ctx, acme, todo.ID); return err }},
		{"List", func() error { _, err := s.List(ctx, acme, store.ListOptions{}); return err }},
		{"Delete", func() error { _, err := s.Delete(ctx, acme, todo.ID, always); return err }},
		{"Tenants", func() error { _, err := s.Tenants(ctx); return err }},
		{"Import", func() error { _, err := s.Import(ctx, acme, []store.Todo{Importable(t, "alice", "x")}); return err }},
		{"Close", s.Close},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, store.ErrClosed) {
				t.Errorf("got %v, want ErrClosed", err)
			}
		})
	}
}

// testCloseWhileBusy closes the store under concurrent writes: every call
// either succeeds or says ErrClosed, and what succeeded is there after reopen.
func testCloseWhileBusy(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	var (
		mu    sync.Mutex
		acked []store.Todo
		wg    sync.WaitGroup
	)
	firstAck := make(chan struct{})
	var once sync.Once
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				todo, err := s.Create(ctx, acme, "alice", fmt.Sprintf("writer %d todo %d", w, i))
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Create during Close: got %v, want nil or ErrClosed", err)
					return
				}
				mu.Lock()
				acked = append(acked, todo)
				mu.Unlock()
				once.Do(func() { close(firstAck) })
			}
		})
	}
	<-firstAck
	if err := s.Close(); err != nil {
		t.Errorf("Close under load: %v", err)
	}
	wg.Wait()

	if f.Reopen == nil {
		return
	}
	r := f.Reopen(t, s)
	t.Cleanup(func() { r.Close() })
	stored := map[string]bool{}
	for _, todo := range listAll(t, r, acme, "", store.MaxLimit) {
		stored[todo.ID] = true
	}
	var lost int
	for _, todo := range acked {
		if !stored[todo.ID] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("after Close under load and reopen: got %d of %d acknowledged creates missing, want none", lost, len(acked))
	}
}
