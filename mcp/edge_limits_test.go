package mcp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// metricValue is the value of the metric name whose labels include want,
// summed over the series that match; 0 when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for k, v := range want {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// rawExchange sends head (the request line and headers, without the blank
// line) and then the first byte of a body that never comes, and reads the
// answer: a refusal must not wait for the rest of the body.
func rawExchange(t *testing.T, base, head string) (*http.Response, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A liveness bound, far above any answer that does not wait for the body.
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the body is unsent: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The server closes the connection: a read ends, rather than waiting.
	_, err = br.ReadByte()
	closed := err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err)
	return resp, closed
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// A request refused before its body is read (no token, a bad token, a
// foreign Origin, a Content-Length over the limit, an unknown URL, a rate
// limit) is answered at once with Connection: close, even when the body
// arrives one byte at a time: net/http would otherwise read the rest of a
// body under 256 KiB before writing the answer.
func TestRefusalsBeforeTheBodyAreImmediate(t *testing.T) {
	b := newEdgeBed(t, nil)
	b.reconfigure(t, func(cfg *tenants.Config) {
		cfg.Tenants[2].RateLimit = &tenants.RateLimit{RequestsPerSecond: 0.001, Burst: 1}
	})
	host := strings.TrimPrefix(b.URL, "http://")
	tok := b.token("acme", "u", adminPerms...)
	head := func(path string, extra ...string) string {
		lines := append([]string{"POST " + path + " HTTP/1.1", "Host: " + host, "Content-Type: application/json"}, extra...)
		return strings.Join(lines, "\n")
	}
	// globex (tenants[2]) spends its requests: ten per tool call of its
	// burst of 1.
	for i := range 10 {
		if resp, body := post(t, b.resources["globex"], "", toolsList); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("globex's request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	cases := []struct {
		name   string
		head   string
		status int
	}{
		{"no token", head("/acme", "Content-Length: 100000"), http.StatusUnauthorized},
		{"a bad token", head("/acme", "Content-Length: 100000", "Authorization: Bearer "+strings.Repeat("x", 40)), http.StatusUnauthorized},
		{"a malformed Authorization", head("/acme", "Content-Length: 100000", "Authorization: Basic eA=="), http.StatusBadRequest},
		{"a foreign Origin", head("/acme", "Content-Length: 100000", "Origin: https://evil.example"), http.StatusForbidden},
		{"Content-Length over the limit", head("/acme", "Content-Length: 2000000", "Authorization: Bearer "+tok), http.StatusRequestEntityTooLarge},
		{"an unknown URL", head("/nope", "Content-Length: 100000"), http.StatusNotFound},
		{"over the rate limit", head("/globex", "Content-Length: 100000"), http.StatusTooManyRequests},
		{"chunked, no token", head("/acme", "Transfer-Encoding: chunked"), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, closed := rawExchange(t, b.URL, tc.head)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if !resp.Close {
				t.Errorf("Connection %q, want close", resp.Header.Get("Connection"))
			}
			if !closed {
				t.Error("the server kept the connection open")
			}
		})
	}
	// A request whose body was read keeps its connection.
	resp, body := post(t, b.resources["acme"], "", toolsList)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token, whole body: %d %s", resp.StatusCode, body)
	}
}

// waitingVerifier is a verifier whose authorization server never answers:
// Verify waits until its context ends, and reports it as providers do.
type waitingVerifier struct{ entered chan struct{} }

func (v *waitingVerifier) Verify(ctx context.Context, _ string) (*providers.Principal, error) {
	v.entered <- struct{}{}
	<-ctx.Done()
	return nil, &providers.Error{Class: providers.ClassUnavailable, Reason: "verification was cancelled before the authorization server answered", Err: ctx.Err()}
}

