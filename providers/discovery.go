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
	deps   *deps
	kind   Kind
	issuer string
	// mode says which endpoints must be found.
	mode     TokenMode
	override MetadataOverride
	// algs is the tenant's explicit allow-list; nil means "what discovery
	// says" (see allowedAlgs).
	algs []string
	// minRefresh is handed to every key set (jwks_min_refresh).
	minRefresh time.Duration

	cur      atomic.Pointer[endpoints]
	mu       sync.Mutex
	bo       backoff
	inflight *call
}

func (d *discovery) get(ctx context.Context) (*endpoints, error) {
	now := d.deps.now()
	if ep := d.cur.Load(); ep != nil {
		if ep.md != nil && now.Sub(ep.fetchedAt) > d.deps.tuning.metadataTTL {
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
	c := d.deps.bg.startCall(3*requestTimeout, func(ctx context.Context) error {
		ep, err := d.resolve(ctx)
		now := d.deps.now()
		d.mu.Lock()
		defer d.mu.Unlock()
		d.inflight = nil
		if err != nil {
			d.bo.fail(now, err, d.deps.tuning)
			if d.cur.Load() != nil {
				d.deps.log.Warn("metadata refresh failed; keeping the previous metadata", "error", err)
			} else {
				d.deps.log.Warn("authorization server discovery failed", "error", err, "retry_at", d.bo.retryAt)
			}
			return err
		}
		if d.bo.failures > 0 {
			d.deps.log.Info("authorization server reachable again", "metadata", ep.source)
		}
		d.bo.succeed()
		// Keep the cached keys across a metadata refresh that names the
		// same JWKS.
		if old := d.cur.Load(); old != nil && old.jwks != nil && ep.jwks != nil && old.jwks.url == ep.jwks.url {
			ep.jwks = old.jwks
			ep.verifier = d.newOIDCVerifier(ep.jwks, ep.algs)
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
	ov := d.override
	needJWKS := d.mode != TokenIntrospection
	needIntro := d.mode != TokenJWT
	ep := &endpoints{fetchedAt: d.deps.now(), source: "configuration"}
	if (!needJWKS || ov.JWKSURI != "") && (!needIntro || ov.IntrospectionEndpoint != "") {
		ep.introspection = ov.IntrospectionEndpoint
		ep.algs = allowedAlgs(d.algs, nil)
		if ov.JWKSURI != "" {
			ep.jwks = d.newKeySet(ov.JWKSURI)
			ep.verifier = d.newOIDCVerifier(ep.jwks, ep.algs)
		}
		return ep, nil
	}
	md, source, _, err := discover(ctx, d.deps.client, d.kind, d.issuer, false)
	if err != nil {
		return nil, err
	}
	ep.md, ep.source = md, source
	jwksURI := cmp.Or(ov.JWKSURI, md.JWKSURI)
	ep.introspection = cmp.Or(ov.IntrospectionEndpoint, md.IntrospectionEndpoint)
	// The configured endpoints passed Validate; the discovered ones must
	// not downgrade the issuer's transport either.
	for _, u := range []string{jwksURI, ep.introspection} {
		if u == "" {
			continue
		}
		if _, probs := checkServerURL(u, urlRules{allowHTTP: true, allowQuery: true, issuer: d.issuer}); len(probs) > 0 {
			return nil, internal("authorization server metadata names an unusable endpoint",
				fmt.Errorf("endpoint %q %s", u, strings.Join(probs, "; ")))
		}
	}
	ep.algs = allowedAlgs(d.algs, md.IDTokenSigningAlgValuesSupported)
	if jwksURI != "" {
		ep.jwks = d.newKeySet(jwksURI)
		ep.verifier = d.newOIDCVerifier(ep.jwks, ep.algs)
	}
	return ep, nil
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

func (d *discovery) newKeySet(url string) *keySet {
	return &keySet{url: url, issuer: d.issuer, minRefresh: d.minRefresh, deps: d.deps}
}

func (d *discovery) newOIDCVerifier(ks *keySet, algs []string) *oidc.IDTokenVerifier {
	return oidc.NewVerifier(d.issuer, ks, &oidc.Config{
		// Audience strategies are richer than "aud contains the client id",
		// and exp/nbf need our leeway (go-oidc has none for exp and a fixed
		// 5 minutes for nbf); both are checked in claims.go.
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: algs,
		Now:                  d.deps.now,
	})
}
