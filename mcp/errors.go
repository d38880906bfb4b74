package mcp

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
)

// jsonError answers with the gateway's one error shape.
func jsonError(c echo.Context, status int, code, description string) error {
	return c.JSON(status, errorBody{Error: code, Description: description})
}

func notFound(c echo.Context) error {
	return jsonError(c, http.StatusNotFound, "not_found", "no MCP server is configured at this URL")
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
			code, desc = "not_found", "no MCP server is configured at this URL"
		}
	} else {
		g.log.Error("request failed", "request_id", RequestIDFrom(c.Request().Context()), "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = jsonError(c, status, code, desc)
}