// StopWaiting (the start of a shutdown) answers the requests waiting on an
// authorization server at once, 503 with Retry-After, and those that come
// after it too; the other tenants' answers do not change.
func TestStopWaitingAnswersWaitingRequests503(t *testing.T) {
	waiting := &waitingVerifier{entered: make(chan struct{}, 4)}
	b := newEdgeBed(t, func(o *mcp.Options) {
		fake := o.NewVerifier
		o.NewVerifier = func(tn *tenants.Tenant) (providers.Verifier, error) {
			if tn.ID == "globex" {
				return waiting, nil
			}
			return fake(tn)
		}
	})
	type answer struct {
		resp *http.Response
		body string
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			req := request(t, http.MethodPost, b.resources["globex"], toolsList,
				"Content-Type", "application/json", "Authorization", "Bearer "+strings.Repeat("y", 40))
			resp, err := httpClient.Do(req)
			if err != nil {
				answers <- answer{}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- answer{resp, string(body)}
		}()
	}
	<-waiting.entered
	<-waiting.entered
	b.gw.StopWaiting()
	for range 2 {
		a := <-answers
		if a.resp == nil {
			t.Fatal("a waiting request got no answer")
		}
		if a.resp.StatusCode != http.StatusServiceUnavailable || a.resp.Header.Get("Retry-After") == "" || !strings.Contains(a.body, "shutting down") {
			t.Errorf("waiting request: %d Retry-After %q %s, want 503 saying the gateway is shutting down",
				a.resp.StatusCode, a.resp.Header.Get("Retry-After"), a.body)
		}
	}
	if resp, body := post(t, b.resources["acme"], b.token("acme", "u", adminPerms...), toolsList); resp.StatusCode != http.StatusOK {
		t.Errorf("a tenant whose verification does not wait: %d %s, want 200", resp.StatusCode, body)
	}
}

// etcdLikeStore blocks Create until the caller's context ends and then
// fails as the etcd store does when a call it had started is cancelled:
// ErrUnavailable wrapping the cancellation.
type etcdLikeStore struct {
	store.Store
	entered, returned chan struct{}
}

func (s *etcdLikeStore) Create(ctx context.Context, tenant, owner, content string) (store.Todo, error) {
	s.entered <- struct{}{}
	<-ctx.Done()
	defer func() { s.returned <- struct{}{} }()
	return store.Todo{}, fmt.Errorf("create: %w: %w", store.ErrUnavailable, ctx.Err())
}

// A client that goes away in the middle of a tool call is no failure of
// the gateway: no ERROR line.
func TestClientGoneMidCallIsNotAnError(t *testing.T) {
	slow := &etcdLikeStore{entered: make(chan struct{}, 1), returned: make(chan struct{}, 1)}
	b := newEdgeBedOn(t, nil, func(st store.Store) store.Store { slow.Store = st; return slow })
	tok := b.token("acme", "u", adminPerms...)
	for _, name := range []string{"fast path", "mcp-go"} {
		t.Run(name, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"}}}`
			if name == "mcp-go" { // a member the fast path does not take
				body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"},"_meta":{}}}`
			}
			accessBefore := len(b.logLines(t, "access"))
			ctx, cancel := context.WithCancel(context.Background())
			req := request(t, http.MethodPost, b.resources["acme"], body, "Content-Type", "application/json",
				"Accept", "application/json, text/event-stream", "Authorization", bearer(tok)).WithContext(ctx)
			done := make(chan error, 1)
			go func() {
				resp, err := httpClient.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			<-slow.entered
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("the client's request: %v, want it cancelled", err)
			}
			<-slow.returned
			// The access line comes once the handler is done.
			deadline := time.Now().Add(5 * time.Second)
			for len(b.logLines(t, "access")) == accessBefore && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if logs := b.logs(t); strings.Contains(logs, `"level":"ERROR"`) {
				t.Errorf("an ERROR line for a client that went away:\n%s", logs)
			}
		})
	}
}

