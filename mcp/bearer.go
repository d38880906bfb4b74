package mcp

import (
	"net/http"
	"strings"

	"github.com/todo-gateway/todo-gateway/providers"
)

// bearerToken extracts the access token from the request. Only the
// Authorization header is accepted (bearer_methods_supported: header):
// a token in the query string is refused outright, since URLs end up in logs.
// With no credentials at all it returns "" and a nil challenge.
func bearerToken(r *http.Request) (token string, ch *challenge) {
	if r.URL.RawQuery != "" && r.URL.Query().Has("access_token") { // parsing builds a map
		return "", &tokenInQuery
	}
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", &manyAuthorizations
	}
	scheme, rest, found := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &notBearer
	}
	token = strings.TrimLeft(rest, " ")
	if !found || token == "" {
		return "", &emptyBearer
	}
	if !providers.ValidTokenSyntax(token) {
		return "", &badTokenSyntax
	}
	return token, nil
}
