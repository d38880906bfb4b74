package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
	"github.com/todo-gateway/todo-gateway/store/bolt"
)

// A backup taken while writers create todos holds every todo acknowledged
// before it began, and the copy serves as a store after a restore.
func TestStoreBackupUnderWrites(t *testing.T) {
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: onIssuers(2, iss.Issuer())})
	ctx := context.Background()

	var (
		mu       sync.Mutex
		acked    = map[string]string{} // todo id → tenant, acknowledged before the backup began
		began    atomic.Bool
		stop     atomic.Bool
		after    atomic.Int64 // acknowledged once the backup had begun
		wg       sync.WaitGroup
		writeErr atomic.Value
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := fmt.Sprintf("t%d", w%2)
			for i := 0; !stop.Load(); i++ {
				todo, err := b.gw.store.Create(ctx, tenant, fmt.Sprintf("writer-%d", w), fmt.Sprintf("todo %d", i))
				if err != nil {
					writeErr.Store(err)
					return
				}
				// Read once the write is acknowledged: acknowledged before
				// the backup began if the backup had not begun by then.
				// (Read when the write was sent, a write that commits
				// while the copy starts would wrongly count.)
				before := !began.Load()
				if before {
					mu.Lock()
					acked[todo.ID] = tenant
					mu.Unlock()
				} else {
					after.Add(1)
				}
			}
		}()
	}
	eventually(t, "writers are under way", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 200 })

	file := filepath.Join(t.TempDir(), "backup.db")
	began.Store(true)
	code, stdout, stderr := runCLI("store", "backup", "--admin", b.gw.AdminAddr(), "--to", file)
	eventually(t, "writes go on after the backup", func() bool { return after.Load() >= 50 })
	stop.Store(true)
	wg.Wait()
	if err := writeErr.Load(); err != nil {
		t.Fatalf("a writer failed: %v", err)
	}
	if code != exitOK || !strings.Contains(stdout, "checked") {
		t.Fatalf("store backup: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}

	// Restore: the copy opened as the store of a gateway that is stopped.
	restored, err := bolt.Open(file, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	for id, tenant := range acked {
		if _, err := restored.Get(ctx, tenant, id); err != nil {
			t.Fatalf("todo %s of %s, acknowledged before the backup began, is not in it: %v", id, tenant, err)
		}
	}
	t.Logf("%d todos acknowledged before the backup, all in it; %d written during and after it", len(acked), after.Load())

	// A second backup to the same name is refused, the first kept.
	if code, _, stderr := runCLI("store", "backup", "--admin", b.gw.AdminAddr(), "--to", file); code != exitFail || !strings.Contains(stderr, "never overwrites") {
		t.Errorf("backup onto an existing file: exit %d, %s", code, stderr)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*partial*"))
	if len(leftovers) != 0 {
		t.Errorf("partial files left behind: %v", leftovers)
	}
}

func TestStoreBackupErrors(t *testing.T) {
	// A gateway on etcd has no /backup: the command relays the reason.
	srv := newTestAdmin(t, http.StatusNotImplemented, `{"error":"not_implemented","error_description":"back up etcd with etcdctl snapshot save"}`)
	dir := t.TempDir()
	if code, _, stderr := runCLI("store", "backup", "--admin", srv, "--to", filepath.Join(dir, "x.db")); code != exitFail || !strings.Contains(stderr, "etcdctl snapshot save") {
		t.Errorf("etcd gateway: exit %d, %s", code, stderr)
	}
	// A copy cut off before its Content-Length, or not a bbolt file, is
	// refused and leaves nothing behind.
	for name, body := range map[string]string{"cut off": "short", "not bbolt": strings.Repeat("x", 8192)} {
		srv := newTestAdmin(t, http.StatusOK, body)
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".db")
		code, _, stderr := runCLI("store", "backup", "--admin", srv, "--to", file)
		if _, err := os.Stat(file); code != exitFail || err == nil {
			t.Errorf("%s: exit %d (%s), file left: %v", name, code, stderr, err == nil)
		}
	}
	if code, _, stderr := runCLI("store", "backup"); code != exitUsage || !strings.Contains(stderr, "--to FILE is required") {
		t.Errorf("no --to: exit %d, %s", code, stderr)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

// newTestAdmin is an admin listener whose /backup answers status and body;
// a 200 declares a Content-Length twice the body's, so "short" arrives cut
// off, as from a gateway that died part-way.
func newTestAdmin(t *testing.T, status int, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/backup" {
			http.NotFound(w, r)
			return
		}
		if status == http.StatusOK && body == "short" {
			w.Header().Set("Content-Length", strconv.Itoa(2*len(body)))
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
