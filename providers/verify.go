package providers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"time"
)

// MaxTokenBytes bounds a bearer token: anything larger is rejected before
// it is parsed, so a huge header cannot buy CPU time.
const MaxTokenBytes = 16 << 10

// verifiedCacheMaxTTL bounds how long a verified JWT is answered from the
// cache, so that a key the issuer withdraws stops working within minutes
// even for long-lived tokens.
const verifiedCacheMaxTTL = 10 * time.Minute

// Verify checks a raw bearer token and returns who it speaks for. Errors are
// always *Error: ClassInvalidToken for a token that must be refused,
// ClassUnavailable while the authorization server cannot be reached, and
// ClassInternal for a misconfiguration.
//
// With a Trace in ctx (WithTrace), every check is recorded as it is made.
func (p *Provider) Verify(ctx context.Context, raw string) (*Principal, error) {
	tr := traceFrom(ctx)
	if err := checkSyntax(raw); err != nil {
		return nil, tr.fail(stepToken, err)
	}
	// In token mode jwt every token is read as a JWS: a re-spelling is
	// refused before it can cost a cache lookup, let alone a verification.
	if p.mode == TokenJWT {
		if err := checkSpelling(raw); err != nil {
			return nil, tr.fail(stepToken, err)
		}
	}
	// A traced call verifies from scratch: a cache hit would explain
	// nothing.
	if tr == nil {
		if pr, ok := p.lookupVerified(raw); ok {
			return pr, nil
		}
	}
	var (
		pr  *Principal
		err error
	)
	switch p.mode {
	case TokenIntrospection:
		tr.add(stepToken, true, "token mode introspection: the authorization server is asked")
		pr, err = p.introspect(ctx, raw, tr)
	case TokenAuto:
		if jws := parseCompactJWS(raw); jws != nil {
			// Only a token read as a JWS has a spelling to check: an opaque
			// token is the authorization server's string, dots and all.
			// Re-spellings are never cached (they are refused here, before
			// verification), so checking after the cache lookup costs the
			// hits nothing and lets no re-spelling through.
			if err := checkSpelling(raw); err != nil {
				return nil, tr.fail(stepToken, err)
			}
			tr.add(stepToken, true, "token mode auto: a compact JWS, so verified as a JWT")
			pr, err = p.verifyJWT(ctx, raw, jws, tr)
		} else {
			tr.add(stepToken, true, "token mode auto: not a compact JWS, so the authorization server is asked")
			pr, err = p.introspect(ctx, raw, tr)
		}
	default:
		tr.add(stepToken, true, "token mode jwt: verified as a JWT against the issuer's keys")
		pr, err = p.verifyJWT(ctx, raw, nil, tr)
	}
	if err != nil {
		return nil, err
	}
	if p.verified != nil && pr.Kind == TokenKindJWT {
		p.verified.put(tokenKey("", raw), pr, earliest(pr.Expiry, p.now().Add(verifiedCacheMaxTTL)))
	}
	return pr, nil
}

// Cached answers a JWT that Verify verified before and whose answer is
// still cached, and only that: it never waits on anything, so the caller
// needs no context to bound it. Verify answers everything else.
func (p *Provider) Cached(raw string) (*Principal, bool) {
	if checkSyntax(raw) != nil || p.mode == TokenJWT && checkSpelling(raw) != nil {
		return nil, false
	}
	return p.lookupVerified(raw)
}

// lookupVerified is the verified-token cache's answer for a token whose
// syntax (and, in token mode jwt, spelling) was checked already.
func (p *Provider) lookupVerified(raw string) (*Principal, bool) {
	if p.verified == nil {
		return nil, false
	}
	return p.verified.get(tokenKey("", raw), p.now())
}

// tokenKeyBufs hold a token while it is hashed: sha256.Sum256 takes bytes,
// and converting a token of hundreds of bytes allocates as much on every
// request, where the cache hit it looks up allocates nothing.
var tokenKeyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// tokenKey is the SHA-256 of prefix and raw, the key of the token caches,
// which hold no raw token: the buffer it is hashed in is cleared before it
// goes back to the pool.
func tokenKey(prefix, raw string) [32]byte {
	bp := tokenKeyBufs.Get().(*[]byte)
	b := append(append((*bp)[:0], prefix...), raw...)
	key := sha256.Sum256(b)
	clear(b)
	if cap(b) <= MaxTokenBytes+1024 { // a prefix is a tenant id, far shorter
		*bp = b
		tokenKeyBufs.Put(bp)
	}
	return key
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// checkSyntax rejects what cannot be a bearer token before any parsing:
// empty, oversized, or not RFC 6750's b64token.
func checkSyntax(raw string) error {
	switch {
	case len(raw) > MaxTokenBytes:
		return invalid(reasonTooLarge, nil)
	case strings.TrimSpace(raw) == "":
		return invalid(reasonEmpty, nil)
	case !ValidTokenSyntax(raw):
		return invalid(reasonBadChars, nil)
	}
	return nil
}

// strictSegment decodes base64url without padding and refuses a last
// character whose unused low bits are set (RFC 4648 §3.5).
var strictSegment = base64.RawURLEncoding.Strict()

// checkSpelling refuses a compact JWS whose segments are not in their one
// canonical base64url form. The JOSE libraries decode leniently, ignoring
// the unused low bits of a segment's last character, so without this one
// signed token has many spellings (256 for a typical RS256 token), each
// verifying, each a cache entry of its own and a full verification: a way
// to make the gateway verify the same token over and over and to evict
// other users' cached tokens.
//
// Those bits are all in a segment's final, partial group of base64
// characters (2 or 3 of them; the full groups of 4 have none), so only that
// group is decoded, strictly: this runs before the verified-token cache on
// every request. A segment that is not base64url at all is left to the JWS
// parser, which names the problem.
func checkSpelling(raw string) error {
	if strings.Count(raw, ".") != 2 {
		return nil // not a compact JWS: the parser refuses it
	}
	for seg := range strings.SplitSeq(raw, ".") {
		tail := []byte(seg[len(seg)-len(seg)%4:])
		var buf [3]byte
		if _, err := strictSegment.Decode(buf[:], tail); err == nil {
			continue
		}
		if _, err := base64.RawURLEncoding.Decode(buf[:], tail); err == nil {
			return invalid(reasonNotCanonical, nil)
		}
	}
	return nil
}

// ValidTokenSyntax reports whether s is an RFC 6750 §2.1 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// It checks the syntax only, not the length (see MaxTokenBytes).
func ValidTokenSyntax(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := range len(body) {
		if !b64token[body[i]] {
			return false
		}
	}
	return true
}

// b64token marks the bytes of a b64token before its padding: a table,
// since every request checks hundreds of them twice (bearer and verify),
// which the comparisons made the gateway's costliest function of its own.
var b64token = func() (t [256]bool) {
	for c := range 256 {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			t[c] = true
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/':
			t[c] = true
		}
	}
	return t
}()
