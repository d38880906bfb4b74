package providers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
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
}

// Well-known suffixes (RFC 8414 §3, OpenID Discovery §4).
const (
	wellKnownOAuth  = "/.well-known/oauth-authorization-server"
	wellKnownOpenID = "/.well-known/openid-configuration"
)

// DiscoveryURLs lists, in the order they are tried, where the metadata of
// issuer is looked for:
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
// listed once.
func DiscoveryURLs(k Kind, issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	appended := func(wk string) string { return origin + path + wk }
	inserted := func(wk string) string { return origin + wk + path }
	var urls []string
	switch k {
	case KindLogto:
		urls = []string{appended(wellKnownOpenID)}
	case KindOAuth:
		urls = []string{inserted(wellKnownOAuth), inserted(wellKnownOpenID), appended(wellKnownOpenID), appended(wellKnownOAuth)}
	default:
		urls = []string{appended(wellKnownOpenID), inserted(wellKnownOpenID), inserted(wellKnownOAuth)}
	}
	var out []string
	for _, s := range urls {
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

// discover tries the metadata URLs in order and returns the first document
// whose issuer equals the configured one. With all set it reads every URL
// (for the probe) instead of stopping at the first match.
func discover(ctx context.Context, p *Provider, all bool) (md *Metadata, source string, attempts []DiscoveryAttempt, err error) {
	var errs []error
	var mismatch error
	for _, u := range DiscoveryURLs(p.kind, p.issuer) {
		var doc Metadata
		_, ferr := getJSON(ctx, p.client, u, "application/json", &doc)
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
		case doc.Issuer != p.issuer:
			e := &IssuerMismatchError{URL: u, Configured: p.issuer, Discovered: doc.Issuer}
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

// endpoints is what verification needs once discovery has succeeded. It is
// immutable; a metadata refresh swaps in a new one.
type endpoints struct {
	md            *Metadata // nil when the override made discovery unnecessary
	source        string
	fetchedAt     time.Time
	algs          []string
	jwks          *keySet
	verifier      *oidc.IDTokenVerifier
	introspection string
}

// discovery resolves a Provider's endpoints lazily, once, with backoff
// while the issuer is unreachable, and refreshes them daily in the
// background.
type discovery struct {
	p        *Provider
	cur      atomic.Pointer[endpoints]
	mu       sync.Mutex
	bo       backoff
	inflight *call
}

func (d *discovery) get(ctx context.Context) (*endpoints, error) {
	now := d.p.now()
	if ep := d.cur.Load(); ep != nil {
		if ep.md != nil && now.Sub(ep.fetchedAt) > d.p.tuning.metadataTTL {
			d.mu.Lock()
			if d.inflight == nil && !d.bo.waiting(now) {
				d.startLocked()
			}
			d.mu.Unlock()
		}
		return ep, nil
	}
	d.mu.Lock()
	c := d.inflight
	if c == nil {
		if ep := d.cur.Load(); ep != nil {
			d.mu.Unlock()
			return ep, nil
		}
		if d.bo.waiting(now) {
			err := d.bo.lastErr
			d.mu.Unlock()
			return nil, discoveryError(err)
		}
		c = d.startLocked()
	}
	d.mu.Unlock()
	if err := c.wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, unavailable(reasonCancelled, err)
		}
		return nil, discoveryError(err)
	}
	if ep := d.cur.Load(); ep != nil {
		return ep, nil
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

func (d *discovery) startLocked() *call {
	// The whole fallback chain shares one budget: each URL has its own
	// requestTimeout, and a dead host fails fast on connect.
	c := d.p.bg.startCall(3*requestTimeout, func(ctx context.Context) error {
		ep, err := d.resolve(ctx)
		now := d.p.now()
		d.mu.Lock()
		defer d.mu.Unlock()
		d.inflight = nil
		if err != nil {
			d.bo.fail(now, err, d.p.tuning)
			if d.cur.Load() != nil {
				d.p.log.Warn("metadata refresh failed; keeping the previous metadata", "error", err)
			} else {
				d.p.log.Warn("authorization server discovery failed", "error", err, "retry_at", d.bo.retryAt)
			}
			return err
		}
		if d.bo.failures > 0 {
			d.p.log.Info("authorization server reachable again", "metadata", ep.source)
		}
		d.bo.succeed()
		// Keep the cached keys across a metadata refresh that names the
		// same JWKS.
		if old := d.cur.Load(); old != nil && old.jwks != nil && ep.jwks != nil && old.jwks.url == ep.jwks.url {
			ep.jwks = old.jwks
			ep.verifier = d.p.newOIDCVerifier(ep.jwks, ep.algs)
		}
		d.cur.Store(ep)
		return nil
	})
	d.inflight = c
	return c
}

// resolve builds endpoints from the override and, when the override does
// not cover everything the token mode needs, from discovered metadata.
func (d *discovery) resolve(ctx context.Context) (*endpoints, error) {
	p := d.p
	ov := p.override
	needJWKS := p.mode != TokenIntrospection
	needIntro := p.mode != TokenJWT
	ep := &endpoints{fetchedAt: p.now(), source: "configuration"}
	if (!needJWKS || ov.JWKSURI != "") && (!needIntro || ov.IntrospectionEndpoint != "") {
		ep.introspection = ov.IntrospectionEndpoint
		ep.algs = p.allowedAlgs(nil)
		if ov.JWKSURI != "" {
			ep.jwks = newKeySet(p, ov.JWKSURI)
			ep.verifier = p.newOIDCVerifier(ep.jwks, ep.algs)
		}
		return ep, nil
	}
	md, source, _, err := discover(ctx, p, false)
	if err != nil {
		return nil, err
	}
	ep.md, ep.source = md, source
	jwksURI := cmpOr(ov.JWKSURI, md.JWKSURI)
	ep.introspection = cmpOr(ov.IntrospectionEndpoint, md.IntrospectionEndpoint)
	for _, u := range []string{jwksURI, ep.introspection} {
		if u == "" {
			continue
		}
		if err := checkEndpoint(u, p.issuer); err != nil {
			return nil, internal("authorization server metadata names an unusable endpoint", err)
		}
	}
	ep.algs = p.allowedAlgs(md.IDTokenSigningAlgValuesSupported)
	if jwksURI != "" {
		ep.jwks = newKeySet(p, jwksURI)
		ep.verifier = p.newOIDCVerifier(ep.jwks, ep.algs)
	}
	return ep, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// allowedAlgs is the tenant's list if set; else the discovered list within
// the asymmetric families; else (RFC 8414 servers publish none) every
// asymmetric algorithm. Key type and the JWK's own alg still pin each
// signature to one family, so the wide default cannot mix families up.
func (p *Provider) allowedAlgs(discovered []string) []string {
	if len(p.algs) > 0 {
		return p.algs
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

func (p *Provider) newOIDCVerifier(ks *keySet, algs []string) *oidc.IDTokenVerifier {
	return oidc.NewVerifier(p.issuer, ks, &oidc.Config{
		// Audience strategies are richer than "aud contains the client id",
		// and exp/nbf need our leeway (go-oidc has none for exp and a fixed
		// 5 minutes for nbf); both are checked in claims.go.
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: algs,
		Now:                  p.now,
	})
}
