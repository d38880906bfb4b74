package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

var errTooLarge = fmt.Errorf("response exceeds %d bytes", maxResponseBytes)

// getJSON fetches url and decodes a JSON object into v. The body is capped
// so a hostile or broken server cannot make the gateway buffer gigabytes.
func getJSON(ctx context.Context, client *http.Client, url, accept string, v any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readLimited(resp.Body)
	if err != nil {
		return resp.Header, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.Header, &StatusError{Method: http.MethodGet, URL: url, Status: resp.StatusCode}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.Header, fmt.Errorf("GET %s: invalid JSON: %w", url, err)
	}
	return resp.Header, nil
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, errTooLarge
	}
	return b, nil
}

// call is one in-flight fetch that several waiters may share.
type call struct {
	done chan struct{}
	err  error
}

// wait blocks until the call finishes or ctx ends. A caller that gives up
// does not cancel the fetch: the others (and the cache) still want it.
func (c *call) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errClosed = errors.New("provider is closed")

// startCall runs fn on the provider's background runner, detached from the
// caller's context but bounded by timeout, and reports completion through
// the returned call. finish runs (under the caller's lock discipline) before
// waiters are released.
func (r *bgRunner) startCall(timeout time.Duration, fn func(ctx context.Context) error) *call {
	c := &call{done: make(chan struct{})}
	ok := r.goFunc(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		c.err = fn(ctx)
		close(c.done)
	})
	if !ok {
		c.err = errClosed
		close(c.done)
	}
	return c
}

// backoff tracks consecutive failures of one remote resource so that an
// unreachable issuer is retried with growing pauses instead of once per
// request.
type backoff struct {
	failures int
	retryAt  time.Time
	lastErr  error
}

func (b *backoff) fail(now time.Time, err error, t tuning) {
	b.failures++
	d := t.backoffBase << min(b.failures-1, 16)
	if d > t.backoffMax || d <= 0 {
		d = t.backoffMax
	}
	// Up to 10% jitter keeps the issuers of many gateways from being
	// retried in step. It is added below the cap and taken off at it: the
	// wait never exceeds backoffMax, the Retry-After the edge promises.
	jitter := time.Duration(rand.Int64N(int64(d)/10 + 1))
	if d+jitter > t.backoffMax {
		d -= jitter
	} else {
		d += jitter
	}
	b.retryAt = now.Add(d)
	b.lastErr = err
}

func (b *backoff) succeed() { *b = backoff{} }

// waiting reports whether a retry must wait.
func (b *backoff) waiting(now time.Time) bool { return now.Before(b.retryAt) }

// keyedCalls single-flights work by key (introspection of one token).
type keyedCalls[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*keyedCall[V]
}

type keyedCall[V any] struct {
	call
	val V
}

func (g *keyedCalls[K, V]) do(ctx context.Context, r *bgRunner, key K, timeout time.Duration, fn func(context.Context) (V, error)) (V, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[K]*keyedCall[V])
	}
	c, ok := g.m[key]
	if !ok {
		c = &keyedCall[V]{call: call{done: make(chan struct{})}}
		g.m[key] = c
		started := r.goFunc(func(bctx context.Context) {
			bctx, cancel := context.WithTimeout(bctx, timeout)
			defer cancel()
			c.val, c.err = fn(bctx)
			g.mu.Lock()
			delete(g.m, key)
			g.mu.Unlock()
			close(c.done)
		})
		if !started {
			delete(g.m, key)
			c.err = errClosed
			close(c.done)
		}
	}
	g.mu.Unlock()
	if err := c.wait(ctx); err != nil {
		var zero V
		return zero, err
	}
	return c.val, nil
}
