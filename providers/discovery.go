package providers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Metadata is the part of an authorization server's metadata (RFC 8414 or
// OpenID Connect Discovery) the gateway reads.
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                             string   `json:"token_endpoint,omitempty"`
	JWKSURI                                   string   `json:"jwks_uri,omitempty"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint,omitempty"`
	RevocationEndpoint                        string   `json:"revocation_endpoint,omitempty"`
	RegistrationEndpoint                      string   `json:"registration_endpoint,omitempty"`
	UserinfoEndpoint                          string   `json:"userinfo_endpoint,omitempty"`
	ScopesSupported                           []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                    []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported                       []string `json:"grant_types_supported,omitempty"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	IDTokenSigningAlgValuesSupported          []string `json:"id_token_signing_alg_values_supported,omitempty"`
	ClientIDMetadataDocumentSupported         bool     `json:"client_id_metadata_document_supported,omitempty"`
	ClaimsSupported                           []string `json:"claims_supported,omitempty"`
	EndSessionEndpoint                        string   `json:"end_session_endpoint,omitempty"`
	DeviceAuthorizationEndpoint               string   `json:"device_authorization_endpoint,omitempty"`
	// CredentialsEndpointDraft00 is published by Ory Hydra (2.2 and
	// later) alone; see recogniseSoftware.
	CredentialsEndpointDraft00 string `json:"credentials_endpoint_draft_00,omitempty"`
}

// Well-known suffixes (RFC 8414 §3, OpenID Discovery §4).
const (
	wellKnownOAuth  = "/.well-known/oauth-authorization-server"
	wellKnownOpenID = "/.well-known/openid-configuration"
)

// DiscoveryURLs lists, in the order they are tried, where the metadata of
// issuer is looked for (kindTable gives the order per kind):
//
//   - logto: <issuer>/.well-known/openid-configuration (Logto serves only that);
//   - oidc: that first, then the path-inserted forms
//     /.well-known/openid-configuration<path> and
//     /.well-known/oauth-authorization-server<path>;
//   - oauth: the RFC 8414 form /.well-known/oauth-authorization-server<path>,
//     then the OpenID forms, then <issuer>/.well-known/oauth-authorization-server
//     (Okta and node-oidc-provider under a path append it instead of
//     inserting it).
//
// For an issuer without a path, inserted and appended forms coincide and are
// listed once. An unknown kind or an unparsable issuer has none.
func DiscoveryURLs(k Kind, issuer string) []string {
	kind, known := ruleOf(k)
	u, err := url.Parse(issuer)
	if !known || err != nil {
		return nil
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	var out []string
	for _, loc := range kind.discovery {
		s := origin + path + loc.suffix
		if loc.inserted {
			s = origin + loc.suffix + path
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// DiscoveryAttempt records one metadata URL that was tried.
type DiscoveryAttempt struct {
	URL    string
	Status int    // HTTP status, 0 when no answer
	Error  string // why it was not used; empty for a usable document
	Issuer string // the issuer the document names, if one was read
}

// discover tries the metadata URLs of a kind's issuer in order and returns
// the first document whose issuer equals the configured one. With all set
// it reads every URL (for the probe) instead of stopping at the first match.
func discover(ctx context.Context, client *http.Client, kind Kind, issuer string, all bool) (md *Metadata, source string, attempts []DiscoveryAttempt, err error) {
	var errs []error
	var mismatch error
	for _, u := range DiscoveryURLs(kind, issuer) {
		var doc Metadata
		_, ferr := getJSON(ctx, client, u, "application/json", &doc)
		a := DiscoveryAttempt{URL: u, Issuer: doc.Issuer}
		var se *StatusError
		switch {
		case errors.As(ferr, &se):
			a.Status = se.Status
		case ferr == nil:
			a.Status = 200
		}
		switch {
		case ferr != nil:
			a.Error = ferr.Error()
			errs = append(errs, ferr)
		case doc.Issuer != issuer:
			e := &IssuerMismatchError{URL: u, Configured: issuer, Discovered: doc.Issuer}
			a.Error = e.Error()
			if mismatch == nil {
				mismatch = e
			}
		case md == nil:
			md, source = &doc, u
		}
		attempts = append(attempts, a)
		if md != nil && !all {
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	switch {
	case md != nil:
		return md, source, attempts, nil
	case mismatch != nil:
		return nil, "", attempts, mismatch
	default:
		return nil, "", attempts, fmt.Errorf("no authorization server metadata found: %w", errors.Join(errs...))
	}
}

// resolved is where an issuer's endpoints are: from its metadata, or from
// the configured override alone. It is shared by the issuer's tenants and
// immutable; a metadata refresh swaps in a new one.
type resolved struct {
	md            *Metadata // nil when the override made discovery unnecessary
	source        string
	fetchedAt     time.Time
	jwks          *keySet
	introspection string
}

// endpoints is what one tenant's verification needs once discovery has
// succeeded: the issuer's shared endpoints and keys, with the tenant's own
// algorithm allow-list and a verifier held to it. It is immutable; a new
// resolved gets a new one.
type endpoints struct {
	*resolved
	algs     []string
	verifier *oidc.IDTokenVerifier
}

// discovery is a tenant's view of its issuer's endpoints. What is fetched
// (metadata, keys) is the issuer's and shared; what is decided about a
// token (which algorithms it may use) stays the tenant's.
type discovery struct {
	iss *issuer
	// mode says which endpoints must be found.
	mode TokenMode
	// algs is the tenant's explicit allow-list; nil means "what discovery
	// says" (see allowedAlgs). A tenant's list narrows what the shared keys
	// verify for it, never for the others.
	algs []string

	cur atomic.Pointer[endpoints]
}

func (d *discovery) get(ctx context.Context) (*endpoints, error) {
	r := d.iss.configuredFor(d.mode)
	if r == nil {
		var err error
		if r, err = d.iss.metadata(ctx); err != nil {
			return nil, err
		}
	}
	if ep := d.cur.Load(); ep != nil && ep.resolved == r {
		return ep, nil
	}
	// First use, or the issuer's metadata was refreshed: concurrent callers
	// may both build one, and either is right.
	ep := &endpoints{resolved: r}
	var advertised []string
	if r.md != nil {
		advertised = r.md.IDTokenSigningAlgValuesSupported
	}
	ep.algs = allowedAlgs(d.algs, advertised)
	if r.jwks != nil {
		ep.verifier = d.iss.newOIDCVerifier(r.jwks, ep.algs)
	}
	d.cur.Store(ep)
	return ep, nil
}

// configuredFor returns the override alone when it covers everything a
// token mode needs (so no discovery is made), else nil.
func (is *issuer) configuredFor(mode TokenMode) *resolved {
	ov := is.key.override
	needJWKS := mode != TokenIntrospection
	needIntro := mode != TokenJWT
	if (needJWKS && ov.JWKSURI == "") || (needIntro && ov.IntrospectionEndpoint == "") {
		return nil
	}
	if r := is.configured.Load(); r != nil {
		return r
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if r := is.configured.Load(); r != nil {
		return r
	}
	r := &resolved{fetchedAt: is.deps.now(), source: "configuration", introspection: ov.IntrospectionEndpoint}
	if ov.JWKSURI != "" {
		r.jwks = is.keySetLocked(ov.JWKSURI)
	}
	is.configured.Store(r)
	return r
}

// metadata returns the issuer's discovered endpoints, discovering them
// once (single flight across all its tenants), with backoff while the
// issuer is unreachable, and refreshing them daily in the background.
func (is *issuer) metadata(ctx context.Context) (*resolved, error) {
	now := is.deps.now()
	if r := is.cur.Load(); r != nil {
		if now.Sub(r.fetchedAt) > is.deps.tuning.metadataTTL {
			is.mu.Lock()
			if is.inflight == nil && !is.bo.waiting(now) {
				is.startLocked()
			}
			is.mu.Unlock()
		}
		return r, nil
	}
	is.mu.Lock()
	c := is.inflight
	if c == nil {
		if r := is.cur.Load(); r != nil {
			is.mu.Unlock()
			return r, nil
		}
		if is.bo.waiting(now) {
			err := is.bo.lastErr
			is.mu.Unlock()
			return nil, discoveryError(err)
		}
		c = is.startLocked()
	}
	is.mu.Unlock()
	if err := c.wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, unavailable(reasonCancelled, err)
		}
		return nil, discoveryError(err)
	}
	if r := is.cur.Load(); r != nil {
		return r, nil
	}
	return nil, unavailable(reasonIssuerDown, errors.New("metadata vanished after discovery"))
}

func discoveryError(err error) *Error {
	var mm *IssuerMismatchError
	var pe *Error
	switch {
	case errors.As(err, &mm):
		return internal(reasonIssuerMismatch, err)
	case errors.As(err, &pe):
		return pe
	default:
		return unavailable(reasonIssuerDown, err)
	}
}

func (is *issuer) startLocked() *call {
	// The whole fallback chain shares one budget: each URL has its own
	// requestTimeout, and a dead host fails fast on connect.
	c := is.deps.bg.startCall(3*requestTimeout, func(ctx context.Context) error {
		r, jwksURI, err := is.resolve(ctx)
		is.deps.metrics.discoveryFetch(is.key.issuer, err)
		now := is.deps.now()
		is.mu.Lock()
		defer is.mu.Unlock()
		is.inflight = nil
		if err != nil {
			is.bo.fail(now, err, is.deps.tuning)
			if is.cur.Load() != nil {
				is.deps.log.Warn("metadata refresh failed; keeping the previous metadata", "error", err)
			} else {
				is.deps.log.Warn("authorization server discovery failed", "error", err, "retry_at", is.bo.retryAt)
			}
			return err
		}
		if is.bo.failures > 0 {
			is.deps.log.Info("authorization server reachable again", "metadata", r.source)
		}
		is.bo.succeed()
		// A refresh that names the same JWKS keeps the cached keys.
		if jwksURI != "" {
			r.jwks = is.keySetLocked(jwksURI)
		}
		is.cur.Store(r)
		return nil
	})
	is.inflight = c
	return c
}

// resolve discovers the metadata and combines it with the override, which
// wins endpoint by endpoint. The key set is attached by the caller, under
// the lock that guards it.
func (is *issuer) resolve(ctx context.Context) (r *resolved, jwksURI string, err error) {
	md, source, _, err := discover(ctx, is.deps.client, is.key.kind, is.key.issuer, false)
	if err != nil {
		return nil, "", err
	}
	ov := is.key.override
	r = &resolved{md: md, source: source, fetchedAt: is.deps.now()}
	jwksURI = cmp.Or(ov.JWKSURI, md.JWKSURI)
	r.introspection = cmp.Or(ov.IntrospectionEndpoint, md.IntrospectionEndpoint)
	// The configured endpoints passed Validate; the discovered ones must
	// not downgrade the issuer's transport either.
	for _, u := range []string{jwksURI, r.introspection} {
		if u == "" {
			continue
		}
		if _, probs := checkServerURL(u, urlRules{allowHTTP: true, allowQuery: true, issuer: is.key.issuer}); len(probs) > 0 {
			return nil, "", internal("authorization server metadata names an unusable endpoint",
				fmt.Errorf("endpoint %q %s", u, strings.Join(probs, "; ")))
		}
	}
	return r, jwksURI, nil
}

// allowedAlgs is the tenant's list if set; else the discovered list within
// the asymmetric families; else (RFC 8414 servers publish none) every
// asymmetric algorithm. Key type and the JWK's own alg still pin each
// signature to one family, so the wide default cannot mix families up.
func allowedAlgs(configured, discovered []string) []string {
	if len(configured) > 0 {
		return configured
	}
	var out []string
	for _, a := range discovered {
		if isAsymmetricAlg(a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = make([]string, len(allAsymmetricAlgs))
		for i, a := range allAsymmetricAlgs {
			out[i] = string(a)
		}
	}
	return out
}

func (is *issuer) newOIDCVerifier(ks *keySet, algs []string) *oidc.IDTokenVerifier {
	return oidc.NewVerifier(is.key.issuer, ks, &oidc.Config{
		// Audience strategies are richer than "aud contains the client id",
		// and exp/nbf need our leeway (go-oidc has none for exp and a fixed
		// 5 minutes for nbf); both are checked in claims.go.
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: algs,
		Now:                  is.deps.now,
	})
}

// TokenEndpoint is the issuer's token endpoint from its metadata,
// discovered once and shared as the keys are; "" when the metadata names
// none. It is what an upstream tenant's token exchange (RFC 8693) posts
// to. A tenant whose override made discovery unnecessary discovers now.
func (p *Provider) TokenEndpoint(ctx context.Context) (string, error) {
	r, err := p.disc.iss.metadata(ctx)
	if err != nil {
		return "", err
	}
	if r.md == nil {
		return "", nil
	}
	return r.md.TokenEndpoint, nil
}
