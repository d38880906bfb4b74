package mcp

import (
	"context"
	"errors"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/time/rate"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// Headers a browser client may send to, and read from, an MCP endpoint.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Accept, Mcp-Protocol-Version, Mcp-Session-Id, Mcp-Method, Mcp-Name, Last-Event-ID"
	corsExposeHeaders = "WWW-Authenticate, Mcp-Protocol-Version, Mcp-Session-Id"
)

// serveMCP is a tenant's MCP endpoint, in stages: admit (route, Origin,
// method), authenticate (rate limit, bearer token, verification), read
// (the body), authorize (the permissions the call needs, from the tenant's
// server) and dispatch (the call to the tenant's server). The first two
// are the edge's; the tenant's server (tenantServer.serve) runs the last
// three its own way: the todo server a message at a time (a JSON-RPC batch
// split, serveBatch), an upstream by forwarding (serveUpstream). Each
// stage answers its own refusals (refuse: one audit line, one metric, one
// shape).
func (g *Gateway) serveMCP(c echo.Context) error {
	start := time.Now()
	ts, answered, err := g.admit(c)
	if answered {
		return err
	}
	t := ts.tenant
	audit := auditRecord{tenant: t.ID, issuer: t.Provider.Issuer, start: start}
	defer func() { g.opts.Metrics.request(t.ID, ts.toolLabel(audit.tool), c.Response().Status) }()
	p, token, answered, err := g.authenticate(c, ts, &audit)
	if answered {
		return err
	}
	return ts.server.serve(g, c, ts, &audit, p, token)
}

// admit finds the request's tenant and checks its Origin and method; it
// answers OPTIONS itself. answered says the request has been answered
// (err is what answering returned).
func (g *Gateway) admit(c echo.Context) (ts *tenantState, answered bool, err error) {
	r := c.Request()
	ts = g.lookup(c, r.URL.Path)
	if ts == nil {
		return nil, true, g.notFoundNear(c, r.URL.Path, func(t *tenants.Tenant) string { return t.Resource })
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		// A browser page from another origin must not reach the tools: this
		// is the DNS-rebinding defence the MCP transport requires.
		if !g.originAllowed(ts, origin) {
			return nil, true, g.refuse(c, ts, ts.audit(), forbiddenOrigin)
		}
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	}
	methods := ts.server.Methods()
	if r.Method == http.MethodOptions {
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", "86400")
		return nil, true, c.NoContent(http.StatusNoContent)
	}
	if takes(methods, r.Method) {
		return ts, false, nil
	}
	c.Response().Header().Set("Allow", methods)
	return nil, true, g.refuse(c, ts, ts.audit(), methodNotAllowed(methods))
}

// takes reports whether methods, a list as an Allow header gives it (a
// server's Methods), holds method.
func takes(methods, method string) bool {
	for m := range strings.SplitSeq(methods, ", ") {
		if m == method {
			return true
		}
	}
	return false
}

// authenticate applies the tenant's rate limit, reads the bearer token and
// verifies it; it returns the token for an upstream's token exchange.
func (g *Gateway) authenticate(c echo.Context, ts *tenantState, audit *auditRecord) (p *providers.Principal, token string, answered bool, err error) {
	r := c.Request()
	t := ts.tenant
	// Before the token, so that a flood costs no verification.
	if ts.requests != nil && !ts.requests.Allow() {
		return nil, "", true, g.rateLimited(c, ts, ts.requests, 1)
	}
	token, ch := bearerToken(r)
	if ch == nil && token == "" {
		ch = noCredentials(ts)
	}
	if ch != nil {
		return nil, "", true, g.refuse(c, ts, audit, *ch)
	}
	verifyStart := time.Now()
	p, _, err = g.verify(c, ts.verifier, token)
	g.opts.Metrics.verified(r.Context(), t.ID, outcome(err), time.Since(verifyStart))
	if err != nil && g.stopping.Err() != nil {
		return nil, "", true, g.refuse(c, ts, audit, shuttingDown)
	}
	if err != nil && providers.ClassOf(err) == providers.ClassInternal {
		// The client is told nothing of the cause; the operator must be.
		g.log.ErrorContext(r.Context(), "token verification failed: the tenant's provider settings or its authorization server need an operator (answered 503)",
			"tenant", t.ID, "request_id", RequestIDFrom(r.Context()), "err", bounded(err.Error()),
			"fix", "run: todo-gateway providers --config FILE --tenant "+t.ID+" (and todo-gateway token for one token)")
	}
	if err != nil {
		return nil, "", true, g.refuse(c, ts, audit, g.verifyChallenge(ts, err))
	}
	audit.principal(p)
	return p, token, false, nil
}

