package etcd

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/todo-gateway/todo-gateway/store"
)

// maxTxnBytes bounds the records one Import transaction writes (each
// twice, under its id and in the owner index). etcd refuses a request over
// its --max-request-bytes, 1.5 MiB by default, and maxTxnOps alone would
// not keep under it: 64 todos of 10 KiB are 1.3 MiB, and JSON writes a
// control character in six bytes. One todo is at most about 120 KiB, so a
// transaction always has room for one.
const maxTxnBytes = 1 << 20

// Tenants lists the tenant markers, in key order.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	resp, err := s.read(ctx, clientv3.OpGet(tenantKey(""), clientv3.WithPrefix(), clientv3.WithKeysOnly()))
	if err != nil {
		return nil, s.failure("list tenants", err)
	}
	tenants := make([]string, 0, len(resp[0].Kvs))
	for _, kv := range resp[0].Kvs {
		tenants = append(tenants, strings.TrimPrefix(string(kv.Key), tenantKey("")))
	}
	return tenants, nil
}

// Import writes the todos in transactions of at most maxTxnOps operations
// and maxTxnBytes of records, each of which stores its todos that are
// absent and refuses all of them on a conflict; see importChunk. Between
// transactions it stops if ctx has ended, and reports what it added.
func (s *Store) Import(ctx context.Context, tenant string, todos []store.Todo) (int, error) {
	leave, err := s.gate.Enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	items, err := store.PrepareImport(tenant, todos)
	if err != nil {
		return 0, err
	}
	var added int
	for len(items) > 0 {
		if err := ctx.Err(); err != nil {
			return added, err
		}
		n := chunkLen(items)
		a, err := s.importChunk(ctx, tenant, items[:n])
		added += a
		if err != nil {
			return added, err
		}
		items = items[n:]
	}
	return added, nil
}

// chunkLen is how many of items, at least one, the next transaction
// writes: two puts each, and their records twice.
func chunkLen(items []store.Imported) int {
	n, size := 0, 0
	for n < len(items) && n < (maxTxnOps-1)/2 { // and the put of lastWriteKey
		size += 2 * len(items[n].Record)
		if n > 0 && size > maxTxnBytes {
			break
		}
		n++
	}
	return n
}

// importChunk stores the todos of items that are absent in one transaction
// that requires the tenant's marker and every id to be absent. When some
// are present, the transaction instead reads them: the same record is
// skipped and the rest tried again; a different one refuses the chunk. An
// ambiguous failure is resolved as Create resolves it, by trying again and
// recognising the records: a transaction writes all its todos or none, so
// if the retry finds every one of them it counts them as added by this
// call (had they all been there before, which it cannot tell apart, the
// count is too high; the data is right either way), and if it finds one
// missing the failed attempt wrote nothing.
func (s *Store) importChunk(ctx context.Context, tenant string, items []store.Imported) (added int, err error) {
	tk := tenantKey(tenant)
	pending := items
	// ambiguous: the last attempt, which tried to write pending as it is
	// now, failed in a way that may have committed.
	ambiguous := false
	var opErr error
	err = s.retry(ctx, func(ctx context.Context) (bool, error) {
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(tk), ">", 0)}
		gets := []clientv3.Op{clientv3.OpGet(tk)}
		puts := make([]clientv3.Op, 0, 2*len(pending))
		for _, im := range pending {
			ik, val := idKey(tenant, im.Todo.ID), string(im.Record)
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(ik), "=", 0))
			gets = append(gets, clientv3.OpGet(ik))
			puts = append(puts, clientv3.OpPut(ik, val), clientv3.OpPut(ownerKey(tenant, im.Todo.OwnerID, im.Todo.ID), val))
		}
		resp, err := s.kv.Txn(ctx).If(cmps...).Then(append(puts, touchLastWrite)...).Else(gets...).Commit()
		if err != nil {
			ambiguous = true
			return false, err
		}
		if resp.Succeeded {
			added += len(pending)
			return true, nil
		}
		if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			opErr = fmt.Errorf("tenant %q: %w", tenant, store.ErrUnknownTenant)
			return true, nil
		}
		var absent []store.Imported
		for i, im := range pending {
			kvs := resp.Responses[i+1].GetResponseRange().Kvs
			if len(kvs) == 0 {
				absent = append(absent, im)
				continue
			}
			same, err := im.Matches(kvs[0].Value)
			switch {
			case err != nil:
				opErr = fmt.Errorf("tenant %q: %w", tenant, err)
				return true, nil
			case !same:
				opErr = store.Conflict(tenant, im.Todo.ID)
				return true, nil
			}
		}
		if len(absent) == 0 {
			if ambiguous {
				added += len(pending) // the failed attempt committed
			}
			return true, nil
		}
		pending, ambiguous = absent, false
		return false, errConflict // write the absent ones at once
	})
	if err != nil {
		return added, s.failure("import todos", err)
	}
	return added, opErr
}
