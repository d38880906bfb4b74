// Package etcd keeps todos in an etcd cluster, so that many gateway
// instances share one data set. Every key lives under a deployment prefix:
//
//	t/<tenant>                  tenant marker (EnsureTenants)
//	i/<tenant>/<id>             the todo's record
//	o/<tenant>/<owner> NUL <id> the same record, in the owner index
//	d/<tenant>/<id>             tombstone of a deleted todo: the deleting
//	                            call's token, on a lease (minutes)
//	w                           rewritten by every write: its revision is
//	                            that of the prefix's latest write (cache.go)
//
// Todos are immutable, so the two copies of a record cannot diverge, and a
// page of one owner's todos is one range read. Tenant ids have no "/" and
// owners no NUL (store.ValidateKey), so no prefix overlaps another.
//
// Reads are linearizable: a todo created through one instance is listed
// at once through any other. They are range reads in etcd, or, with a
// cache (NewCached, cache.go), answers from a watch-fed copy that has
// caught up with the prefix's latest write. Writes are acknowledged
// once a quorum has them. etcd's client does not retry a write on a
// connection it already used, so a timeout, a leader change or a reset
// connection leaves a write ambiguous: it may have committed. Create
// resolves that by retrying with the same id and recognising its own
// record, or the tombstone of its todo if another call deleted it since,
// Import (import.go) likewise; Delete by reading again and recognising its
// own tombstone, so that of two deletes of one todo only one succeeds.
package etcd

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"

	"github.com/todo-gateway/todo-gateway/store"
)

// Defaults of Options.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultWriteTimeout   = 15 * time.Second
	// maxTxnOps is etcd's default limit of operations in one transaction.
	maxTxnOps = 128
)

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// RequestTimeout bounds one request to etcd.
	RequestTimeout time.Duration
	// WriteTimeout bounds a write with its retries after ambiguous failures
	// (a leader election takes a second or two). The retries go on for this
	// long even when the caller's context ends, because the caller could not
	// tell whether the write happened otherwise.
	WriteTimeout time.Duration
	// Logger receives a warning when etcd does not answer and a request is
	// retried; default: discarded.
	Logger *slog.Logger
	// Lease grants the leases of deleted todos' tombstones
	// (tombstone.go); nil (tests on a bare KV): tombstones never expire.
	Lease clientv3.Lease
	// Span, when set, makes the cache's wait for freshness before a read a
	// span ("etcd cache wait").
	Span store.Span
}

// Store is a store.Store on etcd.
type Store struct {
	kv      clientv3.KV
	release func() error // closes what Open opened
	opts    Options
	gate    store.Gate
	// cache, when set, answers Get and List (cache.go).
	cache *cache
	// tombstones holds the lease of deleted todos' tombstones.
	tombstones tombstoneLeases
}

var _ store.Store = (*Store)(nil)

// New serves the store from kv with every key under prefix. It does not
// own kv's client: Close leaves it open.
func New(kv clientv3.KV, prefix string, opts Options) *Store {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{kv: namespace.NewKV(kv, prefix), opts: opts, release: func() error { return nil },
		tombstones: tombstoneLeases{leases: opts.Lease, ttl: tombstoneRenew + 2*opts.WriteTimeout}}
}

// NewCached is New with reads answered from a copy of the prefix that
// watcher keeps current (cache.go). It starts loading the copy at once;
// reads go to etcd until it is loaded.
func NewCached(kv clientv3.KV, watcher clientv3.Watcher, prefix string, opts Options, cacheOpts CacheOptions) *Store {
	return newCached(kv, watcher, prefix, opts, cacheOpts, nil, nil)
}

// newCached is NewCached whose revision checks go to the leader (through
// a connection dial makes) when cluster has several endpoints.
func newCached(kv clientv3.KV, watcher clientv3.Watcher, prefix string, opts Options, cacheOpts CacheOptions,
	cluster *clientv3.Client, dial func(endpoint string) (*clientv3.Client, error)) *Store {
	s := New(kv, prefix, opts)
	leader := newLeaderChecks(cluster, prefix, dial, s.opts.RequestTimeout/2, s.opts.Logger)
	s.cache = newCache(s, namespace.NewWatcher(watcher, prefix), cacheOpts, leader)
	return s
}

