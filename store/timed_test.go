package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/store/storetest"
)

// The timed wrapper is a full store (it passes the conformance suite) and
// reports every operation once, with its error.
func TestTimed(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t testing.TB) store.Store {
			s, err := bolt.Open(filepath.Join(t.TempDir(), "todos.db"), bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return store.Timed(s, func(context.Context, string, time.Duration, error) {}, nil)
		},
	})

	s, err := bolt.Open(filepath.Join(t.TempDir(), "todos.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ops []string
	var errs []error
	var spans []string
	ts := store.Timed(s, func(_ context.Context, op string, d time.Duration, err error) {
		ops = append(ops, op)
		errs = append(errs, err)
	}, func(ctx context.Context, op string) (context.Context, func(error)) {
		return ctx, func(err error) { spans = append(spans, op) }
	})
	ctx := context.Background()
	ts.EnsureTenants(ctx, "acme")
	todo, _ := ts.Create(ctx, "acme", "alice", "x")
	ts.Get(ctx, "acme", todo.ID)
	ts.List(ctx, "acme", store.ListOptions{})
	ts.Delete(ctx, "acme", "nope", func(store.Todo) bool { return true })
	want := []string{"ensure_tenants", "create", "get", "list", "delete"}
	if len(ops) != len(want) {
		t.Fatalf("observed %v, want %v", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Errorf("op %d: got %q, want %q", i, ops[i], want[i])
		}
	}
	if len(spans) != len(want) {
		t.Errorf("spans %v, want one per operation: %v", spans, want)
	}
	if !errors.Is(errs[4], store.ErrNotFound) {
		t.Errorf("delete of an unknown id observed %v, want ErrNotFound", errs[4])
	}
}
