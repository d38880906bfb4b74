package cluster

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The nemesis test's network: every etcd peer connection and every
// gateway→etcd connection goes through a TCP proxy of the test's own, so
// that the test can cut a link without root or network namespaces, as
// etcd's robustness tests do. Cutting a link blackholes it: the proxy stops
// forwarding both ways but closes nothing, so the processes see what a
// partition looks like (silence, then their own timeouts), not a reset
// connection; bytes held meanwhile are delivered when the link heals.
//
// A link is a pair of node names ("m1"–"m2" between two etcd members,
// "g2"–"s1" between a gateway and the etcd member in slot s1). Client links
// are known from the proxy a connection comes through (one proxy per
// gateway and slot). Peer links are not: every member dials a member at the
// one peer URL it advertises, so the proxy in front of a member's peer port
// asks the kernel which process opened each connection it accepts
// (/proc/net/tcp and /proc/PID/fd), and so which member is on its other end.

// fabric holds which links are cut and wakes the copiers when that changes.
type fabric struct {
	mu      sync.Mutex
	cut     map[[2]string]bool
	changed chan struct{} // closed and replaced on every change
	closed  chan struct{}
	once    sync.Once
}

func newFabric() *fabric {
	return &fabric{cut: map[[2]string]bool{}, changed: make(chan struct{}), closed: make(chan struct{})}
}

func linkKey(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// setCut cuts (or heals) the links between a and each of others.
func (f *fabric) setCut(cut bool, a string, others ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range others {
		if cut {
			f.cut[linkKey(a, b)] = true
		} else {
			delete(f.cut, linkKey(a, b))
		}
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// healAll heals every link.
func (f *fabric) healAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cut)
	close(f.changed)
	f.changed = make(chan struct{})
}

// isCut says whether traffic between from and to is held. A connection
// whose dialer is unknown ("") is held when any link of to is cut.
func (f *fabric) isCut(from, to string) (bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if from != "" {
		return f.cut[linkKey(from, to)], f.changed
	}
	for k := range f.cut {
		if k[0] == to || k[1] == to {
			return true, f.changed
		}
	}
	return false, f.changed
}

// cutLinks lists the cut links, for the log.
func (f *fabric) cutLinks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.cut {
		out = append(out, k[0]+"–"+k[1])
	}
	slices.Sort(out)
	return out
}

// waitOpen blocks while the link is cut; false when the fabric was closed.
func (f *fabric) waitOpen(from, to func() string) bool {
	for {
		cut, changed := f.isCut(from(), to())
		if !cut {
			return true
		}
		select {
		case <-changed:
		case <-f.closed:
			return false
		}
	}
}

func (f *fabric) close() { f.once.Do(func() { close(f.closed) }) }

// tcpProxy forwards the connections it accepts on 127.0.0.1 to target,
// through the fabric.
type tcpProxy struct {
	name   string // the node behind it, one end of its links ("m2", "s1")
	ln     net.Listener
	target atomic.Pointer[string] // host:port; changed when a slot's member is replaced
	f      *fabric
	// from names the node on the other end of an accepted connection.
	from func(c net.Conn) string

	held atomic.Int64 // connections accepted while their link was cut
	mu   sync.Mutex
	cs   map[net.Conn]struct{}
	done bool
}

func newTCPProxy(t *testing.T, f *fabric, name, target string, from func(net.Conn) string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{name: name, ln: ln, f: f, from: from, cs: map[net.Conn]struct{}{}}
	p.target.Store(&target)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// addr is the proxy's host:port.
func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) setTarget(target string) { p.target.Store(&target) }

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	p.cs[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cs, c)
}

// close stops accepting and closes every connection it forwards.
func (p *tcpProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	for c := range p.cs {
		c.Close()
	}
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *tcpProxy) forward(c net.Conn) {
	// Who dialed is settled once, right after the accept, while the
	// dialer's socket certainly exists.
	from := p.from(c)
	fromF := func() string { return from }
	toF := func() string { return p.name }
	if cut, _ := p.f.isCut(from, p.name); cut {
		p.held.Add(1)
	}
	up, err := net.DialTimeout("tcp", *p.target.Load(), 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c) || !p.track(up) {
		c.Close()
		up.Close()
		return
	}
	var once sync.Once
	end := func() {
		once.Do(func() {
			c.Close()
			up.Close()
			p.untrack(c)
			p.untrack(up)
		})
	}
	pipe := func(dst, src net.Conn) {
		defer end()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				// Hold what was read while the link is cut: at most one
				// buffer per direction, then the sender's TCP window
				// fills and it stalls, as across a partition.
				if !p.f.waitOpen(fromF, toF) {
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(up, c)
	go pipe(c, up)
}

// ------------------------------------------------ who opened a connection

// dialerPID finds, among pids, the process that holds the client end of a
// loopback TCP connection whose server end the caller accepted: the socket
// whose local port is the accepted connection's remote port and whose
// remote port is its local one. 0 when none does (it closed already, or
// another process opened it).
func dialerPID(c net.Conn, pids []int) int {
	remote, ok1 := c.RemoteAddr().(*net.TCPAddr)
	local, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || len(pids) == 0 {
		return 0
	}
	inode := socketInode("/proc/net/tcp", remote.Port, local.Port)
	if inode == "" {
		return 0
	}
	want := "socket:[" + inode + "]"
	for _, pid := range pids {
		fds := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(fds)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(fds + "/" + e.Name()); err == nil && l == want {
				return pid
			}
		}
	}
	return 0
}

// socketInode reads a /proc/net/tcp table for the socket from localPort to
// remotePort on 127.0.0.1 and returns its inode ("" if absent). Lines are
// "sl local_address rem_address st … uid timeout inode …", addresses in
// hex ("0100007F:1F90").
func socketInode(table string, localPort, remotePort int) string {
	f, err := os.Open(table)
	if err != nil {
		return ""
	}
	defer f.Close()
	wantLocal := fmt.Sprintf(":%04X", localPort)
	wantRemote := fmt.Sprintf(":%04X", remotePort)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || !strings.HasSuffix(fs[1], wantLocal) || !strings.HasSuffix(fs[2], wantRemote) {
			continue
		}
		if _, err := strconv.ParseUint(fs[9], 10, 64); err == nil && fs[9] != "0" {
			return fs[9]
		}
	}
	return ""
}
