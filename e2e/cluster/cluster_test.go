// Package cluster tests the gateway as a cluster of real processes: three
// etcd members and three gateway instances on 127.0.0.1, behind a
// round-robin proxy of the test's own, with tokens from an in-process test
// issuer. Clients create, list and delete through the proxy while a bounded
// schedule SIGKILLs the etcd leader, SIGKILLs a gateway and restarts it,
// and SIGTERMs another (drain). Every operation and its answer is recorded;
// the history is then checked: no acknowledged write lost or undone, no
// todo from nowhere, nothing listed twice, no failed request on the
// draining instance, writes back within 3s of the leader kill, a todo
// created through one instance listed through another at once.
//
// It runs when TODO_GATEWAY_BIN (a built ./cmd/todo-gateway) and ETCD_BIN
// (etcd 3.4 or newer) are set: `make cluster-test` builds the gateway and
// sets both. CLUSTER_TEST_DIR keeps the processes' logs and data in that
// directory instead of a temporary one.
package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

const (
	tenantID = "acme"
	// drainPeriod is the gateways' shutdown.drain: /readyz answers 503
	// this long after SIGTERM while requests are still served.
	drainPeriod = 2 * time.Second
	drainGrace  = 10 * time.Second
	// The load: workers per subject, the pause between two of a worker's
	// operations (the machine has 2 cores for 3 etcd members, 3 gateways
	// and this process), and a bound on each worker's operations.
	workersPerSubject = 2
	workerPause       = 15 * time.Millisecond
	maxOpsPerWorker   = 20000
	// maxSchedule bounds the fault schedule, load included.
	maxSchedule = 3 * time.Minute
	// maxRecovery is how soon writes must succeed again after the etcd
	// leader is killed.
	maxRecovery = 3 * time.Second
)

var subjects = []string{"alice", "bob", "carol", "dave"}

