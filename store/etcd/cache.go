package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/todo-gateway/todo-gateway/store"
)

// Consistent reads from a watch-fed copy, as Kubernetes' API server serves
// them from its watch cache (KEP-2340). Every instance keeps the records of
// every tenant in memory, decoded, indexed by id and by owner, fed by one
// watch on the store's prefix. A read does not range over etcd: it learns
// the cluster's current revision with a linearizable read of one absent key
// (shared by every read that arrived before that read started), waits until
// the copy has applied that revision, and answers from the copy. A todo
// acknowledged by any instance before the read began is therefore in the
// answer, as it would be with a linearizable range read; a copy that cannot
// catch up in time (its watch is cut off from the cluster, say) is not
// used: the read goes to etcd.
//
// The copy knows it has applied a revision only from the events it
// received: the write key's own event arrives on the watch after every
// earlier event of the prefix. Progress notifications are not used: a
// server without the fix of etcd issue 15220 (Debian's 3.4.23 among them,
// as TestClusterNemesis showed) may send a requested one ahead of events
// still on their way, which would make a stale copy look current. Nor is the cluster's revision, which moves with every
// write outside the prefix, and so could not be reached without them.

// Defaults of CacheOptions.
const (
	DefaultCacheMaxBytes = 256 << 20
	DefaultCacheWait     = time.Second
	// DefaultCacheCheckInterval: see CacheOptions.CheckInterval and the
	// measurements in docs/etcd.md.
	DefaultCacheCheckInterval = 2 * time.Millisecond
)

// CacheOptions switch the copy on (Options.Cache) and bound it.
type CacheOptions struct {
	// MaxBytes bounds the copy's estimated size (records, their indexes
	// and per-todo overhead, see TodoCost). A copy that would grow past it
	// is dropped and every read goes to etcd until the gateway restarts.
	// 0 means DefaultCacheMaxBytes.
	MaxBytes int64
	// Wait bounds how long a read waits for the copy to reach the
	// cluster's revision before it reads from etcd instead. 0 means
	// DefaultCacheWait.
	Wait time.Duration
	// CheckInterval is the least time between the starts of two revision
	// checks: each costs the members a linearizable read (a ReadIndex
	// round through the leader), so it bounds what one instance's reads
	// cost etcd, at the price of up to that much latency under load.
	// 0: no spacing (one check per round trip); negative is 0.
	CheckInterval time.Duration
}

// Cache states, as /status and the metrics show them.
const (
	CacheLoading   = "loading"    // listing the prefix; reads go to etcd
	CacheReady     = "ready"      // reads are answered from the copy
	CacheOverLimit = "over_limit" // the copy passed MaxBytes and was dropped; reads go to etcd
	CacheStopped   = "stopped"    // the store was closed
)

// CacheStats is what the copy holds and how reads were answered.
type CacheStats struct {
	State    string `json:"state"`
	Todos    int    `json:"todos"`
	Bytes    int64  `json:"bytes"` // estimated, as MaxBytes counts it
	MaxBytes int64  `json:"max_bytes"`
	// Revision is the cluster revision the copy has applied.
	Revision int64 `json:"revision"`
	// Served counts reads answered from the copy; Fallbacks reads sent to
	// etcd because the copy was not ready or did not catch up within Wait;
	// Checks the revision reads made for them (one serves many reads).
	Served    uint64 `json:"reads_served"`
	Fallbacks uint64 `json:"reads_from_etcd"`
	Checks    uint64 `json:"revision_checks"`
	// CheckSeconds is the time the checks took, one after another: over
	// Checks, a check's round trip (the leader's read index included).
	// WaitSeconds is the time the reads answered from the copy waited
	// before it was fresh enough for them: over Served, what the
	// consistency costs a read in latency.
	CheckSeconds float64 `json:"revision_check_seconds"`
	WaitSeconds  float64 `json:"read_wait_seconds"`
	// CheckEndpoint is the endpoint the checks go to, the leader's; empty
	// while they go to every endpoint in turn (one endpoint configured, or
	// the leader not known).
	CheckEndpoint string `json:"check_endpoint,omitempty"`
	// Reloads counts listings of the whole prefix: the first, and one after
	// each compaction that overtook the watch.
	Reloads uint64 `json:"reloads"`
}

