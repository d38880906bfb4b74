package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/todo-gateway/todo-gateway/bench"
	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestLoad is `make bench`: the real gateway and a test issuer on loopback,
// 32 keep-alive connections driving, in one run, a bare echo handler
// answering a body the size of a get-todos answer (the baseline), mcp-go
// alone answering the same result (see mcpAlone), get-todos with a warm
// token, and create-todo (every write fsynced). It prints requests/s, p50
// and p99 and the ratios, a quick check: its client shares the 2 cores with
// the server, so its ratios flatter (bench/wrk_test.go measures from
// outside and is the one quoted). It is a test
// rather than a benchmark because Go benchmarks report neither percentiles
// nor concurrency; it runs only when TODO_GATEWAY_LOAD is set.
//
// With ETCD_BIN set (make bench sets it when etcd is installed) a second
// gateway on the etcd driver, on one etcd member started from ETCD_BIN,
// joins the same rounds: get-todos and create-todo on etcd against the same
// on bbolt.
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
	g := loadGateway(t, iss, "")
	resource, reader, writer, sample := g.resource, g.reader, g.writer, g.sample

	// The baseline: a bare echo handler, no middleware, same body size.
	e := echo.New()
	e.POST("/*", func(c echo.Context) error {
		io.Copy(io.Discard, c.Request().Body)
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, []byte(sample))
	})
	bare := httptest.NewServer(e)
	defer bare.Close()
	alone := httptest.NewServer(mcpAlone(t, []byte(sample)))
	defer alone.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}, Timeout: 10 * time.Second}
	list := func(int) string { return listBody }
	const baseline, mcpGo, getTodos, createTodo, getEtcd, createEtcd = 0, 1, 2, 3, 4, 5
	type target struct {
		name  string
		url   string
		token string
		body  func(i int) string
	}
	targets := []target{
		baseline:   {"bare echo handler (baseline)", bare.URL, reader, list},
		mcpGo:      {"mcp-go alone (reference)", alone.URL, reader, list},
		getTodos:   {"get-todos", resource, reader, list},
		createTodo: {"create-todo (fsync)", resource, writer, createBody},
	}
	if bin := os.Getenv("ETCD_BIN"); bin != "" {
		endpoint := startEtcdProcess(t, bin)
		e := loadGateway(t, iss, fmt.Sprintf(`{"driver": "etcd", "etcd": {"endpoints": [%q]}}`, endpoint))
		targets = append(targets,
			target{"get-todos (etcd)", e.resource, e.reader, list},
			target{"create-todo (etcd)", e.resource, e.writer, createBody})
	}
	// Targets take turns in short rounds (a quarter of a second each), so
	// that whatever else the machine does during the run weighs on all of
	// them alike. On a shared VM the speed drifts by a third within seconds,
	// so each ratio is also given per round: its median and its range.
	rounds := max(6, int(duration/(250*time.Millisecond)))
	samples := make([]loadSample, len(targets))
	perRound := make([][]float64, rounds) // requests/s by round, then target
	for r := range rounds {
		perRound[r] = make([]float64, len(targets))
		for i, tg := range targets {
			d := drive(t, client, conns, duration/time.Duration(rounds), tg.url, tg.token, tg.body)
			samples[i].add(d)
			perRound[r][i] = float64(len(d.latencies)) / d.elapsed.Seconds()
		}
	}
	results := make([]loadResult, len(targets))
	for i := range samples {
		results[i] = samples[i].result()
	}
	// TODO_GATEWAY_LOAD_PROFILE=FILE records a CPU profile of one more
	// get-todos run, outside the measured rounds.
	if file := os.Getenv("TODO_GATEWAY_LOAD_PROFILE"); file != "" {
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		drive(t, client, conns, duration/time.Duration(rounds), resource, reader, list)
		pprof.StopCPUProfile()
		f.Close()
	}

	var out strings.Builder
	fmt.Fprintf(&out, "\n%d connections, %s per target in %d interleaved rounds, %d cores shared by client and server\n", conns, duration, rounds, numCPU())
	fmt.Fprintf(&out, "%-28s %10s %9s %9s %8s %s\n", "target", "req/s", "p50", "p99", "errors", "ratio")
	percentOf := func(a, b int) string {
		median, lo, hi := bench.RoundRatios(perRound, a, b)
		return fmt.Sprintf("%.1f%% (rounds: median %.1f%%, %.1f-%.1f%%)", 100*results[a].rps/results[b].rps, median, lo, hi)
	}
	for i, r := range results {
		ratio := ""
		switch i {
		case mcpGo:
			ratio = percentOf(mcpGo, baseline) + " of the bare handler"
		case getTodos:
			ratio = percentOf(getTodos, baseline) + " of the bare handler; " + percentOf(getTodos, mcpGo) + " of mcp-go alone"
		case createTodo:
			ratio = percentOf(createTodo, getTodos) + " of get-todos"
		case getEtcd:
			ratio = percentOf(getEtcd, getTodos) + " of get-todos on bbolt"
		case createEtcd:
			ratio = percentOf(createEtcd, createTodo) + " of create-todo on bbolt"
		}
		fmt.Fprintf(&out, "%-28s %10.0f %9s %9s %8d %s\n", targets[i].name, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors, ratio)
	}
	fmt.Print(out.String())
	for i, r := range results {
		if r.errors > 0 {
			t.Errorf("%s: %d requests failed", targets[i].name, r.errors)
		}
	}
}