// read reads the request body within the body limit, refusing what cannot
// be read as JSON text: too large, or compressed.
func (g *Gateway) read(c echo.Context, ts *tenantState, audit *auditRecord) (body []byte, answered bool, err error) {
	r := c.Request()
	limit := g.opts.BodyLimit
	if s := ts.tenant.Server; s != nil && s.BodyLimit > 0 { // an upstream tenant's own
		limit = s.BodyLimit
	}
	if r.ContentLength > limit {
		return nil, true, g.refuse(c, ts, audit, tooLarge(limit))
	}
	if enc := r.Header.Get(echo.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		// Decoding would be parsing garbage, or a decompression bomb.
		return nil, true, g.refuse(c, ts, audit, unsupportedEncoding(enc))
	}
	if _, params, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); err == nil {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return nil, true, g.refuse(c, ts, audit, unsupportedCharset(cs))
		}
	}
	body, err = readBody(r, limit)
	if errors.Is(err, errBodyTooLarge) {
		return nil, true, g.refuse(c, ts, audit, tooLarge(limit))
	}
	if err != nil {
		return nil, true, g.refuse(c, ts, audit, unreadableBody)
	}
	return body, false, nil
}

// cachedVerifier is a verifier that answers tokens it has verified before
// without waiting on anything (providers.Provider).
type cachedVerifier interface {
	Cached(token string) (*providers.Principal, bool)
}

// verify verifies the token of c's request. One verified before answers
// from the cache; any other is verified under a context that ends when the
// client goes away or the gateway shuts down (StopWaiting), and names the
// client's address (its share of an introspection budget). Deriving that
// context (a cancel and a hook on g.stopping) cost a cached token more
// than its lookup.
func (g *Gateway) verify(c echo.Context, v providers.Verifier, token string) (p *providers.Principal, cached bool, err error) {
	ctx, traced := g.traceVerification(c.Request().Context())
	defer func() { traced(cached, err) }()
	if cv, ok := v.(cachedVerifier); ok {
		if p, ok := cv.Cached(token); ok {
			return p, true, nil
		}
	}
	vctx, cancel := context.WithCancel(providers.WithSource(ctx, c.RealIP()))
	defer cancel()
	defer context.AfterFunc(g.stopping, cancel)()
	p, err = v.Verify(vctx, token)
	return p, false, err
}

// authorize reads the call of one JSON-RPC message to the todo server and
// decides it: the fast path's reading when it takes the message (decoded
// once, for the check as for dispatch; FuzzFastPath holds it equal to
// peekCall's), else peekCall's. The 2026-07-28 routing headers must agree
// with the body. A body that is no JSON-RPC request is left for mcp-go to
// answer with the proper JSON-RPC error: nothing is decided about it.
// answered says the request has been refused (err is what refusing
// returned); call is what dispatch hands the server.
func (g *Gateway) authorize(c echo.Context, ts *tenantState, srv *todo.Server, audit *auditRecord, p *providers.Principal, body []byte) (call todo.Call, answered bool, err error) {
	r := c.Request()
	if r.Method == http.MethodPost {
		g.traceFromMeta(c, body)
		call = srv.Read(r.Header, body)
		if !call.Fast() {
			if ch := messageProblem(body); ch != nil {
				return call, true, g.refuse(c, ts, audit, *ch)
			}
		}
	}
	var miss []missing
	if rc, ok := peekFast(call, body); ok {
		audit.method, audit.tool = rc.Method, rc.Tool
		if err := checkHeaders(r.Header, rc); err != nil {
			return call, true, g.refuse(c, ts, audit, headerMismatch(err, body))
		}
		if refused, err := g.chargeCalls(c, ts, []rpcCall{rc}); refused {
			return call, true, err
		}
		miss = missingPermissions(ts.server, p, rc)
	}
	refused, err := g.decide(c, ts, audit, p, miss)
	return call, refused, err
}

// peekFast is peekCall(body), read from the fast path's call when it took
// the message.
func peekFast(call todo.Call, body []byte) (rpcCall, bool) {
	if call.Fast() {
		return rpcCall{Method: string(mcpgo.MethodToolsCall), Tool: call.Tool()}, true
	}
	return peekCall(body)
}

