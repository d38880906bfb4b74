package bench

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestWrk is the measurement `make bench` quotes: the gateway as it runs in
// production, the real binary in a process of its own, under wrk (2
// threads, 32 keep-alive connections), in interleaved rounds with, in the
// same rounds:
//
//   - bare net/http: Bare, the ceiling of this HTTP stack;
//   - bare mcp-go: MCPAlone, the floor of the MCP library;
//   - get-todos through the gateway, a warm token, the caller's one todo;
//   - create-todo through the gateway, every write fsynced;
//   - upstream direct: Upstream, a bare mcp-go server, its echo tool;
//   - upstream via gateway: the same call to the same server through an
//     upstream tenant of the gateway (the token verified, the tool's
//     permission checked, the gateway's assertion attached);
//   - the same call through two relays with nothing of a gateway's, the
//     floor of any gateway in front of the server: RelayNetHTTP (net/http's
//     ReverseProxy and Transport, as the gateway relays) and RelayFastHTTP
//     (fasthttp's client in place of the Transport).
//
// Each reference server is a process of its own too (this test binary run
// again, see TestMain), so no server shares a Go runtime with another or
// with the test; the test process only waits for wrk during the rounds.
// wrk and the server it drives share the machine's cores, as any client on
// the same machine would. It prints requests/s, p50 and p99 and the ratios;
// timing never fails it, only errors do (non-2xx answers, socket errors,
// store errors, warnings in the gateway's log, a get-todos answer that
// changed).
//
// It runs when TODO_GATEWAY_WRK is set, with TODO_GATEWAY_BIN naming the
// gateway binary to measure (make bench builds it) and wrk on the PATH (or
// WRK naming it). TODO_GATEWAY_WRK_ROUNDS (default 10) and
// TODO_GATEWAY_WRK_ROUND (whole seconds per target and round, default 2)
// set the length.
func TestWrk(t *testing.T) {
	if os.Getenv("TODO_GATEWAY_WRK") == "" {
		t.Skip("set TODO_GATEWAY_WRK=1 and TODO_GATEWAY_BIN (make bench) to measure with wrk")
	}
	bin := os.Getenv("TODO_GATEWAY_BIN")
	if bin == "" {
		t.Fatal("TODO_GATEWAY_BIN must name the gateway binary to measure (make bench builds it)")
	}
	wrk := os.Getenv("WRK")
	if wrk == "" {
		var err error
		if wrk, err = exec.LookPath("wrk"); err != nil {
			t.Fatal("wrk is not on the PATH (Debian: apt-get install -y wrk; make bench installs it)")
		}
	}
	rounds, roundSecs := envInt(t, "TODO_GATEWAY_WRK_ROUNDS", 10), envInt(t, "TODO_GATEWAY_WRK_ROUND", 2)
	dir := t.TempDir()
	loadBefore := loadAverage()

	// The gateway: a todo tenant and an upstream tenant in front of the
	// upstream server on a test issuer, bbolt in dir. The issuer runs in
	// this process; it serves discovery and the keys once, at the warm-up,
	// and is idle during the rounds.
	upstreamURL, upstreamProc := startReference(t, "upstream", "", dir)
	upstreamURL += "/mcp"
	iss := providertest.New(t)
	addr, admin := freeAddr(t), freeAddr(t)
	resource, upResource := "http://"+addr+"/bench", "http://"+addr+"/upstream"
	benchTenant := func(resource string) map[string]any {
		return map[string]any{
			"id": "bench", "resource": resource,
			"provider": map[string]any{"type": "oidc", "issuer": iss.Issuer()},
			"audience": map[string]any{"strategy": "resource"},
		}
	}
	cfgPath := writeConfig(t, filepath.Join(dir, "gateway.json"), addr, admin,
		map[string]any{"driver": "bbolt", "bbolt": map[string]any{"path": filepath.Join(dir, "todos.db")}},
		benchTenant(resource), upstreamTenant(upResource, iss.Issuer(), upstreamURL, 0))
	// Its JSON log (an access line per request) goes to a file, as a
	// production log goes to a file or a pipe: the write is part of the cost.
	_, gateway := startProcess(t, "gateway", exec.Command(bin, "serve", "--config", cfgPath), filepath.Join(dir, "gateway.log"))

	// Warm-up: the first token brings discovery and the key set; the reader
	// (create:todos only, so get-todos lists only the reader's own todos)
	// creates the one todo it will list.
	const userScopes = "create:todos"
	reader := iss.Mint(iss.Claims("bench-reader", resource, userScopes))
	writer := iss.Mint(iss.Claims("bench-writer", resource, userScopes))
	if status, body := post(t, resource, reader, createBody); status != http.StatusOK || !strings.Contains(body, `"ownerId`) {
		t.Fatalf("create-todo warm-up: %d %s", status, body)
	}
	status, sample := post(t, resource, reader, listBody)
	if status != http.StatusOK || !strings.Contains(sample, `"todos"`) {
		t.Fatalf("get-todos warm-up: %d %s", status, sample)
	}
	samplePath := filepath.Join(dir, "sample.json")
	if err := os.WriteFile(samplePath, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	bare, bareProc := startReference(t, "bare", samplePath, dir)
	alone, aloneProc := startReference(t, "mcp-go", samplePath, dir)
	caller := iss.Mint(iss.Claims("bench-caller", upResource, upstreamScope))

	// Every target answers what it should before it is measured: the
	// references the gateway's get-todos answer (bare byte for byte).
	if status, body := post(t, bare, "", listBody); status != http.StatusOK || body != sample {
		t.Fatalf("bare net/http answers %d %s, want the gateway's get-todos answer %s", status, body, sample)
	}
	if status, body := post(t, alone, "", listBody); status != http.StatusOK || !sameJSON(body, sample) {
		t.Fatalf("bare mcp-go answers %d %s, want the gateway's get-todos answer %s", status, body, sample)
	}
	if status, body := post(t, resource, writer, createBody); status != http.StatusOK || !strings.Contains(body, `"ownerId":"bench-writer"`) || strings.Contains(body, `"isError":true`) {
		t.Fatalf("create-todo: %d %s", status, body)
	}
	// The upstream answers echo alike directly and through the gateway,
	// which refuses a caller without the tool's permission and sends the
	// upstream its own assertion for the caller.
	checkUpstream(t, upstreamURL, upResource, caller, iss.Mint(iss.Claims("bench-outsider", upResource, "")))

	// The rows on etcd: a user listing their own 10 todos (an owner page
	// of 10, as the etcd measurements in docs/testing.md) on bbolt, and on three
	// etcd members through a gateway reading from its cache and one reading
	// from etcd; creates through both. Both etcd gateways share one
	// prefix, so they list the same todos.
	var onEtcd *etcdRows
	if etcdBin := os.Getenv("ETCD_BIN"); etcdBin != "" {
		onEtcd = startEtcdRows(t, etcdBin, dir, resource, iss, benchTenant)
	} else {
		fmt.Println("ETCD_BIN is not set: no rows on etcd")
	}

	const barei, alonei, listi, createi, directi, viai = 0, 1, 2, 3, 4, 5
	const list10i, cachedi, uncachedi, createCachedi, createUncachedi = 6, 7, 8, 9, 10
	targets := []*target{
		barei:   {name: "bare net/http (ceiling)", short: "bare", url: bare, body: listBody, pid: bareProc},
		alonei:  {name: "bare mcp-go (library floor)", short: "mcp-go", url: alone, body: listBody, pid: aloneProc},
		listi:   {name: "get-todos (gateway)", short: "get", url: resource, token: reader, body: listBody, pid: gateway},
		createi: {name: "create-todo (gateway, fsync)", short: "create", url: resource, token: writer, body: createBody, pid: gateway},
		directi: {name: "upstream direct (mcp-go echo)", short: "up", url: upstreamURL, body: echoBody, pid: upstreamProc},
		viai:    {name: "upstream via gateway", short: "via", url: upResource, token: caller, body: echoBody, pid: gateway, upstreamPid: upstreamProc},
	}
	if e := onEtcd; e != nil {
		targets = append(targets,
			&target{name: "get-todos x10 (bbolt)", short: "get10", url: resource, token: e.reader10, body: listBody, pid: gateway},
			&target{name: "get-todos x10 (etcd x3, cache)", short: "etcd-get", url: e.cached.resource, token: e.cached.reader10, body: listBody, pid: e.cached.pid, members: &e.cluster},
			&target{name: "get-todos x10 (etcd x3, no cache)", short: "etcd-get-nc", url: e.uncached.resource, token: e.uncached.reader10, body: listBody, pid: e.uncached.pid, members: &e.cluster},
			&target{name: "create-todo (etcd x3, cache)", short: "etcd-create", url: e.cached.resource, token: e.cached.writer, body: createBody, pid: e.cached.pid, members: &e.cluster},
			&target{name: "create-todo (etcd x3, no cache)", short: "etcd-create-nc", url: e.uncached.resource, token: e.uncached.writer, body: createBody, pid: e.uncached.pid, members: &e.cluster},
		)
	}
	// The relays' rows: the echo call through RelayNetHTTP and
	// RelayFastHTTP, each a process of its own in front of the same
	// upstream, which must answer through them as directly.
	relayNetURL, relayNetProc := startReference(t, "relay-net-http", upstreamURL, dir)
	relayFastURL, relayFastProc := startReference(t, "relay-fasthttp", upstreamURL, dir)
	for _, relay := range []string{relayNetURL, relayFastURL} {
		if status, body := post(t, relay, "", echoBody); status != http.StatusOK || !strings.Contains(body, echoText) {
			t.Fatalf("the relay at %s answers echo with %d %s", relay, status, body)
		}
	}
	relayNeti, relayFasti := len(targets), len(targets)+1
	targets = append(targets,
		&target{name: "relay net/http (no auth)", short: "relay", url: relayNetURL, body: echoBody, pid: relayNetProc, upstreamPid: upstreamProc},
		&target{name: "relay fasthttp (no auth)", short: "relay-fh", url: relayFastURL, body: echoBody, pid: relayFastProc, upstreamPid: upstreamProc})
	// The rows of tracing: get-todos through two more gateways that trace
	// (OTEL_EXPORTER_OTLP_ENDPOINT), exporting to a sink in this process,
	// sampling 1 % of the requests and every one; against the row above,
	// which traces nothing.
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	traced1i, traced100i := len(targets), len(targets)+1
	targets = append(targets,
		startTracedGateway(t, bin, dir, "get-todos (traced, 1%)", "traced1", iss, sink.URL, "0.01", benchTenant),
		startTracedGateway(t, bin, dir, "get-todos (traced, 100%)", "traced100", iss, sink.URL, "1", benchTenant))
	// TODO_GATEWAY_WRK_ONLY (short names, comma-separated: "get10,etcd-get")
	// measures only those rows, interleaved as usual: a quicker look at
	// one comparison. The others are set up and checked all the same.
	only, unknown := map[string]bool{}, map[string]bool{}
	for name := range strings.SplitSeq(os.Getenv("TODO_GATEWAY_WRK_ONLY"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			only[name], unknown[name] = true, true
		}
	}
	for i, tg := range targets {
		tg.skipped = len(only) > 0 && !only[tg.short]
		delete(unknown, tg.short)
		tg.script = filepath.Join(dir, fmt.Sprintf("target%d.lua", i))
		if err := os.WriteFile(tg.script, []byte(luaScript(tg.body, tg.token)), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if len(unknown) > 0 {
		t.Fatalf("TODO_GATEWAY_WRK_ONLY names rows this run does not have: %v", slices.Sorted(maps.Keys(unknown)))
	}

	fmt.Printf("\nwrk -t2 -c32 -d%ds --latency, %d interleaved rounds after one unmeasured round; %d cores shared by wrk and the server it drives; load average %s\n",
		roundSecs, rounds, runtime.NumCPU(), loadBefore)
	perRound := make([][]float64, rounds) // requests/s by round, then target
	for r := -1; r < rounds; r++ {
		var line strings.Builder
		if r >= 0 {
			perRound[r] = make([]float64, len(targets))
			fmt.Fprintf(&line, "round %2d:", r+1)
		}
		for i, tg := range targets {
			if tg.skipped {
				continue
			}
			cpuBefore, upBefore, storeBefore := processCPU(t, tg.pid), time.Duration(0), time.Duration(0)
			if tg.upstreamPid != 0 {
				upBefore = processCPU(t, tg.upstreamPid)
			}
			if tg.members != nil {
				storeBefore = tg.members.cpu(t)
			}
			res, err := runWrk(wrk, tg.script, tg.url, roundSecs)
			if err != nil {
				t.Fatalf("%s: %v", tg.name, err)
			}
			res.serverCPU = processCPU(t, tg.pid) - cpuBefore
			if tg.upstreamPid != 0 {
				res.upstreamCPU = processCPU(t, tg.upstreamPid) - upBefore
			}
			if tg.members != nil {
				res.storeCPU = tg.members.cpu(t) - storeBefore
			}
			if r < 0 { // the warm-up round: heaps and connections settle
				continue
			}
			tg.rounds = append(tg.rounds, res)
			perRound[r][i] = res.rps
			fmt.Fprintf(&line, "  %s %.0f", tg.short, res.rps)
		}
		if r >= 0 {
			fmt.Println(line.String())
		}
	}
	loadAfter := loadAverage()
	var logSize int64
	if fi, err := os.Stat(filepath.Join(dir, "gateway.log")); err == nil {
		logSize = fi.Size()
	}

	// The answers are still right after the run: get-todos lists the
	// reader's one todo as at the start, and the store reported no error.
	if status, body := post(t, resource, reader, listBody); status != http.StatusOK || body != sample {
		t.Errorf("get-todos after the run: %d %s, want %s", status, body, sample)
	}
	// wrk ends a run by closing its connections, requests in flight
	// included: the gateway counts their store calls as canceled. Any other
	// store outcome but ok, or a warning in its log, is a failure.
	storeOps := storeOutcomes(t, "http://"+admin+"/metrics")
	for key, n := range storeOps {
		if !strings.HasSuffix(key, "/ok") && !strings.HasSuffix(key, "/canceled") {
			t.Errorf("the gateway's store answered %d %s", n, key)
		}
	}
	if e := onEtcd; e != nil {
		for _, g := range []etcdGateway{e.cached, e.uncached} {
			for key, n := range storeOutcomes(t, g.metrics) {
				if !strings.HasSuffix(key, "/ok") && !strings.HasSuffix(key, "/canceled") {
					t.Errorf("the gateway on etcd (%s) answered %d %s", g.resource, n, key)
				}
			}
			if warnings := logWarnings(g.log, 5); len(warnings) > 0 {
				t.Errorf("the gateway on etcd logged warnings or errors, for example:\n%s", strings.Join(warnings, "\n"))
			}
		}
	}
	// Likewise the forwards to the upstream: ok, or canceled by wrk.
	upstreamOps := upstreamOutcomes(t, "http://"+admin+"/metrics")
	for outcome, n := range upstreamOps {
		if outcome != "ok" && outcome != "canceled" {
			t.Errorf("the gateway's forwards to the upstream ended %s %d times", outcome, n)
		}
	}
	if warnings := logWarnings(filepath.Join(dir, "gateway.log"), 5); len(warnings) > 0 {
		t.Errorf("the gateway logged warnings or errors, for example:\n%s", strings.Join(warnings, "\n"))
	}

	fmt.Printf("\n%-30s %9s %9s %9s %11s  %s\n", "target", "req/s", "p50", "p99", "server CPU", "ratio: whole run (median of rounds, range)")
	ratio := func(a, b int) string {
		if targets[a].skipped || targets[b].skipped {
			return "(not measured)"
		}
		median, lo, hi := RoundRatios(perRound, a, b)
		return fmt.Sprintf("%.1f%% (%.1f%%, %.1f-%.1f%%)", 100*targets[a].rps()/targets[b].rps(), median, lo, hi)
	}
	for i, tg := range targets {
		if tg.skipped {
			continue
		}
		var note string
		switch i {
		// First: without the etcd rows, the relays' rows and the rows of
		// tracing have their indices.
		case relayNeti, relayFasti:
			note = ratio(i, directi) + " of upstream direct; upstream via gateway is " + ratio(viai, i) + " of it"
		case traced1i, traced100i:
			note = ratio(i, listi) + " of get-todos untraced"
			if !targets[listi].skipped {
				note += fmt.Sprintf("; CPU per request %.2fx", tg.cpuPerRequest()/targets[listi].cpuPerRequest())
			}
		case barei:
			note = "baseline"
		case alonei:
			note = ratio(alonei, barei) + " of bare net/http"
		case listi:
			note = ratio(listi, barei) + " of bare net/http (target >= 40%); " + ratio(listi, alonei) + " of bare mcp-go (target >= 100%)"
		case createi:
			note = ratio(createi, listi) + " of get-todos (target >= 40%)"
		case directi:
			note = "baseline of the upstream rows"
		case viai:
			note = ratio(viai, directi) + " of upstream direct (target >= 60%)"
			if !targets[directi].skipped {
				direct, _ := targets[directi].percentiles()
				via, _ := tg.percentiles()
				note += "; p50 added by the gateway " + fmtSigned(via-direct)
			}
		case list10i:
			note = "baseline of the etcd rows"
		case cachedi:
			note = ratio(cachedi, list10i) + " of bbolt (target >= 60%); " + ratio(cachedi, uncachedi) + " of no cache"
		case uncachedi:
			note = ratio(uncachedi, list10i) + " of bbolt"
		case createCachedi:
			note = ratio(createCachedi, createi) + " of bbolt's; " + ratio(createCachedi, createUncachedi) + " of no cache (target: unchanged or better)"
		case createUncachedi:
			note = ratio(createUncachedi, createi) + " of bbolt's"
		}
		p50, p99 := tg.percentiles()
		fmt.Printf("%-30s %9.0f %9s %9s %8.1f us  %s\n", tg.name, tg.rps(), fmtLatency(p50), fmtLatency(p99), tg.cpuPerRequest(), note)
	}
	cpuRatio := func(a, b int) float64 { return 100 * targets[a].cpuPerRequest() / targets[b].cpuPerRequest() }
	measured := func(rows ...int) bool {
		return !slices.ContainsFunc(rows, func(i int) bool { return targets[i].skipped })
	}
	if measured(listi, barei, alonei) {
		fmt.Printf("server CPU: the serving process's CPU time (user and system, from /proc) per request answered; it does not depend on how wrk and the server share the cores. get-todos costs %.0f%% of bare net/http's and %.0f%% of bare mcp-go's.\n",
			cpuRatio(listi, barei), cpuRatio(listi, alonei))
	}
	if onEtcd != nil && measured(list10i) {
		base := targets[list10i].cpuPerRequest()
		for _, i := range []int{cachedi, uncachedi, createCachedi, createUncachedi} {
			tg := targets[i]
			if tg.skipped {
				continue
			}
			gw, members := tg.cpuPerRequest(), tg.storeCPUPerRequest()
			fmt.Printf("%s: CPU per request gateway %.1f us + etcd members %.1f us = %.1f us, %.2fx bbolt's get-todos x10 (%.1f us)\n",
				tg.name, gw, members, gw+members, (gw+members)/base, base)
		}
		fmt.Println("target for get-todos on etcd with the cache: at most 1.5x bbolt's CPU per request, gateway and members together")
		if raw, st := onEtcd.cacheStats(t); raw != "" {
			fmt.Printf("the cached gateway's /status store.cache after the run: %s\n", raw)
			if st.Checks > 0 && st.Served > 0 {
				fmt.Printf("over the whole run: %.1f reads per revision check, a check's round trip %.0f us on average, a cached read's wait for it %.0f us on average\n",
					float64(st.Served)/float64(st.Checks), 1e6*st.CheckSeconds/float64(st.Checks), 1e6*st.WaitSeconds/float64(st.Served))
			}
		}
	}
	if via := targets[viai]; measured(viai, directi) {
		fmt.Printf("upstream via gateway: the gateway's CPU per request %.1f us, the upstream's %.1f us behind it (%.1f us when called directly); the gateway's is %.0f%% of the upstream's. Upstream outcomes: %v\n",
			via.cpuPerRequest(), via.upstreamCPUPerRequest(), targets[directi].cpuPerRequest(), 100*via.cpuPerRequest()/via.upstreamCPUPerRequest(), upstreamOps)
	}
	for _, i := range []int{relayNeti, relayFasti} {
		if targets[i].skipped {
			continue
		}
		fmt.Printf("%s: the relay's CPU per request %.1f us, the upstream's %.1f us behind it\n", targets[i].name, targets[i].cpuPerRequest(), targets[i].upstreamCPUPerRequest())
	}
	fmt.Printf("p50 and p99: the medians of the rounds' (wrk's latency distribution). Load average after: %s. The gateway wrote %.0f MB of log; its store operations: %v\n",
		loadAfter, float64(logSize)/1e6, storeOps)
	for _, tg := range targets {
		var non2xx, socket int
		for _, r := range tg.rounds {
			non2xx, socket = non2xx+r.non2xx, socket+r.socketErrors
		}
		if non2xx+socket > 0 {
			t.Errorf("%s: %d non-2xx answers and %d socket errors", tg.name, non2xx, socket)
		}
	}
}

const (
	listBody   = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`
	createBody = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"a todo from the benchmark"}}}`
	echoText   = "hello from the benchmark"
	echoBody   = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + echoText + `"}}}`
	whoamiBody = `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
	// upstreamScope is the permission (and scope) the upstream tenant's
	// tools need.
	upstreamScope = "bench:call"
)

// upstreamTenant is the configuration of an upstream tenant at resource,
// on issuer, in front of the MCP server at url: the token verified, echo,
// whoami and tick need upstreamScope, the gateway's assertion in the
// Authorization header. maxConcurrent, when not 0, caps the requests open
// to the upstream (default 256).
func upstreamTenant(resource, issuer, url string, maxConcurrent int) map[string]any {
	perm := []string{upstreamScope}
	server := map[string]any{
		"type": "upstream", "url": url,
		"identity":    map[string]any{"mode": "assertion"},
		"permissions": map[string]any{"tools": map[string]any{"echo": perm, "whoami": perm, "tick": perm}},
	}
	if maxConcurrent != 0 {
		server["max_concurrent"] = maxConcurrent
	}
	return map[string]any{
		"id": "upstream", "resource": resource,
		"provider": map[string]any{"type": "oidc", "issuer": issuer},
		"audience": map[string]any{"strategy": "resource"},
		"server":   server,
	}
}

// checkUpstream checks what the upstream rows rest on: the upstream at
// upstreamURL answers echo with a result, the gateway's upstream tenant at
// resource answers caller the same, refuses outsider (a token without
// upstreamScope) with 403, and attaches an assertion for the caller, not
// the caller's token, that the upstream receives.
func checkUpstream(t *testing.T, upstreamURL, resource, caller, outsider string) {
	t.Helper()
	status, direct := post(t, upstreamURL, "", echoBody)
	if status != http.StatusOK || !strings.Contains(direct, `"result"`) || !strings.Contains(direct, echoText) || strings.Contains(direct, `"isError":true`) {
		t.Fatalf("upstream direct: echo answers %d %s", status, direct)
	}
	if status, body := post(t, resource, caller, echoBody); status != http.StatusOK || !sameJSON(body, direct) {
		t.Fatalf("upstream via gateway: echo answers %d %s, want the upstream's answer %s", status, body, direct)
	}
	if status, body := post(t, resource, outsider, echoBody); status != http.StatusForbidden {
		t.Fatalf("upstream via gateway: a token without %s gets %d %s, want 403", upstreamScope, status, body)
	}
	status, body := post(t, resource, caller, whoamiBody)
	var resp struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &resp) != nil || len(resp.Result.Content) != 1 {
		t.Fatalf("upstream via gateway: whoami answers %d %s", status, body)
	}
	assertion, ok := strings.CutPrefix(resp.Result.Content[0].Text, "Bearer ")
	parts := strings.Split(assertion, ".")
	var claims struct {
		Sub string `json:"sub"`
		Aud any    `json:"aud"`
	}
	if !ok || assertion == caller || len(parts) != 3 {
		t.Fatalf("the upstream got Authorization %q, want the gateway's assertion", resp.Result.Content[0].Text)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		t.Fatalf("the upstream got an assertion it cannot read: %q", assertion)
	}
	if claims.Sub != "bench-caller" || (claims.Aud != upstreamURL && !slices.Contains(asStrings(claims.Aud), upstreamURL)) {
		t.Fatalf("the assertion says sub %q aud %v, want bench-caller and %s", claims.Sub, claims.Aud, upstreamURL)
	}
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// target is one thing wrk drives, and what it measured in each round.
type target struct {
	name   string
	short  string // its name in the progress lines
	url    string
	token  string // "" for the references, which take none
	body   string
	script string // the wrk Lua script that sends body with token
	pid    int    // the process serving url
	// upstreamPid, when not 0, is the process behind pid that serves the
	// request too (the upstream behind the gateway).
	upstreamPid int
	// members, when set, is the etcd cluster the server stores in.
	members *etcdCluster
	skipped bool // not measured (TODO_GATEWAY_WRK_ONLY)
	rounds  []wrkResult
}

// cpuPerRequest is the serving process's CPU time per request, in
// microseconds, over every round.
func (tg *target) cpuPerRequest() float64 {
	return tg.perRequest(func(r wrkResult) time.Duration { return r.serverCPU })
}

// upstreamCPUPerRequest is the same for the process behind it.
func (tg *target) upstreamCPUPerRequest() float64 {
	return tg.perRequest(func(r wrkResult) time.Duration { return r.upstreamCPU })
}

// storeCPUPerRequest is the same for the etcd members, together.
func (tg *target) storeCPUPerRequest() float64 {
	return tg.perRequest(func(r wrkResult) time.Duration { return r.storeCPU })
}

func (tg *target) perRequest(cpuOf func(wrkResult) time.Duration) float64 {
	var n int
	var cpu time.Duration
	for _, r := range tg.rounds {
		n, cpu = n+r.requests, cpu+cpuOf(r)
	}
	return float64(cpu.Microseconds()) / float64(n)
}

// rps is the whole run's requests per second: every round's requests over
// every round's time.
func (tg *target) rps() float64 {
	var n int
	var secs float64
	for _, r := range tg.rounds {
		n, secs = n+r.requests, secs+r.seconds
	}
	return float64(n) / secs
}

// percentiles are the medians of the rounds' p50 and p99: wrk reports
// percentiles, not latencies, so rounds cannot be merged.
func (tg *target) percentiles() (p50, p99 time.Duration) {
	var a, b []time.Duration
	for _, r := range tg.rounds {
		a, b = append(a, r.p50), append(b, r.p99)
	}
	slices.Sort(a)
	slices.Sort(b)
	return a[len(a)/2], b[len(b)/2]
}

// luaScript makes every request of a wrk run a POST of body, with the
// headers an MCP client sends and, when token is set, the bearer token.
func luaScript(body, token string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "wrk.method = \"POST\"\nwrk.body = [==[%s]==]\n", body)
	s.WriteString("wrk.headers[\"Content-Type\"] = \"application/json\"\n")
	s.WriteString("wrk.headers[\"Accept\"] = \"application/json, text/event-stream\"\n")
	if token != "" {
		fmt.Fprintf(&s, "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n", token)
	}
	return s.String()
}

// wrkResult is what one wrk run reports.
type wrkResult struct {
	requests     int
	seconds      float64
	rps          float64
	p50, p99     time.Duration
	non2xx       int
	socketErrors int
	serverCPU    time.Duration // the serving process's CPU time during the run
	upstreamCPU  time.Duration // the same of the process behind it, if any
	storeCPU     time.Duration // the etcd members' CPU time, if the server uses them
}

var (
	wrkTotal   = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),`)
	wrkRate    = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s*(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockets = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// runWrk runs wrk with 2 threads and 32 connections for secs seconds.
func runWrk(wrk, script, url string, secs int) (wrkResult, error) {
	out, err := exec.Command(wrk, "-t2", "-c32", fmt.Sprintf("-d%ds", secs), "--latency", "-s", script, url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkTotal.FindStringSubmatch(out)
	rate := wrkRate.FindStringSubmatch(out)
	pcts := wrkPct.FindAllStringSubmatch(out, -1)
	if m == nil || rate == nil || len(pcts) != 2 {
		return r, fmt.Errorf("cannot read wrk's output:\n%s", out)
	}
	r.requests, _ = strconv.Atoi(m[1])
	r.seconds = wrkDuration(m[2], m[3]).Seconds()
	r.rps, _ = strconv.ParseFloat(rate[1], 64)
	r.p50, r.p99 = wrkDuration(pcts[0][2], pcts[0][3]), wrkDuration(pcts[1][2], pcts[1][3])
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := wrkSockets.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.socketErrors += n
		}
	}
	if r.requests == 0 || r.seconds == 0 {
		return r, fmt.Errorf("wrk completed no request:\n%s", out)
	}
	return r, nil
}

// wrkDuration reads one of wrk's times: a number and us, ms, s, m or h.
func wrkDuration(num, unit string) time.Duration {
	v, _ := strconv.ParseFloat(num, 64)
	scale := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	return time.Duration(v * float64(scale))
}

// fmtSigned is fmtLatency with a sign.
func fmtSigned(d time.Duration) string {
	if d < 0 {
		return "-" + fmtLatency(-d)
	}
	return "+" + fmtLatency(d)
}

func fmtLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dus", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// TestMain runs a reference server instead of the tests when
// TODO_GATEWAY_WRK_SERVE names one ("bare", "mcp-go" or "upstream"):
// TestWrk and TestStreams start each in a process of its own, this test
// binary again.
func TestMain(m *testing.M) {
	if kind := os.Getenv("TODO_GATEWAY_WRK_SERVE"); kind != "" {
		if err := serveReference(kind, os.Getenv("TODO_GATEWAY_WRK_ARG")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveReference serves the reference kind on a free loopback port until it
// is killed, and says where on stdout, as the gateway does. arg is the path
// of the get-todos answer for bare and mcp-go, the upstream's URL for the
// relays.
func serveReference(kind, arg string) error {
	var sample []byte
	if kind == "bare" || kind == "mcp-go" {
		var err error
		if sample, err = os.ReadFile(arg); err != nil {
			return err
		}
	}
	var h http.Handler
	switch kind {
	case "relay-net-http", "relay-fasthttp":
		target, err := url.Parse(arg)
		if err != nil || target.Host == "" {
			return fmt.Errorf("%s: %q is not the upstream's URL", kind, arg)
		}
		relay := RelayNetHTTP
		if kind == "relay-fasthttp" {
			relay = RelayFastHTTP
		}
		h = relay(target)
	case "bare":
		h = Bare(sample)
	case "mcp-go":
		var err error
		if h, err = MCPAlone(sample); err != nil {
			return err
		}
	case "upstream":
		h = Upstream()
	default:
		return fmt.Errorf("no reference server %q", kind)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("%s listening on http://%s\n", kind, ln.Addr())
	return (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

// startReference starts the reference kind in a process of its own and
// returns its URL; arg is serveReference's.
func startReference(t *testing.T, kind, arg, dir string) (url string, pid int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "TODO_GATEWAY_WRK_SERVE="+kind, "TODO_GATEWAY_WRK_ARG="+arg)
	return startProcess(t, kind, cmd, filepath.Join(dir, kind+".log"))
}

// startProcess starts cmd with its stderr in logPath, waits for the line on
// its stdout that says "listening on URL", and returns URL and the PID. The process is
// killed, by its PID, when the test ends, and by the kernel if the test
// binary dies first.
func startProcess(t *testing.T, name string, cmd *exec.Cmd, logPath string) (url string, pid int) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "listening on "); ok {
				select {
				case urls <- strings.Fields(rest)[0]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(exited)
	}()
	select {
	case url := <-urls:
		return url, cmd.Process.Pid
	case <-exited:
		log, _ := os.ReadFile(logPath)
		t.Fatalf("%s exited at start: %v\n%s", name, cmd.ProcessState, tail(log, 20))
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not say it was listening within 30s", name)
	}
	return "", 0
}

// processCPU is the CPU time, user and system, that process pid has used
// so far: fields 14 and 15 of /proc/PID/stat, in clock ticks (100 a
// second on Linux, whatever the kernel's HZ).
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("reading the CPU time of process %d: %v", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	_, rest, ok := bytes.Cut(b, []byte(") "))
	fields := strings.Fields(string(rest))
	if !ok || len(fields) < 13 {
		t.Fatalf("cannot read /proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("cannot read /proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var client = &http.Client{Timeout: 10 * time.Second}

// post sends body as an MCP client would and returns the status and body.
func post(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	status, b, err := postWith(client, url, token, body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return status, b
}

// postWith is post through c, for callers that count failures rather than
// stop at the first.
func postWith(c *http.Client, url, token, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// storeOutcomes reads the gateway's store operation counts from its
// metrics, keyed "op/outcome".
func storeOutcomes(t *testing.T, url string) map[string]int {
	return metricCounts(t, url, "store operation",
		regexp.MustCompile(`^todo_gateway_store_operation_seconds_count\{op="([^"]+)",outcome="([^"]+)"\} (\S+)$`))
}

// upstreamOutcomes reads the gateway's counts of requests forwarded to
// upstreams from its metrics, keyed by outcome.
func upstreamOutcomes(t *testing.T, url string) map[string]int {
	return metricCounts(t, url, "upstream request",
		regexp.MustCompile(`^todo_gateway_upstream_requests_total\{outcome="([^"]+)",tenant="[^"]+"\} (\S+)$`))
}

// metricCounts sums the samples of the metrics at url that line matches:
// its last group is the value, the others joined with "/" the key. None
// at all is an error (what names them).
func metricCounts(t *testing.T, url, what string, line *regexp.Regexp) map[string]int {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.ParseFloat(m[len(m)-1], 64)
			out[strings.Join(m[1:len(m)-1], "/")] += int(n)
		}
	}
	if len(out) == 0 {
		t.Errorf("no %s in the gateway's metrics at %s", what, url)
	}
	return out
}

// logWarnings returns up to n lines of the gateway's JSON log at level
// WARN or ERROR.
func logWarnings(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() && len(out) < n {
		if l := sc.Bytes(); bytes.Contains(l, []byte(`"level":"WARN"`)) || bytes.Contains(l, []byte(`"level":"ERROR"`)) {
			out = append(out, string(l))
		}
	}
	return out
}

// freeAddr is a loopback address whose port was free a moment ago: the
// gateway's resource URL must name its port before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a whole number of at least 1", name, v)
	}
	return n
}

// loadAverage is the machine's 1, 5 and 15 minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// startTracedGateway starts a gateway like the measured one that traces
// (every span exported over OTLP/HTTP to sink), sampling ratio of the
// requests, and returns its get-todos row: a reader with one todo.
func startTracedGateway(t *testing.T, bin, dir, name, short string, iss *providertest.Issuer, sink, ratio string, tenant func(string) map[string]any) *target {
	t.Helper()
	addr, admin := freeAddr(t), freeAddr(t)
	resource := "http://" + addr + "/bench"
	cfgPath := writeConfig(t, filepath.Join(dir, short+".json"), addr, admin,
		map[string]any{"driver": "bbolt", "bbolt": map[string]any{"path": filepath.Join(dir, short+".db")}}, tenant(resource))
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT="+sink,
		"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG="+ratio)
	_, pid := startProcess(t, short, cmd, filepath.Join(dir, short+".log"))
	reader := iss.Mint(iss.Claims("bench-reader", resource, "create:todos"))
	if status, body := post(t, resource, reader, createBody); status != http.StatusOK {
		t.Fatalf("%s: create-todo warm-up: %d %s", name, status, body)
	}
	if status, body := post(t, resource, reader, listBody); status != http.StatusOK || !strings.Contains(body, `"todos"`) {
		t.Fatalf("%s: get-todos warm-up: %d %s", name, status, body)
	}
	return &target{name: name, short: short, url: resource, token: reader, body: listBody, pid: pid}
}
