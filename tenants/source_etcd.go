package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"
)

// The configuration's keys under the deployment's prefix, beside the
// store's ("t/", "i/", "o/"), which never start with "config/".
const (
	// EtcdDocumentKey holds the whole tenants document, as pushed.
	EtcdDocumentKey = "config/tenants"
	// etcdAppliedPrefix holds, per running instance and under a lease,
	// what it serves (Applied).
	etcdAppliedPrefix = "config/applied/"
)

// MaxEtcdDocument is the largest document Push writes: etcd refuses a
// request above 1.5 MiB unless its --max-request-bytes is raised, and the
// request carries the key and some framing besides the document. At about
// 1 KiB a tenant that is some 1,500 tenants.
const MaxEtcdDocument = 1536<<10 - 4<<10

// appliedTTL is how long an instance's Applied record outlives the
// instance (a crash; a clean stop revokes it at once).
const appliedTTL = 10 // seconds, etcd's lease unit

// Errors of the etcd source.
var (
	// ErrNoDocument: nothing has been pushed under the prefix yet.
	ErrNoDocument = errors.New("no tenants document in etcd")
	// ErrConflict: the document changed between reading and writing it.
	ErrConflict = errors.New("the tenants document in etcd changed since it was read")
)

// EtcdSource is the tenants document under EtcdDocumentKey in the etcd
// cluster and prefix of a store.etcd block, which every instance reads at
// start and watches from the revision it read. Documents are written by
// Push (the "tenants push" command), which refuses a document that does not
// validate and writes only over the revision it read.
type EtcdSource struct {
	cli     *clientv3.Client
	kv      clientv3.KV
	watcher clientv3.Watcher
	name    string
	timeout time.Duration
	// bootstrap holds an instance's own settings (listen, admin, store,
	// http, shutdown): Parse gives it the document's tenants. Nil for the
	// commands, which serve nothing.
	bootstrap *Config

	mu sync.Mutex
	// readAt is the cluster's revision at the last Read: Watch starts
	// after it, so no change made after the read is missed.
	readAt int64
}

// OpenEtcdSource connects to the cluster of cfg's store.etcd block. cfg is
// an instance's bootstrap (tenants_from "etcd"), whose settings Parse keeps,
// or, for the tenants commands, any configuration whose store driver is
// etcd. Close closes the connection.
func OpenEtcdSource(cfg *Config) (*EtcdSource, error) {
	e := cfg.Store.Etcd
	if cfg.Store.Driver != DriverEtcd || e == nil {
		return nil, fmt.Errorf(`the configuration's store is %q, not "etcd": the tenants document lives in the store's etcd cluster, so its store.etcd block says where`, cfg.Store.Driver)
	}
	cc, err := e.ClientConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", e.Endpoints, err)
	}
	s := &EtcdSource{
		cli:     cli,
		kv:      namespace.NewKV(cli.KV, e.PrefixOrDefault()),
		watcher: namespace.NewWatcher(cli.Watcher, e.PrefixOrDefault()),
		name:    fmt.Sprintf("etcd %s key %q", strings.Join(e.Endpoints, ","), e.PrefixOrDefault()+EtcdDocumentKey),
		timeout: e.RequestTimeoutOrDefault(),
	}
	if cfg.TenantsFrom == TenantsFromEtcd {
		s.bootstrap = cfg
	}
	return s, nil
}

// Close closes the connection.
func (s *EtcdSource) Close() error { return s.cli.Close() }

func (s *EtcdSource) String() string { return s.name }

// Read reads the document (a linearizable read).
func (s *EtcdSource) Read(ctx context.Context) (Document, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.kv.Get(ctx, EtcdDocumentKey)
	if err != nil {
		return Document{}, fmt.Errorf("%s: %w", s.name, err)
	}
	s.mu.Lock()
	s.readAt = max(s.readAt, resp.Header.Revision)
	s.mu.Unlock()
	if len(resp.Kvs) == 0 {
		return Document{}, fmt.Errorf(`%s: %w: push one with "todo-gateway tenants push --config FILE"`, s.name, ErrNoDocument)
	}
	return Document{Data: resp.Kvs[0].Value, Revision: resp.Kvs[0].ModRevision}, nil
}

// Refusal is a document an instance could not apply, and why.
type Refusal struct {
	Revision int64  `json:"revision"`
	Reason   string `json:"reason"`
}

// maxHistory bounds how many older versions of the document ReadValid
// looks at.
const maxHistory = 100

