package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one external process of the test (an etcd member or a gateway)
// that can be stopped and started again with the same command line. It is
// only ever signalled through its own PID.
type proc struct {
	name    string
	bin     string
	args    []string
	logPath string
	// readyLine, when set, is a prefix of the stdout line that says the
	// process is up; the line closes the run's up channel.
	readyLine string

	mu  sync.Mutex
	run *procRun // the current or last run; nil before the first start
}

// procRun is one life of a proc.
type procRun struct {
	cmd  *exec.Cmd
	up   chan struct{} // closed when readyLine is printed
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's error, set before done closes
}

// start starts the process; its stdout and stderr are appended to logPath.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil && !p.run.exited() {
		return fmt.Errorf("%s is already running (pid %d)", p.name, p.run.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== %s: start %s %s\n", time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	// If the test binary dies (a go test timeout, a crash), the kernel
	// kills the process too: no etcd or gateway outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	run := &procRun{cmd: cmd, up: make(chan struct{}), done: make(chan struct{})}
	p.run = run
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if !seen && p.readyLine != "" && strings.HasPrefix(line, p.readyLine) {
				seen = true
				close(run.up)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		run.err = cmd.Wait()
		fmt.Fprintf(logf, "=== %s: exit %v\n", time.Now().Format(time.RFC3339Nano), run.err)
		logf.Close()
		close(run.done)
	}()
	return nil
}

func (r *procRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// current returns the current run (nil before the first start).
func (p *proc) current() *procRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

// pid is the PID of the running process, 0 if none.
func (p *proc) pid() int {
	if r := p.current(); r != nil && !r.exited() {
		return r.cmd.Process.Pid
	}
	return 0
}

// signal sends sig to the running process, by its PID.
func (p *proc) signal(sig syscall.Signal) error {
	r := p.current()
	if r == nil || r.exited() {
		return fmt.Errorf("%s is not running", p.name)
	}
	return r.cmd.Process.Signal(sig)
}

// wait waits up to d for the current run to exit and returns its error
// (nil for exit status 0).
func (p *proc) wait(d time.Duration) error {
	r := p.current()
	if r == nil {
		return fmt.Errorf("%s was never started", p.name)
	}
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		return fmt.Errorf("%s (pid %d) still running after %s", p.name, r.cmd.Process.Pid, d)
	}
}

// kill stops the process with SIGKILL and waits for it to exit.
func (p *proc) kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	err := p.wait(10 * time.Second)
	var exit *exec.ExitError
	if errors.As(err, &exit) { // "signal: killed" is the expected end
		return nil
	}
	return err
}

// stopAtExit kills the process (if it runs) when the test ends, also when
// it fails.
func (p *proc) stopAtExit(t *testing.T) {
	t.Cleanup(func() {
		if p.pid() != 0 {
			if err := p.kill(); err != nil {
				t.Errorf("stopping %s: %v", p.name, err)
			}
		}
	})
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ports hands out free loopback ports, never the same one twice in a test.
type ports struct {
	mu   sync.Mutex
	used map[int]bool
}

// next returns a port that was free a moment ago. Another program may take
// it before the process that is given it listens: a small risk the test
// takes to be able to name every address in advance (etcd's initial
// cluster, the gateways' fixed ports across restarts).
func (ps *ports) next(t *testing.T) int {
	t.Helper()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.used == nil {
		ps.used = map[int]bool{}
	}
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !ps.used[port] {
			ps.used[port] = true
			return port
		}
	}
	t.Fatal("no free port found")
	return 0
}

// ---------------------------------------------------------------- etcd

// etcdMember is one member of the test's etcd cluster.
type etcdMember struct {
	*proc
	clientURL, peerURL string
}

type etcdCluster struct {
	members []*etcdMember
	http    *http.Client
}

// startEtcd starts an n-member etcd cluster on loopback ports, its data in
// dir, and waits until every member reports a healthy cluster.
func startEtcd(t *testing.T, bin, dir string, n int, ps *ports) *etcdCluster {
	t.Helper()
	c := &etcdCluster{http: &http.Client{Timeout: 2 * time.Second}}
	var initial []string
	for i := range n {
		name := fmt.Sprintf("m%d", i+1)
		m := &etcdMember{
			proc:      &proc{name: "etcd " + name, bin: bin, logPath: filepath.Join(dir, "etcd-"+name+".log")},
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ps.next(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ps.next(t)),
		}
		initial = append(initial, name+"="+m.peerURL)
		c.members = append(c.members, m)
	}
	token := fmt.Sprintf("todo-gateway-cluster-test-%d", time.Now().UnixNano())
	for i, m := range c.members {
		name := fmt.Sprintf("m%d", i+1)
		// With an existing data directory (a restart) etcd ignores the
		// initial-cluster flags and rejoins as the member it was.
		m.args = []string{
			"--name", name,
			"--data-dir", filepath.Join(dir, "etcd-"+name),
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", token,
			"--logger", "zap", "--log-outputs", "stderr",
		}
		m.stopAtExit(t)
		if err := m.start(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range c.members {
		if err := c.waitHealthy(ctx, m); err != nil {
			t.Fatalf("%s: %v\n%s", m.name, err, m.tail(20))
		}
	}
	return c
}

func (c *etcdCluster) endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.clientURL)
	}
	return out
}

// healthy asks a member's /health, which says true once the member sees a
// leader.
func (c *etcdCluster) healthy(ctx context.Context, m *etcdMember) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.clientURL+"/health", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct{ Health string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return err
	}
	if h.Health != "true" {
		return fmt.Errorf("health %q", h.Health)
	}
	return nil
}

