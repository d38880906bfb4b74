package providers

import (
	"fmt"
	"slices"
	"strings"
)

// An ID token is not an access token: it tells a client who signed in and
// is not meant for any resource server. Several providers sign both kinds
// with the same key, header and audience (LemonLDAP::NG, Dex), so neither
// typ nor aud tells them apart. What does is a claim OpenID Connect defines
// for ID tokens alone:
//
//   - nonce (OIDC Core §2): binds an ID token to the client's
//     authentication request;
//   - at_hash (§3.1.3.6, §3.3.2.11): the hash of the access token issued
//     with the ID token; an access token does not carry its own hash;
//   - c_hash (§3.3.2.11): the hash of the authorization code;
//   - s_hash (FAPI 1.0 Advanced §5.1): the hash of the state.
//
// The other claims of an ID token are not evidence: auth_time, acr and amr
// are allowed in access tokens by RFC 9068 §2.2.3.1, and azp is put in
// access tokens by common providers (Keycloak among them).
var idTokenOnlyClaims = []string{"nonce", "at_hash", "c_hash", "s_hash"}

// idTokenClaim names the first ID-token-only claim m carries that the
// tenant does not accept in access tokens, or "".
func (p *Provider) idTokenClaim(m claimSet, ep *endpoints) string {
	for _, name := range idTokenOnlyClaims {
		if _, ok := m[name]; !ok || slices.Contains(p.idClaimsAllowed, name) {
			continue
		}
		if q, known := p.quirkOf(ep); known && slices.Contains(q.idClaimsInAccessTokens, name) {
			continue
		}
		return name
	}
	return ""
}

// quirkOf is what is known of the tenant's provider: its software, from
// the metadata discovery found (any host), or its hosted service, from
// the issuer.
func (p *Provider) quirkOf(ep *endpoints) (issuerQuirk, bool) {
	if ep != nil && ep.md != nil {
		if q, ok := softwareQuirks[recogniseSoftware(p.issuer, ep.md)]; ok {
			return q, true
		}
	}
	return recogniseIssuer(p.issuer)
}

func reasonIDToken(claim string) string {
	return "an ID token is not an access token: it carries " + claim + ", a claim of ID tokens only"
}

// checkIDTokenClaims reports the entries of a tenant's
// allow_id_token_claims that are not ID-token-only claims.
func (v *validation) idTokenClaims(path string, names []string) {
	for i, name := range names {
		if !slices.Contains(idTokenOnlyClaims, name) {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a claim of ID tokens only (those are %s); nothing to allow", name, strings.Join(idTokenOnlyClaims, ", "))
		}
	}
}

// sameTokensWarning says that the provider's ID tokens cannot be told from
// its access tokens, for the verdict and "todo-gateway token".
func sameTokensWarning(q issuerQuirk) string {
	return q.name + " signs ID and access tokens alike (the same header and claims, at_hash included), so nothing in a token tells an ID token presented as an access token apart: only its aud, the client it was issued to, can"
}
