package upstream

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Options are what a Server needs besides its Config.
type Options struct {
	// Tenant is the tenant's id, in assertions and log lines.
	Tenant string
	// Issuer is the gateway's URL for the tenant: the assertion's iss.
	Issuer string
	// Signer signs assertions; required in mode assertion.
	Signer *Signer
	// Secrets reads the credentials given by reference.
	Secrets providers.SecretResolver
	// TokenEndpoint finds the tenant's issuer's token endpoint, for mode
	// exchange when the configuration names none.
	TokenEndpoint func(context.Context) (string, error)
	Logger        *slog.Logger
	// Transport replaces the connection pool (tests); nil builds one from
	// the Config.
	Transport http.RoundTripper
	// WrapTransport, when set, wraps the transport to the upstream and the
	// token exchange's (tracing: each request a client span whose context
	// the server receives).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Server forwards one tenant's MCP requests to its upstream.
type Server struct {
	cfg    Config
	target *url.URL
	opts   Options
	log    *slog.Logger
	// perms are the tenant's permissions (Config.PermissionList), those an
	// assertion may grant: worked out once, not per request.
	perms  []providers.Permission
	static *resolvedHeader
	exch   *exchanger // mode exchange
	// sessions binds the upstream's session ids to callers; nil without
	// a signer (a tenant in mode static or none on a gateway given none).
	sessions *sessionBinder
	headers  []resolvedHeader
	proxy    *httputil.ReverseProxy
	pool     *http.Transport // nil when Options.Transport was given
	slots    chan struct{}
	idle     time.Duration

	// closing ends every request and stream still open when the tenant is
	// retired (Close).
	closing context.Context
	close   context.CancelFunc

	health health
}

type resolvedHeader struct{ name, value string }

// New builds the upstream server of cfg (validated), reading the secrets
// it names. It makes no network call.
func New(cfg Config, opts Options) (*Server, error) {
	cfg = cfg.WithDefaults()
	if !cfg.IsUpstream() {
		return nil, errors.New("not an upstream server")
	}
	if probs := cfg.Validate(); len(probs) > 0 {
		return nil, fmt.Errorf("server.%s", probs[0])
	}
	target, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if cfg.Identity.Mode == ModeAssertion && opts.Signer == nil {
		return nil, errors.New("identity mode assertion needs the gateway's signing key")
	}
	s := &Server{cfg: cfg, target: target, opts: opts, log: opts.Logger,
		slots: make(chan struct{}, cfg.MaxConcurrent), idle: time.Duration(*cfg.Timeouts.Idle), perms: cfg.PermissionList()}
	if opts.Signer != nil {
		s.sessions = &sessionBinder{key: opts.Signer.sessionKey, tenant: opts.Tenant}
	}
	if st := cfg.Identity.Static; st != nil {
		v, err := opts.Secrets.ReadSecret("the upstream's static credential", st.ValueEnv, st.ValueFile)
		if err != nil {
			return nil, err
		}
		s.static = &resolvedHeader{name: http.CanonicalHeaderKey(st.Header), value: st.Prefix + v}
	}
	if ex := cfg.Identity.Exchange; ex != nil {
		secret, err := opts.Secrets.ReadSecret("the token exchange's client secret", ex.ClientSecretEnv, ex.ClientSecretFile)
		if err != nil {
			return nil, err
		}
		s.exch = &exchanger{cfg: *ex, audience: cmp.Or(ex.Audience, cfg.URL), resource: cfg.URL, secret: secret,
			endpoint: opts.TokenEndpoint, client: &http.Client{Timeout: exchangeTimeout}, now: time.Now,
			cache: make(map[[32]byte]cachedToken)}
		if ex.TokenEndpoint != "" {
			s.exch.endpoint = func(context.Context) (string, error) { return ex.TokenEndpoint, nil }
		}
		if opts.WrapTransport != nil { // the exchange is traced like the forwards
			s.exch.client.Transport = opts.WrapTransport(http.DefaultTransport)
		}
		if s.exch.endpoint == nil {
			return nil, errors.New("identity mode exchange needs a token endpoint: set identity.exchange.token_endpoint")
		}
	}
	for name, hv := range cfg.Headers {
		v := hv.Value
		if v == "" {
			if v, err = opts.Secrets.ReadSecret("header "+name, hv.ValueEnv, hv.ValueFile); err != nil {
				return nil, err
			}
		}
		s.headers = append(s.headers, resolvedHeader{name: http.CanonicalHeaderKey(name), value: v})
	}
	transport := opts.Transport
	if transport == nil {
		if s.pool, err = newPool(cfg); err != nil {
			return nil, err
		}
		transport = s.pool
	}
	if opts.WrapTransport != nil {
		transport = opts.WrapTransport(transport)
	}
	s.closing, s.close = context.WithCancel(context.Background())
	s.proxy = &httputil.ReverseProxy{
		Transport: transport,
		// 0: the proxy flushes each write of an SSE answer, or of one
		// without a length, as it arrives (httputil does so whatever this
		// says), and sends a JSON answer of known length in one write with
		// its headers; -1 would flush those headers on their own first.
		FlushInterval:  0,
		Rewrite:        func(*httputil.ProxyRequest) {}, // set per request (Forward)
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		ModifyResponse: nil,
		BufferPool:     CopyBuffers,
	}
	return s, nil
}

// CopyBuffers are the buffers answers are copied through, shared by every
// upstream tenant (and by bench.RelayNetHTTP, which relays as a tenant
// does). An open stream holds one for its whole life, so they are small
// (the proxy's own would be 32 KiB each): an SSE event or a typical JSON
// answer fits, a larger answer takes a few more writes.
var CopyBuffers httputil.BufferPool = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// newPool is the tenant's connection pool to its upstream.
func newPool(cfg Config) (*http.Transport, error) {
	t := &http.Transport{
		Proxy:                 nil, // an internal upstream is reached directly, whatever HTTP_PROXY says
		DialContext:           (&net.Dialer{Timeout: time.Duration(*cfg.Timeouts.Connect), KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          cfg.MaxConcurrent,
		MaxIdleConnsPerHost:   cfg.MaxConcurrent,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   time.Duration(*cfg.Timeouts.Connect),
		ResponseHeaderTimeout: time.Duration(*cfg.Timeouts.FirstByte),
	}
	if c := cfg.TLS; c != nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("server.tls.ca_file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("server.tls.ca_file: %s holds no PEM certificate", c.CAFile)
			}
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("server.tls: client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		t.TLSClientConfig = tc
	}
	return t, nil
}

// Config is the server's configuration, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// Close ends every request and stream still open to the upstream and
// closes the idle connections. The edge calls it when the tenant is
// retired, after the grace period.
func (s *Server) Close() error {
	s.close()
	if s.pool != nil {
		s.pool.CloseIdleConnections()
	}
	return nil
}

// Call is one request to forward.
type Call struct {
	// Principal is the verified caller.
	Principal *providers.Principal
	// Body is the request body, already read and checked (nil for GET
	// and DELETE).
	Body []byte
	// Filter says the answer is read and filtered (FilterAnswer): a
	// tool list to the tools the caller may call, cache hints to
	// private.
	Filter bool
	// Initializes says the body is one initialize request: it starts a
	// session, so the client's Mcp-Session-Id (left from an earlier one,
	// or somebody else's) is neither checked nor forwarded.
	Initializes bool
	// Token is the client's own token. It is sent nowhere but to the
	// issuer that minted it, in mode exchange.
	Token string
}

// Outcome is how a forward ended, for the edge's metrics.
type Outcome struct {
	// Status is the HTTP status the client got (0: the client went away
	// before an answer).
	Status int
	// Kind is a bounded label: ok, busy, unreachable, timeout, idle,
	// credentials_refused, bad_answer, canceled, closed, session_refused,
	// exchange_refused, exchange_unavailable, identity.
	Kind string
}

// errCredentialsRefused: the upstream answered 401 or 403, a refusal of
// the gateway's credentials, never the client's to see as a challenge.
var errCredentialsRefused = errors.New("the upstream refused the gateway's credentials")

// Forward sends the request to the upstream with the caller's identity and
// without the client's credentials, and copies the answer back, streamed.
func (s *Server) Forward(w http.ResponseWriter, r *http.Request, call Call) Outcome {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "upstream_busy",
			"too many requests are open to this MCP server's upstream; retry shortly")
		return Outcome{Status: http.StatusServiceUnavailable, Kind: "busy"}
	}
	session, ok := s.upstreamSession(r, call)
	if !ok {
		writeError(w, http.StatusNotFound, "session_not_found",
			"this MCP session does not exist or belongs to another user; start a new session with initialize")
		return Outcome{Status: http.StatusNotFound, Kind: "session_refused"}
	}
	identity, err := s.identity(r.Context(), call)
	var xe *exchangeError
	switch {
	case errors.As(err, &xe):
		s.health.failed(err)
		s.log.WarnContext(r.Context(), "upstream token exchange failed", "tenant", s.opts.Tenant, "status", xe.status, "err", bound(err.Error()))
		if xe.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
			writeError(w, xe.status, "exchange_unavailable", "the token for the upstream could not be obtained from the authorization server; retry shortly")
			return Outcome{Status: xe.status, Kind: "exchange_unavailable"}
		}
		writeError(w, xe.status, "exchange_refused", "the authorization server refused a token for the upstream; its operator has been told")
		return Outcome{Status: xe.status, Kind: "exchange_refused"}
	case err != nil:
		s.log.ErrorContext(r.Context(), "upstream identity", "tenant", s.opts.Tenant, "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "the caller's identity could not be prepared for the upstream")
		return Outcome{Status: http.StatusInternalServerError, Kind: "identity"}
	}
	// A stream lives as long as its upstream sends: the server's read
	// deadline (which would cancel the request) does not apply to it.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()

	var out Outcome
	proxy := *s.proxy
	proxy.Rewrite = func(pr *httputil.ProxyRequest) { s.rewrite(pr, call, identity, session) }
	proxy.ModifyResponse = func(resp *http.Response) error { return s.modifyResponse(resp, call, cancel) }
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { out = s.answerError(w, r, err) }
	rec := &statusRecorder{ResponseWriter: w}
	proxy.ServeHTTP(rec, r.WithContext(noAbort{ctx}))
	switch {
	case out.Kind != "":
	case r.Context().Err() != nil:
		// The client left while the answer streamed: not the upstream's
		// failure, and nobody to answer.
		out = Outcome{Status: rec.status, Kind: "canceled"}
	case ctx.Err() != nil && s.closing.Err() != nil:
		out = Outcome{Status: rec.status, Kind: "closed"}
	case ctx.Err() != nil:
		// The stream went silent for timeouts.idle and was ended.
		out = Outcome{Status: rec.status, Kind: "idle"}
	default:
		out = Outcome{Status: rec.status, Kind: "ok"}
		s.health.answered(rec.status)
	}
	return out
}

// noAbort hides the server from the proxy. httputil.ReverseProxy aborts
// the handler with a panic (http.ErrAbortHandler) when copying an answer
// fails under a server; that skips every deferred count and the access
// line for what is routine here: a client closing a stream, an idle
// stream ended, a tenant retired. Without the server in the context it
// returns instead, and the answer ends as a stream that ends.
type noAbort struct{ context.Context }

func (c noAbort) Value(key any) any {
	if key == http.ServerContextKey {
		return nil
	}
	return c.Context.Value(key)
}

// upstreamSession is the upstream's session id for the request's
// Mcp-Session-Id ("" for none), and false when that id is not bound to the
// caller (session.go).
func (s *Server) upstreamSession(r *http.Request, call Call) (string, bool) {
	if call.Initializes {
		// An upstream may refuse an initialize that carries a session id
		// it did not issue, or take it for the old session's.
		return "", true
	}
	bound := r.Header.Get(sessionHeader)
	if bound == "" || s.sessions == nil {
		return bound, true
	}
	return s.sessions.unbind(call.Principal, bound)
}

// identity is the header the caller's identity travels in (nil: none).
func (s *Server) identity(ctx context.Context, call Call) (*resolvedHeader, error) {
	var token string
	var err error
	p := call.Principal
	switch s.cfg.Identity.Mode {
	case ModeAssertion:
		var granted []providers.Permission
		for _, perm := range s.perms {
			if p.Has(perm) {
				granted = append(granted, perm)
			}
		}
		token, err = s.opts.Signer.Assertion(s.opts.Issuer, s.cfg.URL, s.opts.Tenant, p, granted)
	case ModeExchange:
		if call.Token == "" {
			return nil, errNoSubjectToken
		}
		token, err = s.exch.exchange(ctx, call.Token, p)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	h := &resolvedHeader{name: http.CanonicalHeaderKey(s.cfg.Identity.Header), value: token}
	if h.name == DefaultHeader {
		h.value = "Bearer " + token
	}
	return h, nil
}

// rewrite makes the outbound request. Rewrite has already removed the
// hop-by-hop headers, Forwarded and X-Forwarded-*; this removes every
// credential of the client's and whatever a client sent in a header the
// gateway sets, then sets those.
func (s *Server) rewrite(pr *httputil.ProxyRequest, call Call, identity *resolvedHeader, session string) {
	u := *s.target
	pr.Out.URL = &u
	pr.Out.Host = ""
	pr.SetXForwarded()
	h := pr.Out.Header
	h.Del("Authorization")
	h.Del("Proxy-Authorization")
	if !s.cfg.ForwardCookies {
		h.Del("Cookie")
	}
	// The gateway checked Origin; the upstream sees the gateway, not a
	// browser (its own DNS-rebinding check would refuse the client's).
	h.Del("Origin")
	// Without it the transport asks for gzip and decodes the answer
	// itself, so that a list is filtered as JSON, never passed
	// through compressed.
	h.Del("Accept-Encoding")
	if session != "" {
		h.Set(sessionHeader, session)
	} else {
		h.Del(sessionHeader)
	}
	if identity != nil {
		h.Set(identity.name, identity.value)
	}
	if s.static != nil {
		h.Set(s.static.name, s.static.value)
	}
	for _, x := range s.headers {
		h.Set(x.name, x.value)
	}
	if call.Body != nil {
		pr.Out.Body = io.NopCloser(bytes.NewReader(call.Body))
		pr.Out.ContentLength = int64(len(call.Body))
		pr.Out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(call.Body)), nil }
	}
}

