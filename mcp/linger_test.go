package mcp_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/todo-gateway/todo-gateway/mcp"
)

// lingerBed is the edge behind the public listener's wrapping
// (LimitConnections with linger, ConnContext), as serve runs it.
type lingerBed struct {
	*edgeBed
	addr string // host:port of the listener
	host string // the Host the tenants' resources name
	reg  *prometheus.Registry
}

func newLingerBed(t *testing.T, limit int, linger mcp.Linger) *lingerBed {
	t.Helper()
	b := newEdgeBed(t, nil)
	reg := prometheus.NewRegistry()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: b.gw, ConnContext: mcp.ConnContext, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(mcp.LimitConnections(ln, limit, linger, mcp.NewMetrics(reg)))
	t.Cleanup(func() { srv.Close() })
	return &lingerBed{edgeBed: b, addr: ln.Addr().String(), host: strings.TrimPrefix(b.URL, "http://"), reg: reg}
}

// sendWholeBodyThenRead is a client like Python's urllib: it writes the
// request and its whole body before it reads a byte of the answer. It
// returns the answer's status, or the error that stopped it (a reset).
func (b *lingerBed) sendWholeBodyThenRead(t *testing.T, token string, size int) (int, error) {
	t.Helper()
	conn, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // a liveness bound only
	head := fmt.Sprintf("POST /acme HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", b.host, token, size)
	if _, err := io.WriteString(conn, head); err != nil {
		return 0, err
	}
	chunk := []byte(strings.Repeat(" ", 64<<10))
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := conn.Write(chunk[:min(len(chunk), size-sent)]); err != nil {
			return 0, fmt.Errorf("writing the body at %d bytes: %w", sent, err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// A refusal sent before the body is read reaches a client that writes the
// whole body before it reads (issue 26: urllib got a reset instead on 4 to
// 10 of 10 tries): a malformed token's 401 and a 413 by Content-Length,
// for bodies of 2 and 8 times the 1 MiB limit.
func TestEarlyRefusalsReachClientsThatSendTheWholeBody(t *testing.T) {
	b := newLingerBed(t, 100, mcp.DefaultLinger(1<<20))
	valid := b.token("acme", "u", adminPerms...)
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"malformed token", "not-a-token", http.StatusUnauthorized},
		{"valid token, body over the limit", valid, http.StatusRequestEntityTooLarge},
	} {
		for _, size := range []int{2 << 20, 8 << 20} {
			for i := range 5 {
				if status, err := b.sendWholeBodyThenRead(t, tc.token, size); err != nil || status != tc.status {
					t.Errorf("%s, %d MiB, try %d: %d %v, want %d", tc.name, size>>20, i, status, err, tc.status)
				}
			}
		}
	}
	waitForMetric(t, b.reg, "todo_gateway_connections_lingering", 0)
	// Each lingered until the client closed, or until it had read the
	// bound: 8 MiB, the whole body when net/http had read only the headers.
	lingered := func(outcome string) float64 {
		return metricValue(t, b.reg, "todo_gateway_lingering_closes_total", map[string]string{"outcome": outcome})
	}
	if eof, bytes := lingered("eof"), lingered("bytes"); eof+bytes != 20 {
		t.Errorf("lingering closes ended by the client %v, by the byte bound %v, want 20 in all", eof, bytes)
	}
}

// A body sent one byte at a time gets its refusal at once, and its
// connection is closed at the time bound; until then it holds its place
// under the connection cap.
func TestLingeringIsBoundedAndCounted(t *testing.T) {
	linger := mcp.Linger{Time: 500 * time.Millisecond, Idle: 400 * time.Millisecond, Bytes: 1 << 20}
	b := newLingerBed(t, 1, linger)
	conn, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // a liveness bound only
	if _, err := fmt.Fprintf(conn, "POST /acme HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", b.host); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a body without a token: %d, want 401", resp.StatusCode)
	}
	// The slow sender keeps sending, faster than the idle bound: only the
	// time bound ends it, and then its writes fail (the half-close before
	// it shows only as the end of the answer).
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	waitForMetric(t, b.reg, "todo_gateway_connections_lingering", 1)
	// Its place is still taken: a new connection is over the cap of 1.
	if resp, _ := rawExchange(t, "http://"+b.addr, "POST /acme HTTP/1.1\nHost: "+b.host+"\nContent-Length: 1"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a second connection while the first lingers: %d, want 503 (over the cap)", resp.StatusCode)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the lingering connection was not closed within 5 s")
	}
	waitForMetric(t, b.reg, "todo_gateway_connections", 0)
	if n := metricValue(t, b.reg, "todo_gateway_lingering_closes_total", map[string]string{"outcome": "time"}); n != 1 {
		t.Errorf("lingering closes ended by the time bound = %v, want 1", n)
	}
	if n := metricValue(t, b.reg, "todo_gateway_connections_lingering", nil); n != 0 {
		t.Errorf("todo_gateway_connections_lingering = %v after the close, want 0", n)
	}
	// The place is given back.
	if resp, _ := rawExchange(t, "http://"+b.addr, "POST /acme HTTP/1.1\nHost: "+b.host+"\nContent-Length: 1"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a connection after the lingering one closed: %d, want 401", resp.StatusCode)
	}
}

// waitForMetric waits, for at most 5 s, until the unlabelled metric name
// is want, and fails the test if it does not get there.
func waitForMetric(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := metricValue(t, reg, name, nil)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 5 s, want %v", name, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
