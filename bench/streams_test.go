package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestStreams measures what an open SSE stream costs: the gateway binary,
// a process of its own, with an upstream tenant in front of Upstream (a
// process of its own too), and this process holding N concurrent
// tools/call requests of Upstream's tick tool through the tenant (default
// 1,000), each answered as an SSE stream with an event a second, for a
// while (default 10 s). It prints the resident memory (VmRSS, from /proc)
// of the gateway before the streams, with them open and after they closed,
// what the streams add per stream, and the CPU time (user and system, from
// /proc) per stream and second of the hold; the same for the upstream,
// which holds the same streams. Timing and memory never fail it, only
// errors do (a stream refused or ended before its time, a forward the
// gateway counted with another outcome than ok or canceled, a warning in
// the gateway's log).
//
// It runs when TODO_GATEWAY_STREAMS is set, with TODO_GATEWAY_BIN naming
// the gateway binary (make bench builds it). TODO_GATEWAY_STREAMS_N (the
// number of streams) and TODO_GATEWAY_STREAMS_HOLD (whole seconds, at most
// 300) set the size.
func TestStreams(t *testing.T) {
	if os.Getenv("TODO_GATEWAY_STREAMS") == "" {
		t.Skip("set TODO_GATEWAY_STREAMS=1 and TODO_GATEWAY_BIN (make bench) to measure open streams")
	}
	bin := os.Getenv("TODO_GATEWAY_BIN")
	if bin == "" {
		t.Fatal("TODO_GATEWAY_BIN must name the gateway binary to measure (make bench builds it)")
	}
	n, hold := envInt(t, "TODO_GATEWAY_STREAMS_N", 1000), envInt(t, "TODO_GATEWAY_STREAMS_HOLD", 10)
	if hold > 300 {
		t.Fatalf("TODO_GATEWAY_STREAMS_HOLD=%d: at most 300 seconds", hold)
	}
	// A stream is a connection here, one to the gateway and one from it to
	// the upstream: the servers started below inherit the limit.
	raiseFileLimit(t, uint64(2*n+1024))
	dir := t.TempDir()

	upstreamURL, upstreamProc := startReference(t, "upstream", "", dir)
	upstreamURL += "/mcp"
	iss := providertest.New(t)
	addr, admin := freeAddr(t), freeAddr(t)
	resource := "http://" + addr + "/upstream"
	cfg, err := json.MarshalIndent(map[string]any{
		"listen":  addr,
		"admin":   map[string]any{"listen": admin},
		"store":   map[string]any{"driver": "bbolt", "bbolt": map[string]any{"path": filepath.Join(dir, "todos.db")}},
		"http":    map[string]any{"max_connections": 2*n + 1024},
		"tenants": []any{upstreamTenant(resource, iss.Issuer(), upstreamURL, 2*n)},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gateway.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "gateway.log")
	_, gateway := startProcess(t, "gateway", exec.Command(bin, "serve", "--config", cfgPath), logPath)

	// Warm-up and checks: the token verified once, the tenant's upstream
	// server built; then one stream of a second end to end (an event,
	// then the result).
	caller := iss.Mint(iss.Claims("bench-caller", resource, upstreamScope))
	checkUpstream(t, upstreamURL, resource, caller, iss.Mint(iss.Claims("bench-outsider", resource, "")))
	if status, body := post(t, resource, caller, tickBody(1)); status != http.StatusOK ||
		!strings.Contains(body, "data: ") || !strings.Contains(body, `"notifications/progress"`) || !strings.Contains(body, `"done"`) {
		t.Fatalf("a tick of 1 s through the gateway: %d %s", status, body)
	}
	time.Sleep(time.Second)
	gwBefore, upBefore := processRSS(t, gateway), processRSS(t, upstreamProc)

	// The streams: each asks for more ticks than the hold needs and is
	// ended by this side, as a client closes a stream it no longer wants.
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: -1}
	defer tr.CloseIdleConnections()
	streamClient := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var events atomic.Int64
	opened, ended := make(chan error, n), make(chan error, n)
	opening := make(chan struct{}, 64) // streams being opened at once
	body := tickBody(hold + 60)
	start := time.Now()
	for range n {
		go func() {
			opening <- struct{}{}
			ended <- holdStream(ctx, streamClient, resource, caller, body, &events, func(err error) {
				<-opening
				opened <- err
			})
		}()
	}
	deadline := time.After(60 * time.Second)
	for range n {
		select {
		case err := <-opened:
			if err != nil {
				t.Fatalf("opening a stream: %v", err)
			}
		case <-deadline:
			t.Fatalf("%d streams did not open within 60s", n)
		}
	}
	openTime := time.Since(start)

	gwCPU, upCPU, events0, holdStart := processCPU(t, gateway), processCPU(t, upstreamProc), events.Load(), time.Now()
	time.Sleep(time.Duration(hold) * time.Second)
	gwCPU, upCPU = processCPU(t, gateway)-gwCPU, processCPU(t, upstreamProc)-upCPU
	held, heldEvents := time.Since(holdStart), events.Load()-events0
	gwWith, upWith := processRSS(t, gateway), processRSS(t, upstreamProc)
	if k := len(ended); k > 0 {
		t.Fatalf("%d of %d streams ended before their time, the first: %v", k, n, <-ended)
	}
	cancel()
	deadline = time.After(30 * time.Second)
	for range n {
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("a stream: %v", err)
			}
		case <-deadline:
			t.Fatalf("the streams did not end within 30s of being closed")
		}
	}

	// The gateway still answers, every forward it counted ended ok or
	// canceled, and it logged no warning.
	time.Sleep(time.Second)
	if status, body := post(t, resource, caller, echoBody); status != http.StatusOK || !strings.Contains(body, echoText) {
		t.Errorf("echo through the gateway after the streams: %d %s", status, body)
	}
	outcomes := upstreamOutcomes(t, "http://"+admin+"/metrics")
	for outcome, k := range outcomes {
		if outcome != "ok" && outcome != "canceled" {
			t.Errorf("the gateway's forwards to the upstream ended %s %d times", outcome, k)
		}
	}
	if warnings := logWarnings(logPath, 5); len(warnings) > 0 {
		t.Errorf("the gateway logged warnings or errors, for example:\n%s", strings.Join(warnings, "\n"))
	}
	gwAfter, upAfter := processRSS(t, gateway), processRSS(t, upstreamProc)

	fmt.Printf("\n%d SSE streams through an upstream tenant (tools/call of tick: an event a second each), opened in %s, held %s; %d events received in the hold (%d expected); %d cores; load average %s\n",
		n, openTime.Round(time.Millisecond), held.Round(time.Millisecond), heldEvents, int64(float64(n)*held.Seconds()), runtime.NumCPU(), loadAverage())
	fmt.Printf("%-9s %11s %17s %11s %16s %22s\n", "process", "RSS before", "RSS with streams", "per stream", "RSS after close", "CPU per stream-second")
	row := func(name string, before, with, after int64, cpu time.Duration) {
		fmt.Printf("%-9s %8.1f MB %14.1f MB %8.1f KB %13.1f MB %19.1f us  (all streams: %.1f%% of a core)\n", name,
			float64(before)/(1<<20), float64(with)/(1<<20), float64(with-before)/1024/float64(n), float64(after)/(1<<20),
			float64(cpu.Microseconds())/float64(n)/held.Seconds(), 100*cpu.Seconds()/held.Seconds())
	}
	row("gateway", gwBefore, gwWith, gwAfter, gwCPU)
	row("upstream", upBefore, upWith, upAfter, upCPU)
	fmt.Printf("RSS: VmRSS from /proc/PID/status, with the streams open at the end of the hold; per stream: (with - before) / streams. CPU: user and system time over the hold. Upstream outcomes: %v\n", outcomes)
}

