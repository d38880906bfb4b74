package providers

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Problem is one thing wrong with Settings.
type Problem struct {
	// Path is the JSON path of the offending value relative to the tenant
	// object: "provider.issuer", "provider.algorithms[1]",
	// "audience.values[0]", "scopes.create", "resource".
	Path string
	// Message says what is wrong and, where it can, how to fix it.
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// InvalidSettingsError is New's and Probe's refusal of settings Validate
// finds problems with.
type InvalidSettingsError struct {
	Tenant   string
	Problems []Problem
}

func (e *InvalidSettingsError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	msg := strings.Join(lines, "; ")
	if e.Tenant != "" {
		msg = fmt.Sprintf("tenant %q: %s", e.Tenant, msg)
	}
	return msg
}

// The values each enumerated setting accepts, in the order messages list them.
var (
	tokenModes = []TokenMode{TokenJWT, TokenIntrospection, TokenAuto}
	strategies = []AudienceStrategy{AudienceResource, AudienceValues, AudienceScope}
	// scopeClaimNames are the claims scopes may be read from; each has a
	// known shape (see claimSet.list).
	scopeClaimNames = []string{"scope", "scp", "scopes", "permissions", "roles"}
	authMethods     = []string{authBasic, authForm, authNone}
)

// Validate applies WithDefaults and reports every problem of the result at
// once, in the order of the fields in the configuration file. It is the
// whole of what New refuses, but for what needs the environment (reading
// the introspection secret); the tenants package runs exactly this for
// "check".
func (s Settings) Validate() []Problem {
	s = s.WithDefaults()
	var v validation
	v.provider("provider", s.Config)
	v.audience("audience", s.Audience)
	if in := s.Config.Introspection; in != nil {
		v.missingClaims("provider.introspection", *in, s.Audience.Strategy)
	}
	if s.Audience.Strategy == AudienceResource && s.Resource == "" {
		// The message is the tenants package's own for a missing resource,
		// so that a tenant reports it once.
		v.add("resource", "required")
	}
	v.scopes("scopes", s.Scopes, s.Audience, s.PermissionList())
	v.claims("claims", s.Claims, s.PermissionList())
	return v.problems
}

type validation struct{ problems []Problem }

func (v *validation) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validation) provider(p string, c Config) {
	kind, known := ruleOf(c.Type)
	switch {
	case c.Type == "":
		v.add(p+".type", "required (one of %s)", kindNames())
	case !known:
		v.add(p+".type", "unknown type %q (one of %s)", c.Type, kindNames())
	}

	if c.Issuer == "" {
		v.add(p+".issuer", "required")
	} else {
		// Not canonicalised, unlike resources: the issuer must equal the
		// provider's own spelling byte for byte (Auth0's trailing slash).
		u, probs := checkServerURL(c.Issuer, urlRules{allowHTTP: c.AllowHTTPIssuer})
		for _, msg := range probs {
			v.add(p+".issuer", "%s", msg)
		}
		if u != nil && kind.issuerSuffix != "" && !strings.HasSuffix(u.Path, kind.issuerSuffix) {
			v.add(p+".issuer", "a %s issuer ends in %q, such as %q", kind.kind, kind.issuerSuffix, kind.issuerExample)
		}
	}

	switch {
	case slices.Contains(tokenModes, c.Token):
	case c.Token == "":
		// Only an unknown type has no default, and it is reported above.
	default:
		v.add(p+".token", "unknown token mode %q (one of %s)", c.Token, joinNames(tokenModes))
	}
	switch {
	case c.Introspection == nil && (c.Token == TokenIntrospection || c.Token == TokenAuto):
		v.add(p+".introspection", "required when token is %q: the gateway's client_id and secret reference", c.Token)
	case c.Introspection != nil && c.Token == TokenJWT:
		// An ignored block is almost always a mistake: fail rather than run
		// without the verification the operator believes is configured.
		v.add(p+".introspection", `is set but token is "jwt": set "token" to "introspection" or "auto", or remove this block`)
	}
	if c.Introspection != nil {
		v.introspection(p+".introspection", *c.Introspection)
	}

	for i, alg := range c.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, i)
		switch {
		case isAsymmetricAlg(alg):
		case strings.EqualFold(alg, "none"):
			v.add(ap, "%q is never allowed: tokens must be signed", alg)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			v.add(ap, "%q is not allowed: HMAC needs a shared secret, and a resource server verifies with public keys", alg)
		default:
			v.add(ap, "unknown algorithm %q (allowed: %s)", alg, joinNames(allAsymmetricAlgs))
		}
	}
	for i, typ := range c.JWTTypes {
		if strings.TrimSpace(typ) == "" {
			v.add(fmt.Sprintf("%s.jwt_types[%d]", p, i), "must not be empty")
		}
	}
	v.idTokenClaims(p+".allow_id_token_claims", c.AllowIDTokenClaims)
	if d := time.Duration(*c.Leeway); d < 0 || d > maxLeeway {
		v.add(p+".leeway", "must be between 0s and %s", maxLeeway)
	}
	if time.Duration(*c.JWKSMinRefresh) < minJWKSMinRefresh {
		v.add(p+".jwks_min_refresh", "must be at least %s", minJWKSMinRefresh)
	}
	if m := c.Metadata; m != nil {
		endpoint := urlRules{allowHTTP: c.AllowHTTPIssuer, allowQuery: true, issuer: c.Issuer}
		for _, e := range []struct{ name, url string }{
			{"jwks_uri", m.JWKSURI},
			{"introspection_endpoint", m.IntrospectionEndpoint},
		} {
			if e.url == "" {
				continue
			}
			_, probs := checkServerURL(e.url, endpoint)
			for _, msg := range probs {
				v.add(p+".metadata."+e.name, "%s", msg)
			}
		}
	}
}

