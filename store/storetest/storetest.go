// Package storetest is the conformance suite every store.Store backend runs,
// after Dex's storage/conformance: a backend's test only says how to open it.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Factory{Open: ..., Reopen: ...})
//	}
package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/store"
)

// Factory opens the backend under test.
type Factory struct {
	// Open returns a store on fresh, empty storage. Subtests run in parallel,
	// so Open is called concurrently and each call needs its own storage.
	// The suite closes the store.
	Open func(t *testing.T) store.Store
	// Reopen returns a new store on the storage of old, which the suite has
	// closed: what a restart sees. Nil skips the durability test.
	Reopen func(t *testing.T, old store.Store) store.Store
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

func testCreateGet(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	tests := []struct {
		name, owner, content string
	}{
		{"ascii", "alice", "buy milk"},
		{"unicode", "bøb", "Füße waschen 🦶"},
		{"spaces kept", "alice", "  indented\n"},
		{"largest", "alice", strings.Repeat("x", store.MaxContentBytes)},
		{"largest multibyte", "alice", strings.Repeat("é", store.MaxContentBytes/2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			created, err := s.Create(ctx, acme, tc.owner, tc.content)
			if err != nil {
				t.Fatalf("Create: got error %v, want nil", err)
			}
			if created.Content != tc.content || created.OwnerID != tc.owner {
				t.Errorf("Create: got owner %q content %.40q, want %q %.40q", created.OwnerID, created.Content, tc.owner, tc.content)
			}
			if len(created.ID) != store.IDLen {
				t.Errorf("Create: got id %q, want %d characters", created.ID, store.IDLen)
			}
			if created.CreatedAt.Before(before.Truncate(time.Millisecond)) || created.CreatedAt.After(time.Now()) {
				t.Errorf("Create: got CreatedAt %v, want between %v and now", created.CreatedAt, before)
			}
			got, err := s.Get(ctx, acme, created.ID)
			if err != nil {
				t.Fatalf("Get(%s): %v", created.ID, err)
			}
			if !equalTodo(got, created) {
				t.Errorf("Get: got %+v, want %+v", got, created)
			}
		})
	}
	if _, err := s.Get(ctx, acme, store.NewID()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(unused id): got %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, acme, "no-such-id"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(malformed id): got %v, want ErrNotFound", err)
	}
}

// testIDOrder checks that listing order is creation order and that CreatedAt
// is the id's time, both of which clients may rely on.
func testIDOrder(t *testing.T, f Factory) {
	s := open(t, f)
	var created []store.Todo
	for i := range 5 {
		created = append(created, mustCreate(t, s, acme, "alice", fmt.Sprint("todo ", i)))
	}
	for i, todo := range created {
		at, err := store.IDTime(todo.ID)
		if err != nil || !at.Equal(todo.CreatedAt) {
			t.Errorf("todo %d: got IDTime %v (%v), want CreatedAt %v", i, at, err, todo.CreatedAt)
		}
		if i > 0 && todo.ID <= created[i-1].ID {
			t.Errorf("todo %d: got id %s, want after the previous %s", i, todo.ID, created[i-1].ID)
		}
	}
	checkTodos(t, "List", listAll(t, s, acme, "", 0), created)
}

func testBadInput(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	creates := []struct {
		name, tenant, owner, content string
	}{
		{"empty content", acme, "alice", ""},
		{"blank content", acme, "alice", " \t\r\n"},
		{"unicode blank content", acme, "alice", "\u00a0\u2003\u3000"},
		{"content one byte too long", acme, "alice", strings.Repeat("x", store.MaxContentBytes+1)},
		{"content far too long", acme, "alice", strings.Repeat("x", 1<<20)},
		{"invalid UTF-8", acme, "alice", "caf\xc3"},
		{"invalid UTF-8 among text", acme, "alice", "ok \xff\xfe ok"},
		{"empty owner", acme, "", "buy milk"},
		{"owner with NUL", acme, "ali\x00ce", "buy milk"},
		{"owner invalid UTF-8", acme, "ali\xffce", "buy milk"},
		{"owner too long", acme, strings.Repeat("a", store.MaxKeyBytes+1), "buy milk"},
		{"empty tenant", "", "alice", "buy milk"},
	}
	for _, tc := range creates {
		t.Run("Create/"+tc.name, func(t *testing.T) {
			todo, err := s.Create(ctx, tc.tenant, tc.owner, tc.content)
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Create: got %+v, %v; want ErrInvalid", todo, err)
			}
		})
	}
	for _, tenant := range []string{acme, globex} {
		if got := listAll(t, s, tenant, "", store.MaxLimit); len(got) != 0 {
			t.Errorf("List(%s) after refused creates: got %v, want nothing", tenant, ids(got))
		}
	}

	kept := mustCreate(t, s, acme, "alice", "keep me")
	allow := func(store.Todo) bool { return true }
	calls := []struct {
		name string
		call func() error
	}{
		{"Get empty tenant", func() error { _, err := s.Get(ctx, "", kept.ID); return err }},
		{"Get empty id", func() error { _, err := s.Get(ctx, acme, ""); return err }},
		{"List empty tenant", func() error { _, err := s.List(ctx, "", store.ListOptions{}); return err }},
		{"List owner with NUL", func() error { _, err := s.List(ctx, acme, store.ListOptions{Owner: "alice\x00"}); return err }},
		{"Delete empty tenant", func() error { _, err := s.Delete(ctx, "", kept.ID, allow); return err }},
		{"Delete empty id", func() error { _, err := s.Delete(ctx, acme, "", allow); return err }},
		{"Delete nil condition", func() error { _, err := s.Delete(ctx, acme, kept.ID, nil); return err }},
		{"EnsureTenant empty", func() error { return s.EnsureTenants(ctx, "") }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
	checkTodos(t, "List after refused calls", listAll(t, s, acme, "", 0), []store.Todo{kept})
}

func testUnknownTenant(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	existing := mustCreate(t, s, acme, "alice", "buy milk")
	calls := []struct {
		name string
		call func() error
	}{
		{"Create", func() error { _, err := s.Create(ctx, unknown, "alice", "buy milk"); return err }},
		{"Get", func() error { _, err := s.Get(ctx, unknown, existing.ID); return err }},
		{"List", func() error { _, err := s.List(ctx, unknown, store.ListOptions{}); return err }},
		{"List owner", func() error { _, err := s.List(ctx, unknown, store.ListOptions{Owner: "alice"}); return err }},
		{"Delete", func() error {
			_, err := s.Delete(ctx, unknown, existing.ID, func(store.Todo) bool { return true })
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, store.ErrUnknownTenant) {
				t.Errorf("got %v, want ErrUnknownTenant", err)
			}
		})
	}
	if err := s.EnsureTenants(ctx, unknown); err != nil {
		t.Fatalf("EnsureTenant: %v", err)
	}
	if got := listAll(t, s, unknown, "", 0); len(got) != 0 {
		t.Errorf("List of the tenant once ensured: got %v, want nothing written before", ids(got))
	}
	checkTodos(t, "List(acme)", listAll(t, s, acme, "", 0), []store.Todo{existing})
}

func testEnsureTenantKeepsData(t *testing.T, f Factory) {
	s := open(t, f)
	todo := mustCreate(t, s, acme, "alice", "buy milk")
	for range 2 {
		if err := s.EnsureTenants(context.Background(), acme); err != nil {
			t.Fatalf("EnsureTenant again: %v", err)
		}
	}
	checkTodos(t, "List", listAll(t, s, acme, "", 0), []store.Todo{todo})
	checkTodos(t, "List owner", listAll(t, s, acme, "alice", 0), []store.Todo{todo})
}

// Several tenants are ensured in one call; one bad id refuses the whole call
// and creates none of them.
func testEnsureManyTenants(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	if err := s.EnsureTenants(ctx, "bulk-ok", "bulk-fine", "bulk-", ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("EnsureTenants with an empty id: %v, want ErrInvalid", err)
	}
	if _, err := s.Create(ctx, "bulk-ok", "alice", "x"); !errors.Is(err, store.ErrUnknownTenant) {
		t.Errorf("after a refused EnsureTenants, Create: %v, want ErrUnknownTenant", err)
	}
	if err := s.EnsureTenants(ctx, "bulk-ok", "bulk-fine"); err != nil {
		t.Fatalf("EnsureTenants: %v", err)
	}
	for _, tenant := range []string{"bulk-ok", "bulk-fine"} {
		mustCreate(t, s, tenant, "alice", "x")
	}
	if err := s.EnsureTenants(ctx); err != nil {
		t.Errorf("EnsureTenants with no tenant: %v", err)
	}
}

func testTenantIsolation(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	a := mustCreate(t, s, acme, "alice", "acme's")
	g := mustCreate(t, s, globex, "alice", "globex's")

	if got, err := s.Get(ctx, globex, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(globex, acme's id): got %+v, %v; want ErrNotFound", got, err)
	}
	allow := func(store.Todo) bool { return true }
	if got, err := s.Delete(ctx, globex, a.ID, allow); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete(globex, acme's id): got %+v, %v; want ErrNotFound", got, err)
	}
	checkTodos(t, "List(acme)", listAll(t, s, acme, "", 0), []store.Todo{a})
	checkTodos(t, "List(acme, alice)", listAll(t, s, acme, "alice", 0), []store.Todo{a})
	checkTodos(t, "List(globex)", listAll(t, s, globex, "", 0), []store.Todo{g})
	checkTodos(t, "List(globex, alice)", listAll(t, s, globex, "alice", 0), []store.Todo{g})
}

func testOwnerIsolation(t *testing.T, f Factory) {
	s := open(t, f)
	// "al" is a prefix of "alice" and "alice bob" extends it: an index keyed
	// on a bare prefix would mix them up.
	owners := []string{"alice", "bob", "al", "alice bob"}
	byOwner := map[string][]store.Todo{}
	var all []store.Todo
	for i := range 3 {
		for _, owner := range owners {
			todo := mustCreate(t, s, acme, owner, fmt.Sprintf("%s %d", owner, i))
			byOwner[owner] = append(byOwner[owner], todo)
			all = append(all, todo)
		}
	}
	for _, owner := range owners {
		for _, limit := range []int{0, 1, 2} {
			checkTodos(t, fmt.Sprintf("List(owner %q, limit %d)", owner, limit), listAll(t, s, acme, owner, limit), byOwner[owner])
		}
	}
	checkTodos(t, "List(all)", listAll(t, s, acme, "", 5), all)
	if got := listAll(t, s, acme, "carol", 0); len(got) != 0 {
		t.Errorf("List(owner carol): got %v, want nothing", ids(got))
	}
	if got := listAll(t, s, acme, "a", 0); len(got) != 0 {
		t.Errorf("List(owner a): got %v, want nothing", ids(got))
	}
}

func testListPages(t *testing.T, f Factory) {
	s := open(t, f)
	todos := createN(t, s, acme, "alice", 5)
	tests := []struct {
		limit int
		sizes []int
	}{
		{1, []int{1, 1, 1, 1, 1}},
		{2, []int{2, 2, 1}},
		{4, []int{4, 1}},
		{5, []int{5}}, // exactly full: no cursor to an empty page
		{6, []int{5}},
	}
	for _, owner := range []string{"", "alice"} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("owner=%q/limit=%d", owner, tc.limit), func(t *testing.T) {
				opts := store.ListOptions{Owner: owner, Limit: tc.limit}
				var sizes []int
				var got []store.Todo
				for range 10 {
					page, err := s.List(context.Background(), acme, opts)
					if err != nil {
						t.Fatalf("List(%+v): %v", opts, err)
					}
					if page.Todos == nil {
						t.Errorf("List(%+v): got nil Todos, want a non-nil slice", opts)
					}
					sizes = append(sizes, len(page.Todos))
					got = append(got, page.Todos...)
					if page.NextCursor == "" {
						break
					}
					opts.Cursor = page.NextCursor
				}
				if !slices.Equal(sizes, tc.sizes) {
					t.Errorf("page sizes: got %v, want %v", sizes, tc.sizes)
				}
				checkTodos(t, "pages", got, todos)
			})
		}
	}
	page, err := s.List(context.Background(), globex, store.ListOptions{})
	if err != nil || page.Todos == nil || len(page.Todos) != 0 || page.NextCursor != "" {
		t.Errorf("List(empty tenant): got %+v, %v; want an empty non-nil page, no cursor", page, err)
	}
}

