package providers

import (
	"net/url"
	"slices"
	"strings"
)

// issuerQuirk is what the gateway knows about a hosted provider's access
// tokens, recognised from the issuer alone.
type issuerQuirk struct {
	name               string
	resourceIndicators bool // honours RFC 8707 resource, putting it in aud
	noAudience         bool // access tokens carry no aud at all
	apiScopesUnlisted  bool // scopes_supported lists only OpenID scopes, never an API's
	// clientIDAudience: aud is always the OAuth client id, so the resource
	// strategy cannot work at all (not merely needs care).
	clientIDAudience bool
	// noScopeClaim: access tokens carry no scope claim and the server
	// refuses scopes it does not define, so no scope can grant a
	// permission; roles or groups must (claims.roles).
	noScopeClaim bool
	// idClaimsInAccessTokens are claims of ID tokens only (idtoken.go)
	// that its access tokens carry too, and so do not mark an ID token.
	idClaimsInAccessTokens []string
	// sameTokens: its ID and access tokens have the same header and claim
	// set, so nothing tells an ID token presented as an access token
	// apart; only its audience (the client it was issued to) can.
	sameTokens bool
	instead    string // which strategy to use, and with what
}

// Authorization server software recognised from its metadata, wherever it
// is hosted (see recogniseSoftware).
const (
	softwareHydra = "Ory Hydra"
	softwareDex   = "Dex"
)

var softwareQuirks = map[string]issuerQuirk{
	softwareHydra: {name: softwareHydra, apiScopesUnlisted: true,
		instead: `its tokens come with "aud": [] unless the client sends audience= (not resource=), for an audience listed in the client's registration; use the audience strategy with that value`},
	softwareDex: {name: softwareDex, clientIDAudience: true, noScopeClaim: true,
		idClaimsInAccessTokens: []string{"at_hash"}, sameTokens: true,
		instead: "it sets aud to the OAuth client id of the client that asked (or the peers it trusts); use the audience strategy with the client ids the gateway accepts"},
}

// recogniseSoftware recognises authorization server software from what its
// metadata says, which holds on any host name:
//
//   - Ory Hydra: credentials_endpoint_draft_00 (Hydra 2.2 and later), or
//     the endpoints Hydra always serves, <host>/oauth2/auth and
//     <host>/oauth2/sessions/logout;
//   - Dex: authorization, token and JWKS endpoints at <issuer>/auth,
//     <issuer>/token and <issuer>/keys.
func recogniseSoftware(issuer string, md *Metadata) string {
	hasPath := func(endpoint, suffix string) bool {
		u, err := url.Parse(endpoint)
		return endpoint != "" && err == nil && strings.HasSuffix(u.Path, suffix)
	}
	base := strings.TrimSuffix(issuer, "/")
	switch {
	case md.CredentialsEndpointDraft00 != "",
		hasPath(md.AuthorizationEndpoint, "/oauth2/auth") && hasPath(md.EndSessionEndpoint, "/oauth2/sessions/logout"):
		return softwareHydra
	case md.AuthorizationEndpoint == base+"/auth" && md.TokenEndpoint == base+"/token" && md.JWKSURI == base+"/keys":
		return softwareDex
	}
	return ""
}

// recogniseIssuer recognises the hosted providers known to ignore resource
// indicators, from their documented behaviour. Host patterns are the
// providers' documented issuer shapes; a custom domain is simply not
// recognised, which costs a warning, never a false error.
func recogniseIssuer(issuer string) (issuerQuirk, bool) {
	u, err := url.Parse(issuer)
	if err != nil {
		return issuerQuirk{}, false
	}
	host := strings.ToLower(u.Hostname())
	hasSuffix := func(suffixes ...string) bool {
		return slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(host, s) })
	}
	switch {
	case hasSuffix(".auth0.com"):
		return issuerQuirk{name: "Auth0", apiScopesUnlisted: true,
			instead: "it sets aud to the API identifier, and issues opaque tokens unless the client sends audience=; use the audience strategy with the API identifier"}, true
	case hasSuffix(".okta.com", ".oktapreview.com", ".okta-emea.com"):
		return issuerQuirk{name: "Okta",
			instead: "a custom authorization server sets aud to its configured audience (api://default by default); use the audience strategy with that value"}, true
	case host == "login.microsoftonline.com" || host == "sts.windows.net" || host == "login.microsoftonline.us" ||
		host == "login.chinacloudapi.cn" || hasSuffix(".ciamlogin.com"):
		return issuerQuirk{name: "Microsoft Entra ID", apiScopesUnlisted: true,
			instead: "it rejects the resource parameter with v2 scopes (AADSTS9010010) and sets aud to the API's client ID (v2 tokens) or App ID URI (v1); use the audience strategy with those values, clients asking for scope <App ID URI>/.default"}, true
	case strings.HasPrefix(host, "cognito-idp.") && strings.HasSuffix(host, ".amazonaws.com"):
		return issuerQuirk{name: "Amazon Cognito", noAudience: true, apiScopesUnlisted: true,
			instead: "its access tokens have no aud (the client is in client_id); use the scope strategy with the resource server's scope prefix (such as todo-api/)"}, true
	case strings.Contains(u.Path, "/realms/"):
		return issuerQuirk{name: "Keycloak",
			instead: "unless the experimental resource-indicators feature is on, aud is account or absent; add an audience mapper to the client scope and use the audience strategy with its value"}, true
	case strings.Contains(u.Path, "/application/o/"):
		return issuerQuirk{name: "authentik",
			instead: "it sets aud to the OAuth client ID; use the audience strategy with the client ID"}, true
	}
	return issuerQuirk{}, false
}

// unlistedAPIScopes explains why a provider's scopes_supported cannot be
// expected to list the tenant's scopes, or returns "" when it should.
func unlistedAPIScopes(k Kind, q issuerQuirk, known bool) string {
	kind, _ := ruleOf(k)
	switch {
	case kind.scopesUnlisted != "":
		return kind.scopesUnlisted
	case known && q.apiScopesUnlisted:
		return q.name + " lists only OpenID scopes there, not an API's"
	}
	return ""
}

// ScopeNotIssued says why the tenant's authorization server will not issue
// scope, from its metadata as last fetched: it publishes scopes_supported,
// the list leaves scope out, and nothing known of the provider says API
// scopes go unlisted there. It returns "" when the server may issue it, or
// its metadata does not say. A refused user reads it in the tool error:
// asking them to sign in again for a scope nobody can be granted helps no
// one (zitadel's example provider strips every scope it does not define).
// It never fetches.
func (p *Provider) ScopeNotIssued(scope string) string {
	ep := p.disc.cur.Load()
	if ep == nil || ep.md == nil || len(ep.md.ScopesSupported) == 0 || slices.Contains(ep.md.ScopesSupported, scope) {
		return ""
	}
	if q, known := p.quirkOf(ep); unlistedAPIScopes(p.disc.iss.key.kind, q, known) != "" {
		return ""
	}
	return "the authorization server does not list " + scope + " among the scopes it issues (its scopes_supported), so signing in again will not grant it"
}
