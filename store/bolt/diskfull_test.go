package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/todo-gateway/todo-gateway/store"
)

// A transaction's own error (bad data, a refusal) comes back as it is; a
// failure of bbolt to commit (a full disk, an I/O error, whether or not
// bbolt kept the cause in the chain) is store.ErrUnavailable.
func TestCommitFailureIsUnavailable(t *testing.T) {
	own := errors.New("page 7: invalid type")
	run, result := tracked(func(*bbolt.Tx) error { return own })
	if err := result(run(nil)); err != own {
		t.Errorf("the transaction's own error: got %v, want it unchanged", err)
	}
	full := &os.PathError{Op: "write", Path: "todos.db", Err: syscall.ENOSPC}
	run, result = tracked(func(*bbolt.Tx) error { return nil })
	if run(nil) != nil {
		t.Fatal("run changed a nil error")
	}
	for _, commit := range []error{fmt.Errorf("commit: %w", full), errors.New("file resize error: no space left on device")} {
		if err := result(commit); !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, commit) {
			t.Errorf("a failed commit (%v): got %v, want ErrUnavailable wrapping it", commit, err)
		}
	}
	if result(nil) != nil {
		t.Error("nil became an error")
	}
}

// A store whose file cannot grow (as on a full disk: bbolt's MaxSize
// stands in for the disk, since filling a real one needs a mount) refuses
// writes with store.ErrUnavailable, writes nothing, keeps answering reads,
// and takes writes again as soon as there is room, without a reopen.
func TestFullStoreRecoversWithoutRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "todos.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.EnsureTenants(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	first, err := s.Create(ctx, "acme", "u", "before the disk filled up")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s.db.MaxSize = int(fi.Size()) // no write runs: the test writes one at a time

	big := strings.Repeat("x", store.MaxContentBytes)
	created := 1
	var failed error
	for range 1000 {
		if _, failed = s.Create(ctx, "acme", "u", big); failed != nil {
			break
		}
		created++
	}
	if !errors.Is(failed, store.ErrUnavailable) {
		t.Fatalf("creating on a full file: got %v after %d creates, want ErrUnavailable", failed, created)
	}
	if _, err := s.Get(ctx, "acme", first.ID); err != nil {
		t.Errorf("reading on a full file: %v", err)
	}
	page, err := s.List(ctx, "acme", store.ListOptions{Limit: store.MaxLimit})
	if err != nil || len(page.Todos) != created {
		t.Errorf("listing on a full file: got %d todos (%v) after %d acknowledged creates, want them and no more", len(page.Todos), err, created)
	}

	s.db.MaxSize = 0 // room again
	if _, err := s.Create(ctx, "acme", "u", big); err != nil {
		t.Fatalf("creating once there is room: %v, want success without reopening", err)
	}
}