// The estimated cost of a cached todo beyond its three strings: the Todo
// value, its pointer in the id and owner trees, the string headers' backing
// allocations rounded up. Measured by TestCacheMemoryEstimate, which keeps
// the estimate within a quarter of the heap growth.
const (
	todoOverhead  = 112
	ownerOverhead = 256
)

// TodoCost is the estimated size of a cached todo, as MaxBytes counts it.
func TodoCost(t *store.Todo) int64 {
	return int64(len(t.ID)+len(t.Content)+len(t.OwnerID)) + todoOverhead
}

var errOverLimit = errors.New("the todo cache passed its size limit")

// todoTree is a tenant's (or an owner's) todos in id order.
type todoTree = btree.BTreeG[*store.Todo]

func newTodoTree() *todoTree {
	return btree.NewG(32, func(a, b *store.Todo) bool { return a.ID < b.ID })
}

// tenantCopy is one tenant's todos.
type tenantCopy struct {
	// marked says the tenant's marker exists (EnsureTenants ran for it):
	// without it reads are ErrUnknownTenant, as they are in etcd.
	marked bool
	// broken says a record under the tenant could not be decoded; its
	// reads then go to etcd, which reports the damage as it always did.
	broken bool
	all    *todoTree
	owners map[string]*todoTree
}

// todoCopy is the data of the copy: every tenant's todos, and its size.
type todoCopy struct {
	tenants  map[string]*tenantCopy
	todos    int
	bytes    int64
	maxBytes int64
}

func newTodoCopy(maxBytes int64) *todoCopy {
	return &todoCopy{tenants: map[string]*tenantCopy{}, maxBytes: maxBytes}
}

func (c *todoCopy) tenant(id string) *tenantCopy {
	t := c.tenants[id]
	if t == nil {
		t = &tenantCopy{all: newTodoTree(), owners: map[string]*todoTree{}}
		c.tenants[id] = t
	}
	return t
}

// apply applies one key's new value (or its deletion) to the copy. Keys
// outside the tenant markers and the id index (the owner index) carry
// nothing the copy does not already have.
func (c *todoCopy) apply(key string, value []byte, deleted bool) error {
	switch {
	case strings.HasPrefix(key, tenantsSpace):
		tenant := key[len(tenantsSpace):]
		if deleted {
			// Never done by the gateway; an operator removed the marker.
			if t := c.tenants[tenant]; t != nil {
				t.marked = false
			}
			return nil
		}
		c.tenant(tenant).marked = true
	case strings.HasPrefix(key, idsSpace):
		tenant, id, ok := strings.Cut(key[len(idsSpace):], "/")
		if !ok {
			return nil
		}
		t := c.tenant(tenant)
		if deleted {
			c.remove(t, id)
			return nil
		}
		todo, err := store.DecodeRecord(value)
		if err != nil {
			t.broken = true
			return nil
		}
		c.remove(t, id) // records are immutable; an import may write the same one again
		c.insert(t, &todo)
	}
	if c.bytes > c.maxBytes {
		return errOverLimit
	}
	return nil
}

func (c *todoCopy) insert(t *tenantCopy, todo *store.Todo) {
	t.all.ReplaceOrInsert(todo)
	owned := t.owners[todo.OwnerID]
	if owned == nil {
		owned = newTodoTree()
		t.owners[todo.OwnerID] = owned
		c.bytes += ownerOverhead + int64(len(todo.OwnerID))
	}
	owned.ReplaceOrInsert(todo)
	c.todos++
	c.bytes += TodoCost(todo)
}

func (c *todoCopy) remove(t *tenantCopy, id string) {
	old, ok := t.all.Delete(&store.Todo{ID: id})
	if !ok {
		return
	}
	if owned := t.owners[old.OwnerID]; owned != nil {
		owned.Delete(old)
		if owned.Len() == 0 {
			delete(t.owners, old.OwnerID)
			c.bytes -= ownerOverhead + int64(len(old.OwnerID))
		}
	}
	c.todos--
	c.bytes -= TodoCost(old)
}

