package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
)

// Two gateways on one etcd prefix, with the read cache on (the default):
// a todo created through one is listed through the other in the next
// request, deletes likewise, and /status and /metrics show the cache
// answering the reads.
func TestEtcdReadCache(t *testing.T) {
	member, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Close)
	storeBlock := fmt.Sprintf(`{"driver": "etcd", "etcd": {"endpoints": [%q], "prefix": "cache-test-%d/"}}`, member.Endpoint, time.Now().UnixNano())
	iss := providertest.New(t)
	a := startBed(t, bedSpec{tenants: onIssuers(1, iss.Issuer()), store: storeBlock})
	b := startBed(t, bedSpec{tenants: onIssuers(1, iss.Issuer()), store: storeBlock})
	tokenFor := func(bed *gatewayBed) string { return iss.Mint(iss.Claims("alice", bed.resources["t0"], allTodoScopes)) }
	for _, bed := range []*gatewayBed{a, b} {
		eventually(t, "the cache loaded", func() bool { return cacheStatus(t, bed)["state"] == "ready" })
	}
	for i := range 10 {
		writer, reader := a, b
		if i%2 == 1 {
			writer, reader = b, a
		}
		text, isErr := callTool(t, writer.resources["t0"], tokenFor(writer), "create-todo", map[string]any{"content": fmt.Sprintf("todo %d", i)})
		if isErr {
			t.Fatalf("create-todo: %s", text)
		}
		var created struct{ ID string }
		if err := json.Unmarshal([]byte(text), &created); err != nil || created.ID == "" {
			t.Fatalf("create-todo answered %s", text)
		}
		listed, _ := callTool(t, reader.resources["t0"], tokenFor(reader), "get-todos", nil)
		if !strings.Contains(listed, created.ID) {
			t.Fatalf("round %d: the other gateway's get-todos misses %s just created: %s", i, created.ID, listed)
		}
		if i%2 == 0 {
			if text, isErr := callTool(t, writer.resources["t0"], tokenFor(writer), "delete-todo", map[string]any{"id": created.ID}); isErr {
				t.Fatalf("delete-todo: %s", text)
			}
			if listed, _ := callTool(t, reader.resources["t0"], tokenFor(reader), "get-todos", nil); strings.Contains(listed, created.ID) {
				t.Fatalf("round %d: the other gateway still lists %s after its delete", i, created.ID)
			}
		}
	}
	for _, bed := range []*gatewayBed{a, b} {
		st := cacheStatus(t, bed)
		if st["todos"] != 5.0 || st["reads_served"].(float64) < 5 || st["reads_from_etcd"] != 0.0 {
			t.Errorf("/status store.cache: %v; want 5 todos and every read served from the cache", st)
		}
		if checks, waits := st["revision_check_seconds"].(float64), st["read_wait_seconds"].(float64); checks <= 0 || waits <= 0 {
			t.Errorf("/status store.cache: %v; want the time of the checks and of the reads' waits", st)
		}
		_, metrics := get(t, "http://"+bed.gw.AdminAddr()+"/metrics")
		for _, want := range []string{"todo_gateway_store_cache_ready 1", "todo_gateway_store_cache_todos 5", "todo_gateway_store_cache_fallbacks_total 0"} {
			if !strings.Contains(metrics, want+"\n") {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		for _, counter := range []string{"todo_gateway_store_cache_revision_check_seconds_total", "todo_gateway_store_cache_read_wait_seconds_total"} {
			if strings.Contains(metrics, counter+" 0\n") || !strings.Contains(metrics, counter+" ") {
				t.Errorf("/metrics: %s missing or 0", counter)
			}
		}
	}
}

func cacheStatus(t *testing.T, bed *gatewayBed) map[string]any {
	t.Helper()
	code, body := get(t, "http://"+bed.gw.AdminAddr()+"/status")
	var doc struct {
		Store struct {
			Cache map[string]any `json:"cache"`
		} `json:"store"`
	}
	if err := json.Unmarshal([]byte(body), &doc); code != http.StatusOK || err != nil {
		t.Fatalf("/status: %d %s", code, body)
	}
	return doc.Store.Cache
}
