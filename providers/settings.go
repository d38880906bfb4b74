package providers

import (
	"maps"
	"slices"
	"time"
)

// Settings is everything a tenant's verifier is built from: the tenant's
// "provider", "audience", "claims" and "scopes" blocks, and the resource URL
// the resource audience strategy checks. This package alone defaults
// (WithDefaults) and validates (Validate) them; the tenants package only
// prefixes the problems with the tenant's JSON path, so that "check" and
// "serve" can never disagree.
type Settings struct {
	Tenant   string // tenant id, copied into every Principal
	Resource string // the tenant's canonical resource URL (RFC 8707 audience)
	Config   Config // the tenant's "provider" block
	Audience Audience
	Claims   Claims
	Scopes   ScopeMap
	// Permissions are the permissions of the tenant's MCP server, in the
	// order lists show them: nil for the built-in todo server's
	// (Permissions); an upstream tenant's are those its tool table names.
	Permissions []Permission
}

// PermissionList is the tenant's permissions: s.Permissions, or the todo
// server's when it names none.
func (s Settings) PermissionList() []Permission {
	if s.Permissions == nil {
		return Permissions
	}
	return s.Permissions
}

// Defaults and bounds of the settings; Validate enforces the bounds.
const (
	defaultLeeway         = 60 * time.Second
	maxLeeway             = 5 * time.Minute
	defaultJWKSMinRefresh = 10 * time.Second
	// minJWKSMinRefresh is what stops forged kids from turning into a flood
	// of JWKS fetches.
	minJWKSMinRefresh    = time.Second
	defaultIntrospectTTL = 60 * time.Second
	// maxIntrospectTTL bounds the introspection cache: past it, a revoked
	// token would stay usable for longer than operators expect.
	maxIntrospectTTL = 10 * time.Minute
	// defaultIntrospectRate re-introspects 6,000 active tokens a minute
	// at the default cache_ttl, with room for a second's burst of new ones.
	defaultIntrospectRate = 100
	maxIntrospectRate     = 10000
	// The introspection auth methods: client_secret_basic (the default),
	// client_secret_post, and none, for an endpoint that takes no client
	// authentication (Hydra's admin API).
	authBasic         = "basic"
	authForm          = "form"
	authNone          = "none"
	defaultAuthMethod = authBasic
)

// authMethodName is an introspection auth method as RFC 8414 metadata
// (introspection_endpoint_auth_methods_supported) names it.
func authMethodName(m string) string {
	switch m {
	case authForm:
		return "client_secret_post"
	case authNone:
		return "none"
	}
	return "client_secret_basic"
}

// defaultClientIDClaims are the claims naming the client, in order: the
// RFC 9068 claim, then what OpenID providers (azp) and Okta (cid) use.
var defaultClientIDClaims = []string{"client_id", "azp", "cid"}

// WithDefaults returns s with every field the operator left out given its
// default. It only fills what is absent and never corrects a value that is
// present, so that Validate sees every mistake instead of a silent fix:
//
//   - token mode: auto when an introspection block is present (for every
//     kind: the operator configured introspection to have it used), else
//     the kind's default (kindTable);
//   - jwt_types and claims.scopes: the kind's defaults (kindTable);
//   - claims.subject "sub"; claims.client_id client_id, azp, cid;
//   - leeway 60s; jwks_min_refresh 10s;
//   - introspection auth_method "basic", cache_ttl 60s,
//     max_calls_per_second 100;
//   - audience strategy "resource" (RFC 8707: aud must name this resource);
//   - each permission missing from the scope map: see DefaultScopeMap.
//
// An unknown provider type gets no kind-dependent default; Validate reports
// the type. Slices and maps in the result are copies, so callers may keep
// mutating s; WithDefaults is idempotent.
func (s Settings) WithDefaults() Settings {
	kind, known := ruleOf(s.Config.Type)

	c := s.Config
	if c.Token == "" {
		switch {
		case c.Introspection != nil:
			c.Token = TokenAuto
		case known:
			c.Token = kind.token
		}
	}
	c.JWTTypes = orDefault(c.JWTTypes, kind.jwtTypes)
	c.Algorithms = slices.Clone(c.Algorithms)
	if c.Leeway == nil {
		c.Leeway = durationPtr(defaultLeeway)
	}
	if c.JWKSMinRefresh == nil {
		c.JWKSMinRefresh = durationPtr(defaultJWKSMinRefresh)
	}
	if c.Introspection != nil {
		in := *c.Introspection
		if in.AuthMethod == "" {
			in.AuthMethod = defaultAuthMethod
		}
		if in.CacheTTL == nil {
			in.CacheTTL = durationPtr(defaultIntrospectTTL)
		}
		if in.MaxCallsPerSecond == nil {
			rate := defaultIntrospectRate
			in.MaxCallsPerSecond = &rate
		}
		c.Introspection = &in
	}
	s.Config = c

	if s.Audience.Strategy == "" {
		s.Audience.Strategy = AudienceResource
	}
	s.Audience.Values = slices.Clone(s.Audience.Values)

	s.Claims.Scopes = orDefault(s.Claims.Scopes, kind.scopeClaims)
	if s.Claims.Subject == "" {
		s.Claims.Subject = "sub"
	}
	s.Claims.ClientID = orDefault(s.Claims.ClientID, defaultClientIDClaims)
	s.Claims.Roles = s.Claims.Roles.clone()

	// Unknown permissions are kept for Validate to report.
	s.Permissions = slices.Clone(s.Permissions)
	scopes := maps.Clone(s.Scopes)
	if scopes == nil {
		scopes = make(ScopeMap, len(s.PermissionList()))
	}
	for perm, scope := range DefaultScopeMap(s.Audience, s.PermissionList()) {
		if _, set := scopes[perm]; !set {
			scopes[perm] = scope
		}
	}
	s.Scopes = scopes
	return s
}

// orDefault returns a copy of list, or of def when list is empty.
func orDefault(list, def []string) []string {
	if len(list) == 0 {
		return slices.Clone(def)
	}
	return slices.Clone(list)
}

// DefaultScopeMap is the permission → scope mapping of a tenant with these
// permissions that sets none: under the scope strategy the prefix followed
// by the permission name (todo-api:create); otherwise create:todos,
// read:todos, delete:todos for the todo server's, and the permission's own
// name for any other (an upstream's "notes:write" is the scope
// notes:write).
func DefaultScopeMap(a Audience, perms []Permission) ScopeMap {
	m := make(ScopeMap, len(perms))
	for _, perm := range perms {
		switch {
		case a.Strategy == AudienceScope:
			m[perm] = a.Prefix + string(perm)
		case isTodoPermission(perm):
			m[perm] = string(perm) + ":todos"
		default:
			m[perm] = string(perm)
		}
	}
	return m
}

func durationPtr(d time.Duration) *Duration { v := Duration(d); return &v }
