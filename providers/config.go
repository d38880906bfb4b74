package providers

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Kind is the type of authorization server a tenant trusts.
type Kind string

const (
	KindLogto Kind = "logto" // Logto: issuer ends in /oidc, JWT access tokens (at+jwt, ES384)
	KindOIDC  Kind = "oidc"  // any OpenID Connect provider
	KindOAuth Kind = "oauth" // a pure OAuth 2.0 server (RFC 8414 metadata)
)

// TokenMode says how access tokens are verified.
type TokenMode string

const (
	TokenJWT           TokenMode = "jwt"           // signed JWT, keys from the JWKS
	TokenIntrospection TokenMode = "introspection" // RFC 7662 introspection
	TokenAuto          TokenMode = "auto"          // JWT when it parses as a compact JWS, else introspection
)

// Permission is an internal permission name, mapped to a provider scope string.
type Permission string

const (
	PermCreate Permission = "create"
	PermRead   Permission = "read"
	PermDelete Permission = "delete"
)

// Permissions lists the built-in todo server's permissions in a fixed
// order: the permissions of a tenant whose Settings name none.
var Permissions = []Permission{PermCreate, PermRead, PermDelete}

// isTodoPermission reports whether perm is one of the todo server's.
func isTodoPermission(perm Permission) bool { return slices.Contains(Permissions, perm) }

// Duration is a time.Duration written in JSON as a Go duration string ("60s").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"60s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a form such as \"60s\" or \"5m\"", s)
	}
	*d = Duration(v)
	return nil
}

// CheckBetween reports an optional duration at path outside [least, most].
func CheckBetween(path string, d *Duration, least, most time.Duration) []Problem {
	if d != nil && (time.Duration(*d) < least || time.Duration(*d) > most) {
		return []Problem{{Path: path, Message: fmt.Sprintf("must be between %s and %s", least, most)}}
	}
	return nil
}

// Config is a tenant's "provider" block: which authorization server issues
// its tokens and how to verify them. Settings.WithDefaults fills what is
// omitted and Settings.Validate says what is wrong.
type Config struct {
	Type   Kind   `json:"type"`
	Issuer string `json:"issuer"`
	// AllowHTTPIssuer permits a plain-http issuer on a non-loopback host.
	AllowHTTPIssuer bool `json:"allow_http_issuer,omitempty"`
	// Token selects JWT, introspection or auto; default auto with an
	// Introspection block, else jwt.
	Token TokenMode `json:"token,omitempty"`
	// Algorithms allowed for JWT signatures (RS*, PS*, ES*, EdDSA); default:
	// the provider's discovered list within those families.
	Algorithms []string `json:"algorithms,omitempty"`
	// JWTTypes are the accepted JWT "typ" headers; the default depends on Type.
	JWTTypes []string `json:"jwt_types,omitempty"`
	// AllowIDTokenClaims names claims of ID tokens only (nonce, at_hash,
	// c_hash, s_hash: idtoken.go) that this provider also puts in its
	// access tokens, so that a JWT carrying them is not refused as an ID
	// token. Providers known to do so need nothing here (quirks.go).
	AllowIDTokenClaims []string `json:"allow_id_token_claims,omitempty"`
	// Leeway for exp, nbf and iat; default 60s, at most 5m.
	Leeway *Duration `json:"leeway,omitempty"`
	// JWKSMinRefresh bounds refetches of the JWKS on an unknown kid; default
	// 10s, at least 1s.
	JWKSMinRefresh *Duration `json:"jwks_min_refresh,omitempty"`
	// Metadata overrides endpoints for providers that publish no metadata.
	Metadata *MetadataOverride `json:"metadata,omitempty"`
	// Introspection is the resource server's client for RFC 7662.
	Introspection *IntrospectionConfig `json:"introspection,omitempty"`
}

// MetadataOverride names endpoints explicitly instead of discovering them.
type MetadataOverride struct {
	JWKSURI               string `json:"jwks_uri,omitempty"`
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
}

