package mcp

import (
	"net/http"
	"strconv"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// The refusals of an MCP endpoint, in one place: what each says and with
// which status and shape. Every one is answered through Gateway.refuse,
// which writes its audit line and counts it. Refusals of the credentials
// (noCredentials, the bearer refusals, a failed verification from
// VerificationAnswer, the step-up of stepUp) carry WWW-Authenticate;
// refusals of the request are plain JSON errors, or JSON-RPC errors with
// the request's id where an MCP client reads one. The refusals that come
// before a tenant is known (404) and the rate limit's 429, which decides
// nothing about a caller, are answered by jsonError and rateLimited.

// noCredentials: no Authorization header; the scope names every scope of
// the tenant, so a client can ask for them at once.
func noCredentials(ts *tenantState) *challenge {
	return &challenge{status: http.StatusUnauthorized, scope: ts.allScopes, description: "an access token is required"}
}

// The malformed credentials, 400 invalid_request (bearerToken).
var (
	tokenInQuery = challenge{status: http.StatusBadRequest, code: errInvalidRequest,
		description: "access tokens in the query string are not accepted; send an Authorization: Bearer header"}
	manyAuthorizations = challenge{status: http.StatusBadRequest, code: errInvalidRequest,
		description: "more than one Authorization header"}
	notBearer = challenge{status: http.StatusBadRequest, code: errInvalidRequest,
		description: "the Authorization header must use the Bearer scheme"}
	emptyBearer = challenge{status: http.StatusBadRequest, code: errInvalidRequest,
		description: "the Authorization header has no token after Bearer"}
	badTokenSyntax = challenge{status: http.StatusBadRequest, code: errInvalidRequest,
		description: "the bearer token contains characters a token cannot have"}
)

// shuttingDown answers a request whose verification the shutdown cut
// short: another instance, or this one restarted, can answer it at once.
var shuttingDown = challenge{status: http.StatusServiceUnavailable, code: errUnavailable, retryAfter: 1,
	description: "the gateway is shutting down; retry the request"}

// forbiddenOrigin: a browser page of another origin (the DNS-rebinding
// defence the MCP transport requires).
var forbiddenOrigin = challenge{status: http.StatusForbidden, code: "forbidden_origin", plain: true,
	description: "requests from this Origin are not allowed"}

// methodNotAllowed: an HTTP method the tenant's server does not take
// (methods, as the Allow header lists them).
func methodNotAllowed(methods string) challenge {
	return challenge{status: http.StatusMethodNotAllowed, code: "method_not_allowed", plain: true,
		description: "this MCP endpoint accepts " + methods}
}

// tooLarge: a body over the limit, by Content-Length or as read.
func tooLarge(limit int64) challenge {
	return challenge{status: http.StatusRequestEntityTooLarge, code: errInvalidRequest, plain: true,
		description: "the request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"}
}

// unsupportedEncoding: a compressed body, which is not decoded (parsing
// garbage, or a decompression bomb).
func unsupportedEncoding(enc string) challenge {
	return challenge{status: http.StatusUnsupportedMediaType, code: "unsupported_content_encoding", plain: true,
		description: "request bodies are not decoded: send the JSON without Content-Encoding (got " + quoteBounded(enc) + ")"}
}

// unsupportedCharset: a body declared in a charset other than UTF-8,
// which JSON-RPC over HTTP is (RFC 8259 §8.1); it would be parsed as UTF-8
// and mean something else.
func unsupportedCharset(charset string) challenge {
	return challenge{status: http.StatusUnsupportedMediaType, code: "unsupported_charset", plain: true,
		description: "request bodies are UTF-8 JSON: send Content-Type: application/json without a charset or with charset=utf-8 (got " + quoteBounded(charset) + ")"}
}

// unreadableBody: the body could not be read (the client stopped sending).
var unreadableBody = challenge{status: http.StatusBadRequest, code: errInvalidRequest, plain: true,
	description: "the request body could not be read"}

// invalidMessage: a JSON-RPC message or batch no server takes, answered
// as a JSON-RPC error with code and the request's id (nil for none).
func invalidMessage(code int, id any, msg string) *challenge {
	return &challenge{status: http.StatusBadRequest, code: errInvalidRequest, description: msg, plain: true, rpcCode: code, rpcID: id}
}

// headerMismatch: a request whose 2026-07-28 routing headers disagree
// with its body.
func headerMismatch(err error, body []byte) challenge {
	return *invalidMessage(mcpgo.HEADER_MISMATCH, requestID(body), err.Error())
}

// notExposed refuses a tool or method the tenant does not expose: 403,
// with a JSON-RPC error, the same for a tool that does not exist and one
// the table leaves out, so that the answer reveals nothing tools/list
// does not.
func notExposed(rc rpcCall, id any) challenge {
	m := missing{method: rc.Method, tool: rc.Tool}
	return challenge{status: http.StatusForbidden, code: "not_exposed", plain: true, rpcCode: mcpgo.INVALID_PARAMS, rpcID: id,
		description: m.what() + " is not available through this gateway"}
}
