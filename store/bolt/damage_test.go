package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/todo-gateway/todo-gateway/store"
)

// wholeStore writes a store of a few hundred todos, closed, and returns its
// file's path and bytes.
func wholeStore(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "todos.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	todos := make([]store.Todo, 300)
	for i := range todos {
		id := store.NewID()
		created, _ := store.IDTime(id)
		todos[i] = store.Todo{ID: id, CreatedAt: created, OwnerID: fmt.Sprintf("user-%d", i%7), Content: strings.Repeat("todo ", 20)}
	}
	if _, err := s.Import(ctx, "acme", todos); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

// A damaged, foreign or empty file is ErrDamaged, naming the file and the
// way out, from Open and from Verify, never a panic or a fault (issue 24:
// a truncated file panicked serve, and SIGBUS killed store copy); Verify
// never writes to it.
func TestDamagedFilesAreRefused(t *testing.T) {
	path, whole := wholeStore(t)
	if len(whole) < 5*4096 {
		t.Fatalf("the test store is %d bytes: too small to damage meaningfully", len(whole))
	}
	// Flips the 64 bytes from at: from a page's start, its header. (A
	// flip inside a todo's text cannot be seen: bbolt checks the
	// structure of its pages and keeps no checksum of what they hold.)
	flipped := func(at int) []byte {
		b := bytes.Clone(whole)
		for i := at; i < at+64 && i < len(b); i++ {
			b[i] ^= 0xFF
		}
		return b
	}
	cases := []struct {
		name string
		data []byte
		says string
	}{
		{"zero length", nil, "the file is empty"},
		{"truncated to 20000 bytes", whole[:20000], "cut short"},
		{"truncated to one page", whole[:4096], "file size too small"},
		{"not bbolt", []byte(strings.Repeat(`{"tenants": []}`+"\n", 1000)), "not a bbolt database"},
		{"both meta pages flipped", flipped(0)[:4096], "not a bbolt database"},
		{"a page in use flipped", flipped(rootOfTodos(t, path) * 4096), "not consistent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "both meta pages flipped" {
				tc.data = append(flipped(0)[:4096], flipped(4096)[4096:]...)
			}
			path := filepath.Join(t.TempDir(), "todos.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open took the file")
			}
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.says) ||
				!strings.Contains(err.Error(), "restore it from a backup") {
				t.Errorf("Open: %v\nwant ErrDamaged naming %s, saying %q and what to do", err, path, tc.says)
			}
			before, _ := os.ReadFile(path)
			if _, err := Verify(path); !errors.Is(err, ErrDamaged) {
				t.Errorf("Verify: %v, want ErrDamaged", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("the file changed")
			}
		})
	}
	// The whole file still opens.
	if todos, err := Verify(path); err != nil || todos["acme"] != 300 {
		t.Errorf("the whole file: %v %v, want 300 todos of acme", todos, err)
	}
}

// rootOfTodos is the root page of acme's todos bucket in the file at path,
// found through bbolt: a page in use.
func rootOfTodos(t *testing.T, path string) int {
	t.Helper()
	db, err := bbolt.Open(path, 0o400, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root int
	db.View(func(tx *bbolt.Tx) error {
		root = int(tx.Bucket([]byte("acme")).Bucket(bucketTodos).Root())
		return nil
	})
	if root == 0 {
		t.Fatal("acme's todos are inline: no page of their own")
	}
	return root
}