// filteredAnswer names such an answer in errors.
const filteredAnswer = "an answer the gateway filters (a list, a cacheable result)"

func (s *Server) modifyResponse(resp *http.Response, call Call, cancel context.CancelFunc) error {
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		resp.Body.Close()
		return fmt.Errorf("%w (HTTP %d)", errCredentialsRefused, resp.StatusCode)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// An MCP endpoint does not redirect; one that does is a server.url
		// that names the wrong place (a missing slash, http for https).
		// Passed on, the redirect would send the client, with its token,
		// after an address inside the upstream's network.
		resp.Body.Close()
		return fmt.Errorf("%w: it redirected (HTTP %d) to %q; set the tenant's server.url to where its MCP endpoint is",
			errBadAnswer, resp.StatusCode, bound(resp.Header.Get("Location")))
	}
	h := resp.Header
	// The gateway's challenges are its own: nothing of the upstream's
	// authentication reaches the client.
	h.Del("WWW-Authenticate")
	// So are CORS (the gateway checked the Origin and answers for it; an
	// upstream's Access-Control-Allow-Origin beside the gateway's is two
	// values, and browsers refuse the answer) and what an answer sets for
	// the whole origin, which every tenant shares.
	for name := range h {
		if strings.HasPrefix(name, "Access-Control-") {
			h.Del(name)
		}
	}
	for _, name := range originWide {
		h.Del(name)
	}
	if !s.cfg.ForwardCookies {
		h.Del("Set-Cookie")
	}
	if id := h.Get(sessionHeader); id != "" && s.sessions != nil {
		h.Set(sessionHeader, s.sessions.bind(call.Principal, id))
	}
	resp.Body = newIdleReader(resp.Body, s.idle, cancel)
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	filters := call.Filter || (mt == "text/event-stream" && resp.Request.Method == http.MethodGet)
	if enc := h.Get("Content-Encoding"); filters && enc != "" && !strings.EqualFold(enc, "identity") {
		// The transport asked for gzip and decoded it (the header is then
		// gone); an encoding nobody asked for would pass a list the
		// filter cannot read: fail closed.
		resp.Body.Close()
		return fmt.Errorf("%w: %s in Content-Encoding %q", errBadAnswer, filteredAnswer, bound(enc))
	}
	switch {
	case mt == "text/event-stream":
		h.Set("X-Accel-Buffering", "no")
		h.Del("Content-Length")
		resp.ContentLength = -1
		if filters {
			resp.Body = newEventFilter(resp.Body, s.listFilter(call.Principal), s.cfg.AnswerLimit)
		}
	case call.Filter && mt == "application/json" && resp.StatusCode < 300:
		body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.AnswerLimit+1))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if int64(len(body)) > s.cfg.AnswerLimit {
			return fmt.Errorf("%w: %s over %d bytes (server.answer_limit)", errBadAnswer, filteredAnswer, s.cfg.AnswerLimit)
		}
		if !json.Valid(body) {
			// Not JSON as the filter reads it (UTF-8), which it would pass
			// unread; a reader that guesses another encoding (Python's
			// json.loads takes UTF-16 and UTF-32) could find a list in it.
			return fmt.Errorf("%w: %s that is not UTF-8 JSON", errBadAnswer, filteredAnswer)
		}
		filtered, err := filterMessages(body, s.listFilter(call.Principal))
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(filtered))
		resp.ContentLength = int64(len(filtered))
		h.Set("Content-Length", strconv.Itoa(len(filtered)))
	case call.Filter && resp.StatusCode < 300:
		// A list is JSON or SSE; under any other type it would pass
		// unfiltered to a client that reads it all the same.
		resp.Body.Close()
		return fmt.Errorf("%w: %s as %q, neither JSON nor SSE", errBadAnswer, filteredAnswer, bound(h.Get("Content-Type")))
	}
	return nil
}

