package mcp

import (
	"container/list"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LimitConnections caps the connections ln hands out (ConnLimits), and
// closes the connections whose answer was sent before their request body
// was read with a lingering close (Linger). Idle keep-alive connections
// cost memory and a file descriptor each, and without a cap enough of them
// take every descriptor, after which neither new clients, the admin
// endpoints nor the store can open one (accept4: too many open files).
// At the cap, the connection idle the longest is closed to make room;
// near it, every connection idle for pressureIdle is; only when none is
// idle is a new connection answered 503 (when the client reads it before
// the close) and closed at once, and counted. A lingering connection holds
// its place until it is really closed. The public http.Server must report
// its connections' states (ConnState) and give requests their connection
// (ConnContext). netutil.LimitListener was not used: it makes a connection
// over the cap wait in the kernel's queue, where it can be neither
// answered nor counted, and evicts nothing.
func LimitConnections(ln net.Listener, limits ConnLimits, m *Metrics) net.Listener {
	m.connectionLimit(limits.Max)
	return &limitedListener{Listener: ln, limits: limits, metrics: m, idle: list.New(), sources: map[netip.Addr]int{}}
}

// ConnLimits are the public listener's limits.
type ConnLimits struct {
	// Max is the most connections open at once.
	Max int
	// PerSource is the most one client address may hold open; 0: no cap
	// of its own. The addresses of Trusted (proxies, which carry many
	// clients) have none.
	PerSource int
	Trusted   []netip.Prefix
	// Linger bounds lingering closes.
	Linger Linger
	// PressureIdle is how long a connection may wait for a request near
	// the cap; 0 means pressureIdle.
	PressureIdle time.Duration
}

// Near the cap (pressureShare of it in use), a connection idle for
// pressureIdle is closed, at most pressureSweep at each new connection:
// keep-alive is a courtesy that new clients must not pay for.
const (
	pressureShare = 0.9
	pressureIdle  = 5 * time.Second
	pressureSweep = 64
)

// Linger bounds the lingering close of a connection whose answer (a
// refusal: no token, a bad one, a body over the limit by its
// Content-Length) was sent before its request body was read. Closing a
// socket with unread data makes the kernel reset it, and a client still
// sending its body, as many simple ones do before they read (Python's
// urllib), loses the answer to the reset. So, as nginx does
// (lingering_close): once the answer is out, the gateway half-closes the
// connection and reads and discards what the client still sends, until
// the client closes or a bound is reached, then closes.
type Linger struct {
	// Time is the most a connection lingers in all (nginx lingering_time).
	Time time.Duration
	// Idle is the most it waits for the client's next bytes (nginx
	// lingering_timeout).
	Idle time.Duration
	// Bytes is the most it reads and discards.
	Bytes int64
}

// Bounds of the lingering close (DefaultLinger). Time is short of nginx's
// 30 s: a refusal's reader that sends a large body over a slow link is
// rarer than a flood of slow bodies, and each lingering connection holds a
// place under the cap.
const (
	defaultLingerTime = 5 * time.Second
	defaultLingerIdle = 2 * time.Second
	// lingerBodies is how many request-body limits a lingering connection
	// reads at most: a refused body of up to 8 times the limit is read to
	// its end, so that its sender gets the answer.
	lingerBodies = 8
)

// DefaultLinger is the lingering close of a gateway whose request bodies
// are capped at bodyLimit bytes: up to 5 s (2 s without a byte) and 8
// times bodyLimit.
func DefaultLinger(bodyLimit int64) Linger {
	return Linger{Time: defaultLingerTime, Idle: defaultLingerIdle, Bytes: lingerBodies * bodyLimit}
}

type limitedListener struct {
	net.Listener
	limits  ConnLimits
	open    atomic.Int64
	metrics *Metrics

	mu sync.Mutex
	// idle holds the connections waiting for a request (new, or idle
	// between requests), the longest waiting first.
	idle *list.List
	// sources counts the open connections of each client address that
	// has a cap (limits.PerSource).
	sources map[netip.Addr]int
}

// idleConn is an entry of limitedListener.idle.
type idleConn struct {
	c     *limitedConn
	since time.Time
}

// tooManyConnections and tooManyFromSource are the whole answers to a
// connection over a cap: fixed HTTP/1.1 responses written before the
// request is read.
var (
	tooManyConnections = fixedAnswer("too_many_connections", "the gateway has as many connections open as it allows; retry shortly")
	tooManyFromSource  = fixedAnswer("too_many_connections", "this address has as many connections open as the gateway allows one address; close idle ones or retry shortly")
)

func fixedAnswer(code, description string) []byte {
	body := `{"error":"` + code + `","error_description":"` + description + `"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc, answer := l.admit(c)
		if lc != nil {
			return lc, nil
		}
		// A fresh socket's send buffer is empty, so the write does not
		// wait; the deadline keeps a broken one from holding Accept.
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(answer)
		_ = c.Close()
	}
}

// admit makes room for c and takes it, or says why not: the answer of a
// refusal.
func (l *limitedListener) admit(c net.Conn) (*limitedConn, []byte) {
	src := l.capped(c)
	l.mu.Lock()
	if src.IsValid() && l.sources[src] >= l.limits.PerSource {
		l.mu.Unlock()
		l.metrics.connectionSourceRefused()
		return nil, tooManyFromSource
	}
	now := time.Now()
	var evict []*limitedConn
	if open := l.open.Load(); float64(open) >= pressureShare*float64(l.limits.Max) {
		wait := l.limits.PressureIdle
		if wait <= 0 {
			wait = pressureIdle
		}
		evict = l.takeIdle(pressureSweep, now.Add(-wait))
		l.metrics.connectionsEvicted("pressure", len(evict))
		if open-int64(len(evict)) >= int64(l.limits.Max) {
			if oldest := l.takeIdle(1, now); len(oldest) == 1 {
				evict = append(evict, oldest[0])
				l.metrics.connectionsEvicted("cap", 1)
			}
		}
	}
	l.mu.Unlock()
	for _, v := range evict {
		_ = v.close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open.Load() >= int64(l.limits.Max) {
		l.metrics.connectionRefused()
		return nil, tooManyConnections
	}
	l.open.Add(1)
	if src.IsValid() {
		l.sources[src]++
	}
	l.metrics.connectionOpened()
	return &limitedConn{Conn: c, l: l, src: src}, nil
}

// capped is the address of c's client when it has a cap of its own
// (limits.PerSource), else the zero Addr.
func (l *limitedListener) capped(c net.Conn) netip.Addr {
	if l.limits.PerSource <= 0 {
		return netip.Addr{}
	}
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	a := ta.AddrPort().Addr().Unmap()
	for _, p := range l.limits.Trusted {
		if p.Contains(a) {
			return netip.Addr{}
		}
	}
	return a
}

// takeIdle removes from the idle list, longest waiting first, at most n
// connections waiting since before, and returns them. l.mu is held.
func (l *limitedListener) takeIdle(n int, before time.Time) []*limitedConn {
	var out []*limitedConn
	for e := l.idle.Front(); e != nil && len(out) < n; {
		ic := e.Value.(idleConn)
		if !ic.since.Before(before) {
			break
		}
		next := e.Next()
		l.idle.Remove(e)
		ic.c.idle = nil
		out = append(out, ic.c)
		e = next
	}
	return out
}

// ConnState is the public http.Server's ConnState: it keeps the list of
// the connections waiting for a request, the candidates for eviction.
func ConnState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l := lc.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.idle != nil {
		l.idle.Remove(lc.idle)
		lc.idle = nil
	}
	if (s == http.StateNew || s == http.StateIdle) && !lc.closed {
		lc.idle = l.idle.PushBack(idleConn{lc, time.Now()})
	}
}

// limitedConn gives its place back once, on its first real close.
type limitedConn struct {
	net.Conn
	l   *limitedListener
	src netip.Addr // its address, when it has a cap of its own
	// idle is its entry in l.idle while it waits for a request; closed
	// says it was closed (evicted, or by net/http). Both under l.mu.
	idle   *list.Element
	closed bool
	// linger is set when the answer went out before the body was read
	// (lingerOnClose); Close then lingers.
	linger  atomic.Bool
	closing sync.Once
	once    sync.Once
}

// Close closes the connection, or starts its lingering close and returns:
// net/http calls it from the connection's goroutine, and a shutdown waits
// for that goroutine, not for the lingering.
func (c *limitedConn) Close() error {
	cw, canHalfClose := c.Conn.(interface{ CloseWrite() error })
	if !c.linger.Load() || !canHalfClose || c.l.limits.Linger.Time <= 0 {
		return c.close()
	}
	c.closing.Do(func() {
		c.l.metrics.lingerStarted()
		go func() {
			c.l.metrics.lingerEnded(c.lingerOn(cw))
			_ = c.close()
		}()
	})
	return nil
}

func (c *limitedConn) close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		l := c.l
		l.mu.Lock()
		c.closed = true
		if c.idle != nil {
			l.idle.Remove(c.idle)
			c.idle = nil
		}
		if c.src.IsValid() {
			if l.sources[c.src]--; l.sources[c.src] <= 0 {
				delete(l.sources, c.src)
			}
		}
		l.open.Add(-1)
		l.mu.Unlock()
		l.metrics.connectionClosed()
	})
	return err
}

// lingerBufSize is what one read of a lingering connection takes: small,
// since thousands of slow senders may linger at once.
const lingerBufSize = 4 << 10

// lingerOn half-closes the connection (the answer is out: net/http flushed
// it before Close) and reads and discards until the client closes or a
// bound is reached; it returns how it ended (the outcome label of
// todo_gateway_lingering_closes_total).
func (c *limitedConn) lingerOn(cw interface{ CloseWrite() error }) string {
	if err := cw.CloseWrite(); err != nil {
		return "error"
	}
	b := c.l.limits.Linger
	end := time.Now().Add(b.Time)
	buf := make([]byte, lingerBufSize)
	for read := int64(0); read < b.Bytes; {
		now := time.Now()
		if !now.Before(end) {
			return "time"
		}
		deadline := now.Add(b.Idle)
		if deadline.After(end) {
			deadline = end
		}
		_ = c.Conn.SetReadDeadline(deadline)
		n, err := c.Conn.Read(buf[:min(int64(len(buf)), b.Bytes-read)])
		read += int64(n)
		switch {
		case errors.Is(err, io.EOF):
			return "eof"
		case errors.Is(err, os.ErrDeadlineExceeded):
			if time.Now().Before(end) {
				return "idle"
			}
			return "time"
		case err != nil:
			return "error"
		}
	}
	return "bytes"
}

type connKey struct{}

// ConnContext is the public http.Server's ConnContext: it lets a request's
// handler reach its connection (lingerOnClose).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitedConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// lingerOnClose makes the connection of ctx's request close with a
// lingering close: its answer goes out before its body is read.
func lingerOnClose(ctx context.Context) {
	if lc, ok := ctx.Value(connKey{}).(*limitedConn); ok {
		lc.linger.Store(true)
	}
}

// DefaultMaxConnections is the connection cap when the configuration sets
// none: three quarters of the process's open-file limit (Go raises the soft
// limit to the hard one at start), keeping the last quarter, at least 64,
// for the store, the admin listener, the connections to authorization
// servers and etcd, and the log.
func DefaultMaxConnections() int {
	n, ok := openFileLimit()
	if !ok || n == 0 {
		return defaultMaxConnectionsUnknown
	}
	return connectionsFor(n)
}

// MaxConnectionsAllowed is the most connections the process's open-file
// limit allows the public listener (as DefaultMaxConnections reserves a
// quarter for everything else), and whether that limit is known. A
// configured cap above it would bring back the descriptor exhaustion the
// cap exists to prevent.
func MaxConnectionsAllowed() (int, bool) {
	n, ok := openFileLimit()
	if !ok || n == 0 {
		return 0, false
	}
	return connectionsFor(n), true
}

// defaultMaxConnectionsUnknown is the cap when the file limit cannot be read.
const defaultMaxConnectionsUnknown = 1024

// maxDefaultConnections bounds the derived cap when the file limit is
// unlimited or huge.
const maxDefaultConnections = 1 << 20

func connectionsFor(nofile uint64) int {
	n := min(nofile, maxDefaultConnections)
	reserve := max(n/4, 64)
	if reserve >= n {
		return int(max(n/2, 1))
	}
	return int(n - reserve)
}
