package todo

import (
	"context"
	"sync"
	"time"

	"github.com/todo-gateway/todo-gateway/store"
)

// Writes remembers how the tools' latest writes went, for the gateway's
// /status. A store can answer every read, and so pass the check /status
// makes, while refusing every write: a full disk under bbolt. Only the
// writes show it. One Writes serves any number of servers (Options.Writes).
type Writes struct {
	mu            sync.Mutex
	failures      uint64
	lastError     string
	lastErrorAt   time.Time
	lastSuccessAt time.Time
}

// note records one write's outcome. A refusal (an unknown id, another
// owner's todo, bad input, a client gone) says nothing of the store and is
// not recorded.
func (w *Writes) note(err error) {
	if err != nil && storeAnswerFor(err).refusal {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.lastSuccessAt = now
		return
	}
	w.failures++
	w.lastError, w.lastErrorAt = err.Error(), now
}

// WritesStatus is the tools' writes as /status shows them.
type WritesStatus struct {
	// OK is false while the latest write failed: the store is degraded,
	// and stays so until a write succeeds again.
	OK bool `json:"ok"`
	// Failures counts the writes that failed since the process started.
	Failures      uint64    `json:"failures"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	LastSuccessAt time.Time `json:"last_success_at,omitzero"`
}

// Status is how the writes went so far.
func (w *Writes) Status() WritesStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WritesStatus{
		OK:       w.lastErrorAt.IsZero() || w.lastSuccessAt.After(w.lastErrorAt),
		Failures: w.failures, LastError: w.lastError, LastErrorAt: w.lastErrorAt, LastSuccessAt: w.lastSuccessAt,
	}
}

// watchedStore is the store as the tools use it: creates and deletes report
// their outcome to writes.
type watchedStore struct {
	store.Store
	writes *Writes
}

func (s watchedStore) Create(ctx context.Context, tenant, owner, content string) (store.Todo, error) {
	todo, err := s.Store.Create(ctx, tenant, owner, content)
	s.writes.note(err)
	return todo, err
}

func (s watchedStore) Delete(ctx context.Context, tenant, id string, allow func(store.Todo) bool) (store.Todo, error) {
	todo, err := s.Store.Delete(ctx, tenant, id, allow)
	s.writes.note(err)
	return todo, err
}
