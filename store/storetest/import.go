package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/store"
)

// The cases of Tenants and Import, what "store copy" moves data with.

// Importable is a todo as another store would hold it, for Import: a fresh
// id, and CreatedAt its time.
func Importable(t testing.TB, owner, content string) store.Todo {
	t.Helper()
	id := store.NewID()
	at, err := store.IDTime(id)
	if err != nil {
		t.Fatal(err)
	}
	return store.Todo{ID: id, Content: content, OwnerID: owner, CreatedAt: at}
}

func mustImport(t *testing.T, s store.Store, tenant string, todos []store.Todo, want int) {
	t.Helper()
	added, err := s.Import(context.Background(), tenant, todos)
	if err != nil || added != want {
		t.Fatalf("Import(%s, %d todos): got %d, %v; want %d added", tenant, len(todos), added, err, want)
	}
}

func byOwner(todos []store.Todo, owner string) []store.Todo {
	var out []store.Todo
	for _, todo := range todos {
		if todo.OwnerID == owner {
			out = append(out, todo)
		}
	}
	return out
}

// testTenants: every tenant a store has a space for, sorted by bytes, and
// only those.
func testTenants(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	got, err := s.Tenants(ctx)
	if err != nil || !slices.Equal(got, []string{acme, globex}) {
		t.Errorf("Tenants: got %q, %v; want [acme globex]", got, err)
	}
	mustCreate(t, s, acme, "alice", "data does not make a tenant")
	if err := s.EnsureTenants(ctx, "zeta", "ünï", "a b", "acme-2"); err != nil {
		t.Fatal(err)
	}
	want := []string{"a b", acme, "acme-2", globex, "zeta", "ünï"}
	if got, err := s.Tenants(ctx); err != nil || !slices.Equal(got, want) {
		t.Errorf("Tenants after EnsureTenants: got %q, %v; want %q", got, err, want)
	}
}

// testImport: ids, owners and creation times are kept; a second import
// adds nothing; an import that overlaps adds only what is new.
func testImport(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	var todos []store.Todo
	for _, tc := range []struct{ owner, content string }{
		{"alice", "buy milk"},
		{"bøb", "Füße waschen 🦶"},
		{"al", "  indented\n"},
		{"alice", strings.Repeat("x", store.MaxContentBytes)},
		{"bøb", strings.Repeat("é", store.MaxContentBytes/2)},
	} {
		todos = append(todos, Importable(t, tc.owner, tc.content))
	}
	// A CreatedAt in another zone is the same instant; it is stored in UTC,
	// as Create stores it.
	todos[0].CreatedAt = todos[0].CreatedAt.In(time.FixedZone("UTC+2", 2*3600))

	mustImport(t, s, acme, todos[:3], 3)
	mustImport(t, s, acme, todos[:3], 0)
	mustImport(t, s, acme, todos, 2)
	mustImport(t, s, acme, todos, 0)
	for _, want := range todos {
		got, err := s.Get(ctx, acme, want.ID)
		if err != nil || !equalTodo(got, want) {
			t.Errorf("Get(%s): got %+v, %v; want %+v", want.ID, got, err, want)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Errorf("Get(%s): got CreatedAt in %v, want UTC", want.ID, got.CreatedAt.Location())
		}
	}
	checkTodos(t, "List", listAll(t, s, acme, "", 2), todos)
	for _, owner := range []string{"alice", "bøb", "al"} {
		checkTodos(t, fmt.Sprintf("List(owner %q)", owner), listAll(t, s, acme, owner, 0), byOwner(todos, owner))
	}
	if got := listAll(t, s, globex, "", 0); len(got) != 0 {
		t.Errorf("List(globex): got %v, want nothing", ids(got))
	}
	// Ids are per tenant: the same todos go to another tenant too.
	mustImport(t, s, globex, todos, len(todos))

	// What Create stored is what Import would store: copying a store onto
	// itself adds nothing.
	created := mustCreate(t, s, acme, "alice", "after the import")
	mustImport(t, s, acme, listAll(t, s, acme, "", 0), 0)
	checkTodos(t, "List after Create", listAll(t, s, acme, "", 0), append(slices.Clone(todos), created))
}

// testImportConflict: a todo whose id is taken by a different one is
// refused, naming the id, and the stored one is kept.
func testImportConflict(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	kept := Importable(t, "alice", "the original")
	mustImport(t, s, acme, []store.Todo{kept}, 1)

	for _, tc := range []struct {
		name string
		edit func(*store.Todo)
	}{
		{"other content", func(td *store.Todo) { td.Content = "a forgery" }},
		{"other owner", func(td *store.Todo) { td.OwnerID = "mallory" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := kept
			tc.edit(&other)
			fresh := Importable(t, "bob", "new")
			added, err := s.Import(ctx, acme, []store.Todo{fresh, other})
			if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), kept.ID) {
				t.Errorf("Import: got %d, %v; want ErrConflict naming %s", added, err, kept.ID)
			}
			if got, err := s.Get(ctx, acme, kept.ID); err != nil || !equalTodo(got, kept) {
				t.Errorf("Get after a refused import: got %+v, %v; want the original %+v", got, err, kept)
			}
			// The contract lets a backend have stored the todos without a
			// conflict; if it did, it says so and stored them right.
			got, err := s.Get(ctx, acme, fresh.ID)
			switch {
			case errors.Is(err, store.ErrNotFound) && added == 0:
			case err == nil && equalTodo(got, fresh) && added == 1:
			default:
				t.Errorf("the todo without a conflict: got %+v, %v with %d added; want absent with 0 or stored with 1", got, err, added)
			}
			checkTodos(t, "List(mallory)", listAll(t, s, acme, "mallory", 0), nil)
		})
	}
}

