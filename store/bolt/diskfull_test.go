package bolt

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/todo-gateway/todo-gateway/store"
)

// A commit refused for want of disk space is a store that cannot answer
// (retryable), not an internal error; other errors stay as they are.
func TestDiskFullIsUnavailable(t *testing.T) {
	full := &os.PathError{Op: "write", Path: "todos.db", Err: syscall.ENOSPC}
	if err := diskFull(fmt.Errorf("commit: %w", full)); !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("got %v, want ErrUnavailable wrapping ENOSPC", err)
	}
	other := errors.New("page 7: invalid type")
	if err := diskFull(other); err != other {
		t.Errorf("got %v, want the error unchanged", err)
	}
	if diskFull(nil) != nil {
		t.Error("nil became an error")
	}
}
