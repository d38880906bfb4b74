package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// keySet is one issuer's JWKS, implementing oidc.KeySet. It replaces
// go-oidc's RemoteKeySet, which refetches on every unknown kid with no rate
// limit and no timeout, so a flood of forged tokens would become a flood of
// fetches against the tenant's authorization server. Here:
//
//   - concurrent fetches are single-flight;
//   - an unknown kid forces a refetch at most once per minRefresh (fetches
//     for other reasons do not count against it);
//   - keys are refreshed ahead of time once Cache-Control max-age (bounded)
//     has passed, in the background, while the cached keys keep serving;
//   - a failed refresh keeps the old keys for up to maxStale
//     (stale-if-error) and retries with backoff.
//
// A keySet belongs to one issuer and is shared by the tenants that trust it
// (see Issuers), so these limits hold per issuer, not per tenant. Keys are
// never shared across issuers, so one issuer's key can never verify
// another's token; between tenants of one issuer, each still checks its own
// audience, algorithms and claims.
type keySet struct {
	url        string
	issuer     string        // labels metrics
	minRefresh time.Duration // jwks_min_refresh
	deps       *deps

	mu     sync.Mutex
	keys   []jose.JSONWebKey // usable public signing keys
	loaded bool
	// gen counts successful fetches, so that a caller whose keys were
	// replaced while it looked at them (another tenant's miss refetched)
	// looks again instead of being refused by the rate limit.
	gen        uint64
	fetchedAt  time.Time
	freshUntil time.Time
	// lastMiss is when an unknown kid last forced a fetch. Only those
	// fetches are rate-limited: a key rotated just after the first fetch (or
	// a scheduled refresh) is still picked up at once, while a flood of
	// forged kids gets one fetch per minRefresh.
	lastMiss time.Time
	bo       backoff
	inflight *call
}

var (
	errUnknownKey   = errors.New("no key in the JWKS matches the token's kid")
	errBadSignature = errors.New("signature does not verify with the matching key")
)

// stateKey carries the pre-parsed JWS into VerifySignature and the keySet's
// verdict back out: go-oidc flattens KeySet errors into strings, and the
// caller needs to know whether a failure was the token's fault or the
// network's.
type stateKey struct{}

type verifyState struct {
	jws     *jose.JSONWebSignature
	tr      *Trace // nil unless the caller traces
	err     error  // the keySet's typed failure, if any
	payload []byte // set once the signature verified
}

var _ oidc.KeySet = (*keySet)(nil)

// VerifySignature implements oidc.KeySet.
func (ks *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	st, _ := ctx.Value(stateKey{}).(*verifyState)
	if st == nil {
		jws, err := jose.ParseSignedCompact(raw, allAsymmetricAlgs)
		if err != nil {
			return nil, invalid(reasonMalformed, err)
		}
		st = &verifyState{jws: jws}
	}
	payload, err := ks.verify(ctx, st.jws, st.tr)
	st.err, st.payload = err, payload
	return payload, err
}