// listFilter keeps the tools p may call.
func (s *Server) listFilter(p *providers.Principal) func(tool string) bool {
	return func(tool string) bool { return s.cfg.mayCall(p, tool) }
}

var errBadAnswer = errors.New("the upstream's answer could not be read")

// originWide are the answer headers that set policy for the whole origin
// (every tenant's resource URL on the gateway's host), the operator's to
// set at the gateway, never one tenant's upstream: HTTPS pinned for the
// host and its subdomains, another endpoint for the origin, the browser's
// storage and cookies for the origin wiped.
var originWide = []string{"Strict-Transport-Security", "Alt-Svc", "Clear-Site-Data"}

// answerError answers what kept the upstream from answering, never with
// the upstream's own words, and logs why.
func (s *Server) answerError(w http.ResponseWriter, r *http.Request, err error) Outcome {
	if r.Context().Err() != nil && !errors.Is(err, errCredentialsRefused) && s.closing.Err() == nil {
		// The client went away: nobody to answer.
		return Outcome{Kind: "canceled"}
	}
	var o Outcome
	var ne net.Error
	switch {
	case errors.Is(err, errCredentialsRefused):
		o = Outcome{http.StatusBadGateway, "credentials_refused"}
		writeError(w, o.Status, "upstream_refused", "the upstream MCP server refused the gateway's request; its operator has been told")
	case errors.Is(err, errBadAnswer):
		o = Outcome{http.StatusBadGateway, "bad_answer"}
		writeError(w, o.Status, "bad_upstream_answer", "the upstream MCP server's answer could not be read")
	case s.closing.Err() != nil:
		o = Outcome{http.StatusServiceUnavailable, "closed"}
		w.Header().Set("Retry-After", "1")
		writeError(w, o.Status, "unavailable", "this MCP server's configuration changed; retry the request")
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		o = Outcome{http.StatusGatewayTimeout, "timeout"}
		writeError(w, o.Status, "upstream_timeout", "the upstream MCP server did not answer in time")
	default:
		o = Outcome{http.StatusBadGateway, "unreachable"}
		w.Header().Set("Retry-After", "1")
		writeError(w, o.Status, "upstream_unavailable", "the upstream MCP server could not be reached; retry shortly")
	}
	s.health.failed(err)
	s.log.WarnContext(r.Context(), "upstream request failed", "tenant", s.opts.Tenant, "status", o.Status, "kind", o.Kind, "err", bound(err.Error()))
	return o
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, description})
	_, _ = w.Write(append(b, '\n'))
}

