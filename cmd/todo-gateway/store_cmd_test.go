package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
	"github.com/todo-gateway/todo-gateway/store/storetest"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// The configured tenants of the copy tests' files; the seeded store also
// holds "retired", which no configuration names any more.
var copyTenants = []string{"acme", "globex", "initech"}

// storeFile writes a configuration with the given "store" block.
func storeFile(t *testing.T, storeBlock string) string {
	t.Helper()
	docs := make([]string, len(copyTenants))
	for i, id := range copyTenants {
		docs[i] = fmt.Sprintf(`{"id": %q, "resource": "http://localhost:3001/%s",
			"provider": {"type": "logto", "issuer": "https://%s.logto.app/oidc"}, "audience": {"strategy": "resource"}}`, id, id, id)
	}
	return writeFile(t, fmt.Sprintf(`{"store": %s, "tenants": [%s]}`, storeBlock, strings.Join(docs, ",\n")))
}

func boltFile(t *testing.T, path string) string {
	return storeFile(t, fmt.Sprintf(`{"driver": "bbolt", "bbolt": {"path": %q}}`, path))
}

func etcdFile(t *testing.T, endpoint, prefix string) string {
	return storeFile(t, fmt.Sprintf(`{"driver": "etcd", "etcd": {"endpoints": [%q], "prefix": %q}}`, endpoint, prefix))
}

// todosByTenant is a store's whole content.
type todosByTenant map[string][]store.Todo

func (d todosByTenant) total() int {
	n := 0
	for _, todos := range d {
		n += len(todos)
	}
	return n
}

// seed fills a bbolt file with data shaped like the conformance suite's:
// several tenants and owners, unicode and 10 KiB content, a tenant with
// more than two pages, an empty tenant, and a tenant that is in the store
// but not in the configuration. It returns what the file holds.
func seed(t *testing.T, path string) todosByTenant {
	t.Helper()
	ctx := context.Background()
	s := openBolt(t, path)
	defer s.Close()
	if err := s.EnsureTenants(ctx, append(slices.Clone(copyTenants), "retired")...); err != nil {
		t.Fatal(err)
	}
	// 2,345 todos in acme: three pages of store.MaxLimit. Import stores
	// them in one transaction; Create would pay an fsync for each.
	bulk := make([]store.Todo, 2345)
	for i := range bulk {
		bulk[i] = storetest.Importable(t, fmt.Sprint("owner-", i%7), fmt.Sprint("todo ", i))
	}
	if _, err := s.Import(ctx, "acme", bulk); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tenant, owner, content string }{
		{"acme", "alice", "buy milk"},
		{"acme", "bøb", "Füße waschen 🦶"},
		{"globex", "alice", strings.Repeat("x", store.MaxContentBytes)},
		{"globex", "al", strings.Repeat("é", store.MaxContentBytes/2)},
		{"globex", "alice bob", "  indented\n"},
		{"retired", "carol", "still here after the tenant left the configuration"},
		{"retired", "carol", "控制字符\x01 and tabs\t"},
	} {
		if _, err := s.Create(ctx, c.tenant, c.owner, c.content); err != nil {
			t.Fatal(err)
		}
	}
	return dumpStore(t, s)
}

