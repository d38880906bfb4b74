package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
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
// sharing two cores with wrk and the gateways adds in TestWrk. Beside it,
// the same Get made serializable (answered by the leader alone, no read
// index round through the followers) gives the part of that price any
// request to etcd pays on this machine; and etcd's own time handling each
// (its grpc_server_handling_seconds, --metrics extensive) tells its share
// of the round trip from that of the connection and the processes waking.
// TODO_GATEWAY_ETCD_COST=1 and ETCD_BIN (the etcd server) run it; make
// bench does, after TestWrk. TODO_GATEWAY_ETCD_COST_RATE sets the checks
// a second (default 500, the most the default check_interval of 2 ms
// allows one instance); it takes about 30 s. Only errors fail it.
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
	members := startEtcd(t, bin, t.TempDir(), 3, "--metrics", "extensive")
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
	fmt.Printf("etcd %s, 3 members alone: idle %.3f cores\n", etcdVersion(t, bin), idle)

	for _, read := range []struct {
		name string
		opts []clientv3.OpOption
	}{
		{"linearizable keys-only Get (the check)", []clientv3.OpOption{clientv3.WithKeysOnly()}},
		{"serializable keys-only Get (no read index)", []clientv3.OpOption{clientv3.WithKeysOnly(), clientv3.WithSerializable()}},
	} {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		var (
			n         int
			roundTrip time.Duration
		)
		handled0, handledN0 := rangeHandling(t, leader)
		cpu0, start := members.cpu(t), time.Now()
		for time.Since(start) < checkFor {
			<-tick.C
			t0 := time.Now()
			if _, err := onLeader.Get(ctx, "w", read.opts...); err != nil {
				t.Fatalf("%s %d: %v", read.name, n+1, err)
			}
			roundTrip += time.Since(t0)
			n++
		}
		tick.Stop()
		elapsed := time.Since(start)
		busy := float64(members.cpu(t)-cpu0) / float64(elapsed)
		handled, handledN := rangeHandling(t, leader)
		perCall := time.Duration((busy - idle) * float64(elapsed) / float64(n))
		fmt.Printf("%s: %d in %v (%.0f a second): %.3f cores, %.0f us of the members' CPU each beyond idle; round trip %.0f us on average, of which etcd handling it %.0f us\n",
			read.name, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), busy, float64(perCall.Microseconds()),
			float64(roundTrip.Microseconds())/float64(n), 1e6*(handled-handled0)/(handledN-handledN0))
	}
}

// rangeHandlingLine is a line of etcd's --metrics extensive that sums or
// counts the time its Range handler took.
var rangeHandlingLine = regexp.MustCompile(`^grpc_server_handling_seconds_(sum|count)\{[^}]*grpc_method="Range"[^}]*\} (\S+)$`)

// rangeHandling is the seconds the member at endpoint has spent handling
// Range requests, and their number.
func rangeHandling(t *testing.T, endpoint string) (seconds, count float64) {
	t.Helper()
	resp, err := client.Get(endpoint + "/metrics")
	if err != nil {
		t.Fatalf("etcd metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := rangeHandlingLine.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("etcd metrics: %q: %v", sc.Text(), err)
			}
			if m[1] == "sum" {
				seconds = v
			} else {
				count = v
			}
		}
	}
	if count == 0 {
		t.Fatalf("etcd at %s reports no Range handling time (--metrics extensive)", endpoint)
	}
	return seconds, count
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
