package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// urllibClient is the client of issue 26: Python's urllib, which sends the
// whole body before it reads a byte of the answer. It prints one word per
// try: the status received, or the error that stopped it.
const urllibClient = `
import sys, urllib.request, urllib.error
url, token, size, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = b" " * size
for _ in range(n):
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            print(r.status)
    except urllib.error.HTTPError as e:
        print(e.code)
    except Exception as e:
        print(type(e).__name__)
`

// TestEarlyRefusals measures what issue 26 asks of the lingering close,
// against the real binary:
//
//   - Python's urllib posting bodies of 2 and 8 MiB (the default limit is 1
//     MiB) with a malformed token (401 wanted) and a valid one (413
//     wanted): how many answers arrive, how many resets;
//   - a 100 KB body sent at 1 byte a second: when the answer arrives, and
//     when the gateway closes the connection;
//   - 3,000 connections sending slow bodies without a token (each gets its
//     401, lingers, is closed, and connects again) while one legitimate
//     client calls get-todos: its successes and latencies.
//
// It runs when TODO_GATEWAY_REFUSALS is set, with TODO_GATEWAY_BIN naming
// the gateway binary and python3 on the PATH. Timing never fails it.
func TestEarlyRefusals(t *testing.T) {
	if os.Getenv("TODO_GATEWAY_REFUSALS") == "" {
		t.Skip("set TODO_GATEWAY_REFUSALS=1 and TODO_GATEWAY_BIN (make bench) to measure early refusals")
	}
	bin := os.Getenv("TODO_GATEWAY_BIN")
	if bin == "" {
		t.Fatal("TODO_GATEWAY_BIN must name the gateway binary to measure (make bench builds it)")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed for the urllib client: apt-get install -y python3")
	}
	slow := envInt(t, "TODO_GATEWAY_REFUSALS_SLOW", 3000)
	raiseFileLimit(t, uint64(2*slow+1024))
	dir := t.TempDir()
	iss := providertest.New(t)
	addr, admin := freeAddr(t), freeAddr(t)
	resource := "http://" + addr + "/bench"
	cfgPath := writeConfig(t, filepath.Join(dir, "gateway.json"), addr, admin,
		map[string]any{"driver": "bbolt", "bbolt": map[string]any{"path": filepath.Join(dir, "todos.db")}},
		map[string]any{
			"id": "bench", "resource": resource,
			"provider": map[string]any{"type": "oidc", "issuer": iss.Issuer()},
			"audience": map[string]any{"strategy": "resource"},
		})
	startProcess(t, "gateway", exec.Command(bin, "serve", "--config", cfgPath), filepath.Join(dir, "gateway.log"))
	valid := iss.Mint(iss.Claims("bench-user", resource, "create:todos read:todos delete:todos"))
	if status, body := post(t, resource, valid, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`); status != http.StatusOK {
		t.Fatalf("get-todos: %d %s", status, body)
	}

	script := filepath.Join(dir, "urllib_client.py")
	if err := os.WriteFile(script, []byte(urllibClient), 0o600); err != nil {
		t.Fatal(err)
	}
	tries := envInt(t, "TODO_GATEWAY_REFUSALS_TRIES", 10)
	t.Logf("urllib, %d POSTs each (body limit 1 MiB):", tries)
	t.Logf("| body | valid token (wants 413) | malformed token (wants 401) |")
	t.Logf("|---|---|---|")
	for _, size := range []int{2 << 20, 8 << 20} {
		var cells []string
		for _, tc := range []struct{ token, want string }{{valid, "413"}, {"not-a-token", "401"}} {
			out, err := exec.Command(python, script, resource, tc.token, fmt.Sprint(size), fmt.Sprint(tries)).CombinedOutput()
			if err != nil {
				t.Fatalf("urllib client: %v\n%s", err, out)
			}
			counts := map[string]int{}
			for _, w := range strings.Fields(string(out)) {
				counts[w]++
			}
			cell := fmt.Sprintf("%s on %d of %d", tc.want, counts[tc.want], tries)
			delete(counts, tc.want)
			for _, w := range slices.Sorted(func(yield func(string) bool) {
				for k := range counts {
					if !yield(k) {
						return
					}
				}
			}) {
				cell += fmt.Sprintf(", %s on %d", w, counts[w])
			}
			cells = append(cells, cell)
		}
		t.Logf("| %d MiB | %s | %s |", size>>20, cells[0], cells[1])
	}

	answered, closedAfter := slowBody(t, addr, 100_000, time.Second, 30*time.Second)
	t.Logf("100 KB at 1 byte/s without a token: answered after %v, closed by the gateway %v after the answer", answered.Round(time.Millisecond), closedAfter.Round(time.Millisecond))

	t.Logf("%d slow-body connections (no token, 1 byte a second, reconnecting) and one get-todos client, 15 s:", slow)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	var attacks, attackAnswers atomic.Int64
	var wg sync.WaitGroup
	for range slow {
		wg.Go(func() {
			for ctx.Err() == nil {
				attacks.Add(1)
				if slowAttack(ctx, addr) {
					attackAnswers.Add(1)
				}
			}
		})
	}
	time.Sleep(2 * time.Second) // the attack connections open
	getter := &http.Client{Timeout: 10 * time.Second}
	var ok, failed int
	var lat []time.Duration
	for ctx.Err() == nil {
		start := time.Now()
		status, _, _ := postWith(getter, resource, valid, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`)
		if status == http.StatusOK {
			ok++
			lat = append(lat, time.Since(start))
		} else {
			failed++
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	slices.Sort(lat)
	p := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(q*float64(len(lat)-1))].Round(100 * time.Microsecond)
	}
	t.Logf("get-todos: %d of %d answered 200 (p50 %v, p99 %v); attack connections: %d, %d got their 401",
		ok, ok+failed, p(0.5), p(0.99), attacks.Load(), attackAnswers.Load())
}

// slowBody sends a body of size bytes one byte per interval after a
// request without a token, and returns when the answer arrived and how
// long after it the gateway closed the connection (a write failing, or the
// bound).
func slowBody(t *testing.T, addr string, size int, interval, bound time.Duration) (answered, closedAfter time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /bench HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", addr, size)
	conn.SetReadDeadline(time.Now().Add(bound))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	resp.Body.Close()
	answered = time.Since(start)
	at := time.Now()
	for time.Since(at) < bound {
		if _, err := conn.Write([]byte(" ")); err != nil {
			return answered, time.Since(at)
		}
		time.Sleep(interval)
	}
	return answered, time.Since(at)
}

// slowAttack is one slow-body connection: a request without a token whose
// body comes one byte a second until the connection fails or ctx ends. It
// reports whether the 401 arrived.
func slowAttack(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		time.Sleep(100 * time.Millisecond)
		return false
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := fmt.Fprintf(conn, "POST /bench HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", addr); err != nil {
		return false
	}
	answered := make(chan bool, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		answered <- err == nil && resp.StatusCode == http.StatusUnauthorized
	}()
	for ctx.Err() == nil {
		if _, err := conn.Write([]byte(" ")); err != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	conn.Close()
	return <-answered
}
