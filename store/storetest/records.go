package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/store"
)

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