// statusRecorder notes the status of an answer the proxy copied. It
// unwraps, so that http.ResponseController flushes the real writer.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// idleReader cancels the upstream request when a Read has waited longer
// than the idle timeout: an upstream that stops sending on a stream does
// not hold it open for ever.
type idleReader struct {
	io.ReadCloser
	timer *time.Timer
	idle  time.Duration
}

func newIdleReader(rc io.ReadCloser, idle time.Duration, cancel context.CancelFunc) io.ReadCloser {
	return &idleReader{ReadCloser: rc, timer: time.AfterFunc(idle, cancel), idle: idle}
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	return n, err
}

func (r *idleReader) Close() error {
	r.timer.Stop()
	return r.ReadCloser.Close()
}

// Health is what the gateway last heard from the upstream.
type Health struct {
	Requests    int64     `json:"requests"`
	Failures    int64     `json:"failures"`
	LastAnswer  time.Time `json:"last_answer,omitzero"`
	LastStatus  int       `json:"last_status,omitempty"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
}

type health struct {
	requests, failures atomic.Int64
	mu                 sync.Mutex
	h                  Health
}

func (h *health) answered(status int) {
	h.requests.Add(1)
	h.mu.Lock()
	h.h.LastAnswer, h.h.LastStatus = time.Now(), status
	h.mu.Unlock()
}

func (h *health) failed(err error) {
	h.requests.Add(1)
	h.failures.Add(1)
	h.mu.Lock()
	h.h.LastFailure, h.h.LastError = time.Now(), bound(err.Error())
	h.mu.Unlock()
}

// Health reports the upstream's health as this instance saw it.
func (s *Server) Health() Health {
	s.health.mu.Lock()
	h := s.health.h
	s.health.mu.Unlock()
	h.Requests, h.Failures = s.health.requests.Load(), s.health.failures.Load()
	return h
}

// URL is the upstream's endpoint.
func (s *Server) URL() string { return s.cfg.URL }

// Mode is the identity mode.
func (s *Server) Mode() string { return s.cfg.Identity.Mode }