// ReadValid reads the newest document that loads (Parse), for an instance
// that starts: when the newest does not (written by a newer gateway, or
// by hand past "tenants push"), a running instance keeps what it serves,
// and one that starts walks back through the key's history, which etcd
// keeps until it is compacted, to the newest that does. refused says why
// the newest was refused; err, that no version loads.
func (s *EtcdSource) ReadValid(ctx context.Context) (cfg *Config, doc Document, refused *Refusal, err error) {
	doc, err = s.Read(ctx)
	if err != nil {
		return nil, Document{}, nil, err
	}
	cfg, perr := s.Parse(doc.Data)
	if perr == nil {
		return cfg, doc, nil, nil
	}
	refused = &Refusal{Revision: doc.Revision, Reason: perr.Error()}
	for rev, n := doc.Revision, 0; n < maxHistory; n++ {
		older, ok, err := s.documentAt(ctx, rev-1)
		if err != nil {
			return nil, Document{}, refused, fmt.Errorf("%s: the document of revision %d does not load, and no older one could be read (%v): %w", s.name, doc.Revision, err, perr)
		}
		if !ok {
			break
		}
		if cfg, err := s.Parse(older.Data); err == nil {
			return cfg, older, refused, nil
		}
		rev = older.Revision
	}
	return nil, Document{}, refused, fmt.Errorf("%s: the document of revision %d does not load, nor does any older one in the history: %w", s.name, doc.Revision, perr)
}

// documentAt reads the document as it was at revision rev; ok is false when it
// did not exist then.
func (s *EtcdSource) documentAt(ctx context.Context, rev int64) (doc Document, ok bool, err error) {
	if rev <= 0 {
		return Document{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.kv.Get(ctx, EtcdDocumentKey, clientv3.WithRev(rev))
	if err != nil || len(resp.Kvs) == 0 {
		return Document{}, false, err
	}
	return Document{Data: resp.Kvs[0].Value, Revision: resp.Kvs[0].ModRevision}, true, nil
}

// Parse parses a pushed document (ParseDocument) and, for an instance,
// puts its tenants into the instance's own settings: the document's
// listen, store and other process settings are never used by an instance.
func (s *EtcdSource) Parse(data []byte) (*Config, error) {
	doc, err := ParseDocument(data)
	if err != nil || s.bootstrap == nil {
		return doc, err
	}
	cfg := *s.bootstrap
	cfg.TenantsFrom = ""
	cfg.Tenants = doc.Tenants
	return &cfg, nil
}

// ParseDocument parses a document meant for etcd exactly as Parse parses a
// file (what "check" reports), and also refuses one that does not list the
// tenants itself.
func ParseDocument(data []byte) (*Config, error) {
	cfg, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if cfg.TenantsFrom != "" {
		return nil, &ValidationError{Problems: []Problem{{Path: "tenants_from",
			Message: `a document in etcd lists the tenants itself; "tenants_from" belongs in an instance's bootstrap file`}}}
	}
	return cfg, nil
}

// watchRetry is the pause before watching again after the watch failed
// and the cluster could not be read either.
const watchRetry = time.Second

// Watch calls changed whenever the document is written or deleted after
// the last Read. A watch that fails, or that starts behind a compaction,
// is replaced by one from the cluster's current revision and changed is
// called, so the caller reads the document again: no write is missed.
func (s *EtcdSource) Watch(ctx context.Context, changed func(), problem func(error)) error {
	s.mu.Lock()
	from := s.readAt
	s.mu.Unlock()
	if from == 0 {
		rev, err := s.revision(ctx)
		if err != nil {
			return err
		}
		from = rev
	}
	go func() {
		for {
			err := s.watchFrom(ctx, from, changed)
			if ctx.Err() != nil {
				return
			}
			problem(fmt.Errorf("watching %s from revision %d: %w; reading it again", s.name, from+1, err))
			for {
				rev, err := s.revision(ctx)
				if err == nil {
					from = rev
					break
				}
				problem(err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(watchRetry):
				}
			}
			changed()
		}
	}()
	return nil
}

// watchFrom watches the document after revision from until the watch ends,
// and says why it ended.
func (s *EtcdSource) watchFrom(ctx context.Context, from int64, changed func()) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range s.watcher.Watch(wctx, EtcdDocumentKey, clientv3.WithRev(from+1)) {
		if err := resp.Err(); err != nil {
			return err // compaction included: rpctypes.ErrCompacted
		}
		if len(resp.Events) > 0 {
			changed()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("the watch ended")
}

// revision reads the cluster's current revision.
func (s *EtcdSource) revision(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.kv.Get(ctx, EtcdDocumentKey, clientv3.WithKeysOnly())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.name, err)
	}
	return resp.Header.Revision, nil
}

// Push writes data as the document if the document's revision is still
// over (0: no document yet), and returns the new revision. data must pass
// ParseDocument and fit MaxEtcdDocument. When another push came first,
// the error wraps ErrConflict. When etcd's answer is lost, Push reads the
// document again: finding data there, it reports success.
func (s *EtcdSource) Push(ctx context.Context, data []byte, over int64) (int64, error) {
	if len(data) > MaxEtcdDocument {
		return 0, fmt.Errorf("the document is %s; etcd accepts at most 1.5 MiB in one request (%s for the document), about 1,500 tenants: "+
			"split the tenants across deployments (one store.etcd.prefix each) or keep them in a file", sizeOf(len(data)), sizeOf(MaxEtcdDocument))
	}
	if _, err := ParseDocument(data); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.kv.Txn(wctx).
		If(clientv3.Compare(clientv3.ModRevision(EtcdDocumentKey), "=", over)).
		Then(clientv3.OpPut(EtcdDocumentKey, string(data))).
		Else(clientv3.OpGet(EtcdDocumentKey)).
		Commit()
	switch {
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return 0, fmt.Errorf("etcd refused the document of %s as too large (its --max-request-bytes is below the default 1.5 MiB): %w", sizeOf(len(data)), err)
	case err != nil:
		// Ambiguous: the write may have committed.
		doc, rerr := s.Read(ctx)
		if rerr == nil && doc.Revision > over && bytes.Equal(doc.Data, data) {
			return doc.Revision, nil
		}
		return 0, fmt.Errorf("%s: %w (the push may not have happened: compare with \"tenants get\")", s.name, err)
	case resp.Succeeded:
		return resp.Header.Revision, nil
	}
	now := "none: it was deleted"
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		now = fmt.Sprintf("revision %d", kvs[0].ModRevision)
	}
	read := fmt.Sprintf("revision %d", over)
	if over == 0 {
		read = "no document"
	}
	return 0, fmt.Errorf("%w: read at %s, now %s. Someone else pushed meanwhile: see \"tenants diff\", then push again", ErrConflict, read, now)
}