const listBody = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`

// loadTarget is a gateway of the load test with one tenant, a reader who
// owns ten todos and lists only those (no read scope, so the body get-todos
// answers stays the same size while the writer adds todos), and that
// answer as a sample.
type loadTarget struct {
	resource, reader, writer, sample string
}

// loadGateway starts it on the store block given as JSON ("": bbolt).
func loadGateway(t *testing.T, iss *providertest.Issuer, store string) loadTarget {
	t.Helper()
	g := loadTarget{resource: startBed(t, bedSpec{tenants: onIssuers(1, iss.Issuer()), store: store, log: io.Discard}).resources["t0"]}
	g.reader = iss.Mint(iss.Claims("bench-reader", g.resource, userScopes))
	g.writer = iss.Mint(iss.Claims("bench-writer", g.resource, userScopes))
	for i := range 10 {
		readAll(t, post(t, g.resource, g.reader, createBody(i), nil))
	}
	resp := post(t, g.resource, g.reader, listBody, nil)
	g.sample = readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(g.sample, `"todos"`) {
		t.Fatalf("get-todos warm-up: %d %s", resp.StatusCode, g.sample)
	}
	return g
}

// startEtcdProcess runs one etcd member from bin on free loopback ports with
// its data in a temporary directory, waits until it answers, and stops it
// (by its PID) when the test ends. It returns the client URL.
func startEtcdProcess(t *testing.T, bin string) string {
	t.Helper()
	client, peer := "http://"+freeAddr(t), "http://"+freeAddr(t)
	cmd := exec.Command(bin, "--name", "bench", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "bench="+peer, "--log-level", "error")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(client + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return client
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd at %s did not become healthy: %v", client, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func createBody(i int) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"todo number %d"}}}`, i+2, i)
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

// loadSample accumulates the rounds of one target.
type loadSample struct {
	latencies []time.Duration
	elapsed   time.Duration
	errors    int
}

func (s *loadSample) add(o loadSample) {
	s.latencies = append(s.latencies, o.latencies...)
	s.elapsed += o.elapsed
	s.errors += o.errors
}

func (s *loadSample) result() loadResult {
	slices.Sort(s.latencies)
	r := loadResult{errors: s.errors, rps: float64(len(s.latencies)) / s.elapsed.Seconds()}
	if n := len(s.latencies); n > 0 {
		r.p50, r.p99 = s.latencies[n/2], s.latencies[n*99/100]
	}
	return r
}

// drive sends requests from conns goroutines for d and measures each one.
func drive(t *testing.T, client *http.Client, conns int, d time.Duration, url, token string, body func(int) string) loadSample {
	t.Helper()
	var (
		mu sync.Mutex
		s  loadSample
		wg sync.WaitGroup
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
			s.latencies = append(s.latencies, local...)
			s.errors += localErrors
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.elapsed = time.Since(start)
	return s
}

func numCPU() int { return runtime.NumCPU() }