func testListLimit(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	todos := createN(t, s, acme, "alice", store.DefaultLimit+1)
	tests := []struct {
		limit    int
		wantLen  int
		wantNext bool
		wantErr  error
	}{
		{0, store.DefaultLimit, true, nil},
		{1, 1, true, nil},
		{store.MaxLimit, store.DefaultLimit + 1, false, nil},
		{-1, 0, false, store.ErrInvalid},
		{store.MaxLimit + 1, 0, false, store.ErrInvalid},
	}
	for _, owner := range []string{"", "alice"} {
		for _, tc := range tests {
			opts := store.ListOptions{Owner: owner, Limit: tc.limit}
			page, err := s.List(ctx, acme, opts)
			if !errors.Is(err, tc.wantErr) || len(page.Todos) != tc.wantLen || (page.NextCursor != "") != tc.wantNext {
				t.Errorf("List(%+v): got %d todos, next cursor %q, error %v; want %d, cursor %v, error %v",
					opts, len(page.Todos), page.NextCursor, err, tc.wantLen, tc.wantNext, tc.wantErr)
			}
		}
	}
	first, err := s.List(ctx, acme, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := s.List(ctx, acme, store.ListOptions{Cursor: first.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	checkTodos(t, "default-size pages", append(first.Todos, rest.Todos...), todos)
}

func testListBadCursor(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	todos := createN(t, s, acme, "alice", 3)
	page, err := s.List(ctx, acme, store.ListOptions{Limit: 1})
	if err != nil || page.NextCursor == "" {
		t.Fatalf("List: got %+v, %v; want a next cursor", page, err)
	}
	good := page.NextCursor
	tests := []struct {
		name, cursor string
	}{
		{"not base64", "!!!"},
		{"padded base64 of the good one", good + "="},
		{"truncated", good[:len(good)-3]},
		{"extended", good + "AA"},
		{"version only", base64.RawURLEncoding.EncodeToString([]byte{1})},
		{"version zero", base64.RawURLEncoding.EncodeToString(append([]byte{0}, todos[0].ID...))},
		{"unknown version", base64.RawURLEncoding.EncodeToString(append([]byte{2}, todos[0].ID...))},
		{"an id, not a cursor", todos[0].ID},
		{"cursor of a non-id", store.EncodeCursor("not-an-id")},
		{"cursor of an upper-case id", store.EncodeCursor(strings.ToUpper(todos[0].ID))},
	}
	for _, owner := range []string{"", "alice"} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("owner=%q/%s", owner, tc.name), func(t *testing.T) {
				page, err := s.List(ctx, acme, store.ListOptions{Owner: owner, Cursor: tc.cursor})
				if !errors.Is(err, store.ErrInvalid) {
					t.Errorf("List(cursor %q): got %d todos, %v; want ErrInvalid", tc.cursor, len(page.Todos), err)
				}
			})
		}
	}
	// A well-formed cursor of an id that never existed is a position, not an error.
	page, err = s.List(ctx, acme, store.ListOptions{Cursor: store.EncodeCursor(todos[0].ID[:store.IDLen-1] + "0")})
	if err != nil {
		t.Errorf("List(cursor of an unused id): got %v, want nil", err)
	}
}

