package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestEtcdCheckCost measures what one revision check of the etcd read
// cache costs the cluster by itself: the read the cache makes (a
// linearizable keys-only Get of one key, sent to the leader's endpoint),
// at a fixed rate on three members and nothing else, against their CPU
// when idle. It separates etcd's price for a linearizable read from what
// sharing two cores with wrk and the gateways adds in TestWrk.
// TODO_GATEWAY_ETCD_COST=1 and ETCD_BIN (the etcd server) run it; make
// bench does, after TestWrk. TODO_GATEWAY_ETCD_COST_RATE sets the checks
// a second (default 500, the most the default check_interval of 2 ms
// allows one instance); it takes about 20 s. Only errors fail it.
func TestEtcdCheckCost(t *testing.T) {
	if os.Getenv("TODO_GATEWAY_ETCD_COST") == "" {
		t.Skip("set TODO_GATEWAY_ETCD_COST=1 (and ETCD_BIN) to measure a revision check's cost")
	}
	bin := os.Getenv("ETCD_BIN")
	if bin == "" {
		t.Skip("ETCD_BIN names no etcd server")
	}
	rate := envInt(t, "TODO_GATEWAY_ETCD_COST_RATE", 500)
	if rate <= 0 {
		t.Fatalf("TODO_GATEWAY_ETCD_COST_RATE=%d: want checks a second, at least 1", rate)
	}
	members := startEtcd(t, bin, t.TempDir(), 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: members.endpoints, Logger: zap.NewNop(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "w", ""); err != nil {
		t.Fatal(err)
	}
	leader := ""
	for _, ep := range members.endpoints {
		if st, err := cli.Status(ctx, ep); err == nil && st.Header.MemberId == st.Leader {
			leader = ep
		}
	}
	if leader == "" {
		t.Fatal("no member says it leads")
	}
	onLeader, err := clientv3.New(clientv3.Config{Endpoints: []string{leader}, Logger: zap.NewNop(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer onLeader.Close()
	if _, err := onLeader.Get(ctx, "w", clientv3.WithKeysOnly()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the start-up settles

	const idleFor, checkFor = 5 * time.Second, 10 * time.Second
	cpu0, start := members.cpu(t), time.Now()
	time.Sleep(idleFor)
	idle := float64(members.cpu(t)-cpu0) / float64(time.Since(start))

	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var (
		n         int
		roundTrip time.Duration
	)
	cpu0, start = members.cpu(t), time.Now()
	for time.Since(start) < checkFor {
		<-tick.C
		t0 := time.Now()
		if _, err := onLeader.Get(ctx, "w", clientv3.WithKeysOnly()); err != nil {
			t.Fatalf("check %d: %v", n+1, err)
		}
		roundTrip += time.Since(t0)
		n++
	}
	elapsed := time.Since(start)
	busy := float64(members.cpu(t)-cpu0) / float64(elapsed)
	perCheck := time.Duration((busy - idle) * float64(elapsed) / float64(n))
	fmt.Printf("etcd %s, 3 members alone: idle %.3f cores; %d checks in %v (%.0f a second): %.3f cores, %.0f us of the members' CPU per check beyond idle, round trip %.0f us on average\n",
		etcdVersion(t, bin), idle, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), busy, float64(perCheck.Microseconds()), float64(roundTrip.Microseconds())/float64(n))
}

// etcdVersion is the server's version as its --version says it.
func etcdVersion(t *testing.T, bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(strings.TrimPrefix(first, "etcd Version:"))
}
