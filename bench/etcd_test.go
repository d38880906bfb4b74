package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
	"github.com/todo-gateway/todo-gateway/store/etcd"
)

// etcdCluster is n etcd members on 127.0.0.1, each a process of its own,
// for the wrk rows of the gateway on etcd.
type etcdCluster struct {
	endpoints []string
	pids      []int
}

// startEtcd starts n members of a new cluster from the etcd binary at bin,
// with their data and logs under dir and the flags in extra, and waits
// until every member says it is healthy. The members are killed, by PID,
// when the test ends.
func startEtcd(t *testing.T, bin, dir string, n int, extra ...string) etcdCluster {
	t.Helper()
	var c etcdCluster
	peers := make([]string, n)
	var initial []string
	for i := range n {
		peers[i] = "http://" + freeAddr(t)
		c.endpoints = append(c.endpoints, "http://"+freeAddr(t))
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		logf, err := os.Create(filepath.Join(dir, "etcd-"+name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--name", name, "--data-dir", filepath.Join(dir, "etcd-"+name),
			"--listen-client-urls", c.endpoints[i], "--advertise-client-urls", c.endpoints[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "bench"}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting etcd %s: %v", name, err)
		}
		logf.Close() // the child has its own copy
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		c.pids = append(c.pids, cmd.Process.Pid)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, ep := range c.endpoints {
		for !healthy(ep) {
			if time.Now().After(deadline) {
				t.Fatalf("etcd member %s was not healthy within 30s (logs in %s)", ep, dir)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}

func healthy(endpoint string) bool {
	resp, err := client.Get(endpoint + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct{ Health string }
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&h) == nil && h.Health == "true"
}

// cpu is the members' CPU time so far, together.
func (c etcdCluster) cpu(t *testing.T) time.Duration {
	var sum time.Duration
	for _, pid := range c.pids {
		sum += processCPU(t, pid)
	}
	return sum
}

// etcdRows is what the rows on etcd measure: the cluster, and a gateway
// on it with the read cache and one without.
type etcdRows struct {
	cluster          etcdCluster
	cached, uncached etcdGateway
	// reader10 lists 10 todos of its own on the bbolt gateway.
	reader10 string
}

// etcdGateway is a gateway process on the etcd cluster, with the tokens
// of its tenant "bench": a reader with 10 todos and a writer.
type etcdGateway struct {
	resource, metrics, status, log string
	pid                            int
	reader10, writer               string
}

// startEtcdRows starts 3 etcd members and the two gateways on them, gives
// the reader 10 todos on etcd and on the bbolt gateway at bboltResource,
// and checks that all three list them.
func startEtcdRows(t *testing.T, etcdBin, dir, bboltResource string, iss *providertest.Issuer, tenant func(resource string) map[string]any) *etcdRows {
	t.Helper()
	e := &etcdRows{cluster: startEtcd(t, etcdBin, dir, 3)}
	e.reader10 = iss.Mint(iss.Claims("bench-reader10", bboltResource, "create:todos"))
	start := func(name string, cache bool) etcdGateway {
		addr, admin := freeAddr(t), freeAddr(t)
		g := etcdGateway{resource: "http://" + addr + "/bench", metrics: "http://" + admin + "/metrics", status: "http://" + admin + "/status",
			log: filepath.Join(dir, name+".log")}
		cacheBlock := map[string]any{"enabled": cache}
		if v := os.Getenv("TODO_GATEWAY_WRK_CHECK_INTERVAL"); v != "" && cache {
			cacheBlock["check_interval"] = v // another spacing of the revision checks than the default
		}
		cfg := writeConfig(t, filepath.Join(dir, name+".json"), addr, admin,
			map[string]any{"driver": "etcd", "etcd": map[string]any{"endpoints": e.cluster.endpoints, "prefix": "bench/", "cache": cacheBlock}},
			tenant(g.resource))
		bin := os.Getenv("TODO_GATEWAY_BIN")
		_, g.pid = startProcess(t, name, exec.Command(bin, "serve", "--config", cfg), g.log)
		g.reader10 = iss.Mint(iss.Claims("bench-reader10", g.resource, "create:todos"))
		g.writer = iss.Mint(iss.Claims("bench-writer", g.resource, "create:todos"))
		return g
	}
	e.cached, e.uncached = start("gateway-etcd-cache", true), start("gateway-etcd-nocache", false)
	for range 10 {
		for _, c := range []struct{ url, token string }{{bboltResource, e.reader10}, {e.cached.resource, e.cached.reader10}} {
			if status, body := post(t, c.url, c.token, createBody); status != http.StatusOK || strings.Contains(body, `"isError":true`) {
				t.Fatalf("create-todo at %s: %d %s", c.url, status, body)
			}
		}
	}
	var answers []string
	for _, c := range []struct{ url, token string }{{bboltResource, e.reader10}, {e.cached.resource, e.cached.reader10}, {e.uncached.resource, e.uncached.reader10}} {
		status, body := post(t, c.url, c.token, listBody)
		if status != http.StatusOK || strings.Count(body, `\"ownerId\":\"bench-reader10\"`) != 10 {
			t.Fatalf("get-todos at %s: %d %s, want the reader's 10 todos", c.url, status, body)
		}
		answers = append(answers, body)
	}
	if answers[1] != answers[2] {
		t.Fatalf("the gateways on etcd answer differently with and without the cache:\n%s\n%s", answers[1], answers[2])
	}
	return e
}

// cacheStats is the cached gateway's /status store.cache, as JSON and
// read; "" when it could not be had.
func (e *etcdRows) cacheStats(t *testing.T) (string, etcd.CacheStats) {
	var st etcd.CacheStats
	resp, err := client.Get(e.cached.status)
	if err != nil {
		return "", st
	}
	defer resp.Body.Close()
	var doc struct {
		Store struct {
			Cache json.RawMessage `json:"cache"`
		} `json:"store"`
	}
	if json.NewDecoder(resp.Body).Decode(&doc) != nil || json.Unmarshal(doc.Store.Cache, &st) != nil {
		return "", st
	}
	return string(doc.Store.Cache), st
}

// writeConfig writes a gateway configuration listening on addr (admin on
// admin) with the store block and tenants given, and returns its path.
func writeConfig(t *testing.T, path, addr, admin string, store map[string]any, tenants ...any) string {
	t.Helper()
	cfg, err := json.MarshalIndent(map[string]any{
		"listen": addr, "admin": map[string]any{"listen": admin}, "store": store, "tenants": tenants,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