// decide is the authorization decision on calls that need the permissions
// miss, which p lacks: none missing is allowed; otherwise the answer is the
// tenant's choice, the 403 step-up (refused, and err is what sending it
// returned) or, with tool_error, the calls run and their tools answer with
// the tool error; the audit line says deny either way.
func (g *Gateway) decide(c echo.Context, ts *tenantState, audit *auditRecord, p *providers.Principal, miss []missing) (refused bool, err error) {
	ctx := c.Request().Context()
	if len(miss) == 0 {
		audit.allow(g.log, ctx)
		g.opts.Metrics.decision(audit.tenant, "allow", "")
		return false, nil
	}
	ch := stepUp(ts.tenant, p, c.Request().Header.Get(mcpgo.HeaderProtocolVersion), miss)
	if ts.tenant.MissingPermission != tenants.MissingPermissionToolError {
		return true, g.refuse(c, ts, audit, ch)
	}
	audit.log(g.log, ctx, "deny", ch.code+": "+ch.description+" (answered as a tool error)", http.StatusOK)
	g.opts.Metrics.decision(audit.tenant, "deny", ch.code)
	return false, nil
}

// dispatch hands one authorized JSON-RPC message, body, to the todo server
// with the principal in the context its tools receive, and call, what
// authorize read of it. A plain-text refusal of mcp-go's is answered as a
// JSON-RPC error (jsonRefusals).
func (g *Gateway) dispatch(c echo.Context, srv *todo.Server, p *providers.Principal, body []byte, call todo.Call) {
	r := c.Request()
	w := &jsonRefusals{ResponseWriter: c.Response(), request: body, stream: todo.Streams(r.Header)}
	srv.Serve(todo.WithPrincipal(r.Context(), p), w, r, body, call)
	w.finish()
}

// jsonRefusals is the response as mcp-go writes it, except that a refusal
// mcp-go writes as plain text ("Invalid content type", "Unsupported
// protocol version", a session error) is sent as a JSON-RPC error with the
// same status and the request's id: every refusal of the gateway is JSON.
// The todo server is stateless and its tools send no notifications, so
// nothing is streamed but a subscriptions/listen: CanStream false keeps
// every other answer one application/json body and spares mcp-go setting
// up a stream per request.
// (A batch's messages are answered to a recorder instead.)
type jsonRefusals struct {
	http.ResponseWriter
	request []byte // the body, for the error's id
	// stream: the answer is the SSE stream of a subscriptions/listen
	// (todo.Streams), the one answer that streams.
	stream bool
	// status is the plain-text refusal held back (0: none); text, its
	// message, at most maxRefusalText bytes of it.
	status int
	text   []byte
}

// maxRefusalText bounds the message of a refusal: mcp-go's quote the
// client's header values.
const maxRefusalText = 256