// openBolt opens a bbolt file as the gateway would, for a test to fill or
// hold; the test closes it before a copy runs.
func openBolt(t *testing.T, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dumpStore reads every todo of every tenant.
func dumpStore(t *testing.T, s store.Store) todosByTenant {
	t.Helper()
	ctx := context.Background()
	ids, err := s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := todosByTenant{}
	for _, tenant := range ids {
		d[tenant] = []store.Todo{}
		err := eachPage(ctx, s, tenant, func(todos []store.Todo) error {
			d[tenant] = append(d[tenant], todos...)
			return nil
		})
		if err != nil {
			t.Fatalf("tenant %s: %v", tenant, err)
		}
	}
	return d
}

// dumpConfigured reads the store a configuration file names, opened as the
// gateway opens it.
func dumpConfigured(t *testing.T, path string) todosByTenant {
	t.Helper()
	cfg, err := tenants.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openStore(cfg.Store, slog.New(slog.DiscardHandler), storeHooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	return dumpStore(t, b)
}

// sameContent compares two stores' content tenant by tenant and todo by
// todo, every field.
func sameContent(t *testing.T, what string, got, want todosByTenant) {
	t.Helper()
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Errorf("%s: got tenants %q, want %q", what, g, w)
	}
	for tenant, todos := range want {
		have := got[tenant]
		if len(have) != len(todos) {
			t.Errorf("%s: tenant %s: got %d todos, want %d", what, tenant, len(have), len(todos))
			continue
		}
		for i, w := range todos {
			g := have[i]
			if g.ID != w.ID || g.OwnerID != w.OwnerID || g.Content != w.Content || !g.CreatedAt.Equal(w.CreatedAt) {
				t.Errorf("%s: tenant %s, todo %d: got %+.60v, want %+.60v", what, tenant, i, g, w)
			}
		}
	}
}

// copyCLI runs "store copy" and fails unless it exits with want.
func copyCLI(t *testing.T, want int, from, to string) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := runCLI("store", "copy", "--from", from, "--to", to)
	if code != want {
		t.Fatalf("store copy --from %s --to %s: got exit %d, want %d\nstdout:\n%s\nstderr:\n%s", from, to, code, want, stdout, stderr)
	}
	return stdout, stderr
}

func wantLines(t *testing.T, what, got string, lines ...string) {
	t.Helper()
	for _, line := range lines {
		if !strings.Contains(got, line) {
			t.Errorf("%s: got\n%s\nwant it to contain %q", what, got, line)
		}
	}
}

// bbolt → etcd → bbolt through configuration files: everything arrives,
// field by field, and a second run copies nothing.
func TestStoreCopyBoltEtcdBolt(t *testing.T) {
	member, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Close)
	dir := t.TempDir()
	want := seed(t, filepath.Join(dir, "first.db"))
	first := boltFile(t, filepath.Join(dir, "first.db"))
	cluster := etcdFile(t, member.Endpoint, "copy-test/")
	last := boltFile(t, filepath.Join(dir, "last.db"))

	stdout, _ := copyCLI(t, exitOK, first, cluster)
	wantLines(t, "bbolt → etcd", stdout,
		"from bbolt "+filepath.Join(dir, "first.db")+"\n",
		fmt.Sprintf("to   etcd %s prefix %q\n", member.Endpoint, "copy-test/"),
		"acme: 2347 todos read, 2347 copied, 0 already there\n",
		"initech: 0 todos read, 0 copied, 0 already there\n",
		"retired (not in the --from configuration): 2 todos read, 2 copied, 0 already there\n",
		"tenant     source  destination\nacme         2347         2347\nglobex          3            3\n",
		fmt.Sprintf("ok: %d todos in 4 tenants, the same number in both stores\n", want.total()))
	sameContent(t, "etcd after the copy", dumpConfigured(t, cluster), want)

	copyCLI(t, exitOK, cluster, last)
	sameContent(t, "bbolt after the round trip", dumpConfigured(t, last), want)

	for _, leg := range [][2]string{{first, cluster}, {cluster, last}} {
		stdout, _ := copyCLI(t, exitOK, leg[0], leg[1])
		wantLines(t, "second run", stdout,
			"acme: 2347 todos read, 0 copied, 2347 already there\n",
			"retired (not in the --from configuration): 2 todos read, 0 copied, 2 already there\n")
	}
	sameContent(t, "bbolt after second runs", dumpConfigured(t, last), want)
}

// cancelAfterImport is a destination that ends the copy's context once it
// has imported one page: an interruption (Ctrl-C) at a page boundary.
type cancelAfterImport struct {
	store.Store
	cancel context.CancelFunc
}

func (c cancelAfterImport) Import(ctx context.Context, tenant string, todos []store.Todo) (int, error) {
	defer c.cancel()
	return c.Store.Import(ctx, tenant, todos)
}