// Open connects to the cluster cfg names and serves the store under
// prefix, with a cache when cacheOpts is set. Close closes the connection.
func Open(cfg clientv3.Config, prefix string, opts Options, cacheOpts *CacheOptions) (*Store, error) {
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", cfg.Endpoints, err)
	}
	opts.Lease = cli.Lease
	var s *Store
	if cacheOpts != nil {
		dial := func(endpoint string) (*clientv3.Client, error) {
			one := cfg
			one.Endpoints = []string{endpoint}
			return clientv3.New(one)
		}
		s = newCached(cli.KV, cli.Watcher, prefix, opts, *cacheOpts, cli, dial)
	} else {
		s = New(cli.KV, prefix, opts)
	}
	s.release = cli.Close
	return s, nil
}

// Close waits for calls in progress, stops the cache, then closes the
// connection Open made.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		if s.cache != nil {
			s.cache.close()
		}
		return s.release()
	})
}

// CacheStats describes the cache; ok is false when the store has none.
func (s *Store) CacheStats() (stats CacheStats, ok bool) {
	if s.cache == nil {
		return CacheStats{}, false
	}
	return s.cache.stats(), true
}

// cached waits until the cache can answer a read consistently; false
// means read from etcd.
func (s *Store) cached(ctx context.Context, op string) (bool, error) {
	if s.cache == nil {
		return false, nil
	}
	_, end := s.opts.Span.Start(ctx, "etcd cache wait")
	ok, err := s.cache.fresh(ctx)
	end(err)
	return ok, s.failure(op, err)
}

// Ping reads one key with a linearizable read: it answers only while the
// cluster has a quorum.
func (s *Store) Ping(ctx context.Context) error {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	_, err = s.kv.Get(ctx, tenantsSpace, clientv3.WithPrefix(), clientv3.WithLimit(1), clientv3.WithKeysOnly())
	return s.failure("ping", err)
}

// lastWriteKey is put by every write transaction, so that its revision
// says up to where the cache must have caught up (cache.go).
const lastWriteKey = "w"

var touchLastWrite = clientv3.OpPut(lastWriteKey, "")

// The key spaces under the prefix (the layout above).
const (
	tenantsSpace = "t/"
	idsSpace     = "i/"
)

func tenantKey(tenant string) string   { return tenantsSpace + tenant }
func tombKey(tenant, id string) string { return "d/" + tenant + "/" + id }
func idPrefix(tenant string) string    { return idsSpace + tenant + "/" }
func idKey(tenant, id string) string   { return idPrefix(tenant) + id }
func ownerPrefix(tenant, owner string) string {
	return "o/" + tenant + "/" + owner + "\x00"
}
func ownerKey(tenant, owner, id string) string { return ownerPrefix(tenant, owner) + id }

// EnsureTenants puts the markers of the tenants that lack one, at most
// maxTxnOps to a transaction. Putting a marker again changes nothing, and
// no data is ever deleted.
func (s *Store) EnsureTenants(ctx context.Context, tenants ...string) error {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	for _, tenant := range tenants {
		if err := store.ValidateKey("tenant", tenant); err != nil {
			return err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	resp, err := s.kv.Get(rctx, tenantsSpace, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	cancel()
	if err != nil {
		return s.failure("ensure tenants", err)
	}
	have := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = true
	}
	var puts []clientv3.Op
	for _, tenant := range tenants {
		if k := tenantKey(tenant); !have[k] {
			have[k] = true
			puts = append(puts, clientv3.OpPut(k, ""))
		}
	}
	for len(puts) > 0 {
		n := min(len(puts), maxTxnOps-1)
		// Idempotent, so an ambiguous failure is simply retried.
		err := s.retry(ctx, func(ctx context.Context) (bool, error) {
			_, err := s.kv.Txn(ctx).Then(append(puts[:n:n], touchLastWrite)...).Commit()
			return err == nil, err
		})
		if err != nil {
			return s.failure("ensure tenants", err)
		}
		puts = puts[n:]
	}
	return nil
}

// Create stores a new todo: one transaction that requires the tenant's
// marker and a new id, and writes the record under both keys.
func (s *Store) Create(ctx context.Context, tenant, owner, content string) (store.Todo, error) {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return store.Todo{}, err
	}
	defer leave()
	todo, val, err := store.NewTodo(tenant, owner, content)
	if err != nil {
		return store.Todo{}, err
	}
	tk, ik, ok, dk := tenantKey(tenant), idKey(tenant, todo.ID), ownerKey(tenant, owner, todo.ID), tombKey(tenant, todo.ID)
	var opErr error
	err = s.retry(ctx, func(ctx context.Context) (bool, error) {
		resp, err := s.kv.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(tk), ">", 0), clientv3.Compare(clientv3.CreateRevision(ik), "=", 0),
				clientv3.Compare(clientv3.CreateRevision(dk), "=", 0)).
			Then(clientv3.OpPut(ik, string(val)), clientv3.OpPut(ok, string(val)), touchLastWrite).
			Else(clientv3.OpGet(tk), clientv3.OpGet(ik), clientv3.OpGet(dk, clientv3.WithKeysOnly())).
			Commit()
		if err != nil {
			return false, err
		}
		if resp.Succeeded {
			return true, nil
		}
		marker, existing, tomb := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs, resp.Responses[2].GetResponseRange().Kvs
		switch {
		case len(existing) == 1 && string(existing[0].Value) == string(val):
			// An earlier attempt committed and only its answer was lost.
			return true, nil
		case len(existing) == 0 && len(tomb) == 1:
			// An earlier attempt committed, its answer was lost, and the
			// todo was deleted since (someone listed it): it was created.
			// Writing it again would bring a deleted todo back.
			return true, nil
		case len(existing) == 1:
			// 80 random bits make this practically impossible; never overwrite.
			opErr = fmt.Errorf("todo id %s already exists", todo.ID)
		case len(marker) == 0:
			opErr = fmt.Errorf("tenant %q: %w", tenant, store.ErrUnknownTenant)
		}
		return true, nil
	})
	if err != nil {
		return store.Todo{}, s.failure("create todo", err)
	}
	if opErr != nil {
		return store.Todo{}, opErr
	}
	return todo, nil
}