// cache keeps a todoCopy current and answers reads from it.
type cache struct {
	kv      clientv3.KV      // under the store's prefix
	watcher clientv3.Watcher // under the store's prefix
	opts    CacheOptions
	store   *Store // for its logger, timeouts and retry loop
	checks  revisionChecks
	// leader sends the checks to the leader (leader.go); nil: through
	// the store's client, as every other request.
	leader *leaderChecks

	mu    sync.RWMutex
	state string
	data  *todoCopy
	// applied is the revision up to which every event under the prefix
	// is in data.
	applied int64
	// advanced is closed, and replaced, whenever applied or state changes.
	advanced chan struct{}

	served, fallbacks, reloads atomic.Uint64
	waited                     atomic.Int64 // nanoseconds, CacheStats.WaitSeconds

	// restart ends the current watch, and beforeWatch runs before each
	// watch starts: tests cut the connection and hold the copy behind.
	restart     chan struct{}
	beforeWatch atomic.Pointer[func()]
	stop        context.CancelFunc
	done        chan struct{}
}

func newCache(s *Store, watcher clientv3.Watcher, opts CacheOptions, leader *leaderChecks) *cache {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultCacheMaxBytes
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultCacheWait
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &cache{
		kv: s.kv, watcher: watcher, opts: opts, store: s, leader: leader,
		state: CacheLoading, advanced: make(chan struct{}),
		restart: make(chan struct{}, 1), stop: stop, done: make(chan struct{}),
	}
	c.checks.read, c.checks.interval = c.currentRevision, opts.CheckInterval
	go c.run(ctx)
	return c
}

// close stops the watch and drops the copy.
func (c *cache) close() {
	c.stop()
	<-c.done
	c.leader.close()
}

// run loads the copy, then follows the watch, loading again when a
// compaction overtook it, until the store closes or the copy passes its
// limit.
func (c *cache) run(ctx context.Context) {
	defer close(c.done)
	defer c.setState(CacheStopped, nil, 0)
	log := c.store.opts.Logger
	backoff := 50 * time.Millisecond
	var rev int64 // applied revision; 0: load first
	for ctx.Err() == nil {
		var err error
		if rev == 0 {
			c.reloads.Add(1)
			rev, err = c.load(ctx)
		} else {
			rev, err = c.follow(ctx, rev)
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errOverLimit):
			log.Warn("the todo cache passed its size limit and was dropped; reads go to etcd until restart",
				"max_bytes", c.opts.MaxBytes)
			c.setState(CacheOverLimit, nil, 0)
			<-ctx.Done()
			return
		case errors.Is(err, errCompacted):
			log.Warn("the todo cache fell behind a compaction; listing the prefix again")
			c.setState(CacheLoading, nil, 0)
			rev = 0
			continue
		case err != nil:
			// A load or a watch that failed (etcd out of reach, no
			// leader): reads meanwhile wait for the copy or go to etcd.
			log.Warn("the todo cache lost etcd; trying again", "err", err.Error(), "revision", rev)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
	}
}

var errCompacted = errors.New("compacted")

// loadPage is how many records one range of the listing reads.
const loadPage = 1000

