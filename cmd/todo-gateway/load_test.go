package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestLoad is `make bench`: the real gateway and a test issuer on loopback,
// 32 keep-alive connections driving, in one run, a bare net/http handler
// answering a body the size of a get-todos answer (the baseline), get-todos
// with a warm token, and create-todo (every write fsynced). It prints
// requests/s, p50 and p99 and the ratios against the baseline. It is a test
// rather than a benchmark because Go benchmarks report neither percentiles
// nor concurrency; it runs only when TODO_GATEWAY_LOAD is set.
func TestLoad(t *testing.T) {
	if os.Getenv("TODO_GATEWAY_LOAD") == "" {
		t.Skip("set TODO_GATEWAY_LOAD=1 (make bench) to run the load test")
	}
	const conns = 32
	duration := 5 * time.Second
	if d, err := time.ParseDuration(os.Getenv("TODO_GATEWAY_LOAD_DURATION")); err == nil {
		duration = d
	}

	iss := providertest.New(t)
	ln, base := listen(t)
	gw, err := startGateway(context.Background(), manyTenantsConfig(t, base, iss.Issuer(), 1),
		slog.New(slog.NewJSONHandler(io.Discard, nil)), ln)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Shutdown(context.Background())
	resource := base + "/t0"
	tok := iss.Mint(iss.Claims("bench-user", resource, allTodoScopes))

	// Ten todos to list, so get-todos answers a realistic body.
	for i := range 10 {
		readAll(t, post(t, resource, tok, createBody(i), nil))
	}
	listBody := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`
	resp := post(t, resource, tok, listBody, nil)
	sample := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(sample, `"todos"`) {
		t.Fatalf("get-todos warm-up: %d %s", resp.StatusCode, sample)
	}

	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, sample)
	}))
	defer bare.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}, Timeout: 10 * time.Second}
	targets := []struct {
		name string
		url  string
		body func(i int) string
	}{
		{"bare handler (baseline)", bare.URL, func(int) string { return listBody }},
		{"get-todos", resource, func(int) string { return listBody }},
		{"create-todo (fsync)", resource, createBody},
	}
	results := make([]loadResult, len(targets))
	for i, tg := range targets {
		results[i] = drive(t, client, conns, duration, tg.url, tok, tg.body)
	}

	var out strings.Builder
	fmt.Fprintf(&out, "\n%d connections, %s per target, GOMAXPROCS machine: %d cores shared by client and server\n", conns, duration, numCPU())
	fmt.Fprintf(&out, "%-26s %10s %9s %9s %8s %s\n", "target", "req/s", "p50", "p99", "errors", "ratio")
	for i, r := range results {
		ratio := ""
		switch i {
		case 1:
			ratio = fmt.Sprintf("%.1f%% of bare handler (target >= 35%%)", 100*r.rps/results[0].rps)
		case 2:
			ratio = fmt.Sprintf("%.1f%% of get-todos (target >= 40%%)", 100*r.rps/results[1].rps)
		}
		fmt.Fprintf(&out, "%-26s %10.0f %9s %9s %8d %s\n", targets[i].name, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors, ratio)
	}
	fmt.Print(out.String())
	for i, r := range results {
		if r.errors > 0 {
			t.Errorf("%s: %d requests failed", targets[i].name, r.errors)
		}
	}
}

func createBody(i int) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"todo number %d"}}}`, i+2, i)
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

// drive sends requests from conns goroutines for d and measures each one.
func drive(t *testing.T, client *http.Client, conns int, d time.Duration, url, token string, body func(int) string) loadResult {
	t.Helper()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errors    int
		wg        sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			localErrors := 0
			for i := c * 1_000_000; time.Now().Before(deadline); i++ {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body(i)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					localErrors++
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			errors += localErrors
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	r := loadResult{errors: errors, rps: float64(len(latencies)) / elapsed.Seconds()}
	if n := len(latencies); n > 0 {
		r.p50, r.p99 = latencies[n/2], latencies[n*99/100]
	}
	return r
}

func numCPU() int { return runtime.NumCPU() }
