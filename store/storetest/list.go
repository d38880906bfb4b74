package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/todo-gateway/todo-gateway/store"
)

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
