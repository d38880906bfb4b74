package mcp_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/todo-gateway/todo-gateway/mcp"
)

// listenerBed is the edge behind the public listener's wrapping
// (LimitConnections, ConnContext, ConnState), as serve runs it.
type listenerBed struct {
	*edgeBed
	addr string // host:port of the listener
	host string // the Host the tenants' resources name
	reg  *prometheus.Registry
}

func newListenerBed(t *testing.T, limits mcp.ConnLimits) *listenerBed {
	t.Helper()
	b := newEdgeBed(t, nil)
	reg := prometheus.NewRegistry()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: b.gw, ConnContext: mcp.ConnContext, ConnState: mcp.ConnState, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(mcp.LimitConnections(ln, limits, mcp.NewMetrics(reg)))
	t.Cleanup(func() { srv.Close() })
	return &listenerBed{edgeBed: b, addr: ln.Addr().String(), host: strings.TrimPrefix(b.URL, "http://"), reg: reg}
}

// sendWholeBodyThenRead is a client like Python's urllib: it writes the
// request and its whole body before it reads a byte of the answer. It
// returns the answer's status, or the error that stopped it (a reset).
func (b *listenerBed) sendWholeBodyThenRead(t *testing.T, token string, size int) (int, error) {
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
	b := newListenerBed(t, mcp.ConnLimits{Max: 100, Linger: mcp.DefaultLinger(1 << 20)})
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
	b := newListenerBed(t, mcp.ConnLimits{Max: 1, Linger: linger})
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

// dialFrom opens a connection to the bed from the loopback address src
// (any of 127.0.0.0/8 is this machine).
func (b *listenerBed) dialFrom(t *testing.T, src string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // a liveness bound only
	return conn
}

// metadataGet asks for acme's metadata on conn, keeping the connection,
// and returns the status (0 when the connection was refused or closed).
func (b *listenerBed) metadataGet(conn net.Conn, br *bufio.Reader) int {
	if _, err := fmt.Fprintf(conn, "GET /.well-known/oauth-protected-resource/acme HTTP/1.1\r\nHost: %s\r\n\r\n", b.host); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// busy is a connection whose request is being served (its body is still
// coming): net/http counts it active, so it is never evicted. (One still
// sending its headers waits for a request, and may be.)
func (b *listenerBed) busy(t *testing.T) net.Conn {
	t.Helper()
	conn := b.dialFrom(t, "127.0.0.1")
	fmt.Fprintf(conn, "POST /acme HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{",
		b.host, b.token("acme", "u", adminPerms...))
	return conn
}

// At the cap, the connection waiting for a request the longest is closed
// to make room for a new one; when none waits (all are busy), the new
// connection is answered 503 and closed at once, and counted; a place
// given back is taken again (issue 24: 15,000 idle connections locked out
// new clients).
func TestConnectionCapEvictsIdleFirst(t *testing.T) {
	b := newListenerBed(t, mcp.ConnLimits{Max: 2, Linger: mcp.DefaultLinger(1 << 20)})
	var idle [2]net.Conn
	var readers [2]*bufio.Reader
	for i := range idle {
		idle[i] = b.dialFrom(t, "127.0.0.1")
		readers[i] = bufio.NewReader(idle[i])
		if st := b.metadataGet(idle[i], readers[i]); st != http.StatusOK {
			t.Fatalf("idle connection %d: %d", i, st)
		}
		time.Sleep(20 * time.Millisecond) // an order of idleness
	}
	fresh := b.dialFrom(t, "127.0.0.1")
	if st := b.metadataGet(fresh, bufio.NewReader(fresh)); st != http.StatusOK {
		t.Fatalf("a new connection at the cap with idle ones: %d, want 200", st)
	}
	if _, err := readers[0].ReadByte(); err == nil {
		t.Error("the connection idle the longest is still open")
	}
	if st := b.metadataGet(idle[1], readers[1]); st != http.StatusOK {
		t.Errorf("the other idle connection: %d, want it still served", st)
	}
	if n := metricValue(t, b.reg, "todo_gateway_connections_evicted_total", map[string]string{"reason": "cap"}); n != 1 {
		t.Errorf("evictions at the cap: %v, want 1", n)
	}

	// All busy: a new connection is refused.
	b2 := newListenerBed(t, mcp.ConnLimits{Max: 2, Linger: mcp.DefaultLinger(1 << 20)})
	first := b2.busy(t)
	b2.busy(t)
	waitForMetric(t, b2.reg, "todo_gateway_connections", 2)
	time.Sleep(50 * time.Millisecond) // net/http has read their first bytes
	resp, closed := rawExchange(t, "http://"+b2.addr, "POST /acme HTTP/1.1\nHost: "+b2.host+"\nContent-Length: 1")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !closed {
		t.Errorf("a third connection with two busy: %d Retry-After %q closed %v, want 503, Retry-After, closed", resp.StatusCode, resp.Header.Get("Retry-After"), closed)
	}
	if n := metricValue(t, b2.reg, "todo_gateway_connections_refused_total", nil); n != 1 {
		t.Errorf("todo_gateway_connections_refused_total = %v, want 1", n)
	}
	if n := metricValue(t, b2.reg, "todo_gateway_connections_limit", nil); n != 2 {
		t.Errorf("todo_gateway_connections_limit = %v, want 2", n)
	}
	first.Close()
	waitForMetric(t, b2.reg, "todo_gateway_connections", 1)
	again := b2.dialFrom(t, "127.0.0.1")
	if st := b2.metadataGet(again, bufio.NewReader(again)); st != http.StatusOK {
		t.Errorf("a new connection once a place was given back: %d, want 200", st)
	}
}

// Near the cap, connections idle for the pressure bound are closed as new
// ones arrive, even below the cap.
func TestIdleConnectionsCloseSoonerUnderPressure(t *testing.T) {
	b := newListenerBed(t, mcp.ConnLimits{Max: 10, Linger: mcp.DefaultLinger(1 << 20), PressureIdle: 200 * time.Millisecond})
	var readers []*bufio.Reader
	for range 9 { // 90 % of the cap
		c := b.dialFrom(t, "127.0.0.1")
		br := bufio.NewReader(c)
		if st := b.metadataGet(c, br); st != http.StatusOK {
			t.Fatalf("%d", st)
		}
		readers = append(readers, br)
	}
	time.Sleep(300 * time.Millisecond)
	fresh := b.dialFrom(t, "127.0.0.1")
	if st := b.metadataGet(fresh, bufio.NewReader(fresh)); st != http.StatusOK {
		t.Fatalf("a new connection: %d", st)
	}
	if n := metricValue(t, b.reg, "todo_gateway_connections_evicted_total", map[string]string{"reason": "pressure"}); n != 9 {
		t.Errorf("evictions under pressure: %v, want the 9 idle past the bound", n)
	}
	waitForMetric(t, b.reg, "todo_gateway_connections", 1)
}

// One address may hold at most max_connections_per_source; another
// address, and a trusted proxy's, are not held to it.
func TestConnectionsPerSource(t *testing.T) {
	b := newListenerBed(t, mcp.ConnLimits{Max: 100, PerSource: 2, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")},
		Linger: mcp.DefaultLinger(1 << 20)})
	for range 2 {
		b.dialFrom(t, "127.0.0.2")
	}
	waitForMetric(t, b.reg, "todo_gateway_connections", 2)
	third := b.dialFrom(t, "127.0.0.2")
	if st := b.metadataGet(third, bufio.NewReader(third)); st != http.StatusServiceUnavailable {
		t.Errorf("a third connection from one address: %d, want 503", st)
	}
	if n := metricValue(t, b.reg, "todo_gateway_connections_source_refused_total", nil); n != 1 {
		t.Errorf("refused for their address: %v, want 1", n)
	}
	for _, src := range []string{"127.0.0.4", "127.0.0.3", "127.0.0.3", "127.0.0.3"} {
		c := b.dialFrom(t, src)
		if st := b.metadataGet(c, bufio.NewReader(c)); st != http.StatusOK {
			t.Errorf("a connection from %s: %d, want 200", src, st)
		}
	}
}