// load lists the prefix at one revision into a new copy, serves it, and
// returns that revision.
func (c *cache) load(ctx context.Context) (int64, error) {
	data := newTodoCopy(c.opts.MaxBytes)
	// The markers, with a linearizable read: its revision is the copy's.
	var rev int64
	for _, prefix := range []string{tenantsSpace, idsSpace} {
		start, end := prefix, clientv3.GetPrefixRangeEnd(prefix)
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(loadPage)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			rctx, cancel := context.WithTimeout(ctx, c.store.opts.RequestTimeout)
			resp, err := c.kv.Get(rctx, start, opts...)
			cancel()
			if err != nil {
				return 0, fmt.Errorf("list %s: %w", prefix, err)
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				if err := data.apply(string(kv.Key), kv.Value, false); err != nil {
					return 0, err
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	c.setState(CacheReady, data, rev)
	return rev, nil
}

// follow applies the watch's events from rev+1 on, and returns the
// revision applied when the watch ended, and why it ended.
func (c *cache) follow(ctx context.Context, rev int64) (int64, error) {
	if hold := c.beforeWatch.Load(); hold != nil {
		(*hold)()
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// Every record a reader needs is in the event's value (records are
	// immutable, so deletions need no previous value).
	events := c.watcher.Watch(wctx, "", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		var resp clientv3.WatchResponse
		var open bool
		select {
		case resp, open = <-events:
		case <-c.restart:
			return rev, errors.New("watch restarted")
		}
		if !open {
			if ctx.Err() != nil {
				return rev, ctx.Err()
			}
			return rev, errors.New("watch closed")
		}
		if resp.CompactRevision != 0 {
			return rev, errCompacted
		}
		if err := resp.Err(); err != nil {
			return rev, err
		}
		if len(resp.Events) == 0 {
			continue // progress notifications are not trusted (above)
		}
		// A response's header may name a revision beyond its events (a
		// watch catching up gets its history in batches), so the copy
		// counts as current only up to the last event it applied.
		rev = max(rev, resp.Events[len(resp.Events)-1].Kv.ModRevision)
		if err := c.advance(rev, resp.Events); err != nil {
			return rev, err
		}
	}
}

// advance applies events and moves the applied revision to rev.
func (c *cache) advance(rev int64, events []*clientv3.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data == nil {
		return nil
	}
	for _, ev := range events {
		if err := c.data.apply(string(ev.Kv.Key), ev.Kv.Value, ev.Type == clientv3.EventTypeDelete); err != nil {
			return err
		}
	}
	if rev > c.applied {
		c.applied = rev
		close(c.advanced)
		c.advanced = make(chan struct{})
	}
	return nil
}

func (c *cache) setState(state string, data *todoCopy, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state, c.data, c.applied = state, data, rev
	close(c.advanced)
	c.advanced = make(chan struct{})
}

// currentRevision is the revision of the prefix's latest write: that of
// lastWriteKey, with a linearizable read (sent to the leader when known);
// 0 before any write.
func (c *cache) currentRevision(ctx context.Context) (int64, error) {
	var rev int64
	err := c.store.retryWithin(ctx, c.store.opts.RequestTimeout, func(ctx context.Context) (bool, error) {
		resp, err := c.leader.get(ctx, c.kv, lastWriteKey, clientv3.WithKeysOnly())
		if err != nil {
			return false, err
		}
		rev = 0
		if len(resp.Kvs) == 1 {
			rev = resp.Kvs[0].ModRevision
		}
		return true, nil
	})
	return rev, err
}

// fresh waits until the copy holds every write acknowledged before it was
// called. ok false means it could not (not loaded, or not caught up within
// Wait): read from etcd. An error means etcd could not say its revision.
func (c *cache) fresh(ctx context.Context) (ok bool, err error) {
	c.mu.RLock()
	state := c.state
	c.mu.RUnlock()
	if state != CacheReady {
		c.fallbacks.Add(1)
		return false, nil
	}
	start := time.Now()
	rev, err := c.checks.revision(ctx)
	if err != nil {
		return false, err
	}
	var deadline <-chan time.Time
	for {
		c.mu.RLock()
		state, applied, advanced := c.state, c.applied, c.advanced
		c.mu.RUnlock()
		switch {
		case state != CacheReady:
			c.fallbacks.Add(1)
			return false, nil
		case applied >= rev:
			c.waited.Add(int64(time.Since(start)))
			return true, nil
		}
		// Behind: the events are on their way.
		if deadline == nil {
			timer := time.NewTimer(c.opts.Wait)
			defer timer.Stop()
			deadline = timer.C
		}
		select {
		case <-advanced:
		case <-deadline:
			c.fallbacks.Add(1)
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// list answers a List from the copy; ok false: read from etcd.
func (c *cache) list(tenant, owner, after string, limit int) (page store.Page, ok bool, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, err := c.tenantLocked(tenant)
	if t == nil || err != nil {
		return store.Page{}, err != nil, err
	}
	tree := t.all
	if owner != "" {
		tree = t.owners[owner]
	}
	page.Todos = make([]store.Todo, 0, min(limit, 16))
	if tree == nil {
		c.served.Add(1)
		return page, true, nil
	}
	more := false
	tree.AscendGreaterOrEqual(&store.Todo{ID: after}, func(todo *store.Todo) bool {
		if todo.ID == after {
			return true // strictly after the cursor
		}
		if len(page.Todos) == limit {
			more = true
			return false
		}
		page.Todos = append(page.Todos, *todo)
		return true
	})
	if more && len(page.Todos) > 0 {
		page.NextCursor = store.EncodeCursor(page.Todos[len(page.Todos)-1].ID)
	}
	c.served.Add(1)
	return page, true, nil
}

// get answers a Get from the copy; ok false: read from etcd.
func (c *cache) get(tenant, id string) (todo store.Todo, ok bool, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, err := c.tenantLocked(tenant)
	if t == nil || err != nil {
		return store.Todo{}, err != nil, err
	}
	c.served.Add(1)
	found, ok := t.all.Get(&store.Todo{ID: id})
	if !ok {
		return store.Todo{}, true, store.NotFound(tenant, id)
	}
	return *found, true, nil
}

// tenantLocked is the tenant's copy, ErrUnknownTenant, or neither when the
// copy cannot answer for the tenant.
func (c *cache) tenantLocked(tenant string) (*tenantCopy, error) {
	if c.data == nil {
		c.fallbacks.Add(1)
		return nil, nil
	}
	t := c.data.tenants[tenant]
	switch {
	case t == nil || !t.marked:
		c.served.Add(1)
		return nil, fmt.Errorf("tenant %q: %w", tenant, store.ErrUnknownTenant)
	case t.broken:
		c.fallbacks.Add(1)
		return nil, nil
	}
	return t, nil
}

func (c *cache) stats() CacheStats {
	c.mu.RLock()
	st := CacheStats{State: c.state, MaxBytes: c.opts.MaxBytes, Revision: c.applied}
	if c.data != nil {
		st.Todos, st.Bytes = c.data.todos, c.data.bytes
	}
	c.mu.RUnlock()
	st.Served, st.Fallbacks, st.Reloads = c.served.Load(), c.fallbacks.Load(), c.reloads.Load()
	st.Checks = c.checks.count.Load()
	st.CheckSeconds = time.Duration(c.checks.busy.Load()).Seconds()
	st.WaitSeconds = time.Duration(c.waited.Load()).Seconds()
	st.CheckEndpoint = c.leader.current()
	return st
}

// revisionChecks shares revision reads among concurrent reads. A read may
// use a revision read that started after it arrived (one that started
// earlier could miss a write acknowledged just before the read): it joins
// the check waiting to start. At most one check is in flight and one
// waits, and a check starts no sooner than interval after the previous
// one started: under load etcd sees one check per round trip or per
// interval, whichever is longer, however many reads there are; a read
// that finds no check recent waits for none.
type revisionChecks struct {
	read     func(context.Context) (int64, error)
	interval time.Duration
	count    atomic.Uint64
	busy     atomic.Int64 // nanoseconds spent in read

	mu      sync.Mutex
	running bool           // a goroutine runs checks
	pending *revisionCheck // not started yet: every read now joins it
	// lastStart is when the latest check started; only the goroutine
	// running checks uses it.
	lastStart time.Time
}

type revisionCheck struct {
	done    chan struct{}
	rev     int64
	err     error
	readers int // joined it, under revisionChecks.mu
}

func (r *revisionChecks) revision(ctx context.Context) (int64, error) {
	r.mu.Lock()
	check := r.pending
	if check == nil {
		check = &revisionCheck{done: make(chan struct{})}
		r.pending = check
		if !r.running {
			r.running = true
			go r.run()
		}
	}
	check.readers++
	r.mu.Unlock()
	select {
	case <-check.done:
		return check.rev, check.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run performs the pending check, then the one that gathered readers
// meanwhile, until none waits. Checks run on their own context: one reader
// leaving must not fail the others that joined it.
func (r *revisionChecks) run() {
	for {
		if wait := r.interval - time.Since(r.lastStart); wait > 0 {
			time.Sleep(wait) // more reads join the pending check meanwhile
		}
		r.mu.Lock()
		check := r.pending
		r.pending = nil
		r.running = check != nil
		r.mu.Unlock()
		if check == nil {
			return
		}
		r.lastStart = time.Now()
		r.count.Add(1)
		check.rev, check.err = r.read(context.Background())
		r.busy.Add(int64(time.Since(r.lastStart)))
		close(check.done)
	}
}
