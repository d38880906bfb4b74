package mcp

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// RFC 6750 error codes used in challenges.
const (
	errInvalidRequest    = "invalid_request"
	errInvalidToken      = "invalid_token"
	errInsufficientScope = "insufficient_scope"
	errUnavailable       = "temporarily_unavailable"
)

// challenge is one refusal of the bearer layer: the HTTP status, the RFC 6750
// error code (empty when the request simply carried no credentials) and what
// the WWW-Authenticate header and JSON body tell the client.
type challenge struct {
	status      int
	code        string
	description string
	// scope lists the scopes to ask for: every scope of the tenant on a 401,
	// the missing ones on a 403.
	scope string
	// retryAfter, in seconds, for 503.
	retryAfter int
	// plain marks a refusal that is not about the credentials (a body too
	// large, headers that disagree with it): a JSON error, no WWW-Authenticate.
	plain bool
	// rpcCode, when not 0, makes a plain refusal of the MCP layer a
	// JSON-RPC error with this code and the request's id, rpcID, as an MCP
	// client expects (the header mismatch of 2026-07-28 is -32020).
	rpcCode int
	rpcID   any
}

// header renders the WWW-Authenticate value. resource_metadata always comes
// along so a client can (re)discover the authorization server.
func (ch challenge) header(metadataURL string) string {
	var b strings.Builder
	b.WriteString("Bearer ")
	var params []string
	if ch.code != "" {
		params = append(params, `error="`+headerSafe(ch.code)+`"`)
		if ch.description != "" {
			params = append(params, `error_description="`+headerSafe(ch.description)+`"`)
		}
	}
	params = append(params, `resource_metadata="`+headerSafe(metadataURL)+`"`)
	if ch.scope != "" {
		params = append(params, `scope="`+headerSafe(ch.scope)+`"`)
	}
	b.WriteString(strings.Join(params, ", "))
	return b.String()
}

// write sends the challenge: the header and a JSON body with error and
// error_description (RFC 6749 §5.2 names), never the token.
func (ch challenge) write(c echo.Context, metadataURL string) error {
	h := c.Response().Header()
	h.Set(echo.HeaderWWWAuthenticate, ch.header(metadataURL))
	if ch.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ch.retryAfter))
	}
	h.Set("Cache-Control", "no-store")
	code := ch.code
	if code == "" {
		code = "unauthorized"
	}
	desc := ch.description
	if desc == "" {
		desc = http.StatusText(ch.status)
	}
	return c.JSON(ch.status, errorBody{Error: code, Description: desc})
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// headerSafe keeps a value legal inside a quoted auth-param: RFC 6750 forbids
// '"' and '\' in error and error_description, and control characters would
// break the header.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == '\\':
			return '\''
		case r < 0x20 || r == 0x7f:
			return ' '
		case r > 0x7e: // keep headers ASCII
			return '?'
		}
		return r
	}, s)
}