func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature, tr *Trace) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, tr.fail(stepSignature, invalid(reasonMalformed, errors.New("expected exactly one signature")))
	}
	h := jws.Signatures[0].Header
	for attempt := 0; ; attempt++ {
		keys, gen, err := ks.current(ctx)
		if err != nil {
			return nil, tr.fail(stepKeys, err)
		}
		if tr != nil {
			ks.traceKeys(tr, keys, attempt)
		}
		matched := false
		for i := range keys {
			k := &keys[i]
			if h.KeyID != "" && k.KeyID != h.KeyID {
				continue
			}
			// RFC 7517 §4.4: a key that names its alg is only for that alg;
			// this also stops a PS256 token riding an RS256 key.
			if k.Algorithm != "" && k.Algorithm != h.Algorithm {
				continue
			}
			if !keyFitsAlg(k.Key, h.Algorithm) {
				continue
			}
			matched = true
			if payload, err := jws.Verify(k); err == nil {
				if tr != nil {
					tr.add(stepKey, true, describeKey(k)+" fits "+h.Algorithm)
					tr.add(stepSignature, true, "verified with "+describeKey(k))
				}
				return payload, nil
			} else if errors.Is(err, jose.ErrUnsupportedCriticalHeader) {
				return nil, tr.fail(stepSignature, invalid(reasonCrit, err))
			}
		}
		// Not verified: either a forgery or a rotation this cache has not
		// seen (a new kid, or a provider that reuses its kid for a new key).
		// One refetch per minRefresh settles it without letting forgers turn
		// the gateway into a JWKS fetch amplifier.
		if attempt == 0 && ks.refreshForMiss(ctx, gen) {
			continue
		}
		if matched {
			if tr != nil {
				tr.add(stepKey, true, kidText(h.KeyID)+" matches a "+h.Algorithm+" key")
			}
			return nil, tr.fail(stepSignature, invalid(reasonBadSignature, errBadSignature))
		}
		// While the JWKS cannot be fetched, an unknown kid may well be a
		// legitimate new key: that is an outage, not a bad token.
		if err := ks.failing(); err != nil {
			return nil, tr.fail(stepKey, unavailable(reasonKeysDown, fmt.Errorf("kid %q is not cached and the JWKS cannot be refreshed: %w", safeDetail(h.KeyID), err)))
		}
		err = invalid(reasonUnknownKey, fmt.Errorf("%w (kid %q)", errUnknownKey, safeDetail(h.KeyID)))
		if tr != nil {
			refetch := "the JWKS was refetched and still has no such key"
			if attempt == 0 {
				refetch = "no refetch: the JWKS was fetched less than jwks_min_refresh (" + ks.minRefresh.String() + ") ago"
			}
			tr.failWith(stepKey, err, "no "+h.Algorithm+" key with "+kidText(h.KeyID)+" among "+kids(keys)+"; "+refetch)
		}
		return nil, err
	}
}

// failing returns the last fetch error while fetches are failing.
func (ks *keySet) failing() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.bo.failures > 0 {
		return ks.bo.lastErr
	}
	return nil
}

// current returns usable keys and their generation, loading them on first
// use and starting a background refresh once they are past their
// freshness.
func (ks *keySet) current(ctx context.Context) ([]jose.JSONWebKey, uint64, error) {
	now := ks.deps.now()
	ks.mu.Lock()
	if ks.loaded && now.Before(ks.freshUntil.Add(ks.deps.tuning.maxStale)) {
		keys, gen := ks.keys, ks.gen
		if !now.Before(ks.freshUntil) && ks.inflight == nil && !ks.bo.waiting(now) {
			ks.startLocked(now)
		}
		ks.mu.Unlock()
		return keys, gen, nil
	}
	c := ks.inflight
	if c == nil {
		if ks.bo.waiting(now) {
			err := ks.bo.lastErr
			ks.mu.Unlock()
			return nil, 0, unavailable(reasonKeysDown, err)
		}
		c = ks.startLocked(now)
	}
	ks.mu.Unlock()
	if err := c.wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, 0, unavailable(reasonCancelled, err)
		}
		return nil, 0, unavailable(reasonKeysDown, err)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.keys, ks.gen, nil
}

// refreshForMiss refetches the JWKS for a token no cached key verifies,
// unless a fetch started less than minRefresh ago. It joins a fetch already
// running. It reports whether fresh keys are worth another look: also when
// keys newer than the caller's generation seen arrived meanwhile, so that
// of many tenants seeing one rotated key at once, all find it after one
// refetch.
func (ks *keySet) refreshForMiss(ctx context.Context, seen uint64) bool {
	now := ks.deps.now()
	ks.mu.Lock()
	if ks.gen != seen {
		ks.mu.Unlock()
		return true
	}
	c := ks.inflight
	if c == nil {
		if now.Sub(ks.lastMiss) < ks.minRefresh || ks.bo.waiting(now) {
			ks.mu.Unlock()
			return false
		}
		ks.lastMiss = now
		c = ks.startLocked(now)
	}
	ks.mu.Unlock()
	return c.wait(ctx) == nil
}