func testListCursorOfDeletedTodo(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	// Each listing gets its own tenant, so the first one's delete does not
	// change the second one's pages.
	for tenant, owner := range map[string]string{acme: "", globex: "alice"} {
		todos := createN(t, s, tenant, "alice", 4)
		page, err := s.List(ctx, tenant, store.ListOptions{Owner: owner, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		checkTodos(t, fmt.Sprintf("owner %q: first page", owner), page.Todos, todos[:2])
		// The page's last todo goes away before the next page is read.
		if _, err := s.Delete(ctx, tenant, todos[1].ID, func(store.Todo) bool { return true }); err != nil {
			t.Fatal(err)
		}
		next, err := s.List(ctx, tenant, store.ListOptions{Owner: owner, Limit: 2, Cursor: page.NextCursor})
		if err != nil {
			t.Fatalf("List after the cursor's todo was deleted: %v", err)
		}
		checkTodos(t, fmt.Sprintf("owner %q: page after the deleted todo", owner), next.Todos, todos[2:])
	}
}

// testPaginationWhileInserting pages through a tenant while another goroutine
// keeps creating todos: every todo that existed before paging began must be
// seen exactly once, in order.
func testPaginationWhileInserting(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	pre := append(createN(t, s, acme, "alice", 30), createN(t, s, acme, "bob", 30)...)
	slices.SortFunc(pre, func(a, b store.Todo) int { return strings.Compare(a.ID, b.ID) })

	for _, owner := range []string{"", "alice"} {
		t.Run(fmt.Sprintf("owner=%q", owner), func(t *testing.T) {
			// The inserter hands over after each create, so that at least one
			// create lands between any two pages and the next one runs during
			// the next List.
			inserted := make(chan struct{})
			stop := make(chan struct{})
			errc := make(chan error, 1)
			go func() {
				defer close(errc)
				for i := 0; ; i++ {
					if _, err := s.Create(ctx, acme, []string{"alice", "bob"}[i%2], "meanwhile"); err != nil {
						errc <- err
						return
					}
					select {
					case inserted <- struct{}{}:
					case <-stop:
						return
					}
				}
			}()

			var seen []store.Todo
			opts := store.ListOptions{Owner: owner, Limit: 7}
			for pages := 0; ; pages++ {
				if pages > 1000 {
					t.Fatal("paging does not end")
				}
				page, err := s.List(ctx, acme, opts)
				if err != nil {
					t.Fatalf("List(%+v): %v", opts, err)
				}
				seen = append(seen, page.Todos...)
				if page.NextCursor == "" {
					break
				}
				opts.Cursor = page.NextCursor
				select {
				case <-inserted:
				case err := <-errc:
					t.Fatalf("Create during paging: %v", err)
				}
			}
			close(stop)
			if err := <-errc; err != nil {
				t.Fatalf("Create during paging: %v", err)
			}

			for i := 1; i < len(seen); i++ {
				if seen[i].ID <= seen[i-1].ID {
					t.Fatalf("page order: got %s after %s, want strictly increasing ids (no duplicates)", seen[i].ID, seen[i-1].ID)
				}
			}
			got := map[string]bool{}
			for _, todo := range seen {
				got[todo.ID] = true
				if owner != "" && todo.OwnerID != owner {
					t.Errorf("List(owner %q): got todo %s of %q", owner, todo.ID, todo.OwnerID)
				}
			}
			for _, todo := range pre {
				if (owner == "" || todo.OwnerID == owner) && !got[todo.ID] {
					t.Errorf("todo %s existed before paging: got it skipped, want it listed", todo.ID)
				}
			}
		})
	}
}

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
