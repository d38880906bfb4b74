package mcp_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/todo-gateway/todo-gateway/mcp"
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
	if !strings.Contains(body, `"store":{"backend":"bbolt test.db","ok":true}`) {
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
	if resp, body := get(t, admin+"/status", ""); !strings.Contains(body, `"store":{"backend":"bbolt test.db","ok":false,"error":"etcd: no quorum"}`) {
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
		strings.TrimSpace(body) != `{"config":"","store":{"backend":"bbolt test.db","ok":true},"tenants":[]}` {
		t.Errorf("status before Apply: %d %s", resp.StatusCode, body)
	}
	edge := httptest.NewServer(gw)
	defer edge.Close()
	if resp, body := post(t, edge.URL+"/acme", "", toolsList); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the edge before Apply: %d %s, want 404", resp.StatusCode, body)
	}
}
