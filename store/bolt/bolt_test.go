package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t testing.TB) store.Store {
			return mustOpen(t, filepath.Join(t.TempDir(), "todos.db"), bolt.Options{})
		},
		Reopen: func(t testing.TB, old store.Store) store.Store {
			return mustOpen(t, old.(*bolt.Store).Path(), bolt.Options{})
		},
	})
}

func mustOpen(t testing.TB, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "todos.db")
	s := mustOpen(t, path, bolt.Options{})
	defer s.Close()

	tests := []struct {
		name    string
		timeout time.Duration
		want    time.Duration // the wait the timeout implies, give or take bbolt's 50 ms polling
	}{
		{"explicit timeout", 100 * time.Millisecond, 100 * time.Millisecond},
		{"default timeout", 0, bolt.DefaultTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			second, err := bolt.Open(path, bolt.Options{Timeout: tc.timeout})
			waited := time.Since(start)
			if err == nil {
				second.Close()
				t.Fatal("second Open of a locked file: got nil error, want ErrLocked")
			}
			if !errors.Is(err, bolt.ErrLocked) || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), "locked by another process") {
				t.Errorf("second Open: got %q, want ErrLocked naming %s", err, path)
			}
			if waited < tc.want-100*time.Millisecond || waited > tc.want+2*time.Second {
				t.Errorf("second Open: got a wait of %v, want about %v", waited, tc.want)
			}
		})
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "todos.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open in a missing directory: got nil error")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("Open: got %q, want the path %s in it", err, path)
	}
}

// TestLayout pins the file layout that operators and a future migration rely
// on: a top-level bucket per tenant holding "todos" and "owners".
func TestLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "todos.db")
	s := mustOpen(t, path, bolt.Options{})
	ctx := context.Background()
	for _, tenant := range []string{"acme", "globex"} {
		if err := s.EnsureTenants(ctx, tenant); err != nil {
			t.Fatal(err)
		}
	}
	todo, err := s.Create(ctx, "acme", "alice", "buy milk")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		var tenants []string
		if err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			tenants = append(tenants, string(name))
			return nil
		}); err != nil {
			return err
		}
		if want := []string{"acme", "globex"}; !slices.Equal(tenants, want) {
			t.Errorf("top-level buckets: got %q, want %q", tenants, want)
		}
		acme := tx.Bucket([]byte("acme"))
		todos, owners := acme.Bucket([]byte("todos")), acme.Bucket([]byte("owners"))
		if todos == nil || owners == nil {
			t.Fatalf("bucket acme: got todos %v, owners %v; want both", todos != nil, owners != nil)
		}
		if v := todos.Get([]byte(todo.ID)); !strings.Contains(string(v), `"content":"buy milk"`) {
			t.Errorf("todos[%s]: got %s, want the JSON record", todo.ID, v)
		}
		if v := owners.Get([]byte("alice\x00" + todo.ID)); v == nil {
			t.Errorf("owners[alice NUL %s]: got nothing, want an index entry", todo.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheck shows that Check finds what the crash test relies on it to find.
func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(acme *bbolt.Bucket, id string) error
		wantErr string
	}{
		{"intact", func(*bbolt.Bucket, string) error { return nil }, ""},
		{"index entry missing", func(acme *bbolt.Bucket, id string) error {
			return acme.Bucket([]byte("owners")).Delete([]byte("alice\x00" + id))
		}, "missing from the owner index"},
		{"stray index entry", func(acme *bbolt.Bucket, id string) error {
			return acme.Bucket([]byte("owners")).Put([]byte("bob\x00"+id), []byte{})
		}, "1 todos but 2 owner index entries"},
		{"record not JSON", func(acme *bbolt.Bucket, id string) error {
			return acme.Bucket([]byte("todos")).Put([]byte(id), []byte("{"))
		}, "decode todo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "todos.db")
			s := mustOpen(t, path, bolt.Options{})
			ctx := context.Background()
			if err := s.EnsureTenants(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			todo, err := s.Create(ctx, "acme", "alice", "buy milk")
			if err != nil {
				t.Fatal(err)
			}
			s.Close()

			db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bbolt.Tx) error { return tc.damage(tx.Bucket([]byte("acme")), todo.ID) }); err != nil {
				t.Fatal(err)
			}
			db.Close()

			s = mustOpen(t, path, bolt.Options{})
			defer s.Close()
			err = s.Check(ctx)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Check: got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestBatchSharedWithRefusals puts refused and accepted writes into the same
// group commit: a refusal must not fail, undo or duplicate its neighbours.
func TestBatchSharedWithRefusals(t *testing.T) {
	// A long delay makes every call below join one batch.
	s := mustOpen(t, filepath.Join(t.TempDir(), "todos.db"), bolt.Options{BatchDelay: 50 * time.Millisecond})
	defer s.Close()
	ctx := context.Background()
	if err := s.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	victim, err := s.Create(ctx, "acme", "alice", "keep me")
	if err != nil {
		t.Fatal(err)
	}

	const n = 24
	errs := make([]error, n)
	created := make([]store.Todo, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				created[i], errs[i] = s.Create(ctx, "acme", "bob", fmt.Sprint("todo ", i))
			case 1:
				_, errs[i] = s.Create(ctx, "nope", "bob", fmt.Sprint("todo ", i))
			case 2:
				_, errs[i] = s.Delete(ctx, "acme", victim.ID, func(store.Todo) bool { return false })
			}
		})
	}
	wg.Wait()

	var want []store.Todo
	for i, err := range errs {
		var wantErr error
		switch i % 3 {
		case 0:
			want = append(want, created[i])
		case 1:
			wantErr = store.ErrUnknownTenant
		case 2:
			wantErr = store.ErrDenied
		}
		if !errors.Is(err, wantErr) {
			t.Errorf("call %d: got %v, want %v", i, err, wantErr)
		}
	}
	page, err := s.List(ctx, "acme", store.ListOptions{Owner: "bob", Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b store.Todo) int { return strings.Compare(a.ID, b.ID) })
	if got := page.Todos; !slices.EqualFunc(got, want, func(a, b store.Todo) bool { return a.ID == b.ID }) {
		t.Errorf("bob's todos: got %d, want the %d acknowledged", len(got), len(want))
	}
	if _, err := s.Get(ctx, "acme", victim.ID); err != nil {
		t.Errorf("Get(victim): got %v, want it kept", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestPing(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "todos.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping of an open store: %v", err)
	}
	s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Ping of a closed store: %v, want ErrClosed", err)
	}
}
