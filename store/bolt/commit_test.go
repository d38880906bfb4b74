package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestGroupCommitIsolatesFailures puts writes that fail, panic and succeed
// into one group: each failing write gets its own error, and every other
// write is committed exactly once, as if it had been alone.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("b")
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		t.Fatal(err)
	}
	// A delay far longer than the test's writes take to queue makes them
	// one group.
	c := newCommitter(db, 200*time.Millisecond, 1000, nil)
	defer c.close()

	const writes = 12
	refused := errors.New("refused")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		runs = map[int]int{} // how often each write's fn ran
	)
	errs := make([]error, writes)
	for i := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.write(func(tx *bbolt.Tx) error {
				mu.Lock()
				runs[i]++
				mu.Unlock()
				switch i {
				case 3:
					return refused
				case 7:
					panic("boom")
				}
				// A counter, so that a write applied twice would show.
				b := tx.Bucket(bucket)
				key := []byte(fmt.Sprint(i))
				n := 0
				if v := b.Get(key); v != nil {
					n = int(v[0])
				}
				return b.Put(key, []byte{byte(n + 1)})
			})
		}()
	}
	wg.Wait()

	for i, err := range errs {
		switch i {
		case 3:
			if !errors.Is(err, refused) {
				t.Errorf("write 3: got %v, want its own error", err)
			}
		case 7:
			if err == nil || !strings.Contains(err.Error(), "panic in a write transaction: boom") {
				t.Errorf("write 7: got %v, want its panic as an error", err)
			}
		default:
			if err != nil {
				t.Errorf("write %d: got %v, want it committed", i, err)
			}
		}
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for i := range writes {
			v := b.Get([]byte(fmt.Sprint(i)))
			switch {
			case i == 3 || i == 7:
				if v != nil {
					t.Errorf("failed write %d left a value", i)
				}
			case len(v) != 1 || v[0] != 1:
				t.Errorf("write %d: got %v, want it applied once", i, v)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The proof that the writes did share a transaction: the ones queued
	// before the failures ran again after each rollback.
	mu.Lock()
	defer mu.Unlock()
	reruns := 0
	for _, n := range runs {
		reruns += n - 1
	}
	if reruns == 0 {
		t.Errorf("every write ran once (%v): they were not one group, and the test proves nothing", runs)
	}
}
