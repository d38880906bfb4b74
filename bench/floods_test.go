package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestFloods measures what issue 24 §1 asks of the gateway under a flood,
// against the binary, from loopback addresses of their own (any of
// 127.0.0.0/8 is this machine): the attacker's 127.0.0.2 and 127.0.0.4,
// the users' 127.0.0.3.
//
//   - Idle connections: the attacker opens 1,000 more keep-alive
//     connections, each after one request, than http.max_connections,
//     TODO_GATEWAY_FLOODS_IDLE (default 15,000); then 100 new users each
//     open a connection and call get-todos. Printed: how many were served.
//     TODO_GATEWAY_FLOODS_PER_SOURCE, when set, is the gateway's
//     http.max_connections_per_source for a second run.
//   - Introspection: for 10 s the attacker sends made-up opaque tokens as
//     fast as 64 connections allow, while a signed-in user (a token
//     introspected before the flood, cache_ttl 2 s) and new users (a new
//     token every 100 ms) call get-todos. Printed: each one's successes.
//
// It runs when TODO_GATEWAY_FLOODS is set, with TODO_GATEWAY_BIN naming
// the gateway binary. TODO_GATEWAY_FLOODS_OLD=1 leaves out the settings an
// older binary does not know. Timing never fails it.
func TestFloods(t *testing.T) {
	if os.Getenv("TODO_GATEWAY_FLOODS") == "" {
		t.Skip("set TODO_GATEWAY_FLOODS=1 and TODO_GATEWAY_BIN to measure floods")
	}
	bin := os.Getenv("TODO_GATEWAY_BIN")
	if bin == "" {
		t.Fatal("TODO_GATEWAY_BIN must name the gateway binary to measure")
	}
	idle := envInt(t, "TODO_GATEWAY_FLOODS_IDLE", 15000)
	// The gateway, which inherits the limit, allows three quarters of it
	// as connections; this process holds the attacker's.
	raiseFileLimit(t, uint64(idle*4/3))
	t.Run("idle connections", func(t *testing.T) {
		floodIdle(t, bin, idle, 0)
		if n := envInt(t, "TODO_GATEWAY_FLOODS_PER_SOURCE", 0); n > 0 {
			floodIdle(t, bin, idle, n)
		}
	})
	t.Run("introspection", func(t *testing.T) { floodIntrospection(t, bin) })
}

// startFloodGateway starts the binary with one tenant on iss and the http
// block given, and returns the tenant's resource URL.
func startFloodGateway(t *testing.T, bin string, iss *providertest.Issuer, provider map[string]any, httpBlock map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	addr, admin := freeAddr(t), freeAddr(t)
	resource := "http://" + addr + "/bench"
	provider["issuer"] = iss.Issuer()
	cfg := map[string]any{
		"listen": addr, "admin": map[string]any{"listen": admin}, "http": httpBlock,
		"store": map[string]any{"driver": "bbolt", "bbolt": map[string]any{"path": filepath.Join(dir, "todos.db")}},
		"tenants": []any{map[string]any{"id": "bench", "resource": resource, "provider": provider,
			"audience": map[string]any{"strategy": "resource"}}},
	}
	path := filepath.Join(dir, "gateway.json")
	writeJSONFile(t, path, cfg)
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), "BENCH_INTROSPECTION_SECRET=gateway-secret")
	startProcess(t, "gateway", cmd, filepath.Join(dir, "gateway.log"))
	return resource
}

