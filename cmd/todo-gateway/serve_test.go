package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/providers/providertest"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// Starting makes no call to any issuer: a tenant whose issuer is down must
// not keep the others from serving, so discovery waits for the first token.
func TestStartContactsNoIssuer(t *testing.T) {
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: onIssuers(50, iss.Issuer())})
	if resp := post(t, b.resources["t7"], "", toolsList, nil); resp.StatusCode != http.StatusUnauthorized { // a 401 needs no issuer either
		t.Errorf("without a token: %d %s, want 401", resp.StatusCode, readAll(t, resp))
	}
	if n := iss.MetadataHits() + iss.Hits(providertest.JWKS); n != 0 {
		t.Errorf("issuer contacted %d times before any token arrived", n)
	}
}

// Shutdown lets a request in flight finish: here a create-todo waiting
// for its group commit (batch_delay), which is then on disk.
func TestGracefulShutdown(t *testing.T) {
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: onIssuers(1, iss.Issuer()), edit: func(cfg *tenants.Config) {
		delay := providers.Duration(500 * time.Millisecond)
		cfg.Store.Bolt.BatchDelay = &delay
	}})
	url := b.resources["t0"]
	tok := iss.Mint(iss.Claims("u", url, allTodoScopes))
	if code := status(t, url, tok, toolsList); code != http.StatusOK { // discovery and keys, before the shutdown
		t.Fatalf("tools/list: %d", code)
	}

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"in flight"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := httpClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode, body: string(body)}
	}()
	time.Sleep(150 * time.Millisecond) // the create is now waiting for its commit
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.gw.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	r := <-done
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, `in flight`) || strings.Contains(r.body, `"isError":true`) {
		t.Fatalf("in-flight create: status %d, err %v, %s; want 200 with the todo", r.status, r.err, r.body)
	}
	if _, err := httpClient.Get(url); err == nil {
		t.Error("the gateway still accepts connections after shutdown")
	}
}

// A request waiting on an authorization server that never answers does
// not hold the shutdown until the grace period ends: it is answered 503
// with Retry-After at once, and Shutdown returns without error.
func TestShutdownAnswersIssuerWaits503(t *testing.T) {
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	t.Cleanup(func() {
		hang.Close()
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	hangIssuer := "http://" + hang.Addr().String()
	signer := providertest.New(t)
	b := startBed(t, bedSpec{tenants: onIssuers(1, hangIssuer)})
	url := b.resources["t0"]
	claims := signer.Claims("u", url, allTodoScopes)
	claims["iss"] = hangIssuer
	tok := signer.Mint(claims)

	type result struct {
		resp *http.Response
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp := post(t, url, tok, toolsList, nil)
		done <- result{resp: resp, body: readAll(t, resp)}
	}()
	select {
	case <-accepted: // the request waits on discovery
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway never contacted the issuer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.gw.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v, want none: the waiting request is answered at once", err)
	}
	r := <-done
	if r.resp.StatusCode != http.StatusServiceUnavailable || r.resp.Header.Get("Retry-After") == "" || !strings.Contains(r.body, "shutting down") {
		t.Errorf("the waiting request: %d Retry-After %q %s, want 503 saying the gateway is shutting down",
			r.resp.StatusCode, r.resp.Header.Get("Retry-After"), r.body)
	}
}

// On a signal the gateway drains first: /readyz answers 503 for
// shutdown.drain while MCP requests are still answered, then it stops.
func TestStopDrainsFirst(t *testing.T) {
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: onIssuers(1, iss.Issuer()), edit: func(cfg *tenants.Config) {
		drain := providers.Duration(time.Second)
		cfg.Shutdown.Drain = &drain
	}})
	url, admin := b.resources["t0"], "http://"+b.gw.AdminAddr()
	tok := iss.Mint(iss.Claims("u", url, allTodoScopes))
	stopped := make(chan error, 1)
	go func() { stopped <- b.gw.Stop() }()
	eventually(t, "readyz answers 503", func() bool { code, _ := get(t, admin+"/readyz"); return code == http.StatusServiceUnavailable })
	if code, body := get(t, admin+"/readyz"); !strings.Contains(body, "draining") {
		t.Errorf("readyz while draining: %d %s", code, body)
	}
	for range 5 {
		if code := status(t, url, tok, toolsList); code != http.StatusOK {
			t.Errorf("a request while draining got %d, want 200", code)
		}
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) before the drain period ended", err)
	default:
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := httpClient.Get(url); err == nil {
		t.Error("the gateway still accepts connections after Stop")
	}
}

