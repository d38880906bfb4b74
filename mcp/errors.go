package mcp

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// verificationAnswer is the edge's answer to one class of failed token
// verification.
type verificationAnswer struct {
	status int
	code   string // RFC 6750 error code
	// outcome labels the verification latency metric.
	outcome string
}

// verificationAnswers, by class: a bad token is the client's to fix (401);
// an unreachable issuer is ours (503, so the client retries instead of
// throwing its token away); anything else is an operator's mistake found
// at request time (a wrong introspection path, refused gateway
// credentials, an issuer that publishes no keys), answered as a
// misconfigured tenant is: 503 with Retry-After, saying nothing of the
// cause, which the log line names (serve.go) and the verification metric
// counts ("error").
var verificationAnswers = [...]verificationAnswer{
	providers.ClassInvalidToken: {http.StatusUnauthorized, errInvalidToken, "invalid"},
	providers.ClassUnavailable:  {http.StatusServiceUnavailable, errUnavailable, "unavailable"},
	providers.ClassInternal:     {http.StatusServiceUnavailable, errUnavailable, "error"},
}

func answerFor(class providers.Class) verificationAnswer {
	if int(class) < 0 || int(class) >= len(verificationAnswers) {
		return verificationAnswers[providers.ClassInternal]
	}
	return verificationAnswers[class]
}

// jsonError answers with the gateway's one error shape.
func jsonError(c echo.Context, status int, code, description string) error {
	closeUnread(c)
	return c.JSON(status, errorBody{Error: code, Description: description})
}

// closeUnread makes an answer sent before the request's body was read
// (readBody) the connection's last, sent at once. Otherwise net/http reads
// what is left of a body under 256 KiB before it writes the answer, so
// that a refusal of a body sent one byte a second (a 401 for want of a
// token, a 413 by Content-Length) would wait for the whole body. With
// Connection: close it writes at once; the read deadline in the past ends
// the read it still makes of the body when the handler returns. The
// connection then closes with a lingering close (Linger), so that a client
// still sending the body gets the answer rather than a reset.
func closeUnread(c echo.Context) {
	r := c.Request()
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	c.Response().Header().Set(echo.HeaderConnection, "close")
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Unix(1, 0))
	lingerOnClose(r.Context())
}

const noServerHere = "no MCP server is configured at this URL"

func notFound(c echo.Context) error {
	return jsonError(c, http.StatusNotFound, "not_found", noServerHere)
}

// notFoundNear is the 404 of a URL that is no tenant's, naming the URL it
// probably meant when there is one (tenants.Snapshot.Near): a trailing
// slash, the case of the path, localhost for 127.0.0.1. meant maps the
// tenant to that URL (its resource, or its metadata URL).
func (g *Gateway) notFoundNear(c echo.Context, path string, meant func(*tenants.Tenant) string) error {
	gen := g.current.Load()
	if gen == nil {
		return notFound(c)
	}
	t, ok := gen.snap.Near(c.Request().Host, path)
	if !ok {
		return notFound(c)
	}
	return jsonError(c, http.StatusNotFound, "not_found", noServerHere+"; did you mean "+meant(t)+"?")
}

// errorHandler renders errors that escaped a handler (echo's own 404/405,
// a recovered panic) in the same JSON shape, without internal detail.
func (g *Gateway) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code, desc := http.StatusInternalServerError, "server_error", "internal server error"
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code != http.StatusInternalServerError {
		status, code, desc = he.Code, "request_error", http.StatusText(he.Code)
		if status == http.StatusNotFound {
			code, desc = "not_found", noServerHere
		}
	} else {
		g.log.Error("request failed", "request_id", RequestIDFrom(c.Request().Context()), "err", bounded(err.Error()))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = jsonError(c, status, code, desc)
}