// A tenant's rate limit counts tool calls: past it a call is answered 429
// with Retry-After and a JSON body, counted, and the other tenants are
// left alone; a listing costs no call. A reload that keeps the tenant
// keeps its bucket; one that changes its limit starts a new one.
func TestRateLimit(t *testing.T) {
	b := newEdgeBed(t, nil)
	setLimit := func(burst int) {
		b.reconfigure(t, func(cfg *tenants.Config) {
			cfg.Tenants[0].RateLimit = &tenants.RateLimit{RequestsPerSecond: 0.01, Burst: burst}
		})
	}
	setLimit(2)
	acme := b.resources["acme"]
	tok := b.token("acme", "u", adminPerms...)
	getTodos := toolCall(todo.ToolGetTodos)
	for i := range 2 {
		if resp, body := post(t, acme, tok, getTodos); resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d within the burst: %d %s", i, resp.StatusCode, body)
		}
	}
	if resp, body := post(t, acme, tok, toolsList); resp.StatusCode != http.StatusOK {
		t.Fatalf("tools/list with the calls spent: %d %s, want 200 (a listing is no call)", resp.StatusCode, body)
	}
	resp, body := post(t, acme, tok, getTodos)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Content-Type") != "application/json" ||
		!strings.Contains(body, `"error":"rate_limited"`) || !strings.Contains(body, `"error_description":"too many requests`) {
		t.Fatalf("over the limit: %d %q %s, want a JSON 429", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// 0.01 a second: the next call is about 100 s away.
	if ra := resp.Header.Get("Retry-After"); ra < "1" || len(ra) > 3 {
		t.Errorf("Retry-After %q, want whole seconds until the next call (about 100)", ra)
	}
	if n := metricValue(t, b.reg, "todo_gateway_rate_limited_total", map[string]string{"tenant": "acme"}); n != 1 {
		t.Errorf("todo_gateway_rate_limited_total{tenant=acme} = %v, want 1", n)
	}
	if n := metricValue(t, b.reg, "todo_gateway_requests_total", map[string]string{"tenant": "acme", "status": "429"}); n != 1 {
		t.Errorf("todo_gateway_requests_total{tenant=acme,status=429} = %v, want 1", n)
	}
	if resp, body := post(t, b.resources["umbrella"], b.token("umbrella", "u", adminPerms...), getTodos); resp.StatusCode != http.StatusOK {
		t.Errorf("another tenant: %d %s, want 200", resp.StatusCode, body)
	}

	b.reconfigure(t, func(cfg *tenants.Config) {
		cfg.Tenants[0].RateLimit = &tenants.RateLimit{RequestsPerSecond: 0.01, Burst: 2}
		cfg.Tenants[1].ResourceName = "Umbrella, renamed"
	})
	if resp, _ := post(t, acme, tok, getTodos); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after a reload that keeps acme: %d, want 429 (the same bucket)", resp.StatusCode)
	}
	setLimit(3)
	if resp, body := post(t, acme, tok, getTodos); resp.StatusCode != http.StatusOK {
		t.Errorf("after a reload that changes acme's limit: %d %s, want 200 (a new bucket)", resp.StatusCode, body)
	}
}

// Requests that are no tool call (a client's handshake, notifications,
// listings, the GET of its stream) cost no call, up to ten requests for
// each call of the burst, all before verification.
func TestRateLimitAdmitsTenRequestsPerCall(t *testing.T) {
	b := newEdgeBed(t, nil)
	b.reconfigure(t, func(cfg *tenants.Config) {
		cfg.Tenants[0].RateLimit = &tenants.RateLimit{RequestsPerSecond: 0.01, Burst: 1}
	})
	acme := b.resources["acme"]
	tok := b.token("acme", "u", adminPerms...)
	for i := range 9 {
		if resp, body := post(t, acme, tok, toolsList); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d, no call: %d %s", i, resp.StatusCode, body)
		}
	}
	if resp, body := post(t, acme, tok, toolCall(todo.ToolGetTodos)); resp.StatusCode != http.StatusOK {
		t.Fatalf("the one call of the burst after 9 listings: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, acme, tok, toolsList); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("an eleventh request: %d %s, want 429 (ten requests per call)", resp.StatusCode, body)
	}
}

