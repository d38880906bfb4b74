// Package bolt keeps todos in one bbolt file. Each tenant has a top-level
// bucket named by its id holding two buckets: "todos" (id → JSON record) and
// "owners" (owner NUL id → empty), an index that makes listing one owner's
// todos cost O(their todos) instead of a scan of the tenant.
//
// Creates and deletes go through a group commit (commit.go): the writes that
// arrive while one commit is being synced share the next commit (two
// fdatasyncs) instead of queueing for one each; a write with no company
// commits at once. NoSync stays off, so a write is acknowledged only once it
// is on disk.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/todo-gateway/todo-gateway/store"
)

// Defaults for Options. No batch delay: the group commit fills a commit
// with the writes that queued during the previous one, so waiting for more
// only adds latency (BenchmarkBatchDelay; on bbolt's own Batch, which
// needs a delay to batch at all, 1 ms had been the best). 1000 writes a
// commit at most, as bbolt's MaxBatchSize.
const (
	DefaultTimeout      = time.Second
	DefaultBatchDelay   = 0
	DefaultMaxBatchSize = 1000
)

// ErrLocked is returned by Open when another process (or another Open in this
// process) holds the file.
var ErrLocked = errors.New("database is locked by another process")

// Options tunes Open. The zero value gives the defaults.
type Options struct {
	// Timeout bounds the wait for the file lock; 0 means DefaultTimeout.
	// Without it bbolt waits forever for a lock that may never be released.
	Timeout time.Duration
	// BatchDelay is how long a write that finds no commit in progress
	// waits for others to join its commit; 0 means DefaultBatchDelay (no
	// wait) and so does a negative delay. Writes that arrive during a
	// commit share the next one whatever the delay.
	BatchDelay time.Duration
	// MaxBatchSize is the most writes one commit takes; 0 means
	// DefaultMaxBatchSize.
	MaxBatchSize int
	// ReadOnly opens an existing file for reading only, under a shared
	// lock (the source of a copy): nothing is ever written to it, and
	// every write fails.
	ReadOnly bool
	// ObserveCommit, when set, is told how long each commit took (writing
	// its pages and the fsyncs) and how many writes it held.
	ObserveCommit func(d time.Duration, writes int)
	// Span, when set, makes each write's wait for its commit a span
	// ("bbolt commit": the queue, the group's transaction and the fsyncs).
	Span store.Span
}

// Store is a store.Store on a bbolt file. Open it once per file and process.
type Store struct {
	// span makes each write's commit a span; nil for none (Options.Span).
	span store.Span
	db   *bbolt.DB
	path string

	// gate makes Close wait for calls in progress, so no call reaches a
	// closed bbolt.DB.
	gate store.Gate

	// commits runs Create and Delete: see committer.
	commits *committer
}

var _ store.Store = (*Store)(nil)

var (
	bucketTodos  = []byte("todos")
	bucketOwners = []byte("owners")
)

// Open opens or creates the database file at path (its directory must exist).
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	db, err := openChecked(path, 0o600, &bbolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w (gave up after %s; is another todo-gateway using it, or is it open twice in this process?)",
			path, ErrLocked, timeout)
	}
	if errors.Is(err, ErrDamaged) {
		return nil, err // names the file already
	}
	if err != nil {
		return nil, fmt.Errorf("open bolt database %s: %w", path, err)
	}

	delay, size := time.Duration(DefaultBatchDelay), DefaultMaxBatchSize
	if opts.BatchDelay > 0 {
		delay = opts.BatchDelay
	}
	if opts.MaxBatchSize > 0 {
		size = opts.MaxBatchSize
	}
	return &Store{db: db, path: path, commits: newCommitter(db, delay, size, opts.ObserveCommit), span: opts.Span}, nil
}

// Path returns the file the store was opened on.
func (s *Store) Path() string { return s.path }

// enter starts a call; see store.Gate.
func (s *Store) enter(ctx context.Context) (leave func(), err error) { return s.gate.Enter(ctx) }

// Ping reports whether the store is open and its file readable, for the
// gateway's readiness check.
func (s *Store) Ping(ctx context.Context) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	return s.db.View(func(*bbolt.Tx) error { return nil })
}

// Close waits for calls in progress and closes the file.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.commits.close()
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("close bolt database %s: %w", s.path, err)
		}
		return nil
	})
}

