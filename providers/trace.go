package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Trace records, in order, each check one Verify performs, so that an
// operator can see why a token is accepted or refused ("todo-gateway
// token"). The real verifier writes into it as it goes: there is no second
// verifier that could drift from the one serving requests.
//
// Put a Trace in the context with WithTrace before calling Verify. Without
// one, recording costs a nil check. With one, Verify skips the
// verified-token and introspection caches (a cached answer would explain
// nothing), but still fills them as usual.
//
// Step names, in the order they can occur:
//
//	token          syntax, and JWT or introspection by the tenant's token mode
//	header         the JWS header (alg, kid, typ, crit)
//	algorithm      none and HMAC refused; alg in the allowed list
//	typ            the typ header against the tenant's jwt_types
//	discovery      metadata and endpoints (or the configuration's override)
//	keys           the JWKS: where from, how many keys
//	key            the key the kid selects, and whether the JWKS was refetched
//	signature      the signature against that key
//	introspection  the RFC 7662 call (endpoint, client, HTTP status)
//	active         the introspection answer's active flag
//	token use      token_use, when the answer has one
//	claims         the claims as a whole (JSON object, go-oidc's checks)
//	issuer, expiry, not before, issued at, subject, audience,
//	scopes, roles (with a role or group claim mapped), permissions, client
//
// A Detail never contains the token or a secret, but it may name endpoints
// and repeat what the authorization server answered: it is meant for the
// operator, not for the client presenting the token.
type Trace struct {
	mu    sync.Mutex
	steps []Step
}

// Step is one check and its outcome. Warning, on a step that passed, is
// what the check could not rule out: "todo-gateway token" prints it next
// to its decision.
type Step struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail,omitempty"`
	Warning string `json:"warning,omitempty"`
}

// Step names; see Trace.
const (
	stepToken         = "token"
	stepHeader        = "header"
	stepAlgorithm     = "algorithm"
	stepTyp           = "typ"
	stepDiscovery     = "discovery"
	stepKeys          = "keys"
	stepKey           = "key"
	stepSignature     = "signature"
	stepIntrospection = "introspection"
	stepActive        = "active"
	stepTokenUse      = "token use"
	stepClaims        = "claims"
	stepIssuer        = "issuer"
	stepExpiry        = "expiry"
	stepNotBefore     = "not before"
	stepIssuedAt      = "issued at"
	stepSubject       = "subject"
	stepAudience      = "audience"
	stepScopes        = "scopes"
	stepRoles         = "roles"
	stepPermissions   = "permissions"
	stepClient        = "client"
)

type traceKey struct{}

// WithTrace returns a context that makes Verify record its checks in tr.
func WithTrace(ctx context.Context, tr *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, tr)
}

func traceFrom(ctx context.Context) *Trace {
	tr, _ := ctx.Value(traceKey{}).(*Trace)
	return tr
}

// Steps returns a copy of the steps recorded so far. A background fetch
// that outlives its Verify (after a timeout) may still append to the trace.
func (t *Trace) Steps() []Step {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Step, len(t.steps))
	copy(out, t.steps)
	return out
}

func (t *Trace) count() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.steps)
}

// add records a step; a nil Trace records nothing. Callers that build a
// detail with fmt guard the call with "if tr != nil", so that verification
// without a trace formats nothing.
func (t *Trace) add(name string, ok bool, detail string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.steps = append(t.steps, Step{Name: name, OK: ok, Detail: detail})
	t.mu.Unlock()
}

// warn records a step that passed with what it could not rule out.
func (t *Trace) warn(name, detail, warning string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.steps = append(t.steps, Step{Name: name, OK: true, Detail: detail, Warning: warning})
	t.mu.Unlock()
}

// fail records err as the failed step name and returns err unchanged, so a
// refusal reads "return nil, tr.fail(step, invalid(...))".
func (t *Trace) fail(name string, err error) error {
	if t != nil {
		t.add(name, false, err.Error())
	}
	return err
}

// failWith is fail with the operator's detail (the times of an expired
// token, the audience it names) in place of the error's cause.
func (t *Trace) failWith(name string, err error, detail string) error {
	if t != nil {
		msg := err.Error()
		if e, ok := err.(*Error); ok {
			msg = e.Reason
		}
		t.add(name, false, msg+": "+detail)
	}
	return err
}

