package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is one gateway instance behind the proxy, with what the proxy
// knows of it and counts about it.
type backend struct {
	name, addr, admin string

	// ready is the last /readyz answer: 200 puts the instance in rotation.
	ready atomic.Bool
	// alive says the last /readyz got an HTTP answer at all.
	alive atomic.Bool
	// terminating is set when the harness sends SIGTERM. The proxy routes
	// by readiness; it uses this only to keep a terminating instance out of
	// the fallback when no instance is ready, and to count the requests of
	// the drain.
	terminating atomic.Bool

	served atomic.Int64 // requests forwarded, with any outcome
	failed atomic.Int64 // transport errors and non-200 answers

	// Counted from the SIGTERM on: requests forwarded to the instance,
	// those that failed (including refused connections the proxy then
	// retried elsewhere), and /readyz answers of 503.
	drainSent, drainFailed, drainNotReady atomic.Int64

	mu       sync.Mutex
	failures []string // the first few failures after SIGTERM
}

func (b *backend) noteDrainFailure(s string) {
	b.drainFailed.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.failures) < 10 {
		b.failures = append(b.failures, time.Now().Format("15:04:05.000")+" "+s)
	}
}

// proxy is the test's load balancer: round robin over the ready instances,
// the Host header passed on unchanged (the gateway routes by host and
// path), a retry elsewhere only when a connection is refused (nothing was
// sent), and an X-Served-By header naming the instance on every answer.
type proxy struct {
	backends []*backend
	rr       atomic.Uint64
	ln       net.Listener
	srv      *http.Server
	tr       *http.Transport
	health   *http.Client
}

type pickKey struct{}

// pick records which instance served a request, for the error handler.
type pick struct{ name string }

func newProxy(t *testing.T) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{
		ln:     ln,
		tr:     &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second, DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext},
		health: &http.Client{Timeout: 1500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	rp := &httputil.ReverseProxy{
		// No SetURL: the Host header stays the client's; RoundTrip fills
		// in the instance's address.
		Rewrite:   func(r *httputil.ProxyRequest) {},
		Transport: p,
		ModifyResponse: func(resp *http.Response) error {
			if pk, _ := resp.Request.Context().Value(pickKey{}).(*pick); pk != nil {
				resp.Header.Set("X-Served-By", pk.name)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if pk, _ := r.Context().Value(pickKey{}).(*pick); pk != nil {
				w.Header().Set("X-Served-By", pk.name)
			}
			w.Header().Set("X-Proxy-Error", err.Error())
			w.WriteHeader(http.StatusBadGateway)
		},
		ErrorLog: nil,
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), pickKey{}, &pick{})))
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go p.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.srv.Shutdown(ctx)
		p.tr.CloseIdleConnections()
	})
	return p
}

// URL is the proxy's origin, http://127.0.0.1:PORT.
func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Host is the proxy's host:port, the Host header of every request.
func (p *proxy) Host() string { return p.ln.Addr().String() }

func (p *proxy) add(name, addr, admin string) *backend {
	b := &backend{name: name, addr: addr, admin: admin}
	p.backends = append(p.backends, b)
	return b
}

// watch polls every instance's /readyz every 100ms until ctx ends.
func (p *proxy) watch(ctx context.Context) {
	for _, b := range p.backends {
		go func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				p.poll(ctx, b)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
}

func (p *proxy) poll(ctx context.Context, b *backend) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.admin+"/readyz", nil)
	resp, err := p.health.Do(req)
	if err != nil {
		b.ready.Store(false)
		b.alive.Store(false)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	b.alive.Store(true)
	b.ready.Store(resp.StatusCode == http.StatusOK)
	if resp.StatusCode == http.StatusServiceUnavailable && b.terminating.Load() {
		b.drainNotReady.Add(1)
	}
}

// choose picks the next instance in rotation that is not in tried: one
// whose last /readyz said 200 (a draining instance leaves the rotation when
// its /readyz says 503, not when the harness signals it); if none is ready,
// one that answers and is not terminating, as a load balancer's panic mode
// would; then any that is not terminating.
func (p *proxy) choose(tried map[*backend]bool) *backend {
	n := uint64(len(p.backends))
	start := p.rr.Add(1)
	for _, ok := range []func(*backend) bool{
		func(b *backend) bool { return b.ready.Load() },
		func(b *backend) bool { return b.alive.Load() && !b.terminating.Load() },
		func(b *backend) bool { return !b.terminating.Load() },
	} {
		for i := range n {
			b := p.backends[(start+i)%n]
			if !tried[b] && ok(b) {
				return b
			}
		}
	}
	return nil
}

// readyCount is the number of instances in rotation.
func (p *proxy) readyCount() int {
	n := 0
	for _, b := range p.backends {
		if b.ready.Load() {
			n++
		}
	}
	return n
}

// RoundTrip forwards one request to the chosen instance.
func (p *proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	pk, _ := req.Context().Value(pickKey{}).(*pick)
	tried := map[*backend]bool{}
	var lastErr error = errors.New("no instance to send to")
	for range len(p.backends) {
		b := p.choose(tried)
		if b == nil {
			break
		}
		tried[b] = true
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host = "http", b.addr
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		out.ContentLength = int64(len(body))
		sentDraining := b.terminating.Load()
		if pk != nil {
			pk.name = b.name
		}
		b.served.Add(1)
		resp, err := p.tr.RoundTrip(out)
		// A request counts for the drain if it was sent after the SIGTERM
		// or was still in flight when it came.
		draining := sentDraining || b.terminating.Load()
		if draining {
			b.drainSent.Add(1)
		}
		if err != nil {
			b.failed.Add(1)
			if draining {
				b.noteDrainFailure(err.Error())
			}
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				// Nothing was sent: take the instance out and try another.
				b.ready.Store(false)
				b.alive.Store(false)
				lastErr = err
				continue
			}
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			b.failed.Add(1)
			if draining {
				b.noteDrainFailure(fmt.Sprintf("HTTP %d", resp.StatusCode))
			}
		}
		return resp, nil
	}
	return nil, lastErr
}
