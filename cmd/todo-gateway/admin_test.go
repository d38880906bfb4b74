package main

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp := do(t, mustRequest(t, http.MethodGet, url, nil))
	return resp.StatusCode, readAll(t, resp)
}

// The admin endpoints answer on their own listener only, over the process's
// one registry (the edge's, the providers' and the store's collectors and
// Go's), the real providers' status and the store's readiness. (What the
// edge counts and reports is tested in package mcp.)
func TestAdminEndpoints(t *testing.T) {
	iss := providertest.New(t, providertest.WithKeys(jose.RS256))
	b := startBed(t, bedSpec{tenants: onIssuers(2, iss.Issuer())})
	admin := "http://" + b.gw.AdminAddr()

	if code, body := get(t, admin+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("healthz: %d %s", code, body)
	}
	if code, body := get(t, admin+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Errorf("readyz: %d %s", code, body)
	}
	code, body := get(t, admin+"/status")
	for _, id := range []string{"t0", "t1"} {
		if code != http.StatusOK || !strings.Contains(body, `"id":"`+id+`"`) {
			t.Errorf("status lacks tenant %s: %d %s", id, code, body)
		}
	}
	// Nobody has asked the issuer anything yet: it is not "reachable".
	if strings.Contains(body, `"reachable":true`) || !strings.Contains(body, `"reachable":false`) {
		t.Errorf("status before any token: %s, want the issuer not reachable", body)
	}

	tok := iss.Mint(iss.Claims("admin", b.resources["t0"], allTodoScopes))
	if resp := post(t, b.resources["t0"], tok, createBody(0), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("create-todo: %d %s", resp.StatusCode, readAll(t, resp))
	}
	code, body = get(t, admin+"/metrics")
	for _, want := range []string{
		`todo_gateway_config_info{version="test"} 1`,
		`todo_gateway_build_info{go_version="` + runtime.Version() + `",`,
		`todo_gateway_store_operation_seconds_count{op="create",outcome="ok"} 1`,
		`todo_gateway_jwks_fetches_total{issuer="` + iss.Issuer() + `",result="ok"} 1`,
		`go_goroutines`,
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The tenant that has seen a token knows its issuer's keys.
	code, body = get(t, admin+"/status")
	if code != http.StatusOK || !strings.Contains(body, `"id":"t0"`) || !strings.Contains(body, `"discovered":true`) || !strings.Contains(body, `"keys":1`) ||
		!strings.Contains(body, `"reachable":true`) {
		t.Errorf("status after a token: %d %s", code, body)
	}
	// Both tenants are on one issuer: one shared entry, counting them.
	if !strings.Contains(body, `"issuers":[{"issuer":"`+iss.Issuer()+`","type":"oidc","tenants":2`) {
		t.Errorf("status lacks the shared issuer with its 2 tenants: %s", body)
	}

	// Never on the public listener.
	for _, path := range []string{"/metrics", "/healthz", "/status"} {
		if code, _ := get(t, b.base+path); code != http.StatusNotFound {
			t.Errorf("public listener answers %s with %d, want 404", path, code)
		}
	}

	if code, body = get(t, admin+"/metrics"); !strings.Contains(body, "todo_gateway_store_up 1") {
		t.Errorf("metrics do not show the store up: %d", code)
	}
	// A store that cannot answer shows in /status and the metric; /readyz
	// leaves the instance in rotation (see mcp.AdminOptions.StoreCheck).
	b.gw.store.Close()
	if code, body := get(t, admin+"/status"); !strings.Contains(body, `"ok":false,"error":"store closed"`) {
		t.Errorf("status with the store closed: %d %s, want the store's error", code, body)
	}
	if _, body := get(t, admin+"/metrics"); !strings.Contains(body, "todo_gateway_store_up 0") {
		t.Error("metrics do not show the store down")
	}
	// A write that fails is answered as retryable, counted by the store
	// metric under its outcome (the failure counter: no other is needed),
	// and shown in /status.
	if body := readAll(t, post(t, b.resources["t0"], tok, createBody(1), nil)); !strings.Contains(body, "the todo store is temporarily unavailable; retry later") {
		t.Errorf("create-todo with the store closed: %s, want the retryable answer", body)
	}
	if _, body := get(t, admin+"/metrics"); !strings.Contains(body, `todo_gateway_store_operation_seconds_count{op="create",outcome="closed"} 1`) ||
		!strings.Contains(body, `todo_gateway_tool_errors_total{tenant="t0",tool="create-todo"} 1`) {
		t.Error("metrics do not count the failed write")
	}
	if _, body := get(t, admin+"/status"); !strings.Contains(body, `"writes":{"ok":false,"failures":1,"last_error":"store closed"`) {
		t.Errorf("status after a failed write: %s, want the writes failing", body)
	}
}

// A tenant whose verifier could not be built by the real providers (here:
// its introspection secret's environment variable is unset) says why in
// /status.
func TestStatusNamesABrokenTenant(t *testing.T) {
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: []bedTenant{
		onIssuer("t0", "oidc", iss.Issuer()),
		{id: "t1", fields: fmt.Sprintf(`"provider": {"type": "oidc", "issuer": %q, "token": "introspection",
			"introspection": {"client_id": "gw", "client_secret_env": "TODO_GATEWAY_TEST_UNSET"}}, "audience": {"strategy": "resource"}`, iss.Issuer())},
	}})
	code, body := get(t, "http://"+b.gw.AdminAddr()+"/status")
	if code != http.StatusOK || !strings.Contains(body, `"problem":`) || !strings.Contains(body, "TODO_GATEWAY_TEST_UNSET") {
		t.Errorf("status of a broken tenant: %d %s", code, body)
	}
}