// IntrospectionConfig is how the gateway authenticates to the introspection
// endpoint. The secret is only ever given by reference.
type IntrospectionConfig struct {
	ClientID         string `json:"client_id,omitempty"`
	ClientSecretEnv  string `json:"client_secret_env,omitempty"`
	ClientSecretFile string `json:"client_secret_file,omitempty"`
	// ClientSecret exists only so that an inline secret is reported clearly.
	ClientSecret string `json:"client_secret,omitempty"`
	// AuthMethod is "basic" (default, client_secret_basic), "form"
	// (client_secret_post) or "none": no client authentication, for an
	// endpoint that takes none (Hydra's admin API), which must then not be
	// reachable from outside.
	AuthMethod string `json:"auth_method,omitempty"`
	// CacheTTL bounds how long an active answer is reused; default 60s, at
	// most 10m.
	CacheTTL *Duration `json:"cache_ttl,omitempty"`
	// MaxCallsPerSecond is the tenant's budget of calls to the endpoint
	// (a token bucket holding one second's worth): past it, a token that
	// is not in the cache is answered 503 with Retry-After instead of being
	// sent, so a flood of made-up tokens is not relayed to the
	// authorization server. Default 100, from 1 to 10000.
	MaxCallsPerSecond *int `json:"max_calls_per_second,omitempty"`
	// AllowMissingIssuer / AllowMissingAudience accept answers without iss
	// / aud. Without aud, nothing in the answer says the token is meant for
	// this resource (a token another client holds for another API of the
	// same server would pass), and without iss, that it comes from this
	// tenant's issuer: either needs AcceptedClients, which is then what
	// binds an answer to this resource (validate.go).
	AllowMissingIssuer   bool `json:"allow_missing_issuer,omitempty"`
	AllowMissingAudience bool `json:"allow_missing_audience,omitempty"`
	// AcceptedClients, when set, are the only clients whose tokens this
	// resource accepts: an answer whose client id (claims.client_id) is
	// absent or another is refused.
	AcceptedClients []string `json:"accepted_clients,omitempty"`
}

// AudienceStrategy names how a token is checked as meant for this tenant.
type AudienceStrategy string

const (
	AudienceResource AudienceStrategy = "resource" // aud contains the resource URL (RFC 8707)
	AudienceValues   AudienceStrategy = "audience" // aud contains one of Values
	AudienceScope    AudienceStrategy = "scope"    // no aud; scopes carry Prefix
)

// Audience is a tenant's "audience" block; the strategy defaults to
// resource.
type Audience struct {
	Strategy AudienceStrategy `json:"strategy"`
	Values   []string         `json:"values,omitempty"`
	Prefix   string           `json:"prefix,omitempty"`
}

// Claims is a tenant's "claims" block: where to read the token's facts.
type Claims struct {
	// Scopes: claims to read scopes from, in order (scope, scp, scopes,
	// permissions, roles); default depends on the provider type.
	Scopes []string `json:"scopes,omitempty"`
	// Subject claim; default "sub".
	Subject string `json:"subject,omitempty"`
	// ClientID claims, in order; default client_id, azp, cid.
	ClientID []string `json:"client_id,omitempty"`
	// Roles grants permissions from the values of a role or group claim,
	// for providers that grant by role or group rather than by scope (Dex,
	// Keycloak, Entra, Okta and Auth0 RBAC). A permission granted either
	// way counts.
	Roles *RoleGrants `json:"roles,omitempty"`
}

// RoleGrants maps the values of one claim to permissions.
type RoleGrants struct {
	// Claim names the claim, or a dotted path into nested objects:
	// "groups", "roles", "realm_access.roles",
	// "resource_access.todo-api.roles". A claim whose own name has dots
	// (Auth0's "https://acme.example/roles") is found by its name first.
	// The claim holds an array of strings or one string (one value, not
	// split: group names may contain spaces).
	Claim string `json:"claim"`
	// Grants maps each claim value to the permissions it grants, such as
	// "todo-admins": ["create", "read", "delete"]. Values are compared
	// exactly, case included.
	Grants map[string][]Permission `json:"grants"`
}

// clone returns a copy sharing nothing with g.
func (g *RoleGrants) clone() *RoleGrants {
	if g == nil {
		return nil
	}
	c := &RoleGrants{Claim: g.Claim}
	if g.Grants != nil {
		c.Grants = make(map[string][]Permission, len(g.Grants))
		for v, perms := range g.Grants {
			c.Grants[v] = slices.Clone(perms)
		}
	}
	return c
}

// granting returns, in order, the values among vals that grant perm.
func (g *RoleGrants) granting(vals []string, perm Permission) []string {
	var out []string
	if g == nil {
		return nil
	}
	for _, v := range vals {
		if slices.Contains(g.Grants[v], perm) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Grantors lists, sorted, the claim values that grant perm.
func (g *RoleGrants) Grantors(perm Permission) []string {
	if g == nil {
		return nil
	}
	var out []string
	for _, v := range slices.Sorted(maps.Keys(g.Grants)) {
		if slices.Contains(g.Grants[v], perm) {
			out = append(out, v)
		}
	}
	return out
}

// ScopeMap maps each internal permission to the provider's scope string;
// a permission left out gets its default (see DefaultScopeMap).
type ScopeMap map[Permission]string
