package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"
)

// leaderChecks sends the cache's revision checks to the member that leads
// the cluster. A linearizable read sent to a follower costs a forward: the
// follower asks the leader for its read index, the leader confirms its
// leadership with a quorum, then answers the follower. Sent to the leader,
// the same read skips the forward; on three members on one 2-core machine,
// in four pairs of runs against checks sent to every endpoint, the
// members' CPU per cached read fell by 16-30 % in three pairs and rose 15 %
// in the fourth, and requests/s rose in all four (docs/testing.md).
//
// Correctness does not rest on the guess: every member answers a
// linearizable read correctly, so a stale guess costs only the forward,
// and a check that fails on the leader's connection is sent again through
// the cluster's.
type leaderChecks struct {
	// cluster is the store's client, on every endpoint: it asks the
	// members who leads, and serves the checks while no leader is known.
	cluster *clientv3.Client
	prefix  string
	// dial connects to one endpoint with the store's settings (TLS,
	// credentials, dial options).
	dial func(endpoint string) (*clientv3.Client, error)
	log  *slog.Logger
	// timeout bounds one status request, and a check on the leader's
	// connection before it is sent through the cluster's instead.
	timeout time.Duration

	mu       sync.Mutex
	leader   *clientv3.Client // nil while no leader is known
	kv       clientv3.KV      // leader's, under prefix
	endpoint string
	looking  bool
	next     time.Time // when to ask again who leads
	closed   bool
}

// Who leads is asked again this often, and sooner after a failure: a new
// leader that broke nothing (a transfer) would otherwise get no checks.
const (
	leaderRecheck = 10 * time.Second
	leaderRetry   = time.Second
)

// newLeaderChecks returns nil when there is nothing to choose from: one
// endpoint, or no way to dial another.
func newLeaderChecks(cluster *clientv3.Client, prefix string, dial func(string) (*clientv3.Client, error), timeout time.Duration, log *slog.Logger) *leaderChecks {
	if cluster == nil || dial == nil || len(cluster.Endpoints()) < 2 {
		return nil
	}
	return &leaderChecks{cluster: cluster, prefix: prefix, dial: dial, timeout: timeout, log: log}
}

// get reads key linearizably: through the leader's connection when the
// leader is known, otherwise (or when that fails, or l is nil: nothing to
// choose from) through fallback.
func (l *leaderChecks) get(ctx context.Context, fallback clientv3.KV, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if l == nil {
		return fallback.Get(ctx, key, opts...)
	}
	kv := l.pick()
	if kv == nil {
		return fallback.Get(ctx, key, opts...)
	}
	lctx, cancel := context.WithTimeout(ctx, l.timeout)
	resp, err := kv.Get(lctx, key, opts...)
	cancel()
	if err == nil {
		return resp, nil
	}
	l.forget(kv, err)
	if ctx.Err() != nil {
		return nil, err
	}
	return fallback.Get(ctx, key, opts...)
}

// pick returns the leader's KV, nil when none is known, and starts
// looking for the leader when it is time to.
func (l *leaderChecks) pick() clientv3.KV {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.looking && !l.closed && !time.Now().Before(l.next) {
		l.looking = true
		go l.find()
	}
	return l.kv
}

// forget drops kv after a failed check, unless another leader replaced it
// meanwhile, and has the leader looked for again at once.
func (l *leaderChecks) forget(kv clientv3.KV, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kv != kv {
		return
	}
	l.log.Info("etcd revision check failed on the leader's connection; checking through every endpoint until the leader is found again",
		"endpoint", l.endpoint, "err", err.Error())
	old := l.leader
	l.leader, l.kv, l.endpoint, l.next = nil, nil, "", time.Time{}
	go old.Close()
}

// find asks the members who leads and connects to it.
func (l *leaderChecks) find() {
	endpoint, err := l.leaderEndpoint()
	var cli *clientv3.Client
	if err == nil && endpoint != l.current() {
		cli, err = l.dial(endpoint)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.looking = false
	if err != nil {
		l.next = time.Now().Add(leaderRetry)
		return
	}
	l.next = time.Now().Add(leaderRecheck)
	if cli == nil {
		return // the same leader
	}
	if l.closed {
		go cli.Close()
		return
	}
	if old := l.leader; old != nil {
		go old.Close() // a check still on it fails over to the cluster's connection
	}
	l.leader, l.kv, l.endpoint = cli, namespace.NewKV(cli.KV, l.prefix), endpoint
}

// current is the leader's endpoint the checks go to; "" for none (and
// for a nil l).
func (l *leaderChecks) current() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endpoint
}

// leaderEndpoint is the configured endpoint at which the leader answers:
// the one whose member is the leader its status names. Endpoints, not the
// members' advertised URLs, because only the endpoints are known to be
// reachable from here (through a proxy, a tunnel).
func (l *leaderChecks) leaderEndpoint() (string, error) {
	var errs []error
	for _, ep := range l.cluster.Endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		st, err := l.cluster.Status(ctx, ep)
		cancel()
		switch {
		case err != nil:
			errs = append(errs, err)
		case st.Leader != 0 && st.Header != nil && st.Header.MemberId == st.Leader:
			return ep, nil
		}
	}
	return "", fmt.Errorf("no endpoint answered as the leader: %w", errors.Join(errs...))
}

// close closes the leader's connection; the cluster's is the store's.
func (l *leaderChecks) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.leader != nil {
		l.leader.Close()
		l.leader, l.kv = nil, nil
	}
}
