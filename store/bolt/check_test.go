package bolt

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json"
	"go.etcd.io/bbolt"
)

// Check (a test helper: nothing in production calls it) verifies the file (bbolt's page-level check) and the owner index of
// every tenant (each todo indexed once, each index entry naming a todo). It
// holds the writer lock meanwhile: bbolt's check is unsafe next to a writer.
func (s *Store) Check(ctx context.Context) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()

	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	defer tx.Rollback() // nothing is written; the writer lock is what we need

	const maxErrs = 20
	var errs []error
	for err := range tx.Check() {
		if len(errs) < maxErrs {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("check %s: %w", s.path, errors.Join(errs...))
	}

	err = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		tenant := string(name)
		todos, owners, err := tenantBuckets(tx, tenant)
		if err != nil {
			return err
		}
		var nTodos, nIndex int
		err = todos.ForEach(func(k, v []byte) error {
			nTodos++
			// Only the keys matter here; leaving out the content makes the
			// decoder skip it instead of copying up to 10 KiB per todo.
			var r struct {
				ID    string `json:"id"`
				Owner string `json:"owner"`
			}
			err := json.Unmarshal(v, &r)
			switch {
			case err != nil:
				return fmt.Errorf("tenant %q, todo %s: decode todo: %w", tenant, k, err)
			case r.ID != string(k):
				return fmt.Errorf("tenant %q: key %s holds todo %s", tenant, k, r.ID)
			case owners.Get(ownerKey(r.Owner, r.ID)) == nil:
				return fmt.Errorf("tenant %q: todo %s is missing from the owner index", tenant, r.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := owners.ForEach(func(k, _ []byte) error { nIndex++; return nil }); err != nil {
			return err
		}
		if nIndex != nTodos {
			return fmt.Errorf("tenant %q: %d todos but %d owner index entries", tenant, nTodos, nIndex)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check %s: %w", s.path, err)
	}
	return nil
}