// Get returns one todo.
func (s *Store) Get(ctx context.Context, tenant, id string) (store.Todo, error) {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return store.Todo{}, err
	}
	defer leave()
	if err := store.ValidateTodoKey(tenant, id); err != nil {
		return store.Todo{}, err
	}
	if ok, err := s.cached(ctx, "get todo"); err != nil {
		return store.Todo{}, err
	} else if ok {
		if todo, ok, err := s.cache.get(tenant, id); ok {
			return todo, err
		}
	}
	resp, err := s.read(ctx, clientv3.OpGet(tenantKey(tenant)), clientv3.OpGet(idKey(tenant, id)))
	if err != nil {
		return store.Todo{}, s.failure("get todo", err)
	}
	if len(resp[0].Kvs) == 0 {
		return store.Todo{}, fmt.Errorf("tenant %q: %w", tenant, store.ErrUnknownTenant)
	}
	if len(resp[1].Kvs) == 0 {
		return store.Todo{}, store.NotFound(tenant, id)
	}
	return store.DecodeRecord(resp[1].Kvs[0].Value)
}

// List returns a page of the tenant's todos, or of one owner's, in id
// order: one range read in the id or the owner index, from just after the
// cursor's id.
func (s *Store) List(ctx context.Context, tenant string, opts store.ListOptions) (store.Page, error) {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return store.Page{}, err
	}
	defer leave()
	limit, after, err := opts.Resolve(tenant)
	if err != nil {
		return store.Page{}, err
	}
	if ok, err := s.cached(ctx, "list todos"); err != nil {
		return store.Page{}, err
	} else if ok {
		if page, ok, err := s.cache.list(tenant, opts.Owner, after, limit); ok {
			return page, err
		}
	}
	prefix := idPrefix(tenant)
	if opts.Owner != "" {
		prefix = ownerPrefix(tenant, opts.Owner)
	}
	start := prefix
	if after != "" {
		start = prefix + after + "\x00" // strictly after the cursor's id
	}
	resp, err := s.read(ctx, clientv3.OpGet(tenantKey(tenant)),
		clientv3.OpGet(start, clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)), clientv3.WithLimit(int64(limit))))
	if err != nil {
		return store.Page{}, s.failure("list todos", err)
	}
	if len(resp[0].Kvs) == 0 {
		return store.Page{}, fmt.Errorf("tenant %q: %w", tenant, store.ErrUnknownTenant)
	}
	page := store.Page{Todos: make([]store.Todo, 0, len(resp[1].Kvs))}
	for _, kv := range resp[1].Kvs {
		todo, err := store.DecodeRecord(kv.Value)
		if err != nil {
			return store.Page{}, fmt.Errorf("tenant %q, key %q: %w", tenant, kv.Key, err)
		}
		page.Todos = append(page.Todos, todo)
	}
	if resp[1].More && len(page.Todos) > 0 {
		page.NextCursor = store.EncodeCursor(page.Todos[len(page.Todos)-1].ID)
	}
	return page, nil
}