// The http block reaches the edge: an origin listed in
// http.allowed_origins may call, others may not, and http.body_limit is the
// body limit.
func TestHTTPSettingsFromConfig(t *testing.T) {
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: onIssuers(1, iss.Issuer()), edit: func(cfg *tenants.Config) {
		cfg.HTTP.AllowedOrigins = []string{"http://localhost:6274"}
		cfg.HTTP.BodyLimit = 2048
		cfg.HTTP.MaxConnections = 7
	}})
	if _, body := get(t, "http://"+b.gw.AdminAddr()+"/metrics"); !strings.Contains(body, "todo_gateway_connections_limit 7") {
		t.Errorf("http.max_connections 7 is not the connection cap:\n%s", body)
	}
	url := b.resources["t0"]
	for origin, want := range map[string]int{"http://localhost:6274": http.StatusUnauthorized, "http://localhost:9999": http.StatusForbidden} {
		resp := post(t, url, "", toolsList, map[string]string{"Origin": origin})
		if readAll(t, resp); resp.StatusCode != want {
			t.Errorf("Origin %s: %d, want %d", origin, resp.StatusCode, want)
		}
	}
	tok := iss.Mint(iss.Claims("u", url, allTodoScopes))
	resp := post(t, url, tok, strings.Repeat(" ", 2048)+toolsList, nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "2048") {
		t.Errorf("a body over http.body_limit: %d %s, want 413", resp.StatusCode, body)
	}
}

func TestServeHelpAndBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"serve", "--help"}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "--config") {
		t.Errorf("serve --help: exit %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"serve", "--nope"}, &out, &errOut); code != exitUsage {
		t.Errorf("serve --nope: exit %d, want %d", code, exitUsage)
	}
	errOut.Reset()
	if code := run([]string{"serve", "--config", filepath.Join(t.TempDir(), "missing.json")}, &out, &errOut); code != exitFail || !strings.Contains(errOut.String(), "missing.json") {
		t.Errorf("serve with a missing file: exit %d, stderr %q", code, errOut.String())
	}
}

// BenchmarkStart1000Tenants measures start-up (config parsed, verifiers
// built, store opened, buckets ensured, listening) with 1,000 tenants,
// against the same with 1 tenant as the baseline.
func BenchmarkStart(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				ln, base := listen(b)
				cfg := testConfig(b, base, onIssuers(n, "http://127.0.0.1:9/")...)
				b.StartTimer()
				gw, err := startGateway(context.Background(), cfg, "test", 0, slog.New(slog.DiscardHandler), ln)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				gw.Shutdown(context.Background())
				b.StartTimer()
			}
		})
	}
}

// A start that fails half-way (here: the admin port is taken) releases what
// it had acquired: the store file can be opened again at once, and the
// public listener is closed.
func TestFailedStartReleasesEverything(t *testing.T) {
	taken, _ := listen(t)
	defer taken.Close()
	ln, base := listen(t)
	cfg := testConfig(t, base, onIssuers(1, "http://127.0.0.1:9/")...)
	cfg.Admin.Listen = taken.Addr().String()
	if _, err := startGateway(context.Background(), cfg, "test", 0, slog.New(slog.DiscardHandler), ln); err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Fatalf("start with a taken admin port: %v, want an admin listener error", err)
	}
	if _, err := httpClient.Get(base); err == nil {
		t.Error("the public listener is still open")
	}
	ln2, _ := listen(t)
	cfg.Admin.Listen = "127.0.0.1:0"
	gw, err := startGateway(context.Background(), cfg, "test", 0, slog.New(slog.DiscardHandler), ln2)
	if err != nil {
		t.Fatalf("restart on the same store: %v", err)
	}
	gw.Shutdown(context.Background())
}

// A connection cap above what the open-file limit allows is lowered to it,
// with one warning that says so and how to allow more (issue 24: 1e12 was
// accepted, and brought back descriptor exhaustion).
func TestMaxConnectionsAboveTheFileLimitIsLowered(t *testing.T) {
	allowed, known := mcp.MaxConnectionsAllowed()
	if !known {
		t.Skip("the open-file limit is not known here")
	}
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: []bedTenant{onIssuer("t0", "oidc", iss.Issuer())},
		edit: func(cfg *tenants.Config) { cfg.HTTP.MaxConnections = 1_000_000_000_000 }})
	if n := strings.Count(b.logs.String(), "http.max_connections is more than the open-file limit allows"); n != 1 {
		t.Errorf("%d warnings about the cap, want 1:\n%s", n, b.logs.String())
	}
	_, metrics := get(t, "http://"+b.gw.AdminAddr()+"/metrics")
	if want := fmt.Sprintf("todo_gateway_connections_limit %d", allowed); !strings.Contains(metrics, want) &&
		!strings.Contains(metrics, fmt.Sprintf("todo_gateway_connections_limit %g", float64(allowed))) {
		t.Errorf("metrics lack %q", want)
	}
}