// A copy interrupted after its first page keeps that page; running the
// command again copies the rest and only the rest.
func TestStoreCopyResumesAfterInterruption(t *testing.T) {
	dir := t.TempDir()
	want := seed(t, filepath.Join(dir, "from.db"))
	fromFile, toFile := boltFile(t, filepath.Join(dir, "from.db")), boltFile(t, filepath.Join(dir, "to.db"))

	from := openBolt(t, filepath.Join(dir, "from.db"))
	to := openBolt(t, filepath.Join(dir, "to.db"))
	ctx, cancel := context.WithCancel(context.Background())
	var progress strings.Builder
	_, err := copyTodos(ctx, from, cancelAfterImport{to, cancel}, nil, &progress)
	if err == nil || ctx.Err() == nil {
		t.Fatalf("interrupted copy: got %v, want the context's end", err)
	}
	wantLines(t, "interrupted copy", progress.String(), "acme (not in the --from configuration): stopped after 1000 todos copied\n")
	if got := dumpStore(t, to); len(got["acme"]) != store.MaxLimit {
		t.Errorf("after the interruption: got %d todos of acme, want the first page, %d", len(got["acme"]), store.MaxLimit)
	}
	from.Close()
	to.Close()

	stdout, _ := copyCLI(t, exitOK, fromFile, toFile)
	wantLines(t, "resumed copy", stdout, "acme: 2347 todos read, 1347 copied, 1000 already there\n", "globex: 3 todos read, 3 copied, 0 already there\n")
	sameContent(t, "after the resumed copy", dumpConfigured(t, toFile), want)
}

// A destination that already holds half of every tenant gets the other
// half.
func TestStoreCopyOntoHalf(t *testing.T) {
	dir := t.TempDir()
	want := seed(t, filepath.Join(dir, "from.db"))
	to := openBolt(t, filepath.Join(dir, "to.db"))
	if err := to.EnsureTenants(context.Background(), "acme", "retired"); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"acme", "retired"} {
		if _, err := to.Import(context.Background(), tenant, want[tenant][:len(want[tenant])/2]); err != nil {
			t.Fatal(err)
		}
	}
	to.Close()

	stdout, _ := copyCLI(t, exitOK, boltFile(t, filepath.Join(dir, "from.db")), boltFile(t, filepath.Join(dir, "to.db")))
	wantLines(t, "copy onto half", stdout,
		"acme: 2347 todos read, 1174 copied, 1173 already there\n",
		"retired (not in the --from configuration): 2 todos read, 1 copied, 1 already there\n")
	sameContent(t, "after the copy", dumpConfigured(t, boltFile(t, filepath.Join(dir, "to.db"))), want)
}

// A bbolt file that a running gateway holds is refused, on either side,
// with what to do about it.
func TestStoreCopyHeldFile(t *testing.T) {
	dir := t.TempDir()
	seed(t, filepath.Join(dir, "from.db"))
	fromFile, toFile := boltFile(t, filepath.Join(dir, "from.db")), boltFile(t, filepath.Join(dir, "to.db"))
	for _, held := range []string{"from.db", "to.db"} {
		t.Run(held, func(t *testing.T) {
			// bbolt's lock is flock(2), which a second open in this process
			// meets just as another process's would.
			s := openBolt(t, filepath.Join(dir, held))
			defer s.Close()
			_, stderr := copyCLI(t, exitFail, fromFile, toFile)
			flagName := map[string]string{"from.db": "--from", "to.db": "--to"}[held]
			wantLines(t, "stderr", stderr, fmt.Sprintf("todo-gateway store copy: %s: %s is held by a running todo-gateway (or another process): stop it first, then run the copy again\n",
				flagName, filepath.Join(dir, held)))
		})
	}
}

// A todo id the destination holds with a different todo stops the copy,
// naming the id, and the destination's todo is kept; a destination with
// more todos than the source is reported as differing.
func TestStoreCopyConflictAndDifference(t *testing.T) {
	dir := t.TempDir()
	want := seed(t, filepath.Join(dir, "from.db"))
	fromFile, toFile := boltFile(t, filepath.Join(dir, "from.db")), boltFile(t, filepath.Join(dir, "to.db"))
	to := openBolt(t, filepath.Join(dir, "to.db"))
	forged := want["globex"][1]
	forged.Content = "not the original"
	extra := storetest.Importable(t, "dave", "only in the destination")
	if err := to.EnsureTenants(context.Background(), "globex", "initech"); err != nil {
		t.Fatal(err)
	}
	for tenant, todo := range map[string]store.Todo{"globex": forged, "initech": extra} {
		if _, err := to.Import(context.Background(), tenant, []store.Todo{todo}); err != nil {
			t.Fatal(err)
		}
	}
	to.Close()

	_, stderr := copyCLI(t, exitFail, fromFile, toFile)
	wantLines(t, "conflict", stderr, `todo-gateway store copy: tenant "globex": writing the destination: todo `+forged.ID+` in tenant "globex": a different todo has that id; the stored todo is kept`)
	if got := dumpConfigured(t, toFile)["globex"]; !slices.ContainsFunc(got, func(td store.Todo) bool { return td.ID == forged.ID && td.Content == forged.Content }) {
		t.Errorf("after the refused copy, globex holds %v; want the forged todo kept", got)
	}

	to = openBolt(t, filepath.Join(dir, "to.db"))
	if _, err := to.Delete(context.Background(), "globex", forged.ID, func(store.Todo) bool { return true }); err != nil {
		t.Fatal(err)
	}
	to.Close()
	stdout, stderr := copyCLI(t, exitFail, fromFile, toFile)
	wantLines(t, "difference", stdout, "initech         0            1  differs\n")
	wantLines(t, "difference", stderr, "todo-gateway store copy: the stores differ in the tenants marked; see above\n")
}