func (v *validation) introspection(p string, c IntrospectionConfig) {
	if c.ClientSecret != "" {
		v.add(p+".client_secret", "inline secrets are not allowed; use client_secret_env or client_secret_file")
	}
	if c.AuthMethod == authNone {
		// Hydra's admin endpoint takes no client authentication. A
		// credential given anyway would be silently unused: say so.
		for _, f := range []struct{ name, val string }{
			{"client_id", c.ClientID}, {"client_secret_env", c.ClientSecretEnv}, {"client_secret_file", c.ClientSecretFile},
		} {
			if f.val != "" {
				v.add(p+"."+f.name, `is not used with auth_method "none": remove it, or choose "basic" or "form"`)
			}
		}
	} else {
		if c.ClientID == "" {
			v.add(p+".client_id", `required (or auth_method "none" for an endpoint that takes no client authentication)`)
		}
		v.problems = append(v.problems, CheckSecretRef(p, "client_secret", c.ClientSecretEnv, c.ClientSecretFile)...)
	}
	if !slices.Contains(authMethods, c.AuthMethod) {
		v.add(p+".auth_method", "unknown auth method %q (one of %s)", c.AuthMethod, strings.Join(authMethods, ", "))
	}
	switch d := time.Duration(*c.CacheTTL); {
	case d < 0:
		v.add(p+".cache_ttl", "must not be negative")
	case d > maxIntrospectTTL:
		v.add(p+".cache_ttl", "must be at most %s: a revoked token stays usable as long as its answer is cached", maxIntrospectTTL)
	}
	if n := *c.MaxCallsPerSecond; n < 1 || n > maxIntrospectRate {
		v.add(p+".max_calls_per_second", "must be from 1 to %d", maxIntrospectRate)
	}
	for i, id := range c.AcceptedClients {
		if strings.TrimSpace(id) == "" {
			v.add(fmt.Sprintf("%s.accepted_clients[%d]", p, i), "must not be empty")
		}
	}
}

// missingClaims checks what binds an introspection answer to this resource
// when the tenant accepts one without aud or iss.
func (v *validation) missingClaims(p string, c IntrospectionConfig, strategy AudienceStrategy) {
	bound := len(c.AcceptedClients) > 0
	switch {
	case c.AllowMissingAudience && strategy == AudienceScope:
		v.add(p+".allow_missing_audience", "has no effect: the scope strategy checks no audience (its scope prefix binds tokens to this resource); remove it")
	case c.AllowMissingAudience && !bound:
		v.add(p+".allow_missing_audience", "accepts any token the authorization server says is active, whatever resource it was issued for (a client-credentials token another client holds for another API would pass): "+
			"list the clients whose tokens this resource accepts in %s.accepted_clients, or use the scope audience strategy with a prefix only this resource's scopes carry", p)
	}
	if c.AllowMissingIssuer && !bound {
		v.add(p+".allow_missing_issuer", "accepts an answer that does not say which issuer the token comes from (an endpoint serving several issuers would vouch for all of them): "+
			"list the clients whose tokens this resource accepts in %s.accepted_clients", p)
	}
}

func (v *validation) audience(p string, a Audience) {
	if !slices.Contains(strategies, a.Strategy) {
		v.add(p+".strategy", "unknown strategy %q (one of %s)", a.Strategy, joinNames(strategies))
	}
	// Values or a prefix under the wrong strategy would be silently ignored;
	// say so instead, the operator expected them to matter.
	if a.Strategy == AudienceValues {
		if len(a.Values) == 0 {
			v.add(p+".values", `required with strategy "audience": the accepted "aud" values`)
		}
		for i, val := range a.Values {
			if val == "" {
				v.add(fmt.Sprintf("%s.values[%d]", p, i), "must not be empty")
			}
		}
	} else if a.Values != nil {
		v.add(p+".values", `only used with strategy "audience"`)
	}
	if a.Strategy == AudienceScope {
		switch {
		case a.Prefix == "":
			v.add(p+".prefix", `required with strategy "scope", such as "todo-api:"`)
		case !IsScopeToken(a.Prefix):
			v.add(p+".prefix", "must be printable ASCII without spaces, quotes or backslashes (it starts every scope)")
		}
	} else if a.Prefix != "" {
		v.add(p+".prefix", `only used with strategy "scope"`)
	}
}

