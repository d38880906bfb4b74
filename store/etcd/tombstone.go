package etcd

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A deleted todo leaves a tombstone (tombKey) for a few minutes: a create
// whose answer was lost, retried after the todo was listed and deleted,
// finds it and knows it was created, instead of writing the todo again;
// and a delete whose answer was lost knows whether it was the call that
// deleted the todo. Tombstones are put on a lease granted once a minute,
// so they expire on their own, and each lives at least as long as any
// retry that must find it.

// tombstoneRenew is how long one lease takes tombstones.
const tombstoneRenew = time.Minute

// tombstoneLeases grants the leases tombstones are put on.
type tombstoneLeases struct {
	// leases grants them; nil puts tombstones on no lease (they never
	// expire: a store built on a bare KV, in tests).
	leases clientv3.Lease
	// ttl is how long a lease lives: tombstoneRenew and twice the
	// longest retry, so the last tombstone put on it outlives every retry.
	ttl time.Duration

	mu      sync.Mutex
	id      clientv3.LeaseID
	granted time.Time
}

func (t *tombstoneLeases) lease(ctx context.Context) (clientv3.LeaseID, error) {
	if t.leases == nil {
		return clientv3.NoLease, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.id != clientv3.NoLease && time.Since(t.granted) < tombstoneRenew {
		return t.id, nil
	}
	resp, err := t.leases.Grant(ctx, int64(t.ttl/time.Second))
	if err != nil {
		return clientv3.NoLease, err
	}
	t.id, t.granted = resp.ID, time.Now()
	return t.id, nil
}

// lost reports whether err says the lease is gone (revoked by hand, or
// expired while the cluster was away); the lease is then granted again.
func (t *tombstoneLeases) lost(err error) bool {
	if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return false
	}
	t.mu.Lock()
	t.id = clientv3.NoLease
	t.mu.Unlock()
	return true
}