const getTodosBody = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`

// clientFrom is an HTTP client whose connections come from the loopback
// address src, one request per connection when fresh is set.
func clientFrom(src string, fresh bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: fresh, MaxIdleConnsPerHost: 64}}
}

func floodIdle(t *testing.T, bin string, n, perSource int) {
	iss := providertest.New(t)
	httpBlock := map[string]any{"max_connections": n}
	if perSource > 0 {
		httpBlock["max_connections_per_source"] = perSource
	}
	resource := startFloodGateway(t, bin, iss, map[string]any{"type": "oidc"}, httpBlock)
	host := strings.TrimPrefix(resource, "http://")
	host = host[:strings.Index(host, "/")]
	token := iss.Mint(iss.Claims("user", resource, "read:todos"))

	// The attacker's idle connections, each after one request.
	var opened atomic.Int64
	var conns sync.Map
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	start := time.Now()
	for i := range n + 1000 { // more than the cap: it is full whatever fails
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
			c, err := d.Dial("tcp", host)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "GET /.well-known/oauth-protected-resource/bench HTTP/1.1\r\nHost: %s\r\n\r\n", host)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				c.Close()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			opened.Add(1)
			conns.Store(i, c)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		conns.Range(func(_, v any) bool { v.(net.Conn).Close(); return true })
	})
	took := time.Since(start)
	time.Sleep(time.Second)

	users := clientFrom("127.0.0.3", true)
	served := 0
	for range 100 {
		if status, _, err := postWith(users, resource, token, getTodosBody); err == nil && status == http.StatusOK {
			served++
		}
	}
	still := 0
	conns.Range(func(_, v any) bool {
		c := v.(net.Conn)
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && isTimeoutErr(err) {
			still++
		}
		return true
	})
	label := fmt.Sprintf("max_connections %d", n)
	if perSource > 0 {
		label += fmt.Sprintf(", max_connections_per_source %d", perSource)
	}
	t.Logf("%s: the attacker held %d idle connections (opened in %v; %d still open after the users came); new users served: %d of 100",
		label, opened.Load(), took.Round(time.Millisecond), still, served)
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func floodIntrospection(t *testing.T, bin string) {
	iss := providertest.New(t)
	resource := startFloodGateway(t, bin, iss, map[string]any{"type": "oidc", "token": "introspection",
		"introspection": map[string]any{"client_id": "gateway", "client_secret_env": "BENCH_INTROSPECTION_SECRET", "cache_ttl": "2s"}},
		map[string]any{})
	mint := func(sub string) string {
		c := iss.Claims(sub, resource, "read:todos")
		return iss.MintOpaque(c)
	}
	signedIn := mint("signed-in")
	if status, body := post(t, resource, signedIn, getTodosBody); status != http.StatusOK {
		t.Fatalf("get-todos before the flood: %d %s", status, body)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var flood, floodBusy atomic.Int64
	var wg sync.WaitGroup
	for i := range 64 {
		src := "127.0.0.2"
		if i%2 == 1 {
			src = "127.0.0.4"
		}
		c := clientFrom(src, false)
		wg.Go(func() {
			for ctx.Err() == nil {
				status, _, err := postWith(c, resource, fmt.Sprintf("made-up-%d-%d", i, time.Now().UnixNano()), getTodosBody)
				if err == nil {
					flood.Add(1)
					if status == http.StatusServiceUnavailable {
						floodBusy.Add(1)
					}
				}
			}
		})
	}
	type tally struct{ ok, tries int }
	var signedInTally, newTally tally
	var mu sync.Mutex
	users := clientFrom("127.0.0.3", false)
	wg.Go(func() {
		for ctx.Err() == nil {
			status, _, err := postWith(users, resource, signedIn, getTodosBody)
			mu.Lock()
			signedInTally.tries++
			if err == nil && status == http.StatusOK {
				signedInTally.ok++
			}
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	})
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			status, _, err := postWith(users, resource, mint(fmt.Sprintf("new-%d", i)), getTodosBody)
			mu.Lock()
			newTally.tries++
			if err == nil && status == http.StatusOK {
				newTally.ok++
			}
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	})
	wg.Wait()
	t.Logf("introspection flood, 10 s, budget 100 calls/s, cache_ttl 2 s: %d made-up tokens sent (%d answered 503); "+
		"the signed-in user succeeded %d of %d times, new users %d of %d",
		flood.Load(), floodBusy.Load(), signedInTally.ok, signedInTally.tries, newTally.ok, newTally.tries)
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
