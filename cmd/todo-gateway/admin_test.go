package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp := do(t, mustRequest(t, http.MethodGet, url, nil))
	return resp.StatusCode, readAll(t, resp)
}

// Health, readiness, status and metrics answer on the admin listener only.
func TestAdminEndpoints(t *testing.T) {
	tb := newTestbed(t)
	admin := "http://" + tb.gw.AdminAddr()

	if code, body := get(t, admin+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("healthz: %d %s", code, body)
	}
	if code, body := get(t, admin+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Errorf("readyz: %d %s", code, body)
	}
	code, body := get(t, admin+"/status")
	for _, id := range []string{"acme", "globex", "initech", "umbrella", "hooli"} {
		if code != http.StatusOK || !strings.Contains(body, `"id":"`+id+`"`) {
			t.Errorf("status lacks tenant %s: %d %s", id, code, body)
		}
	}

	// One allowed call, one refusal, one create: each shows in the metrics.
	c := tb.connect(t, tb.tenants["acme"], tb.token(t, "acme", "admin", allTodoScopes), "")
	createTodo(t, c, "counted")
	readAll(t, post(t, tb.tenants["acme"], "", toolsList, nil))
	code, body = get(t, admin+"/metrics")
	for _, want := range []string{
		`todo_gateway_requests_total{status="200",tenant="acme",tool="create-todo"} 1`,
		`todo_gateway_authorization_decisions_total{decision="deny",reason="no_credentials",tenant="acme"} 1`,
		`todo_gateway_token_verification_seconds_count{outcome="ok",tenant="acme"}`,
		`todo_gateway_store_operation_seconds_count{op="create",outcome="ok"} 1`,
		`todo_gateway_jwks_fetches_total{issuer="` + tb.logto.Issuer() + `",result="ok"} 1`,
		`go_goroutines`,
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The tenant that has seen a token knows its issuer's keys.
	code, body = get(t, admin+"/status")
	if code != http.StatusOK || !strings.Contains(body, `"id":"acme"`) || !strings.Contains(body, `"discovered":true`) || !strings.Contains(body, `"keys":1`) {
		t.Errorf("status after a token: %d %s", code, body)
	}

	// Never on the public listener.
	for _, path := range []string{"/metrics", "/healthz", "/status"} {
		if code, _ := get(t, tb.base+path); code != http.StatusNotFound {
			t.Errorf("public listener answers %s with %d, want 404", path, code)
		}
	}

	// A closed store is not ready.
	tb.gw.store.Close()
	if code, body := get(t, admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with the store closed: %d %s, want 503", code, body)
	}
}

// A tenant whose verifier could not be built says why in /status.
func TestStatusNamesABrokenTenant(t *testing.T) {
	iss := providertest.New(t)
	ln, base := listen(t)
	cfg := manyTenantsConfig(t, base, iss.Issuer(), 2)
	cfg.Tenants[1].Provider.Token = providers.TokenIntrospection
	cfg.Tenants[1].Provider.Introspection = &providers.IntrospectionConfig{ClientID: "gw", ClientSecretEnv: "TODO_GATEWAY_TEST_UNSET"}
	gw, err := startGateway(context.Background(), cfg, "test", slog.New(slog.DiscardHandler), ln)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Shutdown(context.Background())
	code, body := get(t, "http://"+gw.AdminAddr()+"/status")
	if code != http.StatusOK || !strings.Contains(body, `"problem":`) || !strings.Contains(body, "TODO_GATEWAY_TEST_UNSET") {
		t.Errorf("status of a broken tenant: %d %s", code, body)
	}
}
