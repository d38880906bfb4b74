package tenants

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path is the JSON path of the offending value ("tenants[2].resource"),
	// or "" for the document as a whole.
	Path string
	// Tenant is the id of the tenant the problem lies in, as written, when
	// there is one; it saves a reader from counting array entries.
	Tenant string
	// Message says what is wrong and, where it can, how to fix it.
	Message string
}

func (p Problem) String() string {
	loc := p.Path
	if n, rest, ok := splitTenantPath(p.Path); ok && p.Tenant != "" {
		loc = fmt.Sprintf("tenants[%d] (id %q)%s", n, p.Tenant, rest)
	}
	if loc == "" {
		loc = "top level"
	}
	return loc + ": " + p.Message
}

// ValidationError is every problem found in a configuration, in document
// order, so that one run of "check" shows everything to fix.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

var (
	idPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	envVarPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostPattern   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

// allowedAlgorithms are the asymmetric JWS algorithms: a resource server
// holds only public keys, so HMAC ("HS*") could only work with a shared
// secret, and "none" is no signature at all.
var allowedAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}

var scopeClaims = []string{"scope", "scp", "scopes", "permissions", "roles"}

const maxLeeway = 5 * time.Minute

type validator struct {
	problems []Problem
	tenant   string // id of the tenant being checked, for Problem.Tenant
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Tenant: v.tenant, Message: fmt.Sprintf(format, args...)})
}

func (c *Config) validate() []Problem {
	v := &validator{}
	v.listen("listen", c.Listen)
	v.listen("admin.listen", c.Admin.Listen)
	if c.Admin.Listen != "" && c.Admin.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		v.add("admin.listen", "must differ from listen: the admin endpoints never share the public listener")
	}
	v.store("store", c.Store)
	v.http("http", c.HTTP)
	if len(c.Tenants) == 0 {
		v.add("tenants", "at least one tenant is required")
	}
	firstID := make(map[string]int)
	firstLoc := make(map[string]int)
	for i := range c.Tenants {
		t := &c.Tenants[i]
		p := fmt.Sprintf("tenants[%d]", i)
		v.tenant = t.ID
		loc := v.tenantFields(p, t)
		if t.ID != "" {
			if j, dup := firstID[t.ID]; dup {
				v.add(p+".id", "duplicate id %q: tenants[%d] already uses it", t.ID, j)
			} else {
				firstID[t.ID] = i
			}
		}
		if loc.url != nil {
			// The scheme is not part of the key: routing is by host and path
			// because the gateway cannot trust that it sees the client's scheme.
			key := loc.host + loc.path
			if j, dup := firstLoc[key]; dup {
				v.add(p+".resource", "host and path already used by tenants[%d] (id %q)", j, c.Tenants[j].ID)
			} else {
				firstLoc[key] = i
			}
		}
	}
	return v.problems
}

func (v *validator) http(path string, h HTTPConfig) {
	for i, o := range h.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || o != strings.ToLower(o) {
			v.add(fmt.Sprintf("%s.allowed_origins[%d]", path, i),
				`must be "*" or an origin as a browser sends it: lower-case scheme://host[:port], no path (such as "https://app.example.com")`)
		}
	}
	if h.BodyLimit != 0 && (h.BodyLimit < minBodyLimit || h.BodyLimit > maxBodyLimit) {
		v.add(path+".body_limit", "must be from %d to %d bytes", minBodyLimit, maxBodyLimit)
	}
}

func (v *validator) listen(path, addr string) {
	if addr == "" {
		return // default
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, `must be host:port, such as "127.0.0.1:3001"`)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "port must be a number from 0 to 65535")
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil && !hostPattern.MatchString(host) {
		v.add(path, "invalid host %q", host)
	}
}

// tenantFields checks one tenant on its own and returns its parsed resource
// (url nil when invalid) for the cross-tenant checks.
func (v *validator) tenantFields(p string, t *Tenant) resource {
	switch {
	case t.ID == "":
		v.add(p+".id", "required")
	case !idPattern.MatchString(t.ID):
		v.add(p+".id", `must be 1 to 63 characters from a-z, 0-9 and "-", starting with a letter or digit (it names the tenant's storage)`)
	}
	loc, probs := parseResource(t.Resource)
	for _, msg := range probs {
		v.add(p+".resource", "%s", msg)
	}
	if t.ResourceDocumentation != "" {
		if u, err := url.Parse(t.ResourceDocumentation); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			v.add(p+".resource_documentation", "must be an absolute http or https URL")
		}
	}
	v.provider(p+".provider", t.Provider)
	v.audience(p+".audience", t.Audience)
	v.scopes(p+".scopes", t.Scopes, t.Audience)
	v.claims(p+".claims", t.Claims)
	return loc
}