// EnsureTenants creates the buckets of every tenant missing them, all in
// one transaction: a gateway starting with a thousand new tenants pays for
// one fsync, not a thousand.
func (s *Store) EnsureTenants(ctx context.Context, tenants ...string) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	for _, tenant := range tenants {
		if err := store.ValidateKey("tenant", tenant); err != nil {
			return err
		}
	}

	// Every start and reload ensures every tenant; reading first spares an
	// fsync'd commit when, as usual, nothing is missing.
	var missing []string
	if err := s.db.View(func(tx *bbolt.Tx) error {
		for _, tenant := range tenants {
			if _, _, err := tenantBuckets(tx, tenant); err != nil {
				missing = append(missing, tenant)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	return s.update(func(tx *bbolt.Tx) error {
		for _, tenant := range missing {
			tb, err := tx.CreateBucketIfNotExists([]byte(tenant))
			if err != nil {
				return fmt.Errorf("create bucket of tenant %q: %w", tenant, err)
			}
			for _, name := range [][]byte{bucketTodos, bucketOwners} {
				if _, err := tb.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create %s bucket of tenant %q: %w", name, tenant, err)
				}
			}
		}
		return nil
	})
}

// write commits fn durably in the group commit. fn must be idempotent: it
// runs again when another write of its group fails.
func (s *Store) write(ctx context.Context, fn func(*bbolt.Tx) error) error {
	run, result := tracked(fn)
	_, end := s.span.Start(ctx, "bbolt commit")
	err := result(s.commits.write(run))
	end(err)
	return err
}

// update commits fn alone, as write does.
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	run, result := tracked(fn)
	return result(s.db.Update(run))
}

// tracked wraps a transaction function so that result can tell its own
// error (bad data, a refusal: returned as it is) from bbolt's failure to
// begin or commit the transaction, which is store.ErrUnavailable: the disk
// or the quota is full, the file cannot grow or be synced, an I/O error.
// Nothing was written then (or, for a failure of the very last sync, the
// write may have happened, as ErrUnavailable says), and the client can
// retry once the operator has made room: bbolt rolls the transaction back
// and the next one starts afresh, without a restart. bbolt does not always
// keep the cause in the chain (its "file resize error: %s"), so the
// failure is recognised by where it came from, not by its errno.
func tracked(fn func(*bbolt.Tx) error) (run func(*bbolt.Tx) error, result func(error) error) {
	var fnErr error
	run = func(tx *bbolt.Tx) error {
		fnErr = fn(tx) // a group commit may run fn more than once: the last run counts
		return fnErr
	}
	result = func(err error) error {
		if err == nil || err == fnErr {
			return err
		}
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return run, result
}

// tenantBuckets returns the tenant's buckets, or ErrUnknownTenant.
func tenantBuckets(tx *bbolt.Tx, tenant string) (todos, owners *bbolt.Bucket, err error) {
	tb := tx.Bucket([]byte(tenant))
	if tb == nil {
		return nil, nil, fmt.Errorf("tenant %q: %w", tenant, store.ErrUnknownTenant)
	}
	todos, owners = tb.Bucket(bucketTodos), tb.Bucket(bucketOwners)
	if todos == nil || owners == nil {
		return nil, nil, fmt.Errorf("tenant %q: bucket lacks its todos or owners bucket", tenant)
	}
	return todos, owners, nil
}

// ownerKey is the owner index key. ValidateKey forbids NUL in owners, so the
// separator makes one owner's keys a contiguous range that no other owner's
// keys share a prefix with.
func ownerKey(owner, id string) []byte {
	k := make([]byte, 0, len(owner)+1+len(id))
	k = append(k, owner...)
	k = append(k, 0)
	return append(k, id...)
}

// put writes a todo and its index entry.
func put(todos, owners *bbolt.Bucket, todo store.Todo, val []byte) error {
	idKey := []byte(todo.ID)
	if todos.Get(idKey) != nil {
		// 80 random bits make this practically impossible; never overwrite.
		return fmt.Errorf("todo id %s already exists", todo.ID)
	}
	if err := todos.Put(idKey, val); err != nil {
		return err
	}
	return owners.Put(ownerKey(todo.OwnerID, todo.ID), []byte{})
}
