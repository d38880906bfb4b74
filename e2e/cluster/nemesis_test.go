package cluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// TestClusterNemesis runs 3 etcd members and 3 gateway instances with every
// etcd peer connection and every gateway→etcd connection through the
// test's blackhole proxies (netproxy_test.go; chosen over network
// namespaces because it needs no root, cuts one link at a time, and runs
// the same on a laptop and in CI), while clients create, delete and list
// their own todos through every instance directly and a nemesis, one fault
// at a time:
//
//  1. partitions the etcd leader from the other members (its peer links),
//     then heals;
//  2. isolates one gateway from etcd (its client links), then heals;
//  3. SIGSTOPs the etcd leader, then SIGCONTs it;
//  4. SIGSTOPs a gateway, then SIGCONTs it;
//  5. SIGKILLs the etcd leader and starts it again on its data;
//  6. replaces a follower: MemberRemove, then MemberAdd and a fresh member
//     on a new data directory (--initial-cluster-state existing).
//
// The history (invocation and completion of every operation, its answer
// or error) is checked with porcupine against a model of the todo store
// (linearize_test.go). Besides porcupine's verdict the test requires that
// no operation through the isolated gateway succeeded while it was cut off
// (a read served then could only be stale: a read must wait or fail), that
// the majority elected a new leader while the old one was partitioned or
// stopped (the faults took), and that writes came back after each fault.
// It logs operations, faults, latency in each fault window and how long
// writes were unavailable. A failing run keeps its history and porcupine's
// visualization and says where.
//
// Like TestCluster it runs when TODO_GATEWAY_BIN and ETCD_BIN are set.
func TestClusterNemesis(t *testing.T) {
	gwBin, etcdBin := os.Getenv("TODO_GATEWAY_BIN"), os.Getenv("ETCD_BIN")
	if gwBin == "" || etcdBin == "" {
		t.Skip("runs real processes: set TODO_GATEWAY_BIN and ETCD_BIN as for TestCluster; `make cluster-test` does both")
	}
	began := time.Now()
	dir := t.TempDir()
	keep := ""
	if d := os.Getenv("CLUSTER_TEST_DIR"); d != "" {
		dir = filepath.Join(d, "nemesis-"+time.Now().Format("20060102-150405"))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		keep = dir
		t.Logf("logs, data and history in %s", dir)
	}
	var ps ports
	f := newFabric()
	t.Cleanup(f.close)

	// --- set-up: etcd behind its peer proxies, the gateways behind their
	// client proxies, the issuer.
	ec := startNemesisEtcd(t, etcdBin, dir, &ps, f)
	iss := providertest.New(t)
	// The resource's origin: a loopback port nothing listens on; the
	// clients send it as the Host of every request, to every instance.
	host := fmt.Sprintf("127.0.0.1:%d", ps.next(t))
	resource := "http://" + host + "/" + tenantID
	prefix := fmt.Sprintf("nemesis-test-%d/", time.Now().UnixNano())
	var gws []*gatewayInst
	for i := range 3 {
		name := fmt.Sprintf("g%d", i+1)
		var endpoints []string
		var row []*tcpProxy
		for k := range ec.slots {
			p := newTCPProxy(t, f, slotName(k), ec.slots[k].clientAddr(), func(net.Conn) string { return name })
			row = append(row, p)
			endpoints = append(endpoints, "http://"+p.addr())
		}
		ec.clientProxies = append(ec.clientProxies, row)
		gws = append(gws, newGateway(t, gwBin, dir, i, &ps, endpoints, prefix, iss.Issuer(), resource))
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, g := range gws {
			t.Logf("--- %s log (last lines but access and audit lines):\n%s", g.name, g.tailExcept(15, `"msg":"access"`, `"msg":"audit"`))
		}
		for _, m := range ec.all {
			t.Logf("--- %s log (last lines):\n%s", m.name, m.tail(8))
		}
	})
	for _, g := range gws {
		if err := g.startAndWait(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	client := &mcpClient{
		http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
		host: host, path: "/" + tenantID,
	}
	userToken := func(sub string) string { return iss.Mint(iss.Claims(sub, resource, "create:todos")) }
	h := &history{}
	// A first write through each instance proves the chain before any
	// fault.
	for _, g := range gws {
		o := &op{client: "setup", subject: "probe-" + g.name, via: g.name, served: []string{g.name}, content: "setup-" + g.name}
		client.create(context.Background(), o, g.addr, userToken(o.subject))
		h.add(o)
		if o.outcome != ok {
			t.Fatalf("a first create through %s: %v", g.name, o)
		}
	}
	setup := time.Since(began)

	// --- the load: per owner, workers through every instance; per
	// instance, a write probe.
	load := newLoad()
	defer load.stop()
	var owners []*nemOwner
	for i := range nemOwners {
		ow := &nemOwner{name: fmt.Sprintf("u%d", i+1)}
		ow.token = userToken(ow.name)
		owners = append(owners, ow)
		for k := range nemWorkersPerOwner {
			w := &nemWorker{name: fmt.Sprintf("%s-w%d", ow.name, k+1), owner: ow, c: client, gws: gws, h: h, rng: newRand(uint64(100 + 10*i + k))}
			load.Go(func() { w.run(load.ctx) })
		}
	}
	for _, g := range gws {
		tok := userToken("probe-" + g.name)
		load.Go(func() { probeInstance(load.ctx, client, g, tok, h) })
	}

	// --- the nemesis
	scheduleStart := time.Now()
	var timeline []string
	mark := func(format string, args ...any) {
		now := time.Now()
		s := fmt.Sprintf("%7.3fs (%s)  ", now.Sub(scheduleStart).Seconds(), now.Format("15:04:05.000")) + fmt.Sprintf(format, args...)
		timeline = append(timeline, s)
		t.Log(s)
	}
	var faults []*fault
	begin := func(name, gateway string) *fault {
		ft := &fault{name: name, gateway: gateway, start: time.Now()}
		faults = append(faults, ft)
		mark("fault %d: %s", len(faults), name)
		return ft
	}
	// settle heals nothing itself: it waits until every member agrees on
	// a leader again (bounded), then lets the load run a while.
	settle := func(ft *fault, d time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		l, err := ec.leader(ctx)
		// A member just resumed (SIGCONT) or healed may still name the
		// old leader for a moment: ask again until they agree.
		for err != nil && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			l, err = ec.leader(ctx)
		}
		cancel()
		if err != nil {
			t.Errorf("after %s: %v", ft.name, err)
			mark("no leader agreed on after %s: %v", ft.name, err)
		} else {
			mark("healed; every member follows %s", l.name)
		}
		time.Sleep(d)
		ft.settled = time.Now()
	}
	hold := func(ft *fault, d time.Duration) { time.Sleep(time.Until(ft.start.Add(d))) }

	time.Sleep(3 * time.Second)

	// 1. Partition the leader from the other members.
	{
		l := ec.mustLeader(t)
		others := ec.namesExcept(l)
		ft := begin(fmt.Sprintf("partition leader %s from %s", l.id, strings.Join(others, ", ")), "")
		f.setCut(true, l.id, others...)
		ft.newLeader, ft.elected = ec.waitNewLeader(l, 10*time.Second)
		mark("links cut: %s; %s", strings.Join(f.cutLinks(), " "), ft.electionNote())
		hold(ft, 5*time.Second)
		f.healAll()
		ft.heal = time.Now()
		mark("healed the partition")
		settle(ft, 3*time.Second)
		if ft.newLeader == "" {
			t.Errorf("the majority elected no new leader while %s was partitioned: the partition did not take", l.id)
		}
	}

	// 2. Isolate a gateway from etcd.
	{
		g := gws[1]
		ft := begin(fmt.Sprintf("isolate gateway %s from etcd (its client links)", g.name), g.name)
		f.setCut(true, g.name, slotNames(len(ec.slots))...)
		mark("links cut: %s", strings.Join(f.cutLinks(), " "))
		hold(ft, 5*time.Second)
		f.healAll()
		ft.heal = time.Now()
		mark("healed %s's links", g.name)
		settle(ft, 3*time.Second)
	}

	// 3. SIGSTOP the leader, SIGCONT it.
	{
		l := ec.mustLeader(t)
		ft := begin(fmt.Sprintf("SIGSTOP etcd leader %s (pid %d)", l.id, l.pid()), "")
		if err := l.signal(syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP %s: %v", l.name, err)
		}
		ft.newLeader, ft.elected = ec.waitNewLeader(l, 10*time.Second)
		mark("%s", ft.electionNote())
		hold(ft, 5*time.Second)
		if err := l.signal(syscall.SIGCONT); err != nil {
			t.Fatalf("SIGCONT %s: %v", l.name, err)
		}
		ft.heal = time.Now()
		mark("SIGCONT %s", l.id)
		settle(ft, 3*time.Second)
		if ft.newLeader == "" {
			t.Errorf("the majority elected no new leader while %s was stopped", l.id)
		}
	}

	// 4. SIGSTOP a gateway, SIGCONT it.
	{
		g := gws[2]
		ft := begin(fmt.Sprintf("SIGSTOP gateway %s (pid %d)", g.name, g.pid()), g.name)
		if err := g.signal(syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP %s: %v", g.name, err)
		}
		hold(ft, 4*time.Second)
		if err := g.signal(syscall.SIGCONT); err != nil {
			t.Fatalf("SIGCONT %s: %v", g.name, err)
		}
		ft.heal = time.Now()
		mark("SIGCONT %s", g.name)
		settle(ft, 3*time.Second)
	}

	// 5. SIGKILL the leader, start it again on its data.
	{
		l := ec.mustLeader(t)
		ft := begin(fmt.Sprintf("SIGKILL etcd leader %s (pid %d)", l.id, l.pid()), "")
		if err := l.kill(); err != nil {
			t.Fatalf("SIGKILL %s: %v", l.name, err)
		}
		ft.newLeader, ft.elected = ec.waitNewLeader(l, 10*time.Second)
		mark("%s", ft.electionNote())
		hold(ft, 3*time.Second)
		if err := l.start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := ec.waitHealthy(ctx, l.etcdMember)
		cancel()
		if err != nil {
			t.Fatalf("%s after its restart: %v\n%s", l.name, err, l.tail(20))
		}
		ft.heal = time.Now()
		mark("%s restarted (pid %d) and healthy", l.id, l.pid())
		settle(ft, 3*time.Second)
	}

	// 6. Replace a follower with a fresh member.
	{
		l := ec.mustLeader(t)
		old := ec.follower(l)
		ft := begin(fmt.Sprintf("replace follower %s", old.id), "")
		m, err := ec.replace(t, old, &ps, dir)
		if err != nil {
			t.Fatalf("replacing %s: %v", old.id, err)
		}
		ft.heal = time.Now()
		mark("%s removed (exited: %v); %s added and healthy (pid %d, data %s)", old.id, exitStatus(old.current().err), m.id, m.pid(), filepath.Base(m.dataDir))
		settle(ft, 3*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		names, err := ec.memberNames(ctx)
		cancel()
		if err != nil || len(names) != 3 || slices.Contains(names, old.id) || !slices.Contains(names, m.id) {
			t.Errorf("members after the replacement: %v, %v; want 3 with %s and without %s", names, err, m.id, old.id)
		}
	}

	load.stop()
	mark("load stopped")
	schedule := time.Since(scheduleStart)

	// --- the final state: every owner's list through every instance, now
	// that every fault is healed; part of the history the check reads.
	for _, ow := range owners {
		finalReads(t, client, gws, ow.name, ow.token, h)
	}
	for _, g := range gws {
		finalReads(t, client, gws, "probe-"+g.name, userToken("probe-"+g.name), h)
	}

	// --- the check
	ops := h.all()
	v := checkLinearizable(ops, scheduleStart, 60*time.Second)
	histPath := filepath.Join(dir, "nemesis-history.jsonl")
	if err := dump(histPath, ops); err != nil {
		t.Errorf("writing the history: %v", err)
	}
	vizPath := filepath.Join(dir, "nemesis-history.html")
	failedCheck := v.result != porcupine.Ok
	if failedCheck || keep != "" {
		info := v.info
		info.AddAnnotations(faultAnnotations(faults, v.hist.base))
		if err := porcupine.VisualizePath(todoModel, info, vizPath); err != nil {
			t.Errorf("writing porcupine's visualization: %v", err)
		}
	}

	// --- figures
	fig := summarize(ops)
	t.Logf("duration: set-up %s, schedule %s (load included), check %s, total %s",
		setup.Round(time.Millisecond), schedule.Round(time.Millisecond), v.took.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	t.Logf("timeline:\n  %s", strings.Join(timeline, "\n  "))
	t.Logf("operations: %d (%d owners × %d workers through every instance, %d write probes); acknowledged creates %d, deletes %d",
		len(ops), nemOwners, nemWorkersPerOwner, len(gws), fig.ackCreate, fig.ackDelete)
	t.Logf("by kind and outcome:\n%s", top(fig.byKind, 20))
	t.Logf("errors (an operation that got one may have happened or not):\n%s", top(fig.errors, 12))
	t.Logf("answered by instance: %v", fig.served)
	t.Logf("faults injected: %d\n%s", len(faults), faultTable(faults, ops))
	t.Logf("porcupine: %s (%d operations in %d partitions, one per owner, checked in %s; left out: %d failed creates no list saw, %d failed lists, %d lists of more than a page)",
		v.result, len(v.hist.ops), v.partitions, v.took.Round(time.Millisecond), v.hist.unseenCreates, v.hist.failedLists, v.hist.partialLists)
	for _, g := range gws {
		n5, nErr, ex := g.logFigures()
		t.Logf("%s log: %d access lines with a 5xx status, %d ERROR lines", g.name, n5, nErr)
		if n5 > 0 {
			t.Errorf("%s answered 5xx %d times; first lines:\n%s", g.name, n5, strings.Join(ex, "\n"))
		}
	}

	// --- verdicts
	if failedCheck {
		where := keepArtifacts(t, keep, histPath, vizPath)
		t.Errorf("porcupine: the history is %s, not linearizable (times in seconds since the schedule began, as in the timeline):\n%s\nhistory: %s\nvisualization: %s",
			v.result, v.report, filepath.Join(where, filepath.Base(histPath)), filepath.Join(where, filepath.Base(vizPath)))
	}
	for _, ft := range faults {
		if ft.gateway == "" {
			continue
		}
		// Nothing through an instance that etcd could not hear may succeed
		// while it was cut off (fault 2): a read would be stale, a write
		// unreplicated. Through a stopped instance nothing can even run.
		n, okOps := servedDuring(ops, ft.gateway, ft.start.Add(50*time.Millisecond), ft.heal)
		if n < 5 {
			t.Errorf("%s: only %d operations through %s began while it was cut off or stopped; the fault proved nothing", ft.name, n, ft.gateway)
		}
		for _, o := range okOps {
			t.Errorf("%s: %v succeeded while %s could not reach etcd", ft.name, o, ft.gateway)
		}
	}
	for _, ft := range faults {
		w := writesAfter(ops, ft)
		switch {
		case !w.backAny:
			t.Errorf("%s: no write was acknowledged after it", ft.name)
		case w.backAfterAny > maxNemesisRecovery:
			t.Errorf("%s: writes came back %s after it, want within %s", ft.name, w.backAfterAny.Round(time.Millisecond), maxNemesisRecovery)
		case ft.gateway != "" && (!w.backGateway || w.backAfterHeal > maxNemesisRecovery):
			t.Errorf("%s: writes through %s came back %s after the heal (%v), want within %s", ft.name, ft.gateway,
				w.backAfterHeal.Round(time.Millisecond), w.backGateway, maxNemesisRecovery)
		}
	}
	if fig.ackCreate < 300 || fig.ackDelete < 100 || fig.byKind["list-own ok"] < 100 {
		t.Errorf("too little load to prove anything: %d creates, %d deletes, %d lists acknowledged",
			fig.ackCreate, fig.ackDelete, fig.byKind["list-own ok"])
	}
	if schedule > maxNemesisSchedule {
		t.Errorf("the schedule took %s, more than %s", schedule.Round(time.Second), maxNemesisSchedule)
	}
}

const (
	nemOwners          = 6
	nemWorkersPerOwner = 2
	nemPause           = 25 * time.Millisecond
	// nemProbeEvery is how often each instance's write probe starts a
	// create (each on its own goroutine), so that the write outage after a
	// fault is measured even while every worker waits on a slow request.
	nemProbeEvery = 150 * time.Millisecond
	// maxNemesisRecovery is how soon after a fault on etcd (or after the
	// heal of a fault on one instance) writes must be acknowledged again.
	maxNemesisRecovery = 8 * time.Second
	maxNemesisSchedule = 2 * time.Minute
)

// ---------------------------------------------------------------- etcd

// nemMember is an etcd member whose peers reach it through its peer proxy.
type nemMember struct {
	*etcdMember
	id      string // its etcd name, "m1"; "m4" for the replacement
	peer    *tcpProxy
	dataDir string
}

func (m *nemMember) clientAddr() string { return strings.TrimPrefix(m.clientURL, "http://") }

// nemCluster is the nemesis test's etcd cluster: a member per slot (the
// slot's client proxies lead to it), its peers through the proxies.
type nemCluster struct {
	*etcdCluster // members in slot order, for leader and waitHealthy
	slots        []*nemMember
	all          []*nemMember // every member ever started, for the logs
	f            *fabric
	token        string
	// clientProxies[g][k] carries gateway g's connections to slot k.
	clientProxies [][]*tcpProxy
	mu            sync.Mutex
}

func slotName(k int) string { return fmt.Sprintf("s%d", k+1) }

func slotNames(n int) []string {
	var out []string
	for k := range n {
		out = append(out, slotName(k))
	}
	return out
}

// startNemesisEtcd starts 3 members, each advertising its peer proxy's URL.
func startNemesisEtcd(t *testing.T, bin, dir string, ps *ports, f *fabric) *nemCluster {
	t.Helper()
	c := &nemCluster{etcdCluster: &etcdCluster{http: &http.Client{Timeout: 2 * time.Second}}, f: f,
		token: fmt.Sprintf("todo-gateway-nemesis-%d", time.Now().UnixNano())}
	var initial []string
	for i := range 3 {
		m := c.newMember(t, bin, dir, fmt.Sprintf("m%d", i+1), ps)
		initial = append(initial, m.id+"=http://"+m.peer.addr())
		c.slots = append(c.slots, m)
		c.members = append(c.members, m.etcdMember)
	}
	for _, m := range c.slots {
		m.args = m.flags(strings.Join(initial, ","), "new", c.token)
		if err := m.start(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range c.slots {
		if err := c.waitHealthy(ctx, m.etcdMember); err != nil {
			t.Fatalf("%s: %v\n%s", m.name, err, m.tail(20))
		}
	}
	return c
}

// newMember makes a member (not started) with its ports and peer proxy.
func (c *nemCluster) newMember(t *testing.T, bin, dir, id string, ps *ports) *nemMember {
	m := &nemMember{
		etcdMember: &etcdMember{
			proc:      &proc{name: "etcd " + id, bin: bin, logPath: filepath.Join(dir, "nemesis-etcd-"+id+".log")},
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ps.next(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ps.next(t)),
		},
		id:      id,
		dataDir: filepath.Join(dir, "nemesis-etcd-"+id),
	}
	m.stopAtExit(t)
	m.peer = newTCPProxy(t, c.f, id, strings.TrimPrefix(m.peerURL, "http://"), c.dialer)
	c.mu.Lock()
	c.all = append(c.all, m)
	c.mu.Unlock()
	return m
}

// flags is the member's command line: it listens on its own ports and
// advertises its peer proxy.
func (m *nemMember) flags(initialCluster, state, token string) []string {
	return []string{
		"--name", m.id,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", "http://" + m.peer.addr(),
		"--initial-cluster", initialCluster,
		"--initial-cluster-state", state, "--initial-cluster-token", token,
		"--logger", "zap", "--log-outputs", "stderr",
	}
}

// dialer names the member that opened a connection to a peer proxy.
func (c *nemCluster) dialer(conn net.Conn) string {
	c.mu.Lock()
	byPID := map[int]string{}
	var pids []int
	for _, m := range c.all {
		if pid := m.pid(); pid != 0 {
			byPID[pid] = m.id
			pids = append(pids, pid)
		}
	}
	c.mu.Unlock()
	return byPID[dialerPID(conn, pids)]
}

func (c *nemCluster) bySlotMember(em *etcdMember) *nemMember {
	for _, m := range c.slots {
		if m.etcdMember == em {
			return m
		}
	}
	return nil
}

// mustLeader is the member every member names as leader.
func (c *nemCluster) mustLeader(t *testing.T) *nemMember {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		l, err := c.leader(ctx)
		if err == nil {
			return c.bySlotMember(l)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("finding the etcd leader: %v", last)
	return nil
}

func (c *nemCluster) namesExcept(x *nemMember) []string {
	var out []string
	for _, m := range c.slots {
		if m != x {
			out = append(out, m.id)
		}
	}
	return out
}

func (c *nemCluster) follower(l *nemMember) *nemMember {
	for _, m := range c.slots {
		if m != l {
			return m
		}
	}
	return nil
}

// waitNewLeader waits (at most d) until the members other than old agree
// on a leader that is not old, and says which and when.
func (c *nemCluster) waitNewLeader(old *nemMember, d time.Duration) (string, time.Duration) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var rest []*etcdMember
	for _, m := range c.slots {
		if m != old {
			rest = append(rest, m.etcdMember)
		}
	}
	sub := &etcdCluster{members: rest, http: c.http}
	for ctx.Err() == nil {
		if l, err := sub.leader(ctx); err == nil && l != old.etcdMember {
			// Both others answered and agree.
			n := 0
			for _, m := range rest {
				if _, _, err := c.status(ctx, m); err == nil {
					n++
				}
			}
			if n == len(rest) {
				return c.bySlotMember(l).id, time.Since(began)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", time.Since(began)
}

// client is an etcd client on the members' own client URLs (never through
// the proxies), for membership changes.
func (c *nemCluster) client(except *nemMember) (*clientv3.Client, error) {
	var eps []string
	for _, m := range c.slots {
		if m != except {
			eps = append(eps, m.clientURL)
		}
	}
	return clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

func (c *nemCluster) memberNames(ctx context.Context) ([]string, error) {
	cli, err := c.client(nil)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range resp.Members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names, nil
}

// replace removes old from the cluster (MemberRemove; the member then
// stops itself, or is killed), adds a new member in its slot (MemberAdd
// with a new peer proxy), starts it on a fresh data directory with
// --initial-cluster-state existing, points the slot's client proxies at it
// and waits until it is healthy.
func (c *nemCluster) replace(t *testing.T, old *nemMember, ps *ports, dir string) (*nemMember, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	slot := slices.Index(c.slots, old)
	oldID, _, err := c.status(ctx, old.etcdMember)
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", old.id, err)
	}
	cli, err := c.client(old)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	// etcd refuses a membership change until the leader has heard from
	// every member for 5s ("unhealthy cluster"), as after a restart: try
	// again until then.
	retryUnhealthy := func(do func() error) error {
		for {
			err := do()
			if err == nil || !strings.Contains(err.Error(), "unhealthy cluster") || ctx.Err() != nil {
				return err
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	if err := retryUnhealthy(func() error { _, err := cli.MemberRemove(ctx, oldID); return err }); err != nil {
		return nil, fmt.Errorf("MemberRemove %s: %w", old.id, err)
	}
	// A removed member stops itself once it learns of its removal.
	if err := old.wait(10 * time.Second); err != nil && strings.Contains(err.Error(), "still running") {
		if err := old.kill(); err != nil {
			return nil, err
		}
	}
	m := c.newMember(t, old.bin, dir, fmt.Sprintf("m%d", len(c.all)+1), ps)
	var added *clientv3.MemberAddResponse
	if err := retryUnhealthy(func() (err error) { added, err = cli.MemberAdd(ctx, []string{"http://" + m.peer.addr()}); return err }); err != nil {
		return nil, fmt.Errorf("MemberAdd %s: %w", m.id, err)
	}
	var initial []string
	for _, mm := range added.Members {
		name := mm.Name
		if mm.ID == added.Member.ID {
			name = m.id
		}
		for _, u := range mm.PeerURLs {
			initial = append(initial, name+"="+u)
		}
	}
	m.args = m.flags(strings.Join(initial, ","), "existing", c.token)
	c.mu.Lock()
	c.slots[slot] = m
	c.members[slot] = m.etcdMember
	c.mu.Unlock()
	for _, row := range c.clientProxies {
		row[slot].setTarget(m.clientAddr())
	}
	if err := m.start(); err != nil {
		return nil, err
	}
	if err := c.waitHealthy(ctx, m.etcdMember); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", m.id, err, m.tail(20))
	}
	return m, nil
}

// ---------------------------------------------------------------- load

// nemOwner is one subject: its token and the ids its workers believe
// exist (shared, so that two workers may delete one todo at once).
type nemOwner struct {
	name, token string
	mu          sync.Mutex
	ids         []string
}

func (ow *nemOwner) pick(rng interface{ IntN(int) int }) (string, int) {
	ow.mu.Lock()
	defer ow.mu.Unlock()
	if len(ow.ids) == 0 {
		return "", 0
	}
	return ow.ids[rng.IntN(len(ow.ids))], len(ow.ids)
}

func (ow *nemOwner) size() int {
	ow.mu.Lock()
	defer ow.mu.Unlock()
	return len(ow.ids)
}

func (ow *nemOwner) add(ids ...string) {
	ow.mu.Lock()
	defer ow.mu.Unlock()
	for _, id := range ids {
		if !slices.Contains(ow.ids, id) {
			ow.ids = append(ow.ids, id)
		}
	}
}

func (ow *nemOwner) remove(id string) {
	ow.mu.Lock()
	defer ow.mu.Unlock()
	ow.ids = slices.DeleteFunc(ow.ids, func(x string) bool { return x == id })
}

// nemWorker creates, deletes and lists one owner's todos, each operation
// through an instance picked at random.
type nemWorker struct {
	name  string
	owner *nemOwner
	c     *mcpClient
	gws   []*gatewayInst
	h     *history
	rng   interface {
		IntN(int) int
		Float64() float64
	}
	seq int
}

func (w *nemWorker) run(ctx context.Context) {
	for ctx.Err() == nil {
		w.step(context.WithoutCancel(ctx))
		select {
		case <-ctx.Done():
		case <-time.After(nemPause):
		}
	}
}

func (w *nemWorker) newOp(g *gatewayInst) *op {
	return &op{client: w.name, subject: w.owner.name, via: g.name, served: []string{g.name}}
}

func (w *nemWorker) step(ctx context.Context) {
	g := w.gws[w.rng.IntN(len(w.gws))]
	r := w.rng.Float64()
	id, n := w.owner.pick(w.rng)
	switch {
	case n > 0 && r < 0.06:
		// The same todo deleted through two instances at once: exactly
		// one may succeed.
		g2 := w.gws[(slices.Index(w.gws, g)+1+w.rng.IntN(len(w.gws)-1))%len(w.gws)]
		a, b := w.newOp(g), w.newOp(g2)
		a.id, b.id = id, id
		var wg sync.WaitGroup
		wg.Go(func() { w.c.deleteTodo(ctx, a, g.addr, w.owner.token) })
		wg.Go(func() { w.c.deleteTodo(ctx, b, g2.addr, w.owner.token) })
		wg.Wait()
		w.h.add(a)
		w.h.add(b)
		if a.outcome != failed || b.outcome != failed {
			w.owner.remove(id)
		}
	case n >= 25 || (n > 0 && r < 0.35):
		o := w.newOp(g)
		o.id = id
		w.c.deleteTodo(ctx, o, g.addr, w.owner.token)
		w.h.add(o)
		if o.outcome != failed {
			w.owner.remove(id)
		}
	case r < 0.75:
		w.seq++
		o := w.newOp(g)
		o.content = fmt.Sprintf("%s-%d", w.name, w.seq)
		w.c.create(ctx, o, g.addr, w.owner.token)
		w.h.add(o)
		if o.outcome == ok {
			w.owner.add(o.id)
		}
	default:
		o := w.newOp(g)
		o.kind = opListOwn
		w.c.list(ctx, o, g.addr, w.owner.token, 1000, 1)
		w.h.add(o)
		// Todos of failed creates that happened become known here (and
		// todos a concurrent delete removed are deleted again: not-found).
		if o.outcome == ok && w.owner.size() < 25 {
			var ids []string
			for _, td := range o.todos {
				ids = append(ids, td.ID)
			}
			w.owner.add(ids...)
		}
	}
}

// probeInstance starts a create through g every nemProbeEvery, each on its
// own goroutine, until ctx ends.
func probeInstance(ctx context.Context, c *mcpClient, g *gatewayInst, token string, h *history) {
	var each sync.WaitGroup
	defer each.Wait()
	tick := time.NewTicker(nemProbeEvery)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		each.Go(func() {
			o := &op{client: "probe-" + g.name, subject: "probe-" + g.name, via: g.name, served: []string{g.name}, content: fmt.Sprintf("probe-%s-%d", g.name, n)}
			c.create(context.WithoutCancel(ctx), o, g.addr, token)
			h.add(o)
		})
	}
}

// finalReads lists an owner's todos through every instance once the
// faults are over (a few tries each), into the history.
func finalReads(t *testing.T, c *mcpClient, gws []*gatewayInst, owner, token string, h *history) {
	t.Helper()
	for _, g := range gws {
		var o *op
		for range 5 {
			o = &op{client: "final", subject: owner, kind: opListOwn, via: g.name, served: []string{g.name}}
			c.list(context.Background(), o, g.addr, token, 1000, 1)
			h.add(o)
			if o.outcome == ok && o.complete {
				break
			}
			time.Sleep(time.Second)
		}
		if o.outcome != ok || !o.complete {
			t.Errorf("the final list of %s through %s: %v (complete %v)", owner, g.name, o, o.complete)
		}
	}
}

// ---------------------------------------------------------------- figures

// fault is one fault of the schedule.
type fault struct {
	name    string
	gateway string // the instance it concerns, "" for a fault of etcd
	start   time.Time
	heal    time.Time // healed, restarted or replaced
	settled time.Time // the end of its window: the next fault comes after
	// For a fault of the leader: the leader the others elected and how
	// long after the fault.
	newLeader string
	elected   time.Duration
}

func (ft *fault) electionNote() string {
	if ft.newLeader == "" {
		return fmt.Sprintf("no new leader among the others within %s", ft.elected.Round(time.Millisecond))
	}
	return fmt.Sprintf("the others elected %s after %s", ft.newLeader, ft.elected.Round(time.Millisecond))
}

// servedDuring counts the operations through gw that began in [from, to]
// and returns those that succeeded before to.
func servedDuring(ops []*op, gw string, from, to time.Time) (int, []*op) {
	n := 0
	var okOps []*op
	for _, o := range ops {
		if o.via != gw || o.start.Before(from) || o.start.After(to) {
			continue
		}
		n++
		if o.outcome != failed && o.end.Before(to) {
			okOps = append(okOps, o)
		}
	}
	return n, okOps
}

// writeFigures are how writes fared after a fault.
type writeFigures struct {
	// backAfterAny: from the fault to the end of the first acknowledged
	// create (any instance) begun at or after it.
	backAny      bool
	backAfterAny time.Duration
	// longestGap: the longest time in the fault's window without an
	// acknowledged create completing (any instance): writes unavailable.
	longestGap time.Duration
	// For a fault of one instance: from the heal to the first
	// acknowledged create through it begun at or after the heal, and the
	// longest gap through it.
	backGateway   bool
	backAfterHeal time.Duration
	gatewayGap    time.Duration
}

func writesAfter(ops []*op, ft *fault) writeFigures {
	var w writeFigures
	var ends, gwEnds []time.Time
	for _, o := range ops {
		if o.kind != opCreate || o.outcome != ok {
			continue
		}
		if !o.start.Before(ft.start) && (!w.backAny || o.end.Sub(ft.start) < w.backAfterAny) {
			w.backAny, w.backAfterAny = true, o.end.Sub(ft.start)
		}
		if ft.gateway != "" && o.via == ft.gateway && !o.start.Before(ft.heal) && (!w.backGateway || o.end.Sub(ft.heal) < w.backAfterHeal) {
			w.backGateway, w.backAfterHeal = true, o.end.Sub(ft.heal)
		}
		if !o.end.Before(ft.start) && !o.end.After(ft.settled) {
			ends = append(ends, o.end)
			if o.via == ft.gateway {
				gwEnds = append(gwEnds, o.end)
			}
		}
	}
	gap := func(ends []time.Time) time.Duration {
		slices.SortFunc(ends, time.Time.Compare)
		prev, g := ft.start, time.Duration(0)
		for _, e := range append(ends, ft.settled) {
			g = max(g, e.Sub(prev))
			prev = e
		}
		return g
	}
	w.longestGap = gap(ends)
	if ft.gateway != "" {
		w.gatewayGap = gap(gwEnds)
	}
	return w
}

// faultTable is, per fault, the latency of the operations begun while it
// lasted (fault to heal) and how writes fared.
func faultTable(faults []*fault, ops []*op) string {
	var b strings.Builder
	for i, ft := range faults {
		var lat []time.Duration
		var nOK, nErr int
		for _, o := range ops {
			if o.client == "final" || o.start.Before(ft.start) || o.start.After(ft.heal) {
				continue
			}
			lat = append(lat, o.end.Sub(o.start))
			if o.outcome == failed {
				nErr++
			} else {
				nOK++
			}
		}
		slices.Sort(lat)
		pct := func(p float64) time.Duration {
			if len(lat) == 0 {
				return 0
			}
			return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
		}
		w := writesAfter(ops, ft)
		fmt.Fprintf(&b, "  %d. %s (%s until healed, window %s)\n", i+1, ft.name,
			ft.heal.Sub(ft.start).Round(time.Millisecond), ft.settled.Sub(ft.start).Round(time.Millisecond))
		fmt.Fprintf(&b, "     operations begun until healed: %d (%d ok, %d errors); latency p50 %s, p99 %s, max %s\n",
			len(lat), nOK, nErr, pct(0.5), pct(0.99), pct(1))
		back := "never"
		if w.backAny {
			back = w.backAfterAny.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "     writes: first acknowledged create begun after the fault ended %s after it; longest time without an acknowledged create %s",
			back, w.longestGap.Round(time.Millisecond))
		if ft.gateway != "" {
			gwBack := "never"
			if w.backGateway {
				gwBack = w.backAfterHeal.Round(time.Millisecond).String()
			}
			fmt.Fprintf(&b, "; through %s: unavailable for %s, back %s after the heal", ft.gateway, w.gatewayGap.Round(time.Millisecond), gwBack)
		}
		if ft.newLeader != "" || strings.Contains(ft.name, "leader") {
			fmt.Fprintf(&b, "; %s", ft.electionNote())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// faultAnnotations mark the fault windows in porcupine's visualization.
func faultAnnotations(faults []*fault, base time.Time) []porcupine.Annotation {
	var out []porcupine.Annotation
	for i, ft := range faults {
		out = append(out, porcupine.Annotation{
			Tag: "nemesis", Start: ft.start.Sub(base).Nanoseconds(), End: ft.heal.Sub(base).Nanoseconds(),
			Description: fmt.Sprintf("%d. %s", i+1, ft.name), BackgroundColor: "#fde2e2",
		})
	}
	return out
}

// keepArtifacts makes sure a failed run's history and visualization
// outlive the test: they already do under CLUSTER_TEST_DIR; otherwise they
// are copied to the test's artifact directory when go test runs with
// -artifacts, else to a new directory under the system's temporary one
// that is not removed. It returns the directory.
func keepArtifacts(t *testing.T, keep string, paths ...string) string {
	if keep != "" {
		return keep
	}
	var dst string
	if fl := flag.Lookup("test.artifacts"); fl != nil && fl.Value.String() == "true" {
		dst = t.ArtifactDir()
	} else {
		d, err := os.MkdirTemp("", "todo-gateway-nemesis-")
		if err != nil {
			t.Errorf("keeping the history: %v", err)
			return "(not kept)"
		}
		dst = d
	}
	for _, p := range paths {
		if err := copyFile(p, filepath.Join(dst, filepath.Base(p))); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("keeping %s: %v", p, err)
		}
	}
	return dst
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tailExcept is the last n lines of the process's log that contain none
// of skip.
func (p *proc) tailExcept(n int, skip ...string) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !slices.ContainsFunc(skip, func(s string) bool { return strings.Contains(l, s) }) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
