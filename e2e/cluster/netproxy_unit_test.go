package cluster

import (
	"bufio"
	"net"
	"os"
	"testing"
	"time"
)

// The blackhole proxy holds a cut link's traffic both ways without closing
// either connection, delivers what it held when the link heals, and names
// the process that dialed it. It runs without etcd or a gateway.
func TestBlackholeProxy(t *testing.T) {
	// An echo server behind the proxy.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					c.Write(append(sc.Bytes(), '\n'))
				}
			}()
		}
	}()
	f := newFabric()
	t.Cleanup(f.close)
	me := os.Getpid()
	var named []string
	p := newTCPProxy(t, f, "m1", ln.Addr().String(), func(c net.Conn) string {
		if dialerPID(c, []int{me}) == me {
			named = append(named, "m2")
			return "m2"
		}
		named = append(named, "")
		return ""
	})
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	echo := func(msg string, within time.Duration) (string, error) {
		c.SetDeadline(time.Now().Add(within))
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			return "", err
		}
		return r.ReadString('\n')
	}
	if got, err := echo("one", 2*time.Second); err != nil || got != "one\n" {
		t.Fatalf("through an open link: %q, %v", got, err)
	}
	if len(named) != 1 || named[0] != "m2" {
		t.Fatalf("the dialer was named %q, want m2 (this process)", named)
	}

	// Cut: nothing comes back, and the connection stays open.
	f.setCut(true, "m1", "m2")
	if got, err := echo("two", 500*time.Millisecond); err == nil {
		t.Fatalf("an answer %q across a cut link", got)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("across a cut link: %v, want a timeout (the connection open)", err)
	}
	// Another link's cut changes nothing for this one … but a new
	// connection is held too.
	c2, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(300 * time.Millisecond))
	c2.Write([]byte("x\n"))
	if _, err := bufio.NewReader(c2).ReadString('\n'); err == nil {
		t.Fatal("a new connection got through a cut link")
	}
	if p.held.Load() != 1 {
		t.Errorf("%d connections counted as held, want 1", p.held.Load())
	}

	// Heal: what was held arrives, in order, on the same connection.
	f.healAll()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "two\n" {
		t.Fatalf("after the heal: %q, %v; want the held message", got, err)
	}
	if got, err := echo("three", 2*time.Second); err != nil || got != "three\n" {
		t.Fatalf("after the heal: %q, %v", got, err)
	}

	// A cut of another pair leaves this link alone; a dialer the proxy
	// cannot name is held while any link of the proxy's node is cut.
	f.setCut(true, "m1", "m3")
	if cut, _ := f.isCut("m2", "m1"); cut {
		t.Error("m2–m1 cut by cutting m1–m3")
	}
	if cut, _ := f.isCut("", "m1"); !cut {
		t.Error("an unknown dialer passes to m1 while m1–m3 is cut")
	}
	if cut, _ := f.isCut("", "m2"); cut {
		t.Error("an unknown dialer held at m2, none of whose links is cut")
	}
	if got := f.cutLinks(); len(got) != 1 || got[0] != "m1–m3" {
		t.Errorf("cut links %q, want [m1–m3]", got)
	}
	if dialerPID(c, []int{me + 1_000_000}) != 0 {
		t.Error("a connection attributed to a process that does not exist")
	}
}
