package tenants

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
)

// member is one embedded etcd member for the package's tests; each test
// works under a prefix of its own.
var member *etcdtest.Member

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tenants-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	member, err = etcdtest.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	member.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// etcdDoc is a document of the given tenants whose store names the test
// member under prefix.
func etcdDoc(t *testing.T, prefix string, ids ...string) []byte {
	t.Helper()
	return apply(t, baseDoc(ids...), set("store", map[string]any{"driver": "etcd",
		"etcd": map[string]any{"endpoints": []any{member.Endpoint}, "prefix": prefix}}))
}

// bootstrap is an instance's bootstrap configuration on the test member.
func bootstrap(t *testing.T, prefix string) *Config {
	t.Helper()
	return mustParse(t, []byte(fmt.Sprintf(`{"listen": "127.0.0.1:4001", "store": {"driver": "etcd", "etcd": {"endpoints": [%q], "prefix": %q}}, "tenants_from": "etcd"}`,
		member.Endpoint, prefix)))
}

func testPrefix(t *testing.T) string {
	return fmt.Sprintf("test-%s-%d/", strings.ToLower(t.Name()), time.Now().UnixNano())
}

func openSource(t *testing.T, cfg *Config) *EtcdSource {
	t.Helper()
	src, err := OpenEtcdSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func rawClient(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := member.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestEtcdSourceRefusesAFileStore(t *testing.T) {
	if _, err := OpenEtcdSource(mustParse(t, apply(t, baseDoc()))); err == nil || !strings.Contains(err.Error(), `not "etcd"`) {
		t.Errorf("got %v, want a refusal naming the store driver", err)
	}
}

func TestBootstrapValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  []byte
		want string // a problem's path and message start
	}{
		{"tenants beside tenants_from", apply(t, baseDoc(), set("tenants_from", "etcd"),
			set("store", map[string]any{"driver": "etcd", "etcd": map[string]any{"endpoints": []any{"http://127.0.0.1:2379"}}})), "tenants: with tenants_from"},
		{"bbolt store", []byte(`{"tenants_from": "etcd"}`), `tenants_from: "etcd" reads the tenants`},
		{"unknown source", apply(t, baseDoc(), set("tenants_from", "consul")), `tenants_from: unknown source "consul"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, p := range problemsOf(t, c.doc) {
				got = append(got, p.String())
			}
			if !strings.Contains(strings.Join(got, "\n"), c.want) {
				t.Errorf("got problems %q, want one starting %q", got, c.want)
			}
		})
	}
}

func TestEtcdSourceReadWithoutDocument(t *testing.T) {
	src := openSource(t, bootstrap(t, testPrefix(t)))
	_, err := src.Read(context.Background())
	if !errors.Is(err, ErrNoDocument) || !strings.Contains(err.Error(), "tenants push") {
		t.Errorf("got %v, want ErrNoDocument with how to push one", err)
	}
}

func TestEtcdSourcePush(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	v1 := etcdDoc(t, prefix, "acme")
	src := openSource(t, mustParse(t, v1))

	rev1, err := src.Push(ctx, v1, 0)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := src.Read(ctx)
	if err != nil || doc.Revision != rev1 || string(doc.Data) != string(v1) {
		t.Fatalf("after a push: read revision %d (err %v), want %d with the pushed bytes", doc.Revision, err, rev1)
	}

	// A second pusher who read before the first pushed: conflict, nothing written.
	v2 := etcdDoc(t, prefix, "acme", "globex")
	if _, err := src.Push(ctx, v2, 0); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), fmt.Sprintf("now revision %d", rev1)) {
		t.Errorf("push over no document when revision %d exists: got %v, want ErrConflict naming it", rev1, err)
	}
	if _, err := src.Push(ctx, v2, rev1-1); !errors.Is(err, ErrConflict) {
		t.Errorf("push over a stale revision: got %v, want ErrConflict", err)
	}
	if doc, _ := src.Read(ctx); doc.Revision != rev1 {
		t.Errorf("a refused push wrote revision %d", doc.Revision)
	}

	// Documents an instance would refuse are never written.
	for name, bad := range map[string][]byte{
		"invalid":      apply(t, baseDoc(), set("tenants.0.id", "Not An Id")),
		"tenants_from": []byte(fmt.Sprintf(`{"store": {"driver": "etcd", "etcd": {"endpoints": [%q]}}, "tenants_from": "etcd"}`, member.Endpoint)),
		"not json":     []byte(`{"tenants": [`),
	} {
		if _, err := src.Push(ctx, bad, rev1); err == nil {
			t.Errorf("%s: push succeeded, want it refused", name)
		}
	}
	if doc, _ := src.Read(ctx); doc.Revision != rev1 {
		t.Errorf("a refused document was written (revision %d, want %d)", doc.Revision, rev1)
	}

	// Over the request limit: refused before etcd sees it, saying why.
	huge := apply(t, baseDoc(), set("tenants.0.resource_name", strings.Repeat("x", MaxEtcdDocument)))
	if _, err := src.Push(ctx, huge, rev1); err == nil || !strings.Contains(err.Error(), "1.5 MiB") || !strings.Contains(err.Error(), "1,500 tenants") {
		t.Errorf("push of %d bytes: got %v, want a refusal naming the 1.5 MiB limit", len(huge), err)
	}

	rev2, err := src.Push(ctx, v2, rev1)
	if err != nil || rev2 <= rev1 {
		t.Fatalf("push over the revision read: got revision %d, %v", rev2, err)
	}
}

func TestEtcdSourceConcurrentPushesOneWins(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	base := etcdDoc(t, prefix, "acme")
	src := openSource(t, mustParse(t, base))
	rev, err := src.Push(ctx, base, 0)
	if err != nil {
		t.Fatal(err)
	}
	const pushers = 8
	var wg sync.WaitGroup
	errs := make([]error, pushers)
	for i := range pushers {
		wg.Go(func() {
			_, errs[i] = src.Push(ctx, etcdDoc(t, prefix, "acme", fmt.Sprintf("t%d", i)), rev)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrConflict):
			t.Errorf("pusher %d: %v, want success or ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d pushers over the same revision succeeded, want exactly 1", won, pushers)
	}
}

func TestEtcdSourceParseKeepsTheInstanceSettings(t *testing.T) {
	prefix := testPrefix(t)
	boot := bootstrap(t, prefix)
	src := openSource(t, boot)
	doc := apply(t, baseDoc("acme", "globex"), set("listen", "0.0.0.0:9999"))
	cfg, err := src.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:4001" || cfg.Store.Driver != DriverEtcd || cfg.TenantsFrom != "" || len(cfg.Tenants) != 2 {
		t.Errorf("got listen %q, store %q, tenants_from %q, %d tenants; want the bootstrap's settings with the document's 2 tenants",
			cfg.Listen, cfg.Store.Driver, cfg.TenantsFrom, len(cfg.Tenants))
	}
	if _, err := NewSnapshot(cfg); err != nil {
		t.Errorf("the composed configuration does not validate: %v", err)
	}
}

// watchRecorder counts Watch's calls.
type watchRecorder struct {
	changed  chan struct{}
	mu       sync.Mutex
	problems []error
}

func newWatchRecorder() *watchRecorder { return &watchRecorder{changed: make(chan struct{}, 100)} }

func (w *watchRecorder) onChange() { w.changed <- struct{}{} }
func (w *watchRecorder) onProblem(err error) {
	w.mu.Lock()
	w.problems = append(w.problems, err)
	w.mu.Unlock()
}

func (w *watchRecorder) waitChanged(t *testing.T, what string) {
	t.Helper()
	select {
	case <-w.changed:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Watch did not report a change", what)
	}
}

func (w *watchRecorder) drain() {
	for {
		select {
		case <-w.changed:
		default:
			return
		}
	}
}

// pushedAndRead pushes a document naming acme under prefix, then opens a
// second source on the same prefix, as another instance would, and reads
// it: the pusher, the reader and the revision pushed.
func pushedAndRead(t *testing.T, ctx context.Context, prefix string) (pusher, src *EtcdSource, rev int64) {
	t.Helper()
	pusher = openSource(t, mustParse(t, etcdDoc(t, prefix, "acme")))
	rev, err := pusher.Push(ctx, etcdDoc(t, prefix, "acme"), 0)
	if err != nil {
		t.Fatal(err)
	}
	src = openSource(t, bootstrap(t, prefix))
	if _, err := src.Read(ctx); err != nil {
		t.Fatal(err)
	}
	return pusher, src, rev
}

func TestEtcdSourceWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := testPrefix(t)
	pusher, src, rev := pushedAndRead(t, ctx, prefix)
	var err error
	// Written after the read and before the watch starts: still seen,
	// because the watch starts from the revision read.
	v2 := etcdDoc(t, prefix, "acme", "globex")
	if rev, err = pusher.Push(ctx, v2, rev); err != nil {
		t.Fatal(err)
	}
	w := newWatchRecorder()
	if err := src.Watch(ctx, w.onChange, w.onProblem); err != nil {
		t.Fatal(err)
	}
	w.waitChanged(t, "a push between the read and the watch")
	doc, err := src.Read(ctx)
	if err != nil || doc.Revision != rev {
		t.Fatalf("read after the change: revision %d, %v; want %d", doc.Revision, err, rev)
	}
	w.drain()
	if _, err := pusher.Push(ctx, etcdDoc(t, prefix, "globex"), rev); err != nil {
		t.Fatal(err)
	}
	w.waitChanged(t, "a push while watching")
	// A deletion (by hand) is a change too: the reader then finds no
	// document and keeps what it serves.
	w.drain()
	if _, err := rawClient(t).Delete(ctx, prefix+EtcdDocumentKey); err != nil {
		t.Fatal(err)
	}
	w.waitChanged(t, "a deletion")
	if _, err := src.Read(ctx); !errors.Is(err, ErrNoDocument) {
		t.Errorf("read after the deletion: %v, want ErrNoDocument", err)
	}
}

func TestEtcdSourceWatchAfterCompaction(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := testPrefix(t)
	pusher, src, rev := pushedAndRead(t, ctx, prefix)
	var err error
	// The history after the read is compacted away before the watch
	// starts: the watch cannot start from the revision read.
	for _, ids := range [][]string{{"acme", "globex"}, {"acme", "initech"}} {
		if rev, err = pusher.Push(ctx, etcdDoc(t, prefix, ids...), rev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rawClient(t).Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	w := newWatchRecorder()
	if err := src.Watch(ctx, w.onChange, w.onProblem); err != nil {
		t.Fatal(err)
	}
	w.waitChanged(t, "a watch behind a compaction")
	w.mu.Lock()
	problems := fmt.Sprint(w.problems)
	w.mu.Unlock()
	if !strings.Contains(problems, "compacted") {
		t.Errorf("problems reported: %s; want the compaction", problems)
	}
	doc, err := src.Read(ctx)
	if err != nil || doc.Revision != rev {
		t.Fatalf("re-read: revision %d, %v; want %d", doc.Revision, err, rev)
	}
	// The watch resumed: a later push is seen.
	w.drain()
	if _, err := pusher.Push(ctx, etcdDoc(t, prefix, "initech"), rev); err != nil {
		t.Fatal(err)
	}
	w.waitChanged(t, "a push after the watch resumed")
}

func TestEtcdSourceAnnounce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	prefix := testPrefix(t)
	src := openSource(t, bootstrap(t, prefix))
	updates := make(chan Applied, 1)
	done := src.Announce(ctx, "host/127.0.0.1:4001", updates, func(err error) { t.Errorf("announce: %v", err) })
	for _, rev := range []int64{7, 9} {
		updates <- Applied{Instance: "host/127.0.0.1:4001", Revision: rev, Version: fmt.Sprint("v", rev)}
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := src.Applied(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 1 && got[0].Revision == rev && got[0].Version == fmt.Sprint("v", rev) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("recorded %+v, want one instance at revision %d", got, rev)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cancel()
	<-done
	if got, err := src.Applied(context.Background()); err != nil || len(got) != 0 {
		t.Errorf("after the instance stopped: %+v, %v; want its record gone (lease revoked)", got, err)
	}
}

// An instance that starts while the newest document does not load (pushed
// by hand, or by a newer gateway) starts on the newest one that does,
// walking back through the key's history, and says what it refused; with
// no version that loads, or the history compacted away, it fails (issue
// 24: a restarted instance failed while the running ones kept serving).
func TestEtcdSourceReadValidWalksBack(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	v1 := etcdDoc(t, prefix, "acme")
	src := openSource(t, bootstrap(t, prefix))
	rev1, err := src.Push(ctx, v1, 0)
	if err != nil {
		t.Fatal(err)
	}
	cli := rawClient(t)
	put := func(data string) int64 {
		resp, err := cli.Put(ctx, prefix+EtcdDocumentKey, data)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	put(`{"tenants": [{"id": "acme"}]}`) // does not validate
	bad := put(`{"tenants": [`)          // does not parse

	cfg, doc, refused, err := src.ReadValid(ctx)
	if err != nil || doc.Revision != rev1 || len(cfg.Tenants) != 1 || cfg.Tenants[0].ID != "acme" {
		t.Fatalf("got revision %d (%v), want the pushed revision %d", doc.Revision, err, rev1)
	}
	if refused == nil || refused.Revision != bad || refused.Reason == "" {
		t.Errorf("refused %+v, want revision %d with its reason", refused, bad)
	}

	// Nothing loads once the history before the bad versions is compacted.
	if _, err := cli.Compact(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if _, _, refused, err := src.ReadValid(ctx); err == nil || refused == nil || !strings.Contains(err.Error(), "no older one could be read") {
		t.Errorf("with the history compacted: %v (refused %+v), want an error that says so", err, refused)
	}
}