func TestStoreCopyRefusals(t *testing.T) {
	dir := t.TempDir()
	seed(t, filepath.Join(dir, "from.db"))
	fromFile := boltFile(t, filepath.Join(dir, "from.db"))
	if err := os.Symlink(filepath.Join(dir, "from.db"), filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}
	broken := writeFile(t, `{"store": {"driver": "etcd", "etcd": {"endpoints": ["nowhere"]}}, "tenants": []}`)
	tests := []struct {
		name      string
		args      []string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{"no subcommand", []string{"store"}, exitUsage, "", "todo-gateway store: a subcommand is required: copy or backup\n\nUsage: todo-gateway store copy"},
		{"unknown subcommand", []string{"store", "move"}, exitUsage, "", `todo-gateway store: unknown subcommand "move" (known: copy, backup)`},
		{"store --help", []string{"store", "--help"}, exitOK, "Usage: todo-gateway store copy --from FILE --to FILE", ""},
		{"copy --help", []string{"store", "copy", "--help"}, exitOK, "-from file", ""},
		{"backup --help", []string{"store", "backup", "--help"}, exitOK, "Restore: stop the gateway", ""},
		{"help store", []string{"help", "store"}, exitOK, "Exit status: 0", ""},
		{"no flags", []string{"store", "copy"}, exitUsage, "", "todo-gateway store copy: --from FILE and --to FILE are both required"},
		{"no --to", []string{"store", "copy", "--from", fromFile}, exitUsage, "", "--from FILE and --to FILE are both required"},
		{"positional", []string{"store", "copy", "--from", fromFile, "--to", fromFile, "extra"}, exitUsage, "", `unexpected argument "extra"`},
		{"unknown flag", []string{"store", "copy", "--form", fromFile}, exitUsage, "", "flag provided but not defined: -form"},
		{"same file", []string{"store", "copy", "--from", fromFile, "--to", fromFile}, exitUsage, "",
			"todo-gateway store copy: --from and --to name the same store (bbolt " + filepath.Join(dir, "from.db") + "); a copy onto itself would change nothing\n"},
		{"same file by a symlink", []string{"store", "copy", "--from", fromFile, "--to", boltFile(t, filepath.Join(dir, "link.db"))}, exitUsage, "", "name the same store"},
		{"same etcd prefix and a shared member", []string{"store", "copy",
			"--from", storeFile(t, `{"driver": "etcd", "etcd": {"endpoints": ["http://a:2379", "http://b:2379"], "prefix": "p/"}}`),
			"--to", storeFile(t, `{"driver": "etcd", "etcd": {"endpoints": ["HTTP://B:2379/"], "prefix": "p/"}}`)}, exitUsage, "",
			`--from and --to name the same store (etcd http://b:2379 prefix "p/")`},
		{"no source file", []string{"store", "copy", "--from", boltFile(t, filepath.Join(dir, "none.db")), "--to", fromFile}, exitFail, "",
			"todo-gateway store copy: --from: no bbolt file to copy at " + filepath.Join(dir, "none.db")},
		{"invalid configuration", []string{"store", "copy", "--from", fromFile, "--to", broken}, exitFail, "", broken + ": store.etcd.endpoints[0]: must be a client URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit code got %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			for _, s := range []struct{ stream, got, want string }{{"stdout", stdout, tc.stdoutHas}, {"stderr", stderr, tc.stderrHas}} {
				if (s.want == "" && s.got != "") || !strings.Contains(s.got, s.want) {
					t.Errorf("%s got %q, want %q", s.stream, s.got, s.want)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); !os.IsNotExist(err) {
		t.Errorf("a missing source file was created: %v", err)
	}
}

// A tenant of many pages says how far the copy is every progressEvery
// pages.
func TestStoreCopyProgress(t *testing.T) {
	dir := t.TempDir()
	from, to := openBolt(t, filepath.Join(dir, "from.db")), openBolt(t, filepath.Join(dir, "to.db"))
	defer from.Close()
	defer to.Close()
	todos := make([]store.Todo, progressEvery*store.MaxLimit+1)
	for i := range todos {
		todos[i] = storetest.Importable(t, "alice", fmt.Sprint("todo ", i))
	}
	ctx := context.Background()
	for _, s := range []store.Store{from, to} {
		if err := s.EnsureTenants(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := from.Import(ctx, "acme", todos); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	read, added, err := copyTenant(ctx, from, to, "acme", &out)
	if err != nil || read != len(todos) || added != len(todos) {
		t.Fatalf("copyTenant: got %d read, %d added, %v; want %d, %d, nil", read, added, err, len(todos), len(todos))
	}
	if want := fmt.Sprintf("acme: %d todos read so far\n", progressEvery*store.MaxLimit); out.String() != want {
		t.Errorf("progress: got %q, want %q", out.String(), want)
	}
}

// A damaged, foreign or empty source is refused, naming the file and what
// to do, with exit status 1; the source is never written to, a healthy one
// included (it is opened read-only). serve refuses the same files the same
// way (issue 24: a truncated file panicked serve, a truncated source
// killed the copy with SIGBUS, and an empty source was written to and
// reported "ok").
func TestDamagedStoreFiles(t *testing.T) {
	dir := t.TempDir()
	healthy := filepath.Join(dir, "healthy.db")
	seed(t, healthy)
	whole, err := os.ReadFile(healthy)
	if err != nil {
		t.Fatal(err)
	}
	// The header of a page in use: bbolt checks the structure of its
	// pages, and keeps no checksum of what they hold.
	flipped := bytes.Clone(whole)
	at := usedPage(t, healthy) * 4096
	for i := at; i < at+16; i++ {
		flipped[i] ^= 0xFF
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"truncated", whole[:20000]},
		{"bit-flipped", flipped},
		{"zero-length", nil},
		{"not bbolt", []byte("not a database\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "todos.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, stderr := copyCLI(t, exitFail, boltFile(t, path), boltFile(t, filepath.Join(t.TempDir(), "to.db")))
			if !strings.Contains(stderr, path) || !strings.Contains(stderr, "not a usable bbolt database") || !strings.Contains(stderr, "restore it from a backup") {
				t.Errorf("store copy: %s\nwant the file named, and what to do", stderr)
			}
			code, _, stderr := runCLI("serve", "--config", boltFile(t, path))
			if code != exitFail || !strings.Contains(stderr, path) || !strings.Contains(stderr, "restore it from a backup") || strings.Contains(stderr, "goroutine") {
				t.Errorf("serve: exit %d\n%s\nwant exit 1 naming the file, without a stack", code, stderr)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.data) {
				t.Error("the damaged file changed")
			}
		})
	}
	before, _ := os.ReadFile(healthy)
	copyCLI(t, exitOK, boltFile(t, healthy), boltFile(t, filepath.Join(dir, "to.db")))
	if after, _ := os.ReadFile(healthy); !bytes.Equal(before, after) {
		t.Error("a copy wrote to its healthy source")
	}
}

// usedPage is the root page of the first nested bucket of the bbolt file
// at path that is not inline: a page in use, found through bbolt itself.
func usedPage(t *testing.T, path string) int {
	t.Helper()
	db, err := bbolt.Open(path, 0o400, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root int
	db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			return b.ForEachBucket(func(name []byte) error {
				if r := b.Bucket(name).Root(); root == 0 && r != 0 {
					root = int(r)
				}
				return nil
			})
		})
	})
	if root == 0 {
		t.Fatal("no bucket of the test store has a page of its own")
	}
	return root
}
