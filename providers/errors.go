package providers

import (
	"fmt"
	"strings"
)

// Reasons end up in a WWW-Authenticate error_description, so each is plain
// text without '"' or '\' and never echoes the token or a secret. A value
// taken from the token (typ, alg) passes through safeDetail first.
const (
	reasonEmpty             = "token is empty"
	reasonTooLarge          = "token is larger than 16 KiB"
	reasonBadChars          = "token contains characters not allowed in a bearer token"
	reasonNotCanonical      = "token is not a JWT this provider issued: a segment is not canonical base64url (its last character has unused bits set)"
	reasonMalformed         = "token is not a well-formed JWT"
	reasonJWE               = "encrypted tokens are not supported"
	reasonUnsupported       = "token uses an unsupported signing algorithm"
	reasonAlgNone           = "unsigned tokens (alg none) are not accepted"
	reasonAlgHMAC           = "symmetric signing algorithms are not accepted"
	reasonCrit              = "critical header parameters are not supported"
	reasonNoType            = "token has no typ header"
	reasonUnknownKey        = "token signing key is unknown"
	reasonBadSignature      = "token signature is invalid"
	reasonClaims            = "token claims are not a JSON object"
	reasonIssuer            = "token was issued by a different authorization server"
	reasonNoIssuer          = "token has no issuer"
	reasonExpired           = "token has expired"
	reasonNoExpiry          = "token has no expiry"
	reasonNotYetValid       = "token is not valid yet"
	reasonIssuedFuture      = "token was issued in the future"
	reasonNoSubject         = "token has no subject"
	reasonNoAudience        = "token has no audience"
	reasonAudResource       = "token audience does not include this resource"
	reasonAudValues         = "token audience is not accepted by this resource"
	reasonInactive          = "token is not active"
	reasonNotAccess         = "token is not an access token"
	reasonClientNotAccepted = "token was issued to a client this resource does not accept"

	reasonIssuerDown     = "authorization server is temporarily unavailable"
	reasonKeysDown       = "signing keys are temporarily unavailable"
	reasonIntrospectDown = "token introspection is temporarily unavailable"
	reasonCancelled      = "verification was cancelled before the authorization server answered"
	reasonIntrospectBusy = "too many new tokens to introspect for this resource right now; retry shortly"

	reasonIssuerMismatch   = "authorization server metadata names a different issuer"
	reasonNoJWKS           = "authorization server publishes no JWKS"
	reasonNoIntrospect     = "authorization server publishes no introspection endpoint"
	reasonIntrospectDenied = "introspection endpoint refused the gateway credentials"
	reasonIntrospectBroken = "introspection endpoint answered with an error"
)

func reasonAlgNotAllowed(alg string) string {
	return "signing algorithm " + safeDetail(alg) + " is not allowed"
}

func reasonType(typ string) string {
	return "token type " + safeDetail(typ) + " is not accepted"
}

func reasonClaimType(claim string) string {
	return "claim " + safeDetail(claim) + " has the wrong type"
}

func invalid(reason string, cause error) *Error {
	return &Error{Class: ClassInvalidToken, Reason: reason, Err: cause}
}

func unavailable(reason string, cause error) *Error {
	return &Error{Class: ClassUnavailable, Reason: reason, Err: cause}
}

func internal(reason string, cause error) *Error {
	return &Error{Class: ClassInternal, Reason: reason, Err: cause}
}

// safeDetail shrinks a value an attacker may control to a short run of
// harmless characters, so it can be quoted in a reason.
func safeDetail(s string) string {
	const maxLen = 40
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxLen {
			b.WriteString("...")
			break
		}
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			b.WriteRune(r)
		case strings.ContainsRune("+-./:_", r):
			b.WriteRune(r)
		default:
			b.WriteRune('?')
		}
	}
	if b.Len() == 0 {
		return "(empty)"
	}
	return b.String()
}

// IssuerMismatchError says that a metadata document names another issuer
// than the one configured (RFC 8414 §3.3, OpenID Discovery §4.3): usually a
// trailing slash or a wrong tenant path in the configuration.
type IssuerMismatchError struct {
	URL        string // where the document was read
	Configured string
	Discovered string
}

func (e *IssuerMismatchError) Error() string {
	return fmt.Sprintf("metadata at %s names issuer %q but the tenant is configured with issuer %q", e.URL, e.Discovered, e.Configured)
}

// StatusError is a non-success HTTP answer from the authorization server.
type StatusError struct {
	Method string // the request's method: GET for metadata and keys, POST for introspection
	URL    string
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.Status)
}
