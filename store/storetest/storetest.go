// Package storetest is the conformance suite every store.Store backend runs,
// after Dex's storage/conformance: a backend's test only says how to open it.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Factory{Open: ..., Reopen: ...})
//	}
//
// The runner and shared helpers are here; the cases are in records.go
// (create, get, bad input, tenants), list.go (pages and cursors) and
// lifecycle.go (concurrency, delete, cancellation, close and reopen) and
// import.go (Tenants and Import, what "store copy" moves data with).
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

// Factory opens the backend under test.
type Factory struct {
	// Open returns a store on fresh, empty storage. Subtests run in parallel,
	// so Open is called concurrently and each call needs its own storage.
	// The suite closes the store.
	Open func(t testing.TB) store.Store
	// Reopen returns a new store on the storage of old, which the suite has
	// closed: what a restart sees. Nil skips the durability test.
	Reopen func(t testing.TB, old store.Store) store.Store
}

// Tenants every subtest's store has; "nope" is never ensured.
const (
	acme    = "acme"
	globex  = "globex"
	unknown = "nope"
)

// Run runs the suite against the backend f opens.
func Run(t *testing.T, f Factory) {
	t.Helper()
	if f.Open == nil {
		t.Fatal("storetest: Factory.Open is nil")
	}
	tests := []struct {
		name string
		run  func(t *testing.T, f Factory)
	}{
		{"CreateGet", testCreateGet},
		{"IDOrder", testIDOrder},
		{"BadInput", testBadInput},
		{"UnknownTenant", testUnknownTenant},
		{"EnsureTenantKeepsData", testEnsureTenantKeepsData},
		{"EnsureManyTenants", testEnsureManyTenants},
		{"TenantIsolation", testTenantIsolation},
		{"OwnerIsolation", testOwnerIsolation},
		{"ListPages", testListPages},
		{"ListLimit", testListLimit},
		{"ListBadCursor", testListBadCursor},
		{"ListCursorOfDeletedTodo", testListCursorOfDeletedTodo},
		{"PaginationWhileInserting", testPaginationWhileInserting},
		{"ConcurrentCreate", testConcurrentCreate},
		{"Delete", testDelete},
		{"ConcurrentDeleteOnce", testConcurrentDeleteOnce},
		{"CanceledContext", testCanceledContext},
		{"Reopen", testReopen},
		{"Closed", testClosed},
		{"CloseWhileBusy", testCloseWhileBusy},
		{"Tenants", testTenants},
		{"Import", testImport},
		{"ImportConflict", testImportConflict},
		{"ImportBadInput", testImportBadInput},
		{"ImportMany", testImportMany},
		{"ConcurrentImport", testConcurrentImport},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, f)
		})
	}
}

// open returns a store with tenants acme and globex, closed at the end.
func open(t *testing.T, f Factory) store.Store {
	t.Helper()
	s := f.Open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	for _, tenant := range []string{acme, globex} {
		if err := s.EnsureTenants(context.Background(), tenant); err != nil {
			t.Fatalf("EnsureTenants(%q): %v", tenant, err)
		}
	}
	return s
}

func mustCreate(t *testing.T, s store.Store, tenant, owner, content string) store.Todo {
	t.Helper()
	todo, err := s.Create(context.Background(), tenant, owner, content)
	if err != nil {
		t.Fatalf("Create(%q, %q, %q): %v", tenant, owner, content, err)
	}
	return todo
}

// createN creates n todos of owner concurrently (the suite would otherwise
// spend its time waiting for one group commit after another) and returns
// them in id order.
func createN(t *testing.T, s store.Store, tenant, owner string, n int) []store.Todo {
	t.Helper()
	todos := make([]store.Todo, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			todos[i], errs[i] = s.Create(context.Background(), tenant, owner, fmt.Sprintf("todo %d of %s", i, owner))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Create: %v", err)
	}
	slices.SortFunc(todos, func(a, b store.Todo) int { return strings.Compare(a.ID, b.ID) })
	return todos
}

// listAll follows cursors to the end with the given page size.
func listAll(t *testing.T, s store.Store, tenant, owner string, limit int) []store.Todo {
	t.Helper()
	var all []store.Todo
	opts := store.ListOptions{Owner: owner, Limit: limit}
	for range 10000 {
		page, err := s.List(context.Background(), tenant, opts)
		if err != nil {
			t.Fatalf("List(%q, %+v): %v", tenant, opts, err)
		}
		all = append(all, page.Todos...)
		if page.NextCursor == "" {
			return all
		}
		opts.Cursor = page.NextCursor
	}
	t.Fatalf("List(%q, owner %q): still a next page after 10000 pages", tenant, owner)
	return nil
}

func equalTodo(a, b store.Todo) bool {
	return a.ID == b.ID && a.Content == b.Content && a.OwnerID == b.OwnerID && a.CreatedAt.Equal(b.CreatedAt)
}

// checkTodos fails unless got holds exactly want, in that order.
func checkTodos(t *testing.T, what string, got, want []store.Todo) {
	t.Helper()
	if !slices.EqualFunc(got, want, equalTodo) {
		t.Errorf("%s: got %d todos %v, want %d %v", what, len(got), ids(got), len(want), ids(want))
	}
}

func ids(todos []store.Todo) []string {
	out := make([]string, len(todos))
	for i, todo := range todos {
		out[i] = todo.ID
	}
	return out
}