func (c *etcdCluster) waitHealthy(ctx context.Context, m *etcdMember) error {
	var last error
	for {
		if last = c.healthy(ctx, m); last == nil {
			return nil
		}
		if r := m.current(); r != nil && r.exited() {
			return fmt.Errorf("exited: %v", r.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy: %v", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// status is a member's view: its own id and the leader's. The gRPC
// gateway answers 64-bit ids as decimal strings.
func (c *etcdCluster) status(ctx context.Context, m *etcdMember) (member, leader uint64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.clientURL+"/v3/maintenance/status", bytes.NewReader([]byte("{}")))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Header struct {
			MemberID string `json:"member_id"`
		} `json:"header"`
		Leader string `json:"leader"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, 0, err
	}
	member, err1 := strconv.ParseUint(st.Header.MemberID, 10, 64)
	leader, err2 := strconv.ParseUint(st.Leader, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("status of %s: %w", m.name, err)
	}
	return member, leader, nil
}

// leader finds the member every reachable member names as leader.
func (c *etcdCluster) leader(ctx context.Context) (*etcdMember, error) {
	ids := map[uint64]*etcdMember{}
	votes := map[uint64]int{}
	for _, m := range c.members {
		id, leader, err := c.status(ctx, m)
		if err != nil {
			continue
		}
		ids[id] = m
		votes[leader]++
	}
	for id, n := range votes {
		if n == len(ids) && ids[id] != nil && id != 0 {
			return ids[id], nil
		}
	}
	return nil, fmt.Errorf("no leader agreed on: votes %v, members %d", votes, len(ids))
}

// electedAfter reads the members' logs for the first "became leader" line
// after t: when etcd itself had a leader again.
func (c *etcdCluster) electedAfter(t time.Time) (at time.Time, name string, found bool) {
	for _, m := range c.members {
		b, err := os.ReadFile(m.logPath)
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var l struct {
				TS  string `json:"ts"`
				Msg string `json:"msg"`
			}
			if json.Unmarshal(line, &l) != nil || !strings.Contains(l.Msg, "became leader at term") {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, l.TS)
			if err != nil || !ts.After(t) {
				continue
			}
			if !found || ts.Before(at) {
				at, name, found = ts, m.name, true
			}
		}
	}
	return at, name, found
}

// ---------------------------------------------------------------- gateway

// gatewayInst is one gateway process with fixed public and admin ports, so
// that a restart comes back at the same address.
type gatewayInst struct {
	*proc
	addr, adminAddr string // 127.0.0.1:PORT
}

// gatewayConfig is the configuration every instance runs: the one tenant,
// on the test issuer, at the proxy's resource URL, on the etcd cluster.
func gatewayConfig(listen, admin string, endpoints []string, prefix, issuer, resource string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"listen": listen,
		"admin":  map[string]any{"listen": admin},
		"store": map[string]any{"driver": "etcd", "etcd": map[string]any{
			"endpoints": endpoints, "prefix": prefix, "dial_timeout": "5s", "request_timeout": "5s",
		}},
		"shutdown": map[string]any{"drain": drainPeriod.String(), "grace": "10s"},
		"tenants": []any{map[string]any{
			"id": tenantID, "resource": resource,
			"provider": map[string]any{"type": "oidc", "issuer": issuer},
			"audience": map[string]any{"strategy": "resource"},
		}},
	}, "", "  ")
}

func newGateway(t *testing.T, bin, dir string, i int, ps *ports, endpoints []string, prefix, issuer, resource string) *gatewayInst {
	t.Helper()
	name := fmt.Sprintf("g%d", i+1)
	g := &gatewayInst{
		addr:      fmt.Sprintf("127.0.0.1:%d", ps.next(t)),
		adminAddr: fmt.Sprintf("127.0.0.1:%d", ps.next(t)),
	}
	cfg, err := gatewayConfig(g.addr, g.adminAddr, endpoints, prefix, issuer, resource)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".json")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	g.proc = &proc{name: name, bin: bin, args: []string{"serve", "--config", path},
		logPath: filepath.Join(dir, name+".log"), readyLine: "todo-gateway listening on"}
	g.stopAtExit(t)
	return g
}

// startAndWait starts the gateway and waits for its listening line.
func (g *gatewayInst) startAndWait(d time.Duration) error {
	if err := g.start(); err != nil {
		return err
	}
	r := g.current()
	select {
	case <-r.up:
		return nil
	case <-r.done:
		return fmt.Errorf("%s exited at start: %v\n%s", g.name, r.err, g.tail(20))
	case <-time.After(d):
		return fmt.Errorf("%s not listening after %s\n%s", g.name, d, g.tail(20))
	}
}

// logFigures counts, in the gateway's JSON log, access lines with a 5xx
// status and lines at level ERROR, with a few examples of each.
func (g *gatewayInst) logFigures() (fiveXX, errs int, examples []string) {
	f, err := os.Open(g.logPath)
	if err != nil {
		return 0, 0, []string{err.Error()}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Level  string `json:"level"`
			Msg    string `json:"msg"`
			Status int    `json:"status"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		bad := false
		if l.Msg == "access" && l.Status >= 500 {
			fiveXX++
			bad = true
		}
		if l.Level == "ERROR" {
			errs++
			bad = true
		}
		if bad && len(examples) < 5 {
			examples = append(examples, sc.Text())
		}
	}
	return fiveXX, errs, examples
}
