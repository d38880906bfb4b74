package providers

// kindRule is everything that differs between provider kinds. Every
// per-kind decision (defaults, discovery order, issuer rules, verdicts)
// reads this table, so a new kind is one more row and nothing else.
type kindRule struct {
	kind Kind

	// discovery is where the metadata document is looked for, in order
	// (see DiscoveryURLs).
	discovery []metadataLocation

	// jwtTypes is the default list of accepted JWT "typ" headers.
	jwtTypes []string

	// scopeClaims is the default ordered list of claims scopes are read from.
	scopeClaims []string

	// token is the default token mode of a tenant without an introspection
	// block. With one, the default is auto whatever the kind: the operator
	// configured introspection to have it used.
	token TokenMode

	// issuerSuffix, when set, is how the issuer's path must end;
	// issuerExample shows a complete issuer of the kind.
	issuerSuffix, issuerExample string

	// scopesUnlisted, when set, says why the kind's scopes_supported never
	// lists an API's scopes, so that their absence is only worth an info.
	scopesUnlisted string
}

// metadataLocation is one well-known URL form.
type metadataLocation struct {
	suffix string // wellKnownOpenID or wellKnownOAuth
	// inserted puts the suffix between the host and the issuer's path
	// (RFC 8414 §3.1) rather than after the path (OpenID Discovery §4).
	inserted bool
}

var (
	openIDAppended = metadataLocation{suffix: wellKnownOpenID}
	openIDInserted = metadataLocation{suffix: wellKnownOpenID, inserted: true}
	oauthAppended  = metadataLocation{suffix: wellKnownOAuth}
	oauthInserted  = metadataLocation{suffix: wellKnownOAuth, inserted: true}
)

// kindTable holds one row per kind, in the order messages list them.
var kindTable = []kindRule{
	{
		kind: KindLogto,
		// Logto serves only the OpenID document, under the issuer's path.
		discovery: []metadataLocation{openIDAppended},
		// Logto always sends at+jwt.
		jwtTypes:       []string{"at+jwt"},
		scopeClaims:    []string{"scope"},
		token:          TokenJWT,
		issuerSuffix:   "/oidc",
		issuerExample:  "https://acme.logto.app/oidc",
		scopesUnlisted: "Logto lists only OpenID scopes there and defines API scopes per API resource",
	},
	{
		kind:      KindOIDC,
		discovery: []metadataLocation{openIDAppended, openIDInserted, oauthInserted},
		// Keycloak, Hydra, Entra and Okta send "JWT", and Cognito sends no
		// typ at all (a missing typ counts as "JWT").
		jwtTypes: []string{"at+jwt", "JWT"},
		// Auth0 puts API permissions in "permissions".
		scopeClaims: []string{"scope", "scp", "permissions"},
		token:       TokenJWT,
	},
	{
		kind: KindOAuth,
		// RFC 8414 first; Okta and node-oidc-provider under a path append
		// the suffix instead of inserting it, hence the last form.
		discovery:   []metadataLocation{oauthInserted, openIDInserted, openIDAppended, oauthAppended},
		jwtTypes:    []string{"at+jwt", "JWT"},
		scopeClaims: []string{"scope", "scp"},
		token:       TokenJWT,
	},
}

// ruleOf returns the row of kind k; ok is false for an unknown kind.
func ruleOf(k Kind) (r kindRule, ok bool) {
	for _, r := range kindTable {
		if r.kind == k {
			return r, true
		}
	}
	return kindRule{}, false
}

// kindNames lists the known kinds for messages: "logto, oidc, oauth".
func kindNames() string {
	kinds := make([]Kind, len(kindTable))
	for i, r := range kindTable {
		kinds[i] = r.kind
	}
	return joinNames(kinds)
}
