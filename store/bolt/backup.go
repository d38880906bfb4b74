package bolt

import (
	"context"
	"fmt"
	"io"

	"go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the database file while the store
// serves: bbolt's Tx.WriteTo inside one read transaction, which sees the
// file as of its start while writers go on committing. start receives the
// copy's exact size before its first byte (an HTTP handler sets
// Content-Length from it, so that a cut-off download is detectable) and
// returns where to write. The copy is a bbolt file that Open takes as it is.
func (s *Store) Backup(ctx context.Context, start func(size int64) io.Writer) (int64, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	var n int64
	err = s.db.View(func(tx *bbolt.Tx) error {
		n, err = tx.WriteTo(start(tx.Size()))
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup of %s: %w", s.path, err)
	}
	return n, nil
}

// Verify checks a bbolt file, such as a copy Backup wrote, without changing
// it: opened read-only, every page is checked for consistency (openChecked),
// and the todos of each tenant are counted.
func Verify(path string) (todos map[string]int, err error) {
	db, err := openChecked(path, 0o400, &bbolt.Options{ReadOnly: true, Timeout: DefaultTimeout})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	todos = map[string]int{}
	err = guarded(path, func() error {
		return db.View(func(tx *bbolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
				n := 0
				if t := b.Bucket(bucketTodos); t != nil {
					n = t.Stats().KeyN
				}
				todos[string(name)] = n
				return nil
			})
		})
	})
	return todos, err
}
