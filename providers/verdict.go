package providers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Severity grades a Verdict.
type Severity string

const (
	// SeverityError: the tenant cannot work as configured (every token, or a
	// whole class of tokens, would be refused).
	SeverityError Severity = "error"
	// SeverityWarning: likely trouble for some clients or some tokens.
	SeverityWarning Severity = "warning"
	// SeverityInfo: worth knowing, nothing to fix.
	SeverityInfo Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 3
	case SeverityWarning:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// Verdict is one finding about a tenant's configuration measured against what
// its authorization server publishes. Rule is a stable identifier (scripts
// may match on it); Message says what is wrong and what to do.
type Verdict struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// Rule identifiers, one per check in Verdicts.
const (
	RuleDiscovery            = "discovery"
	RuleIssuerMismatch       = "issuer-mismatch"
	RuleJWKSMissing          = "jwks-missing"
	RuleJWKSUnreachable      = "jwks-unreachable"
	RuleJWKSNoUsableKeys     = "jwks-no-usable-keys"
	RuleAlgorithmsNoKey      = "algorithms-no-key"
	RuleAlgorithmsRefused    = "algorithms-refused-keys"
	RuleAlgorithmsUnused     = "algorithms-unused"
	RuleIntrospectionMissing = "introspection-missing"
	RuleIntrospectionAuth    = "introspection-auth-method"
	RuleResourceIndicators   = "resource-indicators"
	RuleNoAudienceClaim      = "audience-absent"
	RuleScopesMissing        = "scopes-missing"
	RuleScopesUnpublished    = "scopes-unpublished"
	RulePKCE                 = "pkce-s256"
	RuleClientRegistration   = "client-registration"
	RuleAuthorizationCode    = "authorization-code"

	RulePermissionsUngrantable       = "permissions-ungrantable"
	RuleIntrospectionUnauthenticated = "introspection-unauthenticated"
	RuleIntrospectionProbe           = "introspection-probe"
	RuleIDTokenAsAccessToken         = "id-token-as-access-token"
	RuleMissingClaimsAllowed         = "missing-claims-allowed"
)

// Worst returns the highest severity among vs, "" when vs is empty.
func Worst(vs []Verdict) Severity {
	var w Severity
	for _, v := range vs {
		if v.Severity.rank() > w.rank() {
			w = v.Severity
		}
	}
	return w
}

// CanWork reports whether no verdict is an error.
func CanWork(vs []Verdict) bool { return Worst(vs) != SeverityError }

// Verdicts judges a tenant's settings against a probe of its authorization
// server. It is a pure function (no I/O, no clock), so the rules are table
// tested and the CLI only renders them. Verdicts come out most severe first,
// in rule order within a severity. r must come from a probe that ran (nil
// is no report, not a clean one).
//
// Rules that read the metadata document (PKCE, registration, scopes, grant
// types, auth methods, missing endpoints) stay silent when no document was
// usable: the discovery or issuer-mismatch verdict already says why, and a
// cascade of "not advertised" findings would only bury it.
func Verdicts(s Settings, r *ProbeReport) []Verdict {
	s = s.WithDefaults()
	c := s.Config
	var out []Verdict
	add := func(rule string, sev Severity, format string, args ...any) {
		out = append(out, Verdict{Rule: rule, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	var ov MetadataOverride
	if c.Metadata != nil {
		ov = *c.Metadata
	}
	needJWKS := c.Token != TokenIntrospection
	needIntro := c.Token != TokenJWT
	haveMetadata := r.MetadataURL != ""

	// JWT problems are fatal in jwt mode; in auto mode opaque tokens still
	// go to introspection, so the tenant half-works.
	jwtSev := SeverityError
	jwtConsequence := "no access token can be verified"
	if c.Token == TokenAuto {
		jwtSev = SeverityWarning
		jwtConsequence = "JWT access tokens will be refused (opaque ones still go to introspection)"
	}

	// Discovery.
	if !haveMetadata {
		if mm := mismatchedAttempt(r); mm != nil {
			// Even when overrides spare the gateway discovery, tokens carry
			// the issuer the server believes in, so they would all fail the
			// exact iss check.
			if mm.Issuer == "" {
				add(RuleIssuerMismatch, SeverityError,
					"%s names no issuer; a metadata document must name exactly the configured %q", mm.URL, c.Issuer)
			} else {
				add(RuleIssuerMismatch, SeverityError,
					"%s names issuer %q, not the configured %q; issuers are compared byte for byte (a trailing slash matters): set provider.issuer to exactly what the server writes",
					mm.URL, mm.Issuer, c.Issuer)
			}
		} else {
			covered := (!needJWKS || ov.JWKSURI != "") && (!needIntro || ov.IntrospectionEndpoint != "")
			why := discoveryFailure(r)
			if covered {
				add(RuleDiscovery, SeverityWarning,
					"no authorization server metadata (%s); the gateway verifies tokens with the configured endpoints, but MCP clients find the authorization server through its metadata and will not get a token", why)
			} else {
				add(RuleDiscovery, SeverityError,
					"no authorization server metadata (%s); the gateway cannot find the issuer's keys or endpoints", why)
			}
		}
	}

	// Signing keys.
	if needJWKS {
		switch {
		case r.JWKSURL == "":
			if haveMetadata {
				add(RuleJWKSMissing, jwtSev,
					"the metadata publishes no jwks_uri and provider.metadata.jwks_uri is not set: %s; set the JWKS URL or use token mode introspection", jwtConsequence)
			}
		case r.KeysError != "":
			add(RuleJWKSUnreachable, jwtSev, "the JWKS at %s cannot be read (%s): %s", r.JWKSURL, r.KeysError, jwtConsequence)
		default:
			out = append(out, keyVerdicts(c, r, jwtSev, jwtConsequence)...)
		}
	}

	// Introspection.
	if needIntro {
		switch {
		case r.Endpoints.Introspection == "":
			if haveMetadata {
				what := "opaque access tokens"
				if c.Token == TokenIntrospection {
					what = "access tokens"
				}
				add(RuleIntrospectionMissing, SeverityError,
					"token mode %s needs introspection, but the metadata publishes no introspection_endpoint and provider.metadata.introspection_endpoint is not set: %s cannot be verified",
					c.Token, what)
			}
		case c.Introspection != nil && len(r.IntrospectionAuthMethods) > 0:
			name := cmp.Or(c.Introspection.AuthMethod, defaultAuthMethod)
			method := authMethodName(name)
			if !slices.Contains(r.IntrospectionAuthMethods, method) {
				add(RuleIntrospectionAuth, SeverityWarning,
					"provider.introspection.auth_method %s sends %s, which the server does not list in introspection_endpoint_auth_methods_supported (%s); introspection calls may be refused",
					name, method, strings.Join(r.IntrospectionAuthMethods, ", "))
			}
		}
	}

	if needIntro && c.Introspection != nil && c.Introspection.AuthMethod == authNone {
		add(RuleIntrospectionUnauthenticated, SeverityWarning,
			"provider.introspection.auth_method none calls the introspection endpoint without client authentication: whoever can reach it can test tokens and read what they grant, so it must not be public (keep Hydra's admin port on a private network)")
	}
	// What accepting answers without aud or iss trades away (validation
	// requires accepted_clients for it).
	if in := c.Introspection; needIntro && in != nil && (in.AllowMissingAudience || in.AllowMissingIssuer) {
		var missing []string
		if in.AllowMissingAudience {
			missing = append(missing, "aud (the resource the token is for)")
		}
		if in.AllowMissingIssuer {
			missing = append(missing, "iss (the issuer)")
		}
		add(RuleMissingClaimsAllowed, SeverityWarning,
			"introspection answers without %s are accepted for the clients in accepted_clients, %s: any token the authorization server says is active for one of them passes, whatever it was issued for; keep that list to clients whose tokens are meant only for this resource",
			strings.Join(missing, " or "), quotedList(in.AcceptedClients))
	}
	if needIntro && r.Introspection != nil {
		switch pr := r.Introspection; {
		case pr.NotProbed != "":
			add(RuleIntrospectionProbe, SeverityInfo, "the introspection endpoint %s was not probed: %s", pr.URL, pr.NotProbed)
		case !pr.Inactive:
			add(RuleIntrospectionProbe, SeverityError,
				`%s %s with a random token did not answer 200 with "active": false (%s): tokens that need introspection would be answered 503; check the endpoint URL, that it is reachable from the gateway, and the client credentials`,
				pr.Method, pr.URL, pr.Error)
		default:
			add(RuleIntrospectionProbe, SeverityInfo,
				`%s %s answered a random token "active": false, as it should; a random token cannot show whether a real one is accepted (some servers answer false for tokens issued to other clients, or under one client authentication method only) nor what a real answer lacks (iss, aud): check one with --token-file`,
				pr.Method, pr.URL)
		}
	}

	// Audience strategy against what the provider is known to put in aud:
	// hosted providers by their issuer, software by its metadata.
	quirk, known := recogniseIssuer(c.Issuer)
	if !known && r.Software != "" {
		quirk, known = softwareQuirks[r.Software]
	}
	switch {
	case !known:
	case s.Audience.Strategy == AudienceResource && quirk.clientIDAudience:
		add(RuleResourceIndicators, SeverityError,
			"the resource audience strategy cannot work with %s: no token's aud is ever the resource URL, so every token would be refused; %s", quirk.name, quirk.instead)
	case s.Audience.Strategy == AudienceResource && !quirk.resourceIndicators:
		add(RuleResourceIndicators, SeverityWarning,
			"the resource audience strategy expects aud to be the resource URL (RFC 8707), but %s ignores resource indicators: %s", quirk.name, quirk.instead)
	case s.Audience.Strategy == AudienceValues && quirk.noAudience:
		add(RuleNoAudienceClaim, SeverityWarning,
			"the audience strategy needs an aud claim, but %s access tokens have none: %s", quirk.name, quirk.instead)
	case s.Audience.Strategy == AudienceValues && !quirk.resourceIndicators && slices.Contains(s.Audience.Values, s.Resource):
		// The resource URL as an audience value looks like the resource
		// strategy's fix, but MCP clients ask for it with resource=.
		add(RuleResourceIndicators, SeverityWarning,
			"audience.values names the resource URL, which MCP clients ask for with resource= (RFC 8707), but %s ignores resource indicators, so their tokens do not carry it in aud: only a client that asks with the provider's own parameter gets a token that passes; %s", quirk.name, quirk.instead)
	}

	// An ID token is a JWT from the same issuer with the same keys: if the
	// tenant accepts untyped JWTs and an aud that may be a client id, one
	// passes as an access token.
	// A client id is a plain name or a GUID; an API identifier is most often
	// a URI (https://api.acme.example, api://default), which no ID token
	// carries in aud.
	// ID tokens that carry nonce, at_hash, c_hash or s_hash are refused
	// (idtoken.go); one from a code flow may carry none of them.
	clientIDLike := slices.ContainsFunc(s.Audience.Values, func(v string) bool { return !strings.Contains(v, ":") })
	switch {
	case needJWKS && known && quirk.sameTokens:
		// Whatever the strategy: nothing in the token can help.
		msg := sameTokensWarning(quirk) + "; "
		if quirk.clientIDAudience {
			msg += "with the audience strategy, list only a client id that nobody signs in with, used as the audience of tokens other clients ask for (Dex: trusted peers, scope audience:server:client_id:<id>), never the id of the client people sign in to"
		} else {
			msg += "accept only audiences that no sign-in client's ID tokens carry"
		}
		add(RuleIDTokenAsAccessToken, SeverityWarning, "%s", msg)
	case needJWKS && acceptsUntypedJWT(c.JWTTypes) && s.Audience.Strategy == AudienceValues && clientIDLike:
		add(RuleIDTokenAsAccessToken, SeverityWarning,
			"the tenant accepts JWTs typed JWT (or untyped), as ID tokens are, so an ID token that carries none of nonce, at_hash, c_hash and s_hash (one from a code flow may not) passes as an access token if one of audience.values is a client's id, as %s may be: "+
				`use audience values that are no client's id (an API identifier the provider puts only in access tokens), or a provider that issues access tokens typed at+jwt with provider.jwt_types ["at+jwt"]`, quotedList(s.Audience.Values))
	}

	if !haveMetadata {
		return sortVerdicts(out)
	}

	// Permissions a provider has no way to grant (Dex: no scope claim).
	if known && quirk.noScopeClaim {
		var ungrantable []string
		for _, perm := range s.PermissionList() {
			if len(s.Claims.Roles.Grantors(perm)) == 0 {
				ungrantable = append(ungrantable, string(perm))
			}
		}
		if len(ungrantable) > 0 {
			claim := "roles"
			if slices.Contains(r.ScopesSupported, "groups") || slices.Contains(r.ClaimsSupported, "groups") || s.Claims.Roles == nil {
				claim = "groups"
			}
			add(RulePermissionsUngrantable, SeverityError,
				`%s puts no scope claim in its tokens and refuses scopes it does not define, so no token can grant %s%s; grant permissions from a group claim, as in "claims": {"roles": {"claim": %q, "grants": {"todo-admins": ["create", "read", "delete"], "todo-users": ["create"]}}}, with clients asking for the %s scope`,
				quirk.name, strings.Join(ungrantable, ", "), ungrantableEffect(ungrantable), claim, claim)
		}
	}

	// Scopes, but for the permissions that role grants cover.
	var missing []string
	for _, perm := range s.PermissionList() {
		if sc := s.Scopes[perm]; slices.Contains(r.MissingScopes, sc) && len(s.Claims.Roles.Grantors(perm)) == 0 && !slices.Contains(missing, sc) {
			missing = append(missing, sc)
		}
	}
	switch {
	case known && quirk.noScopeClaim:
		// Said above, with what to do instead.
	case len(r.ScopesSupported) == 0:
		add(RuleScopesUnpublished, SeverityInfo,
			"no scopes_supported published, so the tenant's scopes (%s) cannot be checked", strings.Join(r.TenantScopes, ", "))
	case len(missing) > 0 && unlistedAPIScopes(c.Type, quirk, known) != "":
		add(RuleScopesMissing, SeverityInfo,
			"scopes_supported lacks %s, as expected: %s; check that the API defines them",
			strings.Join(missing, ", "), unlistedAPIScopes(c.Type, quirk, known))
	case len(missing) > 0:
		add(RuleScopesMissing, SeverityWarning,
			"scopes_supported lacks %s: clients asking for them may be refused or get tokens without them; define them at the provider, map the permissions to its scopes (scopes.create/read/delete), or grant them from a role or group claim (claims.roles)",
			strings.Join(missing, ", "))
	}

	// What MCP clients need from the authorization server.
	if !r.PKCES256 {
		add(RulePKCE, SeverityWarning,
			"code_challenge_methods_supported lacks S256: MCP clients must use PKCE S256 and refuse an authorization server that does not advertise it")
	}
	if !r.DynamicRegistration && !r.ClientIDMetadataDocument {
		add(RuleClientRegistration, SeverityWarning,
			"no dynamic client registration (registration_endpoint) and no client ID metadata documents: MCP clients cannot get a client on their own; register one by hand and configure it in each client")
	}
	if len(r.GrantTypes) > 0 && !slices.Contains(r.GrantTypes, "authorization_code") {
		add(RuleAuthorizationCode, SeverityWarning,
			"grant_types_supported (%s) lacks authorization_code, the grant MCP clients sign users in with", strings.Join(r.GrantTypes, ", "))
	}
	return sortVerdicts(out)
}

// keyVerdicts judges a JWKS that was read against the allowed algorithms.
func keyVerdicts(c Config, r *ProbeReport, sev Severity, consequence string) []Verdict {
	var out []Verdict
	add := func(rule string, sev Severity, format string, args ...any) {
		out = append(out, Verdict{Rule: rule, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	var usable []KeyInfo
	for _, k := range r.Keys {
		if k.Usable {
			usable = append(usable, k)
		}
	}
	if len(usable) == 0 {
		add(RuleJWKSNoUsableKeys, sev, "the JWKS at %s holds %d keys, none a public signing key the gateway can use: %s", r.JWKSURL, len(r.Keys), consequence)
		return out
	}

	allowed := r.AllowedAlgs
	if len(allowed) == 0 {
		allowed = c.Algorithms
	}
	var accepted int
	var refused []string
	for _, k := range usable {
		if slices.ContainsFunc(KeyAlgorithms(k), func(a string) bool { return slices.Contains(allowed, a) }) {
			accepted++
		} else {
			refused = append(refused, keyLabel(k))
		}
	}
	provider := providerAlgs(r, usable)
	switch {
	case accepted == 0:
		add(RuleAlgorithmsNoKey, sev,
			"no key of the JWKS fits the allowed algorithms (%s); the keys are %s: %s; allow %s in provider.algorithms",
			strings.Join(allowed, ", "), strings.Join(refused, ", "), consequence, strings.Join(provider, ", "))
	case len(refused) > 0:
		add(RuleAlgorithmsRefused, SeverityWarning,
			"keys %s use algorithms outside the allowed ones (%s): tokens they sign will be refused",
			strings.Join(refused, ", "), strings.Join(allowed, ", "))
	}
	// Only an explicit list can be "too wide": the default is derived from
	// what the server advertises. With no key accepted, the error above
	// already names the algorithms to allow.
	if len(c.Algorithms) > 0 && accepted > 0 {
		var unused []string
		for _, a := range c.Algorithms {
			if !slices.Contains(provider, a) {
				unused = append(unused, a)
			}
		}
		if len(unused) > 0 {
			add(RuleAlgorithmsUnused, SeverityWarning,
				"provider.algorithms allows %s, which no key of the provider uses (its keys use %s): narrow the list to what the provider signs with",
				strings.Join(unused, ", "), strings.Join(provider, ", "))
		}
	}
	return out
}

// KeyAlgorithms lists the algorithms a JWKS key can verify: its alg when it
// names one, else every allowed algorithm of its key type (and curve).
func KeyAlgorithms(k KeyInfo) []string {
	if k.Alg != "" {
		return []string{k.Alg}
	}
	var out []string
	for _, a := range allAsymmetricAlgs {
		if keyTypeFitsAlg(k.Type, k.Curve, string(a)) {
			out = append(out, string(a))
		}
	}
	return out
}

// providerAlgs is what the provider signs with, as far as its keys say: a
// key's own alg, or for a key without one, the advertised signing algorithms
// its type can verify (every one of its type when none is advertised).
func providerAlgs(r *ProbeReport, usable []KeyInfo) []string {
	var out []string
	addAll := func(as []string) {
		for _, a := range as {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	for _, k := range usable {
		cands := KeyAlgorithms(k)
		if k.Alg == "" && len(r.SigningAlgs) > 0 {
			var adv []string
			for _, a := range cands {
				if slices.Contains(r.SigningAlgs, a) {
					adv = append(adv, a)
				}
			}
			if len(adv) > 0 {
				cands = adv
			}
		}
		addAll(cands)
	}
	return out
}

func keyLabel(k KeyInfo) string {
	alg := k.Alg
	if alg == "" {
		alg = k.Type
		if k.Curve != "" {
			alg += " " + k.Curve
		}
	}
	if k.KID == "" {
		return alg
	}
	return k.KID + " (" + alg + ")"
}

// mismatchedAttempt returns the first document that answered with another
// issuer, nil if none did.
func mismatchedAttempt(r *ProbeReport) *DiscoveryAttempt {
	for i, a := range r.Discovery {
		if a.Status == 200 && a.Error != "" && a.Issuer != r.Issuer {
			return &r.Discovery[i]
		}
	}
	return nil
}

// discoveryFailure summarises why no document was usable: unreachable, or
// the statuses the metadata URLs answered.
func discoveryFailure(r *ProbeReport) string {
	if len(r.Discovery) == 0 {
		return "no metadata URL could be formed from the issuer"
	}
	var statuses []string
	for _, a := range r.Discovery {
		if a.Status != 0 {
			statuses = append(statuses, fmt.Sprintf("HTTP %d", a.Status))
		}
	}
	if len(statuses) == 0 {
		// No HTTP status at all: a dead host, a timeout, or a body that
		// was not JSON; the first error says which.
		return "no answer: " + r.Discovery[0].Error
	}
	return fmt.Sprintf("%d metadata URLs tried, answers: %s", len(r.Discovery), strings.Join(statuses, ", "))
}

func sortVerdicts(vs []Verdict) []Verdict {
	slices.SortStableFunc(vs, func(a, b Verdict) int { return b.Severity.rank() - a.Severity.rank() })
	return vs
}

// acceptsUntypedJWT reports whether a typ list lets through what ID tokens
// carry: typ JWT, or none (which counts as JWT).
func acceptsUntypedJWT(types []string) bool {
	return slices.ContainsFunc(types, func(t string) bool { return normaliseType(t) == "jwt" })
}

// ungrantableEffect says what no user could do without the todo server's
// permissions perms, as " (no user could …)"; "" for other permissions (an
// upstream's, whose meaning the gateway does not know).
func ungrantableEffect(perms []string) string {
	effects := map[string]string{
		string(PermCreate): "create todos",
		string(PermRead):   "see the others' todos",
		string(PermDelete): "delete the others' todos",
	}
	var out []string
	for _, p := range perms {
		if e, ok := effects[p]; ok {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (no user could " + strings.Join(out, ", or ") + ")"
}
