package etcd

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A read that arrives while a revision check is in flight must not take
// that check's answer (it may predate a write acknowledged just before the
// read): it waits for the next check, which it shares with every read that
// arrived meanwhile.
func TestRevisionChecksShareOnlyLaterChecks(t *testing.T) {
	started := make(chan int64, 10)
	release := make(chan struct{}, 10)
	var rev int64
	checks := revisionChecks{read: func(context.Context) (int64, error) {
		rev++
		started <- rev
		<-release
		return rev, nil
	}}
	ctx := context.Background()
	first := make(chan int64)
	go func() {
		r, _ := checks.revision(ctx)
		first <- r
	}()
	if got := <-started; got != 1 {
		t.Fatalf("first check: %d", got)
	}
	// Five reads arrive while check 1 is in flight.
	var wg sync.WaitGroup
	later := make(chan int64, 5)
	for range 5 {
		wg.Go(func() {
			r, _ := checks.revision(ctx)
			later <- r
		})
	}
	waitPending(t, &checks, 5)
	release <- struct{}{}
	if got := <-first; got != 1 {
		t.Errorf("the first read got revision %d, want 1", got)
	}
	if got := <-started; got != 2 {
		t.Fatalf("second check: %d", got)
	}
	release <- struct{}{}
	wg.Wait()
	close(later)
	for r := range later {
		if r != 2 {
			t.Errorf("a read that arrived during check 1 got revision %d, want 2 (a check that started after it)", r)
		}
	}
	if n := checks.count.Load(); n != 2 {
		t.Errorf("%d checks for 6 reads, want 2", n)
	}
}

// waitPending waits until n reads wait for a check that has not started.
func waitPending(t *testing.T, r *revisionChecks, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		joined := 0
		if r.pending != nil {
			joined = r.pending.readers
		}
		r.mu.Unlock()
		if joined == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reads wait for the next check after 5s, want %d", joined, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Checks start at least interval apart; a read that finds no recent check
// waits for none.
func TestRevisionChecksSpaced(t *testing.T) {
	var starts []time.Time
	checks := revisionChecks{interval: 40 * time.Millisecond, read: func(context.Context) (int64, error) {
		starts = append(starts, time.Now())
		return int64(len(starts)), nil
	}}
	begin := time.Now()
	for range 3 {
		if _, err := checks.revision(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(starts) != 3 || starts[0].Sub(begin) > 30*time.Millisecond {
		t.Fatalf("the first check should start at once: %v after the read", starts[0].Sub(begin))
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < 40*time.Millisecond {
			t.Errorf("checks %d and %d started %v apart, want at least 40ms", i, i+1, gap)
		}
	}
}

// Under load (a read always waiting) checks still start at most once per
// interval, each serving every read that arrived before it started.
func TestRevisionChecksPacedUnderLoad(t *testing.T) {
	const interval = 10 * time.Millisecond
	var (
		mu     sync.Mutex
		starts []time.Time
	)
	checks := revisionChecks{interval: interval, read: func(context.Context) (int64, error) {
		mu.Lock()
		defer mu.Unlock()
		starts = append(starts, time.Now())
		return int64(len(starts)), nil
	}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := checks.revision(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(starts); n < 10 || n > 80 {
		t.Fatalf("%d checks for 80 reads by 8 readers, 10 each", n)
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < interval {
			t.Errorf("checks %d and %d started %v apart, want at least %v", i, i+1, gap, interval)
		}
	}
	t.Logf("80 reads, %d checks in %v", len(starts), starts[len(starts)-1].Sub(starts[0]))
}

// A check's time is counted from its start to its answer, and only once
// however many reads share it.
func TestRevisionChecksCountTheirTime(t *testing.T) {
	const took = 20 * time.Millisecond
	checks := revisionChecks{read: func(context.Context) (int64, error) {
		time.Sleep(took)
		return 1, nil
	}}
	start := time.Now()
	for range 2 {
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if _, err := checks.revision(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	wall := time.Since(start)
	n, busy := checks.count.Load(), time.Duration(checks.busy.Load())
	if busy < time.Duration(n)*took || busy > wall {
		t.Errorf("%d checks of at least %v each counted %v, in %v", n, took, busy, wall)
	}
}
