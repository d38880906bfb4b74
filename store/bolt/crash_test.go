package bolt_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/bolt"
)

// crashEnv carries the database path to the child process of TestCrash.
const crashEnv = "TODO_GATEWAY_BOLT_CRASH_CHILD_DB"

const (
	crashTenant  = "acme"
	crashWriters = 8
)

// crashContent derives a todo's content from the parts the child prints, so
// the parent can check the stored text without the child printing it. The
// sizes include ones above a page (4 KiB) so that commits touch overflow pages.
func crashContent(writer, seq, size int) string {
	head := fmt.Sprintf("writer %d todo %d ", writer, seq)
	return head + strings.Repeat("x", max(size-len(head), 1))
}

// TestCrashChild is the process TestCrash kills. It creates (and now and then
// deletes) todos from several goroutines until it is killed, and prints a line
// for every call the store acknowledged, after it returned:
//
//	add <id> <owner> <writer> <seq> <size>
//	deleting <id>
//	deleted <id>
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestCrash in a child process")
	}
	s, err := bolt.Open(path, bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	// os.Stdout is unbuffered: each Printf is one write(2) of under 4 KiB,
	// which a pipe keeps whole, so lines of different goroutines never mix.
	fmt.Println("ready")
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			owner := fmt.Sprint("owner-", w%3)
			for seq := 0; ; seq++ {
				size := []int{40, 300, 300, 300, 300, 300, 300, 5000}[rand.IntN(8)]
				todo, err := s.Create(ctx, crashTenant, owner, crashContent(w, seq, size))
				if err != nil {
					fmt.Fprintln(os.Stderr, "child: create:", err)
					os.Exit(3)
				}
				fmt.Printf("add %s %s %d %d %d\n", todo.ID, owner, w, seq, size)
				if seq%4 == 3 {
					fmt.Printf("deleting %s\n", todo.ID)
					if _, err := s.Delete(ctx, crashTenant, todo.ID, func(store.Todo) bool { return true }); err != nil {
						fmt.Fprintln(os.Stderr, "child: delete:", err)
						os.Exit(3)
					}
					fmt.Printf("deleted %s\n", todo.ID)
				}
			}
		})
	}
	wg.Wait()
}

// crashWant is what the parent learned from the children's output.
type crashWant struct {
	added    map[string]store.Todo // acknowledged creates
	deleting map[string]bool       // deletes begun, maybe done
	deleted  map[string]bool       // acknowledged deletes
}

// TestCrash kills a writing child process with SIGKILL at random moments and
// checks after each kill that every acknowledged write survived and the file
// is consistent. SIGKILL loses no page cache, so this tests bbolt's commit
// protocol and this package's ack-after-commit, not the disk's fsync.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("this is the child")
	}
	const rounds = 24
	path := filepath.Join(t.TempDir(), "todos.db")
	s := mustOpen(t, path, bolt.Options{})
	if err := s.EnsureTenants(context.Background(), crashTenant); err != nil {
		t.Fatal(err)
	}
	s.Close()

	want := crashWant{added: map[string]store.Todo{}, deleting: map[string]bool{}, deleted: map[string]bool{}}
	for round := range rounds {
		killAfter := time.Duration(20+rand.IntN(131)) * time.Millisecond
		lines := runCrashChild(t, path, killAfter)
		before := len(want.added)
		for _, line := range lines {
			parseCrashLine(t, line, want)
		}
		t.Logf("round %d: killed after %v, %d creates acknowledged", round, killAfter, len(want.added)-before)
		checkCrashed(t, path, want)
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
	// Without acknowledged writes the rounds above prove nothing.
	if len(want.added) < rounds || len(want.deleted) == 0 {
		t.Errorf("children acknowledged %d creates and %d deletes in %d rounds, want at least %d and 1",
			len(want.added), len(want.deleted), rounds, rounds)
	}
}

// runCrashChild starts the child, kills it killAfter its "ready" line and
// returns every line it printed.
func runCrashChild(t *testing.T, path string, killAfter time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	ready := make(chan struct{})
	done := make(chan []string)
	go func() {
		var lines []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				continue
			}
			lines = append(lines, sc.Text())
		}
		done <- lines
	}()

	select {
	case <-ready:
		time.Sleep(killAfter)
	case <-time.After(30 * time.Second):
		t.Error("child did not get ready in 30 s")
	}
	// Kill drops the child whatever it is doing; its pipe stays readable.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	lines := <-done
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("child: got %v, want death by SIGKILL; stderr:\n%s", err, stderr.String())
	}
	return lines
}

func parseCrashLine(t *testing.T, line string, want crashWant) {
	t.Helper()
	var verb, id, owner string
	var writer, seq, size int
	switch {
	case strings.HasPrefix(line, "add "):
		if _, err := fmt.Sscanf(line, "add %s %s %d %d %d", &id, &owner, &writer, &seq, &size); err != nil {
			t.Fatalf("child line %q: %v", line, err)
		}
		want.added[id] = store.Todo{ID: id, OwnerID: owner, Content: crashContent(writer, seq, size)}
	case strings.HasPrefix(line, "deleting "), strings.HasPrefix(line, "deleted "):
		if _, err := fmt.Sscanf(line, "%s %s", &verb, &id); err != nil {
			t.Fatalf("child line %q: %v", line, err)
		}
		if verb == "deleted" {
			want.deleted[id] = true
		} else {
			want.deleting[id] = true
		}
	default:
		// The testing package may print too; only our lines matter.
	}
}

// checkCrashed reopens the file after a kill and compares it with what the
// children acknowledged.
func checkCrashed(t *testing.T, path string, want crashWant) {
	t.Helper()
	s := mustOpen(t, path, bolt.Options{})
	defer s.Close()
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check after kill: %v", err)
	}

	stored := map[string]store.Todo{}
	opts := store.ListOptions{Limit: store.MaxLimit}
	for {
		page, err := s.List(ctx, crashTenant, opts)
		if err != nil {
			t.Fatalf("List after kill: %v", err)
		}
		for _, todo := range page.Todos {
			stored[todo.ID] = todo
		}
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}

	var lost, resurrected int
	for id, w := range want.added {
		got, ok := stored[id]
		switch {
		case want.deleted[id]:
			if ok {
				resurrected++
			}
		case want.deleting[id]:
			// The kill may have come before or after the commit.
		case !ok:
			lost++
		case got.OwnerID != w.OwnerID || got.Content != w.Content:
			t.Errorf("todo %s: got owner %q content %.40q…, want %q %.40q…", id, got.OwnerID, got.Content, w.OwnerID, w.Content)
		}
	}
	if lost > 0 || resurrected > 0 {
		t.Errorf("after kill: got %d acknowledged creates missing and %d acknowledged deletes undone, want none",
			lost, resurrected)
	}
}
