package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// maxConvergence is how soon after "tenants push" returns every instance
// must serve a pushed tenant.
const maxConvergence = 2 * time.Second

// TestClusterTenantPush runs three gateways whose tenants come from etcd
// (tenants_from "etcd") while clients use an unchanged tenant through the
// proxy, and pushes a new tenant set with "todo-gateway tenants push": a
// tenant is added and one removed. Every instance must serve the new tenant
// within maxConvergence of the push, the unchanged tenant must see no
// failed request, "tenants status" must show all three on the new
// revision, and the removed tenant's todos must be there again when it is
// pushed back.
func TestClusterTenantPush(t *testing.T) {
	gwBin, etcdBin := os.Getenv("TODO_GATEWAY_BIN"), os.Getenv("ETCD_BIN")
	if gwBin == "" || etcdBin == "" {
		t.Skip("runs real processes: set TODO_GATEWAY_BIN and ETCD_BIN as for TestCluster; `make cluster-test` does both")
	}
	dir := t.TempDir()
	if d := os.Getenv("CLUSTER_TEST_DIR"); d != "" {
		dir = filepath.Join(d, "push-"+time.Now().Format("20060102-150405"))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var ps ports
	etcd := startEtcd(t, etcdBin, dir, 3, &ps)
	iss := providertest.New(t)
	px := newProxy(t)
	prefix := fmt.Sprintf("push-test-%d/", time.Now().UnixNano())
	store := map[string]any{"driver": "etcd", "etcd": map[string]any{"endpoints": etcd.endpoints(), "prefix": prefix}}

	// The operator's tenants file, one version per push.
	tenant := func(id string) map[string]any {
		return map[string]any{"id": id, "resource": px.URL() + "/" + id,
			"provider": map[string]any{"type": "oidc", "issuer": iss.Issuer()}, "audience": map[string]any{"strategy": "resource"}}
	}
	writeJSON := func(name string, doc any) string {
		data, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tenantsFile := func(name string, ids ...string) string {
		var ts []any
		for _, id := range ids {
			ts = append(ts, tenant(id))
		}
		return writeJSON(name, map[string]any{"store": store, "tenants": ts})
	}
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(gwBin, args...).CombinedOutput()
		return string(out), err
	}
	push := func(path string) {
		t.Helper()
		out, err := cli("tenants", "push", "--config", path)
		t.Logf("tenants push --config %s:\n%s", filepath.Base(path), out)
		if err != nil {
			t.Fatalf("tenants push: %v", err)
		}
	}
	push(tenantsFile("tenants-v1.json", "acme", "globex"))

	var gws []*gatewayInst
	var boot string
	for i := range 3 {
		g := &gatewayInst{addr: fmt.Sprintf("127.0.0.1:%d", ps.next(t)), adminAddr: fmt.Sprintf("127.0.0.1:%d", ps.next(t))}
		name := fmt.Sprintf("p%d", i+1)
		path := writeJSON(name+".json", map[string]any{"listen": g.addr, "admin": map[string]any{"listen": g.adminAddr},
			"store": store, "tenants_from": "etcd"})
		boot = path
		g.proc = &proc{name: name, bin: gwBin, args: []string{"serve", "--config", path},
			logPath: filepath.Join(dir, name+".log"), readyLine: "todo-gateway listening on"}
		g.stopAtExit(t)
		gws = append(gws, g)
		px.add(name, g.addr, g.adminAddr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, g := range gws {
				t.Logf("--- %s log (last lines):\n%s", g.name, g.tail(20))
			}
		}
	})
	startBehindProxy(t, px, gws)

	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	clientOf := func(id string) *mcpClient { return &mcpClient{http: httpc, host: px.Host(), path: "/" + id} }
	token := func(id, sub string) string {
		return iss.Mint(iss.Claims(sub, px.URL()+"/"+id, "create:todos read:todos delete:todos"))
	}

	// A todo in globex, the tenant the push removes.
	kept := &op{client: "setup", subject: "alice", via: "proxy", content: "globex keeps this"}
	clientOf("globex").create(context.Background(), kept, px.Host(), token("globex", "alice"))
	if kept.outcome != ok {
		t.Fatalf("create in globex: %v", kept)
	}

	// Clients on acme, the unchanged tenant, through the proxy.
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	var total, failedOps atomic.Int64
	var failures []string
	var failMu sync.Mutex
	for w := range 4 {
		load.Go(func() {
			c, sub := clientOf("acme"), fmt.Sprintf("user-%d", w)
			tok := token("acme", sub)
			for n := 0; loadCtx.Err() == nil; n++ {
				o := &op{client: sub, subject: sub, via: "proxy", content: fmt.Sprintf("%s-%d", sub, n)}
				if n%2 == 0 {
					c.create(context.Background(), o, px.Host(), tok)
				} else {
					o.kind = opListOwn
					c.list(context.Background(), o, px.Host(), tok, 100, 1)
				}
				total.Add(1)
				if o.outcome != ok {
					failedOps.Add(1)
					failMu.Lock()
					failures = append(failures, o.String())
					failMu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(time.Second)

	// Push: initech added, globex removed, acme unchanged.
	push(tenantsFile("tenants-v2.json", "acme", "initech"))
	pushed := time.Now()
	initech, initechTok := clientOf("initech"), token("initech", "bob")
	var serving sync.WaitGroup
	took := make([]time.Duration, len(gws))
	for i, g := range gws {
		serving.Go(func() {
			took[i] = -1
			for time.Since(pushed) < 10*time.Second {
				o := &op{client: "probe", subject: "bob", via: g.name, content: "probe-" + g.name}
				initech.create(context.Background(), o, g.addr, initechTok)
				if o.outcome == ok {
					took[i] = time.Since(pushed)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	serving.Wait()
	time.Sleep(time.Second) // the load goes on after the swap
	stopLoad()
	load.Wait()

	out, err := cli("tenants", "status", "--config", boot, "--wait", "10s")
	t.Logf("tenants status:\n%s", out)
	if err != nil || !strings.Contains(out, "converged: 3 of 3") {
		t.Errorf("tenants status: %v, want every instance converged", err)
	}
	globexGone := &op{client: "check", subject: "alice", via: "proxy", content: "after removal"}
	clientOf("globex").create(context.Background(), globexGone, px.Host(), token("globex", "alice"))

	// Push globex back: its todo is there.
	push(tenantsFile("tenants-v3.json", "acme", "initech", "globex"))
	var back []todo
	waitFor(t, 10*time.Second, "globex served again", func() bool {
		o := &op{client: "check", via: "proxy"}
		clientOf("globex").list(context.Background(), o, px.Host(), token("globex", "alice"), 100, 5)
		back = o.todos
		return o.outcome == ok
	})

	for i, g := range gws {
		t.Logf("%s served initech %s after the push returned", g.name, took[i].Round(time.Millisecond))
		if took[i] < 0 || took[i] > maxConvergence {
			t.Errorf("%s served initech after %s, want within %s", g.name, took[i].Round(time.Millisecond), maxConvergence)
		}
	}
	t.Logf("acme: %d operations during the push, %d failed", total.Load(), failedOps.Load())
	if failedOps.Load() > 0 {
		t.Errorf("%d of %d acme operations failed across the push:\n  %s", failedOps.Load(), total.Load(), strings.Join(failures[:min(10, len(failures))], "\n  "))
	}
	if total.Load() < 50 {
		t.Errorf("only %d acme operations ran, want at least 50", total.Load())
	}
	if globexGone.outcome == ok {
		t.Errorf("a create in globex succeeded after globex was removed: %v", globexGone)
	}
	found := false
	for _, td := range back {
		found = found || (td.ID == kept.id && td.Content == kept.content)
	}
	if !found {
		t.Errorf("globex pushed back lists %v, want the todo %s created before it was removed", back, kept.id)
	}
}
