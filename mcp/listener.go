package mcp

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LimitConnections caps the connections ln hands out at limit open at once,
// and closes the connections whose answer was sent before their request
// body was read with a lingering close (Linger). A connection over the cap
// is answered 503 (when the client reads it before the close) and closed
// at once, and counted: idle keep-alive connections cost memory and a file
// descriptor each, and without a cap enough of them take every descriptor,
// after which neither new clients, the admin endpoints nor the store can
// open one (accept4: too many open files). A lingering connection holds
// its place until it is really closed. netutil.LimitListener was not used:
// it makes a connection over the cap wait in the kernel's queue, where it
// can be neither answered nor counted.
func LimitConnections(ln net.Listener, limit int, linger Linger, m *Metrics) net.Listener {
	m.connectionLimit(limit)
	return &limitedListener{Listener: ln, limit: int64(limit), linger: linger, metrics: m}
}

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
	limit   int64
	linger  Linger
	open    atomic.Int64
	metrics *Metrics
}

// tooManyConnections is the whole answer to a connection over the cap: a
// fixed HTTP/1.1 response written before the request is read.
var tooManyConnections = func() []byte {
	body := `{"error":"too_many_connections","error_description":"the gateway has as many connections open as it allows; retry shortly"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.limit {
			l.open.Add(-1)
			l.metrics.connectionRefused()
			// A fresh socket's send buffer is empty, so the write does not
			// wait; the deadline keeps a broken one from holding Accept.
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write(tooManyConnections)
			_ = c.Close()
			continue
		}
		l.metrics.connectionOpened()
		return &limitedConn{Conn: c, l: l}, nil
	}
}

// limitedConn gives its place back once, on its first real close.
type limitedConn struct {
	net.Conn
	l *limitedListener
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
	if !c.linger.Load() || !canHalfClose || c.l.linger.Time <= 0 {
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
		c.l.open.Add(-1)
		c.l.metrics.connectionClosed()
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
	b := c.l.linger
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