func TestCluster(t *testing.T) {
	gwBin, etcdBin := os.Getenv("TODO_GATEWAY_BIN"), os.Getenv("ETCD_BIN")
	if gwBin == "" || etcdBin == "" {
		t.Skip("the cluster test runs real processes: set TODO_GATEWAY_BIN to a gateway binary " +
			"(go build -o bin/cluster/todo-gateway ./cmd/todo-gateway) and ETCD_BIN to etcd 3.4+ " +
			"(Debian: apt-get install etcd-server; ETCD_BIN=$(command -v etcd)); `make cluster-test` does both")
	}
	for _, bin := range []string{gwBin, etcdBin} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
	}
	began := time.Now()
	dir := t.TempDir()
	if d := os.Getenv("CLUSTER_TEST_DIR"); d != "" {
		dir = filepath.Join(d, time.Now().Format("20060102-150405"))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Logf("logs and data in %s", dir)
	}
	var ps ports

	// --- set-up: etcd, issuer, proxy, gateways
	etcd := startEtcd(t, etcdBin, dir, 3, &ps)
	iss := providertest.New(t)
	px := newProxy(t)
	resource := px.URL() + "/" + tenantID
	prefix := fmt.Sprintf("cluster-test-%d/", time.Now().UnixNano())
	var gws []*gatewayInst
	var bes []*backend
	for i := range 3 {
		g := newGateway(t, gwBin, dir, i, &ps, etcd.endpoints(), prefix, iss.Issuer(), resource)
		gws = append(gws, g)
		bes = append(bes, px.add(g.name, g.addr, g.adminAddr))
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, g := range gws {
			t.Logf("--- %s log (last lines):\n%s", g.name, g.tail(25))
		}
		for _, m := range etcd.members {
			t.Logf("--- %s log (last lines):\n%s", m.name, m.tail(10))
		}
	})
	startBehindProxy(t, px, gws)

	mint := func(sub, scopes string) string { return iss.Mint(iss.Claims(sub, resource, scopes)) }
	tok := map[string]tokens{}
	for _, s := range append(slices.Clone(subjects), "probe", "xcheck") {
		tok[s] = tokens{admin: mint(s, "create:todos read:todos delete:todos"), user: mint(s, "create:todos")}
	}
	client := &mcpClient{
		http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
		host: px.Host(), path: "/" + tenantID,
	}
	// A first write through each instance proves the chain (token,
	// discovery, etcd) before any fault.
	h := &history{}
	for _, g := range gws {
		o := &op{client: "setup", subject: "probe", via: g.name, served: []string{g.name}, content: "setup-" + g.name}
		client.create(context.Background(), o, g.addr, tok["probe"].admin)
		h.add(o)
		if o.outcome != ok {
			t.Fatalf("a first create through %s: %v", g.name, o)
		}
	}
	setup := time.Since(began)

	// --- the load
	load := newLoad()
	defer load.stop()
	for i, s := range subjects {
		for k := range workersPerSubject {
			w := &worker{
				name: fmt.Sprintf("%s-%d", s, k+1), subject: s, tok: tok[s], c: client, addr: px.Host(), h: h,
				rng: newRand(uint64(i*10 + k)), pause: workerPause, maxOps: maxOpsPerWorker,
			}
			load.Go(func() { w.run(load.ctx) })
		}
	}
	var xc crossChecks
	load.Go(func() { xc.run(load.ctx, client, gws, bes, tok["xcheck"], h) })

	// --- the fault schedule
	scheduleStart := time.Now()
	var timeline []string
	mark := func(format string, args ...any) {
		s := fmt.Sprintf("%7.3fs  ", time.Since(scheduleStart).Seconds()) + fmt.Sprintf(format, args...)
		timeline = append(timeline, s)
		t.Log(s)
	}
	pause := func(d time.Duration) { time.Sleep(d) }

	pause(4 * time.Second)
	// 1. SIGKILL the etcd leader; writes must come back within 3s; the
	// member is started again later on its data directory.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	leader, err := etcd.leader(ctx)
	cancel()
	if err != nil {
		t.Fatalf("finding the etcd leader: %v", err)
	}
	leaderPID := leader.pid()
	killAt := time.Now()
	if err := leader.kill(); err != nil {
		t.Fatalf("SIGKILL %s: %v", leader.name, err)
	}
	mark("SIGKILL etcd leader %s (pid %d)", leader.name, leaderPID)
	var probes sync.WaitGroup
	probeWrites(&probes, client, px.Host(), tok["probe"].admin, h, 100*time.Millisecond, 8*time.Second)
	pause(8 * time.Second)
	probes.Wait()
	if err := leader.start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	err = etcd.waitHealthy(ctx, leader)
	cancel()
	if err != nil {
		t.Fatalf("%s after its restart: %v\n%s", leader.name, err, leader.tail(20))
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	newLeader, err := etcd.leader(ctx)
	cancel()
	leaderNow := "unknown: " + fmt.Sprint(err)
	if err == nil {
		leaderNow = newLeader.name
	}
	mark("%s restarted (pid %d) and healthy; leader now %s", leader.name, leader.pid(), leaderNow)

	pause(2 * time.Second)
	// 2. SIGKILL a gateway, start it again.
	killed := gws[0]
	killedPID := killed.pid()
	if err := killed.kill(); err != nil {
		t.Fatalf("SIGKILL %s: %v", killed.name, err)
	}
	mark("SIGKILL gateway %s (pid %d)", killed.name, killedPID)
	pause(2 * time.Second)
	if err := killed.startAndWait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, killed.name+" back in rotation", bes[0].ready.Load)
	mark("%s restarted (pid %d) and back in rotation", killed.name, killed.pid())

	pause(3 * time.Second)
	// 3. SIGTERM a gateway: it drains (503 on /readyz, still serving),
	// then exits 0; the proxy takes it out of rotation on the 503.
	drained, db := gws[1], bes[1]
	drainedPID := drained.pid()
	db.terminating.Store(true)
	termAt := time.Now()
	if err := drained.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", drained.name, err)
	}
	mark("SIGTERM gateway %s (pid %d)", drained.name, drainedPID)
	// While /readyz says 503 the instance must still serve: requests sent
	// to it directly until shortly before the drain period ends must all
	// succeed.
	var drainDirect, drainDirectFailed atomic.Int64
	var drainProbe sync.WaitGroup
	drainProbe.Go(func() {
		for n := 0; time.Since(termAt) < drainPeriod-300*time.Millisecond; n++ {
			o := &op{client: "drain", subject: "probe", via: drained.name, served: []string{drained.name}}
			if n%2 == 0 {
				o.content = fmt.Sprintf("drain-%d", n)
				client.create(context.Background(), o, drained.addr, tok["probe"].admin)
			} else {
				o.kind = opListOwn
				client.list(context.Background(), o, drained.addr, tok["probe"].user, 1000, 1)
			}
			h.add(o)
			drainDirect.Add(1)
			if o.outcome != ok {
				drainDirectFailed.Add(1)
				db.noteDrainFailure("direct: " + o.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	var outOfRotation atomic.Int64
	go func() {
		for time.Since(termAt) < drainPeriod+drainGrace {
			if !db.ready.Load() {
				outOfRotation.Store(int64(time.Since(termAt)))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	exitErr := drained.wait(drainPeriod + drainGrace + 5*time.Second)
	drainTook := time.Since(termAt)
	drainProbe.Wait()
	mark("%s exited after %s: %v (out of rotation after %s)", drained.name, drainTook.Round(time.Millisecond),
		exitStatus(exitErr), time.Duration(outOfRotation.Load()).Round(time.Millisecond))
	if exitErr != nil {
		t.Errorf("%s after SIGTERM: %v, want exit status 0", drained.name, exitErr)
		if strings.Contains(exitErr.Error(), "still running") {
			drained.kill()
		}
	}
	db.terminating.Store(false)
	if err := drained.startAndWait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, drained.name+" back in rotation", db.ready.Load)
	mark("%s restarted (pid %d) and back in rotation", drained.name, drained.pid())

	pause(3 * time.Second)
	load.stop()
	mark("load stopped")
	schedule := time.Since(scheduleStart)
	if schedule > maxSchedule {
		t.Errorf("the schedule took %s, more than %s", schedule.Round(time.Second), maxSchedule)
	}

	// --- the final state, read through the proxy once every fault is over
	checkStart := time.Now()
	final := finalState{owners: map[string][]todo{}}
	final.tenant = readAll(t, client, px.Host(), tok["alice"].admin, 1000, 50)
	for _, s := range append(slices.Clone(subjects), "probe", "xcheck") {
		final.owners[s] = readAll(t, client, px.Host(), tok[s].user, 100, 200)
	}
	ops := h.all()
	prob := checkHistory(ops, final)
	fig := summarize(ops)
	recovery, recovered, maxGap, gapAt := writeOutage(ops, killAt, scheduleStart.Add(time.Second), scheduleStart.Add(schedule-time.Second))

	if err := dump(filepath.Join(dir, "history.jsonl"), ops); err != nil {
		t.Errorf("writing the history: %v", err)
	}
	ambC, ambCHappened, ambD, ambDHappened := ambiguity(ops, final)
	elected, electedName, wasElected := etcd.electedAfter(killAt)

	// --- figures
	t.Logf("duration: set-up %s, schedule %s (load included), check %s, total %s",
		setup.Round(time.Millisecond), schedule.Round(time.Millisecond), time.Since(checkStart).Round(time.Millisecond),
		time.Since(began).Round(time.Millisecond))
	t.Logf("timeline:\n  %s", strings.Join(timeline, "\n  "))
	t.Logf("operations: %d (%d workers, %d subjects, pause %s); acknowledged creates %d, deletes %d; final todos %d",
		len(ops), len(subjects)*workersPerSubject, len(subjects), workerPause, fig.ackCreate, fig.ackDelete, len(final.tenant))
	t.Logf("by kind and outcome:\n%s", top(fig.byKind, 20))
	t.Logf("errors (an operation that got one may have happened or not):\n%s", top(fig.errors, 12))
	t.Logf("creates that got an error: %d, of which %d had happened; deletes that got an error (and no later success): %d, of which %d had happened",
		ambC, ambCHappened, ambD, ambDHappened)
	t.Logf("answered by instance: %v", fig.served)
	for _, b := range bes {
		t.Logf("proxy → %s: %d requests, %d failed", b.name, b.served.Load(), b.failed.Load())
	}
	election := "not found in the logs"
	if wasElected {
		election = fmt.Sprintf("%s after the kill (%s)", elected.Sub(killAt).Round(time.Millisecond), electedName)
	}
	t.Logf("etcd leader kill: new leader elected %s; first acknowledged write started after the kill ended %s after it (limit %s); "+
		"largest gap between acknowledged writes %s (at %.3fs)",
		election, recovery.Round(time.Millisecond), maxRecovery, maxGap.Round(time.Millisecond), gapAt.Sub(scheduleStart).Seconds())
	t.Logf("drain of %s: the proxy sent %d requests after SIGTERM or had them in flight, %d failed; /readyz 503 seen %d times; out of rotation after %s; "+
		"%d requests sent directly during the drain period, %d failed; exit after %s",
		drained.name, db.drainSent.Load(), db.drainFailed.Load()-drainDirectFailed.Load(), db.drainNotReady.Load(),
		time.Duration(outOfRotation.Load()).Round(time.Millisecond), drainDirect.Load(), drainDirectFailed.Load(), drainTook.Round(time.Millisecond))
	t.Logf("cross-instance: %d creates through one instance listed through another, %d missing; %d rounds skipped (an error)",
		xc.checks.Load(), xc.misses.Load(), xc.skipped.Load())
	for _, g := range gws {
		n5, nErr, ex := g.logFigures()
		t.Logf("%s log: %d access lines with a 5xx status, %d ERROR lines", g.name, n5, nErr)
		if n5 > 0 {
			t.Errorf("%s answered 5xx %d times; first lines:\n%s", g.name, n5, strings.Join(ex, "\n"))
		} else if nErr > 0 {
			t.Logf("  first ERROR lines:\n  %s", strings.Join(ex, "\n  "))
		}
	}

	// --- verdicts
	if n := prob.total(); n > 0 {
		t.Errorf("the history has %d problems:\n%s", n, prob)
	}
	switch {
	case !recovered:
		t.Errorf("no write succeeded after the etcd leader kill")
	case recovery > maxRecovery:
		t.Errorf("writes came back %s after the etcd leader kill, want within %s", recovery.Round(time.Millisecond), maxRecovery)
	}
	if n := db.drainFailed.Load(); n > 0 {
		db.mu.Lock()
		t.Errorf("%d failed requests on the draining instance %s:\n  %s", n, drained.name, strings.Join(db.failures, "\n  "))
		db.mu.Unlock()
	}
	if db.drainNotReady.Load() == 0 {
		t.Errorf("%s never answered 503 on /readyz after SIGTERM: a load balancer cannot see the drain", drained.name)
	}
	if n := xc.misses.Load(); n > 0 {
		xc.mu.Lock()
		t.Errorf("%d todos created through one instance were not listed through another right after:\n  %s", n, strings.Join(xc.details, "\n  "))
		xc.mu.Unlock()
	}
	if xc.checks.Load() < 20 {
		t.Errorf("only %d cross-instance checks ran, want at least 20", xc.checks.Load())
	}
	if fig.ackCreate < 200 || fig.ackDelete < 50 || fig.byKind["list ok"]+fig.byKind["list-own ok"] < 50 {
		t.Errorf("too little load to prove anything: %d creates, %d deletes, %d lists acknowledged",
			fig.ackCreate, fig.ackDelete, fig.byKind["list ok"]+fig.byKind["list-own ok"])
	}
}

// probeWrites sends a create through the proxy every interval for window,
// each on its own goroutine, so that the time writes take to come back
// after a fault is measured even while every worker waits on a slow
// request.
func probeWrites(wg *sync.WaitGroup, c *mcpClient, addr, token string, h *history, interval, window time.Duration) {
	n := int(window / interval)
	wg.Go(func() {
		var each sync.WaitGroup
		for i := range n {
			each.Go(func() {
				o := &op{client: "probe", subject: "probe", via: "proxy", content: fmt.Sprintf("probe-%d", i)}
				c.create(context.Background(), o, addr, token)
				h.add(o)
			})
			time.Sleep(interval)
		}
		each.Wait()
	})
}

// crossChecks creates a todo through one instance directly and lists it
// through another directly, again and again.
type crossChecks struct {
	checks, misses, skipped atomic.Int64
	mu                      sync.Mutex
	details                 []string
}

func (x *crossChecks) run(ctx context.Context, c *mcpClient, gws []*gatewayInst, bes []*backend, tok tokens, h *history) {
	rng := newRand(99)
	for n := 0; ctx.Err() == nil && n < 5000; n++ {
		time.Sleep(100 * time.Millisecond)
		var up []int
		for i, b := range bes {
			if b.ready.Load() && !b.terminating.Load() {
				up = append(up, i)
			}
		}
		if len(up) < 2 {
			continue
		}
		i := up[rng.IntN(len(up))]
		j := up[rng.IntN(len(up))]
		for j == i {
			j = up[rng.IntN(len(up))]
		}
		bg := context.Background()
		cr := &op{client: "xcheck", subject: "xcheck", via: gws[i].name, served: []string{gws[i].name}, content: fmt.Sprintf("xcheck-%d", n)}
		c.create(bg, cr, gws[i].addr, tok.admin)
		h.add(cr)
		if cr.outcome != ok {
			x.skipped.Add(1)
			continue
		}
		ls := &op{client: "xcheck", subject: "xcheck", kind: opListOwn, via: gws[j].name, served: []string{gws[j].name}}
		c.list(bg, ls, gws[j].addr, tok.user, 1000, 1)
		h.add(ls)
		if ls.outcome != ok {
			x.skipped.Add(1)
			continue
		}
		x.checks.Add(1)
		if !slices.ContainsFunc(ls.todos, func(td todo) bool { return td.ID == cr.id }) {
			x.misses.Add(1)
			x.mu.Lock()
			if len(x.details) < 10 {
				x.details = append(x.details, fmt.Sprintf("%v; then %v listed %d todos without it", cr, ls, len(ls.todos)))
			}
			x.mu.Unlock()
		}
		del := &op{client: "xcheck", subject: "xcheck", via: gws[j].name, served: []string{gws[j].name}, id: cr.id}
		c.deleteTodo(bg, del, gws[j].addr, tok.user)
		h.add(del)
	}
}

// readAll reads a whole list through the proxy once the faults are over,
// trying a few times if a read fails.
func readAll(t *testing.T, c *mcpClient, addr, token string, limit, maxPages int) []todo {
	t.Helper()
	var last *op
	for range 5 {
		o := &op{client: "final", via: "proxy"}
		c.list(context.Background(), o, addr, token, limit, maxPages)
		if o.outcome == ok && o.complete {
			return o.todos
		}
		last = o
		time.Sleep(time.Second)
	}
	t.Fatalf("reading the final state: %v", last)
	return nil
}

// waitFor polls cond every 50ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// startBehindProxy starts every gateway, then has the proxy follow their
// /readyz until all of them are in rotation; the proxy's watch ends with
// the test.
func startBehindProxy(t *testing.T, px *proxy, gws []*gatewayInst) {
	t.Helper()
	for _, g := range gws {
		if err := g.startAndWait(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	t.Cleanup(stopWatch)
	px.watch(watchCtx)
	waitFor(t, 20*time.Second, "every instance ready behind the proxy", func() bool { return px.readyCount() == len(gws) })
}
