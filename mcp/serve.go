package mcp

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/mark3labs/mcp-go/server"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Headers a browser client may send to, and read from, an MCP endpoint.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Accept, Mcp-Protocol-Version, Mcp-Session-Id, Mcp-Method, Mcp-Name, Last-Event-ID"
	corsExposeHeaders = "WWW-Authenticate, Mcp-Protocol-Version, Mcp-Session-Id"
)

// serveMCP is a tenant's MCP endpoint: origin check, bearer verification,
// the step-up check for the called tool, then mcp-go.
func (g *Gateway) serveMCP(c echo.Context) error {
	start := time.Now()
	r := c.Request()
	ts := g.lookup(c, r.URL.Path)
	if ts == nil {
		return notFound(c)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		// A browser page from another origin must not reach the tools: this
		// is the DNS-rebinding defence the MCP transport requires.
		if !g.originAllowed(ts, origin) {
			return jsonError(c, http.StatusForbidden, "forbidden_origin", "requests from this Origin are not allowed")
		}
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	}
	switch r.Method {
	case http.MethodOptions:
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Methods", "POST, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", "86400")
		return c.NoContent(http.StatusNoContent)
	case http.MethodPost, http.MethodDelete:
	default:
		// Stateless and without server-initiated streams: there is nothing
		// to GET, whoever asks.
		c.Response().Header().Set("Allow", "POST, DELETE, OPTIONS")
		return jsonError(c, http.StatusMethodNotAllowed, "method_not_allowed", "this MCP endpoint accepts POST")
	}

	t := ts.tenant
	audit := auditRecord{tenant: t.ID, issuer: t.Provider.Issuer, start: start}
	defer func() { g.opts.Metrics.request(t.ID, audit.tool, c.Response().Status) }()
	token, ch := bearerToken(r)
	if ch == nil && token == "" {
		ch = &challenge{status: http.StatusUnauthorized, scope: ts.allScopes, description: "an access token is required"}
	}
	if ch != nil {
		return g.refuse(c, ts, &audit, *ch)
	}

	verifyStart := time.Now()
	p, err := ts.verifier.Verify(r.Context(), token)
	g.opts.Metrics.verified(t.ID, outcome(err), time.Since(verifyStart))
	if err != nil && providers.ClassOf(err) == providers.ClassInternal {
		// The client is told nothing of the cause; the operator must be.
		g.log.ErrorContext(r.Context(), "token verification failed", "tenant", t.ID, "request_id", RequestIDFrom(r.Context()), "err", err)
	}
	if err != nil {
		return g.refuse(c, ts, &audit, g.verifyChallenge(ts, err))
	}
	audit.principal(p)

	if r.ContentLength > g.opts.BodyLimit {
		return g.refuse(c, ts, &audit, tooLarge(g.opts.BodyLimit))
	}
	body, err := readBody(r, g.opts.BodyLimit)
	if errors.Is(err, errBodyTooLarge) {
		return g.refuse(c, ts, &audit, tooLarge(g.opts.BodyLimit))
	}
	if err != nil {
		return g.refuse(c, ts, &audit, challenge{status: http.StatusBadRequest, code: errInvalidRequest, description: "the request body could not be read", plain: true})
	}
	// A request the fast path answers is decoded once, there; the method
	// and tool it reads are those peekCall would (FuzzFastPath).
	var fc fastCall
	fast := false
	if r.Method == http.MethodPost {
		fc, fast = ts.fast.parse(r.Header, body)
	}
	call, ok := peekFast(fc, fast, body)
	if ok {
		audit.method, audit.tool = call.Method, call.Tool
		if err := checkHeaders(r.Header, call); err != nil {
			return g.refuse(c, ts, &audit, challenge{status: http.StatusBadRequest, code: errInvalidRequest, description: err.Error(), plain: true})
		}
		if call.Method == "tools/call" {
			if perm, needed := RequiredPermission(call.Tool); needed && !p.Has(perm) {
				scope := t.Scope(perm)
				return g.refuse(c, ts, &audit, challenge{status: http.StatusForbidden, code: errInsufficientScope,
					description: "the " + call.Tool + " tool requires the " + scope + " scope", scope: scope})
			}
		}
	}
	audit.allow(g.log, r.Context())
	g.opts.Metrics.decision(t.ID, "allow", "")

	ctx := WithPrincipal(r.Context(), p)
	if fast {
		ts.fast.serve(c.Response(), ctx, r.Header, fc)
		return nil
	}
	// mcp-go's transport-agnostic entry point takes the body already read
	// and peeked, and the principal in the context its tools receive. The
	// checks ServeHTTP would add (CORS, the loopback Host guard, metadata)
	// are the gateway's own, above.
	ts.mcp.Handle(unstreamed{c.Response()}, &server.HTTPRequest{
		Method: r.Method, URL: r.URL, Header: r.Header, Body: body,
		Context: ctx,
	})
	return nil
}

// unstreamed is the response as mcp-go writes it. The endpoints are
// stateless and their tools send no notifications, so nothing is ever
// streamed: CanStream false keeps every answer one application/json body
// and spares mcp-go setting up a stream per request.
type unstreamed struct{ *echo.Response }

func (unstreamed) CanStream() bool { return false }
func (unstreamed) Flush()          {}

// VerificationAnswer is the gateway's answer to a failed verification: the
// HTTP status, the error code and the error_description. A bad token is the
// client's to fix (401); an unreachable issuer is ours (503, so the client
// retries instead of throwing its token away); anything else is a 500 that
// says nothing of the cause. The token command shows the same answer.
func VerificationAnswer(err error) (status int, code, description string) {
	a := answerFor(providers.ClassOf(err))
	if a.status == http.StatusInternalServerError {
		return a.status, a.code, "the token could not be verified because of a server error"
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
	}
	return ch
}

func tooLarge(limit int64) challenge {
	return challenge{status: http.StatusRequestEntityTooLarge, code: errInvalidRequest, plain: true,
		description: "the request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"}
}

// refuse answers with the challenge and writes the audit line. Refusals of
// the credentials carry WWW-Authenticate; the others are plain JSON errors.
func (g *Gateway) refuse(c echo.Context, ts *tenantState, audit *auditRecord, ch challenge) error {
	audit.deny(g.log, c.Request().Context(), ch)
	g.opts.Metrics.decision(audit.tenant, "deny", reasonLabel(ch))
	if !ch.plain && ch.status != http.StatusServiceUnavailable && ch.status != http.StatusInternalServerError {
		return ch.write(c, ts.metadataURL)
	}
	if ch.retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(ch.retryAfter))
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