func (ks *keySet) startLocked(now time.Time) *call {
	c := ks.deps.bg.startCall(requestTimeout, func(ctx context.Context) error {
		keys, ttl, err := ks.fetch(ctx)
		ks.deps.metrics.jwksFetch(ks.issuer, err)
		now := ks.deps.now()
		ks.mu.Lock()
		defer ks.mu.Unlock()
		ks.inflight = nil
		if err != nil {
			ks.bo.fail(now, err, ks.deps.tuning)
			if ks.loaded {
				ks.deps.log.Warn("JWKS refresh failed; serving cached keys", "url", ks.url, "error", err)
			} else {
				ks.deps.log.Warn("JWKS fetch failed", "url", ks.url, "error", err)
			}
			return err
		}
		if ks.bo.failures > 0 {
			ks.deps.log.Info("JWKS reachable again", "url", ks.url)
		}
		ks.bo.succeed()
		ks.keys, ks.loaded = keys, true
		ks.gen++
		ks.fetchedAt, ks.freshUntil = now, now.Add(ttl)
		return nil
	})
	ks.inflight = c
	return c
}

func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, time.Duration, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	hdr, err := getJSON(ctx, ks.deps.client, ks.url, "application/jwk-set+json, application/json", &doc)
	if err != nil {
		return nil, 0, err
	}
	keys, skipped := parseJWKS(doc.Keys)
	if len(keys) == 0 {
		return nil, 0, fmt.Errorf("JWKS at %s has no usable signing keys (%d skipped)", ks.url, skipped)
	}
	return keys, cacheTTL(hdr, ks.deps.tuning), nil
}

// parseJWKS keeps the public signing keys and skips the rest one by one, so
// a single exotic key does not make the whole set unusable.
func parseJWKS(raw []json.RawMessage) (keys []jose.JSONWebKey, skipped int) {
	for _, r := range raw {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			skipped++
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			skipped++
			continue
		}
		// A symmetric or private key has no business in a public JWKS;
		// accepting an "oct" key would reopen HMAC confusion.
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			skipped++
			continue
		}
		if k.Algorithm != "" && !isAsymmetricAlg(k.Algorithm) {
			skipped++
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped
}

// keyFitsAlg avoids handing go-jose a key of the wrong family, which would
// only fail later with a less precise error.
func keyFitsAlg(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return keyTypeFitsAlg("RSA", "", alg)
	case *ecdsa.PublicKey:
		return keyTypeFitsAlg("EC", k.Curve.Params().Name, alg)
	case ed25519.PublicKey:
		return keyTypeFitsAlg("OKP", "Ed25519", alg)
	}
	return false
}

// keyTypeFitsAlg reports whether a JWK of type kty (and curve crv) can
// verify signatures of alg (RFC 7518 §3.1, RFC 8037 §3.1).
func keyTypeFitsAlg(kty, crv, alg string) bool {
	switch kty {
	case "RSA":
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case "EC":
		return ecCurveAlgs[crv] == alg
	case "OKP":
		return crv == "Ed25519" && alg == string(jose.EdDSA)
	}
	return false
}

// ecCurveAlgs pins each ECDSA algorithm to its one curve.
var ecCurveAlgs = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

// cacheTTL reads Cache-Control max-age, clamped so that a "no-cache" JWKS
// (Zitadel) is not refetched per request and a year-long max-age does not
// hide a key withdrawal.
func cacheTTL(h http.Header, t tuning) time.Duration {
	ttl := t.jwksDefaultTTL
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-cache" || d == "no-store":
			ttl = 0
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age=")); err == nil && n >= 0 {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return min(max(ttl, t.jwksMinTTL), t.jwksMaxTTL)
}