func testImportBadInput(t *testing.T, f Factory) {
	s := open(t, f)
	ctx := context.Background()
	good := Importable(t, "alice", "fine")
	bad := func(edit func(*store.Todo)) store.Todo {
		td := Importable(t, "alice", "buy milk")
		edit(&td)
		return td
	}
	tests := []struct {
		name   string
		tenant string
		todos  []store.Todo
		want   error
	}{
		{"malformed id", acme, []store.Todo{good, bad(func(td *store.Todo) { td.ID = "no-such-id" })}, store.ErrInvalid},
		{"empty id", acme, []store.Todo{good, bad(func(td *store.Todo) { td.ID = "" })}, store.ErrInvalid},
		{"upper-case id", acme, []store.Todo{good, bad(func(td *store.Todo) { td.ID = strings.ToUpper(td.ID) })}, store.ErrInvalid},
		{"createdAt not the id's time", acme, []store.Todo{good, bad(func(td *store.Todo) { td.CreatedAt = td.CreatedAt.Add(time.Millisecond) })}, store.ErrInvalid},
		{"createdAt zero", acme, []store.Todo{good, bad(func(td *store.Todo) { td.CreatedAt = time.Time{} })}, store.ErrInvalid},
		{"empty owner", acme, []store.Todo{good, bad(func(td *store.Todo) { td.OwnerID = "" })}, store.ErrInvalid},
		{"owner with NUL", acme, []store.Todo{good, bad(func(td *store.Todo) { td.OwnerID = "al\x00ice" })}, store.ErrInvalid},
		{"blank content", acme, []store.Todo{good, bad(func(td *store.Todo) { td.Content = " \n" })}, store.ErrInvalid},
		{"content too long", acme, []store.Todo{good, bad(func(td *store.Todo) { td.Content = strings.Repeat("x", store.MaxContentBytes+1) })}, store.ErrInvalid},
		{"invalid UTF-8", acme, []store.Todo{good, bad(func(td *store.Todo) { td.Content = "caf\xc3" })}, store.ErrInvalid},
		{"one id twice", acme, []store.Todo{good, good}, store.ErrInvalid},
		{"empty tenant", "", []store.Todo{good}, store.ErrInvalid},
		{"unknown tenant", unknown, []store.Todo{good}, store.ErrUnknownTenant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			added, err := s.Import(ctx, tc.tenant, tc.todos)
			if !errors.Is(err, tc.want) || added != 0 {
				t.Errorf("Import: got %d, %v; want 0, %v", added, err, tc.want)
			}
		})
	}
	for _, tenant := range []string{acme, globex} {
		if got := listAll(t, s, tenant, "", 0); len(got) != 0 {
			t.Errorf("List(%s) after refused imports: got %v, want nothing", tenant, ids(got))
		}
	}
	for _, tenant := range []string{acme, unknown} {
		if added, err := s.Import(ctx, tenant, nil); added != 0 || err != nil {
			t.Errorf("Import(%s, nothing): got %d, %v; want 0, nil", tenant, added, err)
		}
	}
}

// testImportMany imports a page as large as a List gives. Its first 20
// todos have records six times their content (JSON escapes control
// characters), 1.2 MB together: more than a backend may write in one
// request (etcd's default limit is 1.5 MiB, for both copies of a record).
func testImportMany(t *testing.T, f Factory) {
	s := open(t, f)
	todos := make([]store.Todo, store.MaxLimit)
	for i := range todos {
		content := fmt.Sprint("todo ", i)
		if i < 20 {
			content = strings.Repeat("\x01", store.MaxContentBytes)
		}
		todos[i] = Importable(t, fmt.Sprint("owner-", i%7), content)
	}
	mustImport(t, s, acme, todos, len(todos))
	checkTodos(t, "List", listAll(t, s, acme, "", store.MaxLimit), todos)
	checkTodos(t, "List(owner-3)", listAll(t, s, acme, "owner-3", store.MaxLimit), byOwner(todos, "owner-3"))
	mustImport(t, s, acme, todos, 0)
}

// testConcurrentImport: imports of the same todos racing each other store
// each once and count it once.
func testConcurrentImport(t *testing.T, f Factory) {
	s := open(t, f)
	todos := make([]store.Todo, 200)
	for i := range todos {
		todos[i] = Importable(t, fmt.Sprint("owner-", i%3), fmt.Sprint("todo ", i))
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			// Each importer starts elsewhere, so that they overlap in part.
			mine := append(slices.Clone(todos[w*25:]), todos[:w*25]...)
			added, err := s.Import(context.Background(), acme, mine)
			if err != nil {
				t.Errorf("Import: %v", err)
			}
			total.Add(int64(added))
		})
	}
	wg.Wait()
	if total.Load() != int64(len(todos)) {
		t.Errorf("concurrent imports: got %d added in all, want %d", total.Load(), len(todos))
	}
	checkTodos(t, "List", listAll(t, s, acme, "", store.MaxLimit), todos)
}