func (v *validator) provider(p string, c providers.Config) {
	switch c.Type {
	case providers.KindLogto, providers.KindOIDC, providers.KindOAuth:
	case "":
		v.add(p+".type", "required (one of logto, oidc, oauth)")
	default:
		v.add(p+".type", "unknown type %q (one of logto, oidc, oauth)", c.Type)
	}

	if c.Issuer == "" {
		v.add(p+".issuer", "required")
	} else if u := v.serverURL(p+".issuer", c.Issuer, c.AllowHTTPIssuer); u != nil {
		// Not canonicalised, unlike resources: the issuer must equal the
		// provider's own spelling byte for byte (Auth0's trailing slash).
		if c.Type == providers.KindLogto && !strings.HasSuffix(u.Path, "/oidc") {
			v.add(p+".issuer", `a logto issuer ends in "/oidc", such as "https://acme.logto.app/oidc"`)
		}
	}

	mode := c.Token
	switch mode {
	case providers.TokenJWT, providers.TokenIntrospection, providers.TokenAuto:
	case "":
		mode = defaultTokenMode(c)
	default:
		v.add(p+".token", "unknown token mode %q (one of jwt, introspection, auto)", c.Token)
		mode = ""
	}
	switch {
	case c.Introspection == nil && (mode == providers.TokenIntrospection || mode == providers.TokenAuto):
		v.add(p+".introspection", "required when token is %q: the gateway's client_id and secret reference", mode)
	case c.Introspection != nil && mode == providers.TokenJWT:
		// An ignored block is almost always a mistake: fail rather than run
		// without the verification the operator believes is configured.
		why := ""
		if c.Token == "" {
			why = fmt.Sprintf(" (the default for %s)", c.Type)
		}
		v.add(p+".introspection", `is set but token is "jwt"%s: set "token" to "introspection" or "auto", or remove this block`, why)
	}
	if c.Introspection != nil {
		v.introspection(p+".introspection", *c.Introspection)
	}

	for i, alg := range c.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, i)
		switch {
		case slices.Contains(allowedAlgorithms, alg):
		case strings.EqualFold(alg, "none"):
			v.add(ap, "%q is never allowed: tokens must be signed", alg)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			v.add(ap, "%q is not allowed: HMAC needs a shared secret, and a resource server verifies with public keys", alg)
		default:
			v.add(ap, "unknown algorithm %q (allowed: %s)", alg, strings.Join(allowedAlgorithms, ", "))
		}
	}
	for i, typ := range c.JWTTypes {
		if strings.TrimSpace(typ) == "" {
			v.add(fmt.Sprintf("%s.jwt_types[%d]", p, i), "must not be empty")
		}
	}
	if c.Leeway != nil {
		if d := time.Duration(*c.Leeway); d < 0 || d > maxLeeway {
			v.add(p+".leeway", "must be between 0s and %s", maxLeeway)
		}
	}
	if c.JWKSMinRefresh != nil && time.Duration(*c.JWKSMinRefresh) < time.Second {
		// The floor is the point: it is what stops forged kids from turning
		// into a flood of JWKS fetches.
		v.add(p+".jwks_min_refresh", "must be at least 1s")
	}
	if m := c.Metadata; m != nil {
		if m.JWKSURI != "" {
			v.serverURL(p+".metadata.jwks_uri", m.JWKSURI, c.AllowHTTPIssuer)
		}
		if m.IntrospectionEndpoint != "" {
			v.serverURL(p+".metadata.introspection_endpoint", m.IntrospectionEndpoint, c.AllowHTTPIssuer)
		}
	}
}