// countingVerifier counts verifications.
type countingVerifier struct {
	providers.Verifier
	n *atomic.Int64
}

func (v countingVerifier) Verify(ctx context.Context, raw string) (*providers.Principal, error) {
	v.n.Add(1)
	return v.Verifier.Verify(ctx, raw)
}

// The rate limit comes before verification: a flood over the limit costs
// no verification at all.
func TestRateLimitComesBeforeVerification(t *testing.T) {
	var verified atomic.Int64
	b := newEdgeBed(t, func(o *mcp.Options) {
		fake := o.NewVerifier
		o.NewVerifier = func(tn *tenants.Tenant) (providers.Verifier, error) {
			v, err := fake(tn)
			return countingVerifier{v, &verified}, err
		}
	})
	b.reconfigure(t, func(cfg *tenants.Config) {
		cfg.Tenants[0].RateLimit = &tenants.RateLimit{RequestsPerSecond: 0.01, Burst: 1}
	})
	for range 20 {
		post(t, b.resources["acme"], strings.Repeat("z", 40), toolsList)
	}
	// Ten requests are admitted for the one call of the burst.
	if n := verified.Load(); n != 10 {
		t.Errorf("%d verifications for 20 requests with a burst of 1, want 10", n)
	}
}

// A batch counts as many calls as it holds tool calls: with a burst of 5,
// a batch of 3 creates passes, a second one (3 more of the 2 left) is 429
// before any of its messages runs, and a batch of more calls than the
// burst is refused for its size.
func TestRateLimitCountsBatchMessages(t *testing.T) {
	b := newEdgeBed(t, nil)
	b.reconfigure(t, func(cfg *tenants.Config) {
		cfg.Tenants[0].RateLimit = &tenants.RateLimit{RequestsPerSecond: 0.01, Burst: 5}
	})
	acme := b.resources["acme"]
	tok := b.token("acme", "u", adminPerms...)
	batch := func(n int) string {
		msgs := make([]string, n)
		for i := range msgs {
			msgs[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"b%d"}}}`, i+1, i)
		}
		return "[" + strings.Join(msgs, ",") + "]"
	}
	if resp, body := post(t, acme, tok, batch(3)); resp.StatusCode != http.StatusOK {
		t.Fatalf("a batch of 3 within a burst of 5: %d %s", resp.StatusCode, body)
	}
	resp, body := post(t, acme, tok, batch(3))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a second batch of 3 with 2 left: %d %s, want 429 with Retry-After", resp.StatusCode, body)
	}
	if resp, body := post(t, acme, tok, batch(6)); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "send smaller batches") {
		t.Errorf("a batch larger than the burst: %d %s, want 429 naming the batch's size", resp.StatusCode, body)
	}
	// Only the first batch's creates ran.
	page, err := b.store.List(context.Background(), "acme", store.ListOptions{Owner: "u", Limit: store.MaxLimit})
	if err != nil || len(page.Todos) != 3 {
		t.Errorf("stored %d todos (%v), want the first batch's 3", len(page.Todos), err)
	}
}

// A client's address is the connection's peer, whatever X-Forwarded-For
// says, unless the peer is a proxy the operator trusts: then it is the
// address that proxy wrote.
func TestClientAddressBehindTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"no trusted proxy", nil, `"remote_ip":"127.0.0.1"`},
		{"loopback trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, `"remote_ip":"203.0.113.5"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newEdgeBed(t, func(o *mcp.Options) { o.TrustedProxies = tc.trusted })
			post(t, b.resources["acme"], "", toolsList, "X-Forwarded-For", "198.51.100.1, 203.0.113.5")
			if logs := b.logs(t); !strings.Contains(logs, tc.want) {
				t.Errorf("access line lacks %s:\n%s", tc.want, logs)
			}
		})
	}
}