func (w *jsonRefusals) WriteHeader(status int) {
	if status >= http.StatusBadRequest && strings.HasPrefix(w.Header().Get(echo.HeaderContentType), echo.MIMETextPlain) {
		w.status = status
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *jsonRefusals) Write(b []byte) (int, error) {
	if w.status == 0 {
		return w.ResponseWriter.Write(b)
	}
	if room := maxRefusalText - len(w.text); room > 0 {
		w.text = append(w.text, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

func (w *jsonRefusals) CanStream() bool { return w.stream }

func (w *jsonRefusals) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && w.stream {
		f.Flush()
	}
}

// finish sends the refusal held back, if any.
func (w *jsonRefusals) finish() {
	if w.status == 0 {
		return
	}
	w.Header().Del("X-Content-Type-Options")
	writeRPCError(w.ResponseWriter, w.status, requestID(w.request), refusalCode(w.status), strings.TrimSpace(string(w.text)))
}

// refusalCode is the JSON-RPC code of a refusal of the transport: the
// request is invalid (4xx), or the server failed (5xx).
func refusalCode(status int) int {
	if status >= http.StatusInternalServerError {
		return mcpgo.INTERNAL_ERROR
	}
	return mcpgo.INVALID_REQUEST
}

// VerificationAnswer is the gateway's answer to a failed verification: the
// HTTP status, the error code and the error_description. A bad token is the
// client's to fix (401); an unreachable issuer is ours (503, so the client
// retries instead of throwing its token away); anything else is a 500 that
// says nothing of the cause. The token command shows the same answer.
func VerificationAnswer(err error) (status int, code, description string) {
	class := providers.ClassOf(err)
	a := answerFor(class)
	if class == providers.ClassInternal {
		return a.status, a.code, MisconfiguredReason
	}
	var ve *providers.Error
	reason := "the token could not be verified"
	if errors.As(err, &ve) && ve.Reason != "" {
		reason = ve.Reason
	}
	return a.status, a.code, reason
}

func (g *Gateway) verifyChallenge(ts *tenantState, err error) challenge {
	status, code, desc := VerificationAnswer(err)
	ch := challenge{status: status, code: code, description: desc}
	switch status {
	case http.StatusUnauthorized:
		ch.scope = ts.allScopes
	case http.StatusServiceUnavailable:
		ch.retryAfter = int(g.opts.RetryAfter / time.Second)
		if d := providers.RetryAfterOf(err); d > 0 { // sooner: a spent introspection budget
			ch.retryAfter = int((d + time.Second - 1) / time.Second)
		}
	}
	return ch
}

// requestsPerCall is how many requests of any kind a tenant's rate_limit
// admits for each tool call it allows: a client's handshake
// (initialize, notifications/initialized, the GET of its stream),
// listings and pings ride along with its calls, and a flood is still
// refused before verification.
const requestsPerCall = 10

// rateLimited answers a request over one of the tenant's buckets, lim:
// 429, with Retry-After the whole seconds until lim holds what the request
// needs (need: one request, or a body's tool calls). No audit line:
// nothing was decided about any caller, and the access line records the
// 429.
func (g *Gateway) rateLimited(c echo.Context, ts *tenantState, lim *rate.Limiter, need int) error {
	g.opts.Metrics.rateLimit(ts.tenant.ID)
	wait := (float64(need) - lim.Tokens()) / float64(lim.Limit())
	retry := max(1, int(math.Ceil(wait)))
	c.Response().Header().Set("Retry-After", strconv.Itoa(retry))
	return jsonError(c, http.StatusTooManyRequests, "rate_limited",
		"too many requests to this MCP server; retry after "+strconv.Itoa(retry)+" s")
}

// chargeCalls counts a body's tool calls against the tenant's rate limit,
// once the body is read and before any of them runs: rate_limit counts
// tool calls, each message of a batch on its own (a batch of 100 creates
// is 100). A batch with more calls than the bucket can ever hold is
// refused for its size, since waiting would not help.
func (g *Gateway) chargeCalls(c echo.Context, ts *tenantState, calls []rpcCall) (refused bool, err error) {
	if ts.calls == nil {
		return false, nil
	}
	n := 0
	for _, rc := range calls {
		if rc.Method == string(mcpgo.MethodToolsCall) {
			n++
		}
	}
	if n == 0 {
		return false, nil
	}
	if burst := ts.calls.Burst(); n > burst {
		g.opts.Metrics.rateLimit(ts.tenant.ID)
		return true, jsonError(c, http.StatusTooManyRequests, "rate_limited",
			"a batch of "+strconv.Itoa(n)+" tool calls is more than this MCP server's rate limit allows at once ("+strconv.Itoa(burst)+"): send smaller batches")
	}
	if !ts.calls.AllowN(time.Now(), n) {
		return true, g.rateLimited(c, ts, ts.calls, n)
	}
	return false, nil
}

// refuse answers with the challenge and writes the audit line. Refusals of
// the credentials carry WWW-Authenticate; the others are plain JSON errors.
func (g *Gateway) refuse(c echo.Context, ts *tenantState, audit *auditRecord, ch challenge) error {
	closeUnread(c)
	audit.deny(g.log, c.Request().Context(), ch)
	g.opts.Metrics.decision(audit.tenant, "deny", reasonLabel(ch))
	if !ch.plain && ch.status != http.StatusServiceUnavailable && ch.status != http.StatusInternalServerError {
		return ch.write(c, ts.metadataURL)
	}
	if ch.retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(ch.retryAfter))
	}
	if ch.rpcCode != 0 {
		writeRPCError(c.Response(), ch.status, ch.rpcID, ch.rpcCode, ch.description)
		return nil
	}
	return jsonError(c, ch.status, ch.code, ch.description)
}

func (g *Gateway) originAllowed(ts *tenantState, origin string) bool {
	if origin == ts.origin {
		return true
	}
	for _, o := range g.opts.AllowedOrigins {
		if o == "*" || o == origin {
			return true
		}
	}
	return false
}

// outcome labels a verification result for the latency histogram.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return answerFor(providers.ClassOf(err)).outcome
}

// reasonLabel is a refusal's bounded reason: its error code.
func reasonLabel(ch challenge) string {
	if ch.code == "" {
		return "no_credentials"
	}
	return ch.code
}
