package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/todo-gateway/todo-gateway/store"
)

// Create stores a new todo.
func (s *Store) Create(ctx context.Context, tenant, owner, content string) (store.Todo, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return store.Todo{}, err
	}
	defer leave()
	// Encoded outside the transaction: batched writers share one writer lock.
	todo, val, err := store.NewTodo(tenant, owner, content)
	if err != nil {
		return store.Todo{}, err
	}

	// Batch may run fn more than once, in different transactions; fn only
	// sets opErr from scratch and writes the same keys each time. A refusal
	// is reported through opErr rather than returned, because an error from
	// fn would roll back and re-run every other write of the batch.
	var opErr error
	err = s.write(ctx, func(tx *bbolt.Tx) error {
		opErr = nil
		todos, owners, err := tenantBuckets(tx, tenant)
		if errors.Is(err, store.ErrUnknownTenant) {
			opErr = err
			return nil
		}
		if err != nil {
			return err
		}
		return put(todos, owners, todo, val)
	})
	if err != nil {
		return store.Todo{}, fmt.Errorf("create todo: %w", err)
	}
	if opErr != nil {
		return store.Todo{}, opErr
	}
	return todo, nil
}

// Get returns one todo.
func (s *Store) Get(ctx context.Context, tenant, id string) (store.Todo, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return store.Todo{}, err
	}
	defer leave()
	if err := store.ValidateTodoKey(tenant, id); err != nil {
		return store.Todo{}, err
	}

	var todo store.Todo
	err = s.db.View(func(tx *bbolt.Tx) error {
		todos, _, err := tenantBuckets(tx, tenant)
		if err != nil {
			return err
		}
		v := todos.Get([]byte(id))
		if v == nil {
			return store.NotFound(tenant, id)
		}
		todo, err = store.DecodeRecord(v)
		return err
	})
	return todo, err
}

// List returns a page of the tenant's todos, or of one owner's, in id order.
func (s *Store) List(ctx context.Context, tenant string, opts store.ListOptions) (store.Page, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return store.Page{}, err
	}
	defer leave()
	limit, after, err := opts.Resolve(tenant)
	if err != nil {
		return store.Page{}, err
	}

	// Room for a typical page (an owner's few todos); a full page of 100
	// grows into its slice, where a larger first guess cost every small
	// page its garbage (16 todos were 1.2 KB, most of what a get-todos of
	// one todo allocated in the store).
	page := store.Page{Todos: make([]store.Todo, 0, min(limit, 4))}
	err = s.db.View(func(tx *bbolt.Tx) error {
		todos, owners, err := tenantBuckets(tx, tenant)
		if err != nil {
			return err
		}
		// Both loops resume strictly after the cursor's id, which need not
		// exist any more, and look one item past the page to tell whether a
		// next page exists.
		if opts.Owner == "" {
			c := todos.Cursor()
			k, v := c.Seek([]byte(after))
			if after != "" && string(k) == after {
				k, v = c.Next()
			}
			for ; k != nil; k, v = c.Next() {
				if len(page.Todos) == limit {
					page.NextCursor = store.EncodeCursor(page.Todos[limit-1].ID)
					break
				}
				todo, err := store.DecodeRecord(v)
				if err != nil {
					return err
				}
				page.Todos = append(page.Todos, todo)
			}
			return nil
		}

		prefix := ownerKey(opts.Owner, "")
		start := ownerKey(opts.Owner, after)
		c := owners.Cursor()
		k, _ := c.Seek(start)
		if after != "" && bytes.Equal(k, start) {
			k, _ = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(page.Todos) == limit {
				page.NextCursor = store.EncodeCursor(page.Todos[limit-1].ID)
				break
			}
			id := k[len(prefix):]
			v := todos.Get(id)
			if v == nil {
				return fmt.Errorf("tenant %q: owner index lists todo %s, which does not exist", tenant, id)
			}
			todo, err := store.DecodeRecord(v)
			if err != nil {
				return err
			}
			page.Todos = append(page.Todos, todo)
		}
		return nil
	})
	if err != nil {
		return store.Page{}, err
	}
	return page, nil
}

// Delete removes the todo if allow approves it, in one write transaction.
func (s *Store) Delete(ctx context.Context, tenant, id string, allow func(store.Todo) bool) (store.Todo, error) {
	leave, err := s.enter(ctx)
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
	idKey := []byte(id)

	// As in Create: fn starts from scratch on every run and reports refusals
	// through opErr so that the rest of the batch commits undisturbed.
	var (
		deleted store.Todo
		opErr   error
	)
	err = s.write(ctx, func(tx *bbolt.Tx) error {
		deleted, opErr = store.Todo{}, nil
		todos, owners, err := tenantBuckets(tx, tenant)
		if errors.Is(err, store.ErrUnknownTenant) {
			opErr = err
			return nil
		}
		if err != nil {
			return err
		}
		v := todos.Get(idKey)
		if v == nil {
			opErr = store.NotFound(tenant, id)
			return nil
		}
		todo, err := store.DecodeRecord(v)
		if err != nil {
			return err
		}
		if !allow(todo) {
			opErr = fmt.Errorf("delete todo %s: %w", id, store.ErrDenied)
			return nil
		}
		if err := todos.Delete(idKey); err != nil {
			return err
		}
		if err := owners.Delete(ownerKey(todo.OwnerID, id)); err != nil {
			return err
		}
		deleted = todo
		return nil
	})
	if err != nil {
		return store.Todo{}, fmt.Errorf("delete todo: %w", err)
	}
	if opErr != nil {
		return store.Todo{}, opErr
	}
	return deleted, nil
}