// Delete reads the todo, asks allow, and deletes both keys only if the
// record is unchanged since the read (its ModRevision); otherwise it reads
// and decides again. Of concurrent deletes of one todo exactly one succeeds:
// the others find it gone. After an ambiguous failure it reads again: a todo
// that is gone then was deleted, by this call or, if one raced it in that
// moment, by another.
func (s *Store) Delete(ctx context.Context, tenant, id string, allow func(store.Todo) bool) (store.Todo, error) {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return store.Todo{}, err
	}
	defer leave()
	if err := store.ValidateTodoKey(tenant, id); err != nil {
		return store.Todo{}, err
	}
	if allow == nil {
		return store.Todo{}, fmt.Errorf("%w: delete without a condition", store.ErrInvalid)
	}
	tk, ik, dk := tenantKey(tenant), idKey(tenant, id), tombKey(tenant, id)
	// token marks this call's tombstone: after an ambiguous attempt, a todo
	// that is gone was deleted by this call only if the tombstone is its.
	token := store.NewID()
	var (
		deleted store.Todo
		opErr   error
		// ambiguous is set once a delete attempt failed in a way that may
		// have deleted the todo; deleted then holds that todo.
		ambiguous bool
	)
	err = s.retry(ctx, func(ctx context.Context) (bool, error) {
		opErr = nil
		resp, err := s.kv.Txn(ctx).Then(clientv3.OpGet(tk), clientv3.OpGet(ik), clientv3.OpGet(dk)).Commit()
		if err != nil {
			return false, err
		}
		marker, rec, tomb := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs, resp.Responses[2].GetResponseRange().Kvs
		switch {
		case len(marker) == 0:
			opErr = fmt.Errorf("tenant %q: %w", tenant, store.ErrUnknownTenant)
			return true, nil
		case len(rec) == 0 && ambiguous && len(tomb) == 1 && string(tomb[0].Value) == token:
			return true, nil // deleted holds the todo of the ambiguous attempt
		case len(rec) == 0:
			// Never there, or deleted by another call (whose tombstone
			// this is), even if an attempt of this one failed ambiguously.
			opErr = store.NotFound(tenant, id)
			return true, nil
		}
		todo, err := store.DecodeRecord(rec[0].Value)
		if err != nil {
			return true, fmt.Errorf("tenant %q, todo %s: %w", tenant, id, err)
		}
		if !allow(todo) {
			opErr = fmt.Errorf("delete todo %s: %w", id, store.ErrDenied)
			return true, nil
		}
		lease, err := s.tombstones.lease(ctx)
		if err != nil {
			return false, err
		}
		del, err := s.kv.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(ik), "=", rec[0].ModRevision)).
			Then(clientv3.OpDelete(ik), clientv3.OpDelete(ownerKey(tenant, todo.OwnerID, id)),
				clientv3.OpPut(dk, token, clientv3.WithLease(lease)), touchLastWrite).
			Commit()
		if s.tombstones.lost(err) {
			return false, errConflict // nothing written: try again on a new lease
		}
		if err != nil {
			ambiguous = true
			deleted = todo
			return false, err
		}
		if !del.Succeeded {
			// Changed or deleted since the read: read and decide again.
			return false, errConflict
		}
		deleted = todo
		return true, nil
	})
	if err != nil {
		return store.Todo{}, s.failure("delete todo", err)
	}
	if opErr != nil {
		return store.Todo{}, opErr
	}
	return deleted, nil
}

// read runs read operations in one linearizable transaction, so that the
// tenant's marker and the data are seen at one revision. Reads are safe to
// repeat, so one the cluster could not answer (a leader election, a broken
// connection) is tried again within RequestTimeout, on the caller's context:
// a reader then sees a slower answer instead of an error.
func (s *Store) read(ctx context.Context, ops ...clientv3.Op) ([]*clientv3.GetResponse, error) {
	var resp *clientv3.TxnResponse
	err := s.retryWithin(ctx, s.opts.RequestTimeout, func(ctx context.Context) (bool, error) {
		var err error
		resp, err = s.kv.Txn(ctx).Then(ops...).Commit()
		return err == nil, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]*clientv3.GetResponse, len(resp.Responses))
	for i, r := range resp.Responses {
		out[i] = (*clientv3.GetResponse)(r.GetResponseRange())
	}
	return out, nil
}
