package bolt

import (
	"context"

	"go.etcd.io/bbolt"

	"github.com/todo-gateway/todo-gateway/store"
)

// Tenants returns the names of the top-level buckets: every tenant's space.
// A bucket that lacks its inner buckets is listed too, so that copying it
// fails loudly rather than leaving its todos behind unnoticed.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	tenants := []string{}
	err = s.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			tenants = append(tenants, string(name))
			return nil
		})
	})
	return tenants, err
}

// Import stores the todos in one transaction: a conflict or a failure
// writes none of them. It commits with Update, not through the group
// commit of Create and Delete: a page of a copy is a large transaction of
// its own, and an error from a batched function would re-run every other
// write of the batch.
func (s *Store) Import(ctx context.Context, tenant string, todos []store.Todo) (int, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	items, err := store.PrepareImport(tenant, todos)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	var added int
	err = s.update(func(tx *bbolt.Tx) error {
		added = 0
		todos, owners, err := tenantBuckets(tx, tenant)
		if err != nil {
			return err
		}
		for _, im := range items {
			if v := todos.Get([]byte(im.Todo.ID)); v != nil {
				same, err := im.Matches(v)
				if err != nil {
					return err
				}
				if !same {
					return store.Conflict(tenant, im.Todo.ID)
				}
				continue
			}
			if err := put(todos, owners, im.Todo, im.Record); err != nil {
				return err
			}
			added++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return added, nil
}