func (v *validation) scopes(p string, m ScopeMap, a Audience, perms []Permission) {
	for _, perm := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(perms, perm) {
			v.add(p, "unknown permission %q (one of %s)", perm, joinNames(perms))
		}
	}
	def := DefaultScopeMap(a, perms)
	for _, perm := range perms {
		s := m[perm]
		if s == def[perm] {
			// A default is right whenever the prefix it is made of is, and
			// a wrong prefix has a problem of its own.
			continue
		}
		sp := p + "." + string(perm)
		switch {
		case s == "":
			v.add(sp, "must not be empty (omit it for the default)")
		case !IsScopeToken(s):
			// A scope travels in a space-separated list and inside a quoted
			// WWW-Authenticate parameter (RFC 6749 §3.3, RFC 6750 §3).
			v.add(sp, "must be one scope: printable ASCII without spaces, quotes or backslashes")
		case a.Strategy == AudienceScope && a.Prefix != "" && !strings.HasPrefix(s, a.Prefix):
			v.add(sp, "must start with the audience prefix %q", a.Prefix)
		}
	}
}

func (v *validation) claims(p string, c Claims, perms []Permission) {
	for i, name := range c.Scopes {
		if !slices.Contains(scopeClaimNames, name) {
			v.add(fmt.Sprintf("%s.scopes[%d]", p, i), "unknown scope claim %q (one of %s); to grant permissions from a group or role claim such as %q, map its values in claims.roles (\"roles\": {\"claim\": %q, \"grants\": {…}})",
				name, strings.Join(scopeClaimNames, ", "), name, name)
		}
	}
	for i, name := range c.ClientID {
		if name == "" {
			v.add(fmt.Sprintf("%s.client_id[%d]", p, i), "must not be empty")
		}
	}
	if c.Roles != nil {
		v.roles(p+".roles", *c.Roles, perms)
	}
}

func (v *validation) roles(p string, r RoleGrants, known []Permission) {
	switch {
	case r.Claim == "":
		v.add(p+".claim", `required: the claim whose values grant permissions, such as "groups" or "realm_access.roles"`)
	case slices.Contains(strings.Split(r.Claim, "."), ""):
		v.add(p+".claim", "%q has an empty segment: a claim name or a dotted path such as \"realm_access.roles\"", r.Claim)
	}
	if len(r.Grants) == 0 {
		v.add(p+".grants", `must map at least one claim value to permissions, such as {"todo-admins": ["create", "read", "delete"]}`)
	}
	for _, val := range slices.Sorted(maps.Keys(r.Grants)) {
		vp := fmt.Sprintf("%s.grants[%q]", p, val)
		perms := r.Grants[val]
		switch {
		case val == "":
			v.add(vp, "a claim value must not be empty")
		case len(perms) == 0:
			v.add(vp, "must grant at least one permission (one of %s); remove the value to grant nothing", joinNames(known))
		}
		for i, perm := range perms {
			if !slices.Contains(known, perm) {
				v.add(fmt.Sprintf("%s[%d]", vp, i), "unknown permission %q (one of %s)", perm, joinNames(known))
			}
		}
	}
}

// urlRules say what a URL of the authorization server may be.
type urlRules struct {
	// allowHTTP accepts plain http on any host, not only on loopback.
	allowHTTP bool
	// allowQuery accepts a query: RFC 8414 §2 forbids one in the issuer
	// only, and some providers' JWKS URLs have one.
	allowQuery bool
	// issuer, for an endpoint, is the issuer it belongs to: an endpoint
	// must not downgrade an https issuer to plain http, where keys or
	// introspection answers could be swapped on the way.
	issuer string
}

// checkServerURL returns every reason raw is not a usable URL of the
// authorization server, and the parsed URL unless it is not a URL at all.
// Discovered endpoints go through it too (see discovery.resolve).
func checkServerURL(raw string, r urlRules) (*url.URL, []string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		return nil, []string{"must be an absolute https URL"}
	}
	var probs []string
	if u.User != nil {
		probs = append(probs, "must not contain user information")
	}
	if !r.allowQuery && (u.RawQuery != "" || u.ForceQuery) {
		probs = append(probs, "must not have a query")
	}
	if strings.Contains(raw, "#") {
		probs = append(probs, "must not have a fragment")
	}
	switch {
	case u.Scheme == "https":
	case !r.allowHTTP && !isLoopback(u.Hostname()):
		probs = append(probs, `must use https (http is accepted only for a loopback host or with "allow_http_issuer": true)`)
	case strings.HasPrefix(r.issuer, "https:"):
		probs = append(probs, "must use https like the issuer: keys or answers fetched over plain http could be altered on the way")
	}
	return u, probs
}

// isLoopback reports whether host names this machine: "localhost" in any
// case (host names are case-insensitive) or any loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// IsScopeToken reports whether s is a scope-token of RFC 6749 §3.3, which
// can also stand in a quoted WWW-Authenticate parameter.
func IsScopeToken(s string) bool {
	for i := range len(s) {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// joinNames lists enumerated values for a message: "jwt, introspection, auto".
func joinNames[T ~string](values []T) string {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}