// serverURL checks a URL of the authorization server: absolute, no userinfo,
// query or fragment (RFC 8414 §2 for the issuer), and https unless the host
// is loopback or plain http was explicitly allowed. It returns the parsed URL
// when the URL is usable for further checks.
func (v *validator) serverURL(p, raw string, allowHTTP bool) *url.URL {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		v.add(p, "must be an absolute https URL")
		return nil
	}
	if u.User != nil {
		v.add(p, "must not contain user information")
	}
	if u.RawQuery != "" || u.ForceQuery {
		v.add(p, "must not have a query")
	}
	if strings.Contains(raw, "#") {
		v.add(p, "must not have a fragment")
	}
	if u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()) {
		v.add(p, `must use https (http is accepted only for a loopback host or with "allow_http_issuer": true)`)
	}
	return u
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (v *validator) introspection(p string, c providers.IntrospectionConfig) {
	if c.ClientID == "" {
		v.add(p+".client_id", "required")
	}
	if c.ClientSecret != "" {
		v.add(p+".client_secret", "inline secrets are not allowed; use client_secret_env or client_secret_file")
	}
	switch {
	case c.ClientSecretEnv != "" && c.ClientSecretFile != "":
		v.add(p, "set only one of client_secret_env and client_secret_file")
	case c.ClientSecretEnv == "" && c.ClientSecretFile == "":
		v.add(p, "set client_secret_env or client_secret_file")
	case c.ClientSecretEnv != "" && !envVarPattern.MatchString(c.ClientSecretEnv):
		v.add(p+".client_secret_env", `must be an environment variable name (letters, digits and "_", not starting with a digit)`)
	}
	switch c.AuthMethod {
	case "", "basic", "form":
	default:
		v.add(p+".auth_method", "unknown auth method %q (one of basic, form)", c.AuthMethod)
	}
	if c.CacheTTL != nil && *c.CacheTTL < 0 {
		v.add(p+".cache_ttl", "must not be negative")
	}
}

func (v *validator) audience(p string, a providers.Audience) {
	switch a.Strategy {
	case providers.AudienceResource, providers.AudienceValues, providers.AudienceScope:
	case "":
		v.add(p+".strategy", "required (one of resource, audience, scope)")
	default:
		v.add(p+".strategy", "unknown strategy %q (one of resource, audience, scope)", a.Strategy)
	}
	// Values or a prefix under the wrong strategy would be silently ignored;
	// say so instead, the operator expected them to matter.
	if a.Strategy == providers.AudienceValues {
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
	if a.Strategy == providers.AudienceScope {
		switch {
		case a.Prefix == "":
			v.add(p+".prefix", `required with strategy "scope", such as "todo-api:"`)
		case !isScopeToken(a.Prefix):
			v.add(p+".prefix", "must be printable ASCII without spaces, quotes or backslashes (it starts every scope)")
		}
	} else if a.Prefix != "" {
		v.add(p+".prefix", `only used with strategy "scope"`)
	}
}

func (v *validator) scopes(p string, m providers.ScopeMap, a providers.Audience) {
	for _, perm := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(providers.Permissions, perm) {
			v.add(p, "unknown permission %q (one of create, read, delete)", perm)
		}
	}
	for _, perm := range providers.Permissions {
		s, ok := m[perm]
		if !ok {
			continue
		}
		sp := p + "." + string(perm)
		switch {
		case s == "":
			v.add(sp, "must not be empty (omit it for the default)")
		case !isScopeToken(s):
			// A scope travels in a space-separated list and inside a quoted
			// WWW-Authenticate parameter (RFC 6749 §3.3, RFC 6750 §3).
			v.add(sp, "must be one scope: printable ASCII without spaces, quotes or backslashes")
		case a.Strategy == providers.AudienceScope && a.Prefix != "" && !strings.HasPrefix(s, a.Prefix):
			v.add(sp, "must start with the audience prefix %q", a.Prefix)
		}
	}
}

// isScopeToken reports whether s is a scope-token of RFC 6749 §3.3.
func isScopeToken(s string) bool {
	for i := range len(s) {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

func (v *validator) claims(p string, c providers.Claims) {
	for i, name := range c.Scopes {
		if !slices.Contains(scopeClaims, name) {
			v.add(fmt.Sprintf("%s.scopes[%d]", p, i), "unknown scope claim %q (one of %s)", name, strings.Join(scopeClaims, ", "))
		}
	}
	for i, name := range c.ClientID {
		if name == "" {
			v.add(fmt.Sprintf("%s.client_id[%d]", p, i), "must not be empty")
		}
	}
}
