package mcp

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LimitConnections caps the connections ln hands out at limit open at once.
// A connection over the cap is answered 503 (when the client reads it
// before the close) and closed at once, and counted: idle keep-alive
// connections cost memory and a file descriptor each, and without a cap
// enough of them take every descriptor, after which neither new clients,
// the admin endpoints nor the store can open one (accept4: too many open
// files). netutil.LimitListener was not used: it makes a connection over
// the cap wait in the kernel's queue, where it can be neither answered
// nor counted.
func LimitConnections(ln net.Listener, limit int, m *Metrics) net.Listener {
	m.connectionLimit(limit)
	return &limitedListener{Listener: ln, limit: int64(limit), metrics: m}
}

type limitedListener struct {
	net.Listener
	limit   int64
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

// limitedConn gives its place back once, on its first Close.
type limitedConn struct {
	net.Conn
	l    *limitedListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.metrics.connectionClosed()
	})
	return err
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
