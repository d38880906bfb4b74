package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/bolt"
)

// serveAdmin serves mcp.NewAdmin for b's edge with the store check and
// draining flag given, and b's metrics.
func serveAdmin(t *testing.T, gw *mcp.Gateway, check func(context.Context) error, draining *atomic.Bool, b *edgeBed) string {
	t.Helper()
	var metrics http.Handler = http.NotFoundHandler()
	if b != nil {
		metrics = promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{})
	}
	srv := httptest.NewServer(mcp.NewAdmin(gw, mcp.AdminOptions{
		Draining: draining.Load, StoreCheck: check, StoreName: "bbolt test.db", Metrics: metrics,
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Health, readiness, status and metrics of the edge: one allowed call, one
// refusal and one create each show in the metrics.
func TestAdminEndpoints(t *testing.T) {
	b := newEdgeBed(t, brokenTenant("umbrella", "environment variable UMBRELLA_SECRET is not set"))
	var storeErr error
	var draining atomic.Bool
	admin := serveAdmin(t, b.gw, func(context.Context) error { return storeErr }, &draining, b)

	if resp, body := get(t, admin+"/healthz", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("healthz: %d %s", resp.StatusCode, body)
	}
	if resp, body := get(t, admin+"/readyz", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Errorf("readyz: %d %s", resp.StatusCode, body)
	}
	resp, body := get(t, admin+"/status", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"config":"test"`) {
		t.Errorf("status lacks the configuration version: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `"store":{"backend":"bbolt test.db","ok":true,"writes":{"ok":true,"failures":0}}`) {
		t.Errorf("status does not show the store answering: %s", body)
	}
	for _, id := range []string{"acme", "globex", "initech", "umbrella", "hooli"} {
		if !strings.Contains(body, `"id":"`+id+`"`) {
			t.Errorf("status lacks tenant %s: %s", id, body)
		}
	}
	if !strings.Contains(body, `"problem":"environment variable UMBRELLA_SECRET is not set"`) {
		t.Errorf("status does not name the broken tenant's problem: %s", body)
	}
	if strings.Count(body, `"problem":`) != 1 {
		t.Errorf("status names problems of tenants that have none: %s", body)
	}

	c := connect(t, b.resources["acme"], b.token("acme", "admin", adminPerms...), "")
	createTodo(t, c, "counted")
	if _, isError := call(t, c, "delete-todo", map[string]any{"id": "no-such-todo"}); !isError {
		t.Error("deleting an unknown todo was not a tool error")
	}
	post(t, b.resources["acme"], "", toolsList)
	resp, body = get(t, admin+"/metrics", "")
	for _, want := range []string{
		`todo_gateway_requests_total{status="200",tenant="acme",tool="create-todo"} 1`,
		`todo_gateway_requests_total{status="401",tenant="acme",tool=""} 1`,
		`todo_gateway_authorization_decisions_total{decision="deny",reason="no_credentials",tenant="acme"} 1`,
		`todo_gateway_token_verification_seconds_count{outcome="ok",tenant="acme"}`,
		`todo_gateway_config_info{version="test"} 1`,
		`todo_gateway_tool_errors_total{tenant="acme",tool="delete-todo"} 1`,
	} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A store that cannot answer shows in /status and leaves the instance
	// ready: every instance shares the store, so failing readiness would
	// take them all out at once, metadata and challenges included.
	storeErr = errors.New("etcd: no quorum")
	if resp, body := get(t, admin+"/status", ""); !strings.Contains(body, `"store":{"backend":"bbolt test.db","ok":false,"error":"etcd: no quorum","writes":{"ok":true,`) {
		t.Errorf("status with a failing store: %d %s, want the store's error", resp.StatusCode, body)
	}
	if resp, body := get(t, admin+"/readyz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("readyz with a failing store: %d %s, want 200", resp.StatusCode, body)
	}
	draining.Store(true)
	if resp, body := get(t, admin+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("readyz while draining: %d %s, want 503 draining", resp.StatusCode, body)
	}
	if resp, body := get(t, admin+"/nope", ""); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error":"not_found"`) {
		t.Errorf("unknown admin path: %d %s", resp.StatusCode, body)
	}
	// The admin endpoints are never on the edge itself.
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/status"} {
		if resp, _ := get(t, b.URL+path, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("the edge answers %s with %d, want 404", path, resp.StatusCode)
		}
	}
}

// Before the first Apply the edge serves nothing and is not ready.
func TestAdminBeforeTheFirstApply(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "todos.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gw := mcp.New(st, mcp.Options{Logger: slog.New(slog.DiscardHandler)})
	defer gw.Close(context.Background())
	admin := serveAdmin(t, gw, st.Ping, &atomic.Bool{}, nil)
	if resp, body := get(t, admin+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "no tenants loaded") {
		t.Errorf("readyz before Apply: %d %s, want 503 no tenants loaded", resp.StatusCode, body)
	}
	if resp, body := get(t, admin+"/status", ""); resp.StatusCode != http.StatusOK ||
		strings.TrimSpace(body) != `{"config":"","store":{"backend":"bbolt test.db","ok":true,"writes":{"ok":true,"failures":0}},"tenants":[]}` {
		t.Errorf("status before Apply: %d %s", resp.StatusCode, body)
	}
	edge := httptest.NewServer(gw)
	defer edge.Close()
	if resp, body := post(t, edge.URL+"/acme", "", toolsList); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the edge before Apply: %d %s, want 404", resp.StatusCode, body)
	}
}

// fullDisk is a store whose writes fail while full is set, as bbolt's do
// on a full disk (store/bolt answers store.ErrUnavailable for any commit
// it cannot make); reads go on.
type fullDisk struct {
	store.Store
	full atomic.Bool
}

var errDiskFull = fmt.Errorf("create todo: %w: write todos.db: no space left on device", store.ErrUnavailable)

func (s *fullDisk) Create(ctx context.Context, tenant, owner, content string) (store.Todo, error) {
	if s.full.Load() {
		return store.Todo{}, errDiskFull
	}
	return s.Store.Create(ctx, tenant, owner, content)
}

func (s *fullDisk) Delete(ctx context.Context, tenant, id string, allow func(store.Todo) bool) (store.Todo, error) {
	if s.full.Load() {
		return store.Todo{}, errDiskFull
	}
	return s.Store.Delete(ctx, tenant, id, allow)
}

// With the disk full, a write is answered as retryable (not as an internal
// error), counted as a tool error, and /status shows the store degraded
// though its read check passes; /readyz stays ready. Once there is room,
// writes resume and /status is clean again, without a restart.
func TestFullDiskIsVisibleAndRecovers(t *testing.T) {
	disk := &fullDisk{}
	b := newEdgeBedOn(t, nil, func(st store.Store) store.Store { disk.Store = st; return disk })
	var draining atomic.Bool
	admin := serveAdmin(t, b.gw, func(context.Context) error { return nil }, &draining, b)
	c := connect(t, b.resources["acme"], b.token("acme", "admin", adminPerms...), "")
	kept := createTodo(t, c, "written before the disk filled up")

	var status struct {
		Store struct {
			OK     bool `json:"ok"`
			Writes struct {
				OK            bool      `json:"ok"`
				Failures      int       `json:"failures"`
				LastError     string    `json:"last_error"`
				LastErrorAt   time.Time `json:"last_error_at"`
				LastSuccessAt time.Time `json:"last_success_at"`
			} `json:"writes"`
		} `json:"store"`
	}
	readStatus := func() {
		t.Helper()
		_, body := get(t, admin+"/status", "")
		if err := json.Unmarshal([]byte(body), &status); err != nil {
			t.Fatalf("status: %v: %s", err, body)
		}
	}
	readStatus()
	if !status.Store.OK || !status.Store.Writes.OK || status.Store.Writes.Failures != 0 || status.Store.Writes.LastSuccessAt.IsZero() {
		t.Errorf("status before the disk filled up: %+v, want ok with a successful write", status.Store)
	}

	disk.full.Store(true)
	text, isErr := call(t, c, todo.ToolCreateTodo, map[string]any{"content": "lost to a full disk"})
	if !isErr || !strings.HasPrefix(text, "the todo store is temporarily unavailable; retry later (the todo may or may not have been created; request ") ||
		strings.Contains(text, "internal error") || strings.Contains(text, "no space") {
		t.Errorf("create on a full disk: %q, want the retryable answer without the cause", text)
	}
	text, isErr = call(t, c, todo.ToolDeleteTodo, map[string]any{"id": kept.ID})
	if !isErr || !strings.HasPrefix(text, "the todo store is temporarily unavailable; retry later (the todo may or may not have been deleted; request ") {
		t.Errorf("delete on a full disk: %q, want the retryable answer", text)
	}
	if text, isErr := call(t, c, todo.ToolGetTodos, nil); isErr || !strings.Contains(text, kept.ID) {
		t.Errorf("get-todos on a full disk: %q, want the todos (reads still work)", text)
	}
	readStatus()
	w := status.Store.Writes
	if status.Store.OK || w.OK || w.Failures != 2 || !strings.Contains(w.LastError, "no space left on device") || !w.LastErrorAt.After(w.LastSuccessAt) {
		t.Errorf("status on a full disk: %+v, want not ok, 2 failures and the last error", status.Store)
	}
	if resp, body := get(t, admin+"/readyz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("readyz on a full disk: %d %s, want 200 (reads and challenges still work)", resp.StatusCode, body)
	}
	_, metrics := get(t, admin+"/metrics", "")
	for _, want := range []string{
		`todo_gateway_tool_errors_total{tenant="acme",tool="create-todo"} 1`,
		`todo_gateway_tool_errors_total{tenant="acme",tool="delete-todo"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if logs := b.logs(t); !strings.Contains(logs, `"msg":"tool failed"`) || !strings.Contains(logs, "no space left on device") {
		t.Errorf("the operator is not told the cause:\n%s", logs)
	}

	disk.full.Store(false) // room again: no restart, no reload
	createTodo(t, c, "written once there is room")
	readStatus()
	w = status.Store.Writes
	if !status.Store.OK || !w.OK || w.Failures != 2 || !w.LastSuccessAt.After(w.LastErrorAt) {
		t.Errorf("status once writes succeed again: %+v, want ok, keeping the count and the last error", status.Store)
	}
}