// quoted renders a value taken from a token for a trace: quoted, so that
// control characters cannot reach a terminal, and bounded.
func quoted(s string) string {
	const maxLen = 100
	if len(s) > maxLen {
		return strconv.QuoteToASCII(s[:maxLen]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

func quotedList(vals []string) string {
	const maxItems = 8
	parts := make([]string, 0, min(len(vals), maxItems)+1)
	for i, v := range vals {
		if i == maxItems {
			parts = append(parts, fmt.Sprintf("... %d more", len(vals)-maxItems))
			break
		}
		parts = append(parts, quoted(v))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// at renders a token time with its distance from now.
func at(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d > 0:
		return t.UTC().Format(time.RFC3339) + " (in " + d.String() + ")"
	case d < 0:
		return t.UTC().Format(time.RFC3339) + " (" + (-d).String() + " ago)"
	default:
		return t.UTC().Format(time.RFC3339) + " (now)"
	}
}

// describeKey names a JWK the way an operator compares it with the
// issuer's console: kid, type and size.
func describeKey(k *jose.JSONWebKey) string {
	var kind string
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		kind = fmt.Sprintf("RSA %d-bit", pub.N.BitLen())
	case *ecdsa.PublicKey:
		kind = "EC " + pub.Curve.Params().Name
	case ed25519.PublicKey:
		kind = "Ed25519"
	default:
		kind = fmt.Sprintf("%T", k.Key)
	}
	if k.KeyID == "" {
		return "key without kid (" + kind + ")"
	}
	return "kid " + quoted(k.KeyID) + " (" + kind + ")"
}

func kidText(kid string) string {
	if kid == "" {
		return "no kid"
	}
	return "kid " + quoted(kid)
}

func kids(keys []jose.JSONWebKey) string {
	ids := make([]string, len(keys))
	for i := range keys {
		ids[i] = keys[i].KeyID
	}
	return "kids " + quotedList(ids)
}

// traceKeys records where the keys came from: the first look at the
// cached (or just fetched) JWKS, or the refetch a miss triggered.
func (ks *keySet) traceKeys(tr *Trace, keys []jose.JSONWebKey, attempt int) {
	ks.mu.Lock()
	fetched := ks.fetchedAt
	ks.mu.Unlock()
	what := "signing keys"
	if len(keys) == 1 {
		what = "signing key"
	}
	detail := fmt.Sprintf("%d %s from %s, fetched %s", len(keys), what, ks.url, at(fetched, ks.deps.now()))
	if attempt > 0 {
		detail = "no cached key verified the token, so the JWKS was refetched: " + detail
	}
	tr.add(stepKeys, true, detail)
}

// describe says where verification's endpoints came from.
func (ep *endpoints) describe() string {
	if ep.md == nil {
		return "endpoints from the tenant's configuration (no discovery needed)"
	}
	return "metadata " + ep.source + " names the configured issuer"
}

// describePermissions shows the scope map and the role grants at work:
// which scope or claim value granted each permission, what was missing,
// and, under the scope strategy, which scopes did not count for lack of
// the prefix.
func (p *Provider) describePermissions(scopes, roles []string, perms map[Permission]bool) string {
	rg := p.claims.Roles
	parts := make([]string, 0, len(p.perms)+1)
	for _, perm := range p.perms {
		want := p.scopes[perm]
		var by []string
		if p.scopeGrants(scopes, perm) {
			by = append(by, want)
		}
		for _, v := range rg.granting(roles, perm) {
			by = append(by, rg.Claim+" "+quoted(v))
		}
		switch {
		case perms[perm] && len(by) == 1:
			parts = append(parts, by[0]+" grants "+string(perm))
		case perms[perm]:
			parts = append(parts, strings.Join(by, " and ")+" grant "+string(perm))
		case rg == nil:
			parts = append(parts, "no "+want+", so no "+string(perm))
		default:
			parts = append(parts, "no "+want+" and no "+rg.Claim+" value granting it, so no "+string(perm))
		}
	}
	if p.aud.Strategy == AudienceScope {
		var ignored []string
		for _, s := range scopes {
			if !strings.HasPrefix(s, p.aud.Prefix) {
				ignored = append(ignored, s)
			}
		}
		if len(ignored) > 0 {
			parts = append(parts, "ignored without the prefix: "+quotedList(ignored))
		}
	}
	return strings.Join(parts, "; ")
}

// describeAlgs says where the allowed algorithms come from (see
// allowedAlgs).
func (p *Provider) describeAlgs(ep *endpoints) string {
	list := strings.Join(ep.algs, ", ")
	switch {
	case len(p.disc.algs) > 0:
		return "the tenant allows " + list
	case ep.md != nil && len(ep.md.IDTokenSigningAlgValuesSupported) > 0:
		return "the issuer advertises " + list
	default:
		return "the issuer advertises none, so any of " + list
	}
}