func sizeOf(n int) string { return fmt.Sprintf("%.2f MiB (%d bytes)", float64(n)/(1<<20), n) }

// Applied is what one running instance serves, as it records it in etcd.
type Applied struct {
	// Instance names the instance: its host name and listen address.
	Instance string `json:"instance"`
	// Admin is the instance's admin listener, for its /status.
	Admin string `json:"admin,omitempty"`
	// Revision and Version are those of the document it serves.
	Revision  int64     `json:"revision"`
	Version   string    `json:"version"`
	AppliedAt time.Time `json:"applied_at"`
	// Refused, when set, is a newer document the instance could not apply.
	Refused *Refusal `json:"refused,omitempty"`
}

// Applied lists what every running instance records it serves, by
// instance name.
func (s *EtcdSource) Applied(ctx context.Context) ([]Applied, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.kv.Get(ctx, etcdAppliedPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	out := make([]Applied, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var a Applied
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			a = Applied{Instance: strings.TrimPrefix(string(kv.Key), etcdAppliedPrefix) + " (unreadable record)"}
		}
		out = append(out, a)
	}
	return out, nil
}

// Announce keeps the latest value sent on updates recorded under the
// instance's key, on a lease kept alive until ctx ends (the record
// disappears within 10s of a crash) and revoked then. A lease that is lost
// (etcd unreachable for longer than its TTL) is granted again. Errors go to
// problem; the returned channel is closed when Announce has stopped.
func (s *EtcdSource) Announce(ctx context.Context, instance string, updates <-chan Applied, problem func(error)) <-chan struct{} {
	done := make(chan struct{})
	key := etcdAppliedPrefix + instance
	go func() {
		defer close(done)
		var latest *Applied
		for ctx.Err() == nil {
			lease, err := s.cli.Grant(ctx, appliedTTL)
			if err != nil {
				if ctx.Err() == nil {
					problem(fmt.Errorf("recording what this instance serves: %w", err))
				}
				select {
				case <-ctx.Done():
				case <-time.After(watchRetry):
				}
				continue
			}
			alive, err := s.cli.KeepAlive(ctx, lease.ID)
			if err == nil {
				latest = s.announceOn(ctx, key, lease.ID, alive, latest, updates, problem)
			}
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.cli.Revoke(rctx, lease.ID) // best effort: the TTL removes it otherwise
			cancel()
		}
	}()
	return done
}

// announceOn records each update on lease until ctx ends or the lease is
// lost, and returns the latest update.
func (s *EtcdSource) announceOn(ctx context.Context, key string, lease clientv3.LeaseID, alive <-chan *clientv3.LeaseKeepAliveResponse,
	latest *Applied, updates <-chan Applied, problem func(error)) *Applied {
	put := func() {
		if latest == nil {
			return
		}
		val, _ := json.Marshal(latest)
		pctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		if _, err := s.kv.Put(pctx, key, string(val), clientv3.WithLease(lease)); err != nil && ctx.Err() == nil {
			problem(fmt.Errorf("recording what this instance serves: %w", err))
		}
	}
	put()
	for {
		select {
		case <-ctx.Done():
			return latest
		case a := <-updates:
			latest = &a
			put()
		case _, ok := <-alive:
			if !ok {
				if ctx.Err() == nil {
					problem(errors.New("recording what this instance serves: its lease was lost; granting a new one"))
				}
				return latest
			}
		}
	}
}