// tickBody is a tools/call of Upstream's tick for secs seconds, with a
// progress token.
func tickBody(secs int) string {
	return `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"tick","arguments":{"seconds":` + strconv.Itoa(secs) +
		`},"_meta":{"progressToken":"bench"}}}`
}

// holdStream posts body to url with token and reads the SSE answer,
// counting its events, until ctx ends; it calls open once: with nil at the
// first event, or with why the stream did not open. It returns nil when
// ctx ended the stream, and why otherwise.
func holdStream(ctx context.Context, c *http.Client, url, token, body string, events *atomic.Int64, open func(error)) (err error) {
	isOpen := false
	defer func() {
		if !isOpen {
			if err == nil {
				err = errors.New("the stream ended before its first event")
			}
			open(err)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("%d %s: %s", resp.StatusCode, ct, b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "data: ") {
			continue
		}
		events.Add(1)
		if !isOpen {
			isOpen = true
			open(nil)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if sc.Err() != nil {
		return fmt.Errorf("the stream ended early: %v", sc.Err())
	}
	return errors.New("the stream ended early, with its result")
}

// raiseFileLimit raises this process's open-file limit to at least need
// (the hard limit too when it is lower, which takes root); the processes
// it starts after inherit it.
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	was := lim
	lim.Cur, lim.Max = need, max(lim.Max, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("the open-file limit is %d (hard %d) and this measurement needs %d: %v; raise it (ulimit -n), or measure fewer (TODO_GATEWAY_STREAMS_N, TODO_GATEWAY_FLOODS_IDLE)",
			was.Cur, was.Max, need, err)
	}
}

// processRSS is the resident memory of process pid, in bytes: VmRSS in
// /proc/PID/status.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the memory of process %d: %v", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
