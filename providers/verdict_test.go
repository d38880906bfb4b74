package providers

import (
	"context"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

const verdictIssuer = "https://id.example.com/oidc"

// healthySettings and healthyReport describe a tenant and a server that
// agree on everything: no verdict at all. Each case below breaks one thing.
func healthySettings() Settings {
	return Settings{
		Tenant:   "acme",
		Resource: testResource,
		Config:   Config{Type: KindLogto, Issuer: verdictIssuer},
		Audience: Audience{Strategy: AudienceResource},
	}
}

func healthyReport() *ProbeReport {
	md := verdictIssuer + "/.well-known/openid-configuration"
	return &ProbeReport{
		Tenant:      "acme",
		Kind:        KindLogto,
		Issuer:      verdictIssuer,
		Discovery:   []DiscoveryAttempt{{URL: md, Status: 200, Issuer: verdictIssuer}},
		MetadataURL: md,
		IssuerMatch: true,
		Endpoints: Endpoints{
			Authorization: verdictIssuer + "/auth", Token: verdictIssuer + "/token", JWKS: verdictIssuer + "/jwks",
			Introspection: verdictIssuer + "/token/introspection", Revocation: verdictIssuer + "/token/revocation",
			Registration: verdictIssuer + "/reg",
		},
		PKCES256:                      true,
		CodeChallengeMethods:          []string{"S256"},
		GrantTypes:                    []string{"authorization_code", "refresh_token"},
		SigningAlgs:                   []string{"ES384"},
		IntrospectionAuthMethods:      []string{"client_secret_basic", "client_secret_post"},
		ClientIDMetadataDocument:      true,
		DynamicRegistration:           true,
		AllowedAlgs:                   []string{"ES384"},
		JWKSURL:                       verdictIssuer + "/jwks",
		Keys:                          []KeyInfo{{KID: "k1", Alg: "ES384", Use: "sig", Type: "EC", Curve: "P-384", Bits: 384, Usable: true}},
		ScopesSupported:               []string{"openid", "create:todos", "read:todos", "delete:todos"},
		TenantScopes:                  []string{"create:todos", "read:todos", "delete:todos"},
		TenantScopesInScopesSupported: true,
	}
}

func introspectionClient(method string) *IntrospectionConfig {
	return &IntrospectionConfig{ClientID: "gw", ClientSecretEnv: "GW_SECRET", AuthMethod: method}
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name     string
		settings func(s *Settings)
		report   func(r *ProbeReport)
		want     map[string]Severity // rule -> severity; every other rule must stay silent
		mention  string              // a phrase the first verdict's message must contain
	}{
		{name: "healthy", want: map[string]Severity{}},

		// Discovery and issuer.
		{name: "issuer unreachable", report: func(r *ProbeReport) {
			*r = ProbeReport{Issuer: verdictIssuer, Discovery: []DiscoveryAttempt{{URL: r.MetadataURL, Error: "dial tcp: connection refused"}}, AllowedAlgs: r.AllowedAlgs}
		}, want: map[string]Severity{RuleDiscovery: SeverityError}, mention: "connection refused"},
		{name: "metadata 404", report: func(r *ProbeReport) {
			*r = ProbeReport{Issuer: verdictIssuer, Discovery: []DiscoveryAttempt{{URL: r.MetadataURL, Status: 404, Error: "HTTP 404"}}}
		}, want: map[string]Severity{RuleDiscovery: SeverityError}, mention: "HTTP 404"},
		{name: "no metadata but endpoints configured", settings: func(s *Settings) {
			s.Config.Metadata = &MetadataOverride{JWKSURI: verdictIssuer + "/jwks"}
		}, report: func(r *ProbeReport) {
			keys := r.Keys
			*r = ProbeReport{Issuer: verdictIssuer, Discovery: []DiscoveryAttempt{{URL: r.MetadataURL, Status: 404, Error: "HTTP 404"}},
				JWKSURL: verdictIssuer + "/jwks", Keys: keys, AllowedAlgs: []string{"ES384"}}
		}, want: map[string]Severity{RuleDiscovery: SeverityWarning}, mention: "MCP clients"},
		{name: "issuer mismatch", report: func(r *ProbeReport) {
			r.Discovery[0].Issuer = verdictIssuer + "/"
			r.Discovery[0].Error = "metadata names another issuer"
			r.MetadataURL, r.IssuerMatch = "", false
		}, want: map[string]Severity{RuleIssuerMismatch: SeverityError}, mention: `"` + verdictIssuer + `/"`},
		{name: "issuer mismatch beats configured endpoints", settings: func(s *Settings) {
			s.Config.Metadata = &MetadataOverride{JWKSURI: verdictIssuer + "/jwks"}
		}, report: func(r *ProbeReport) {
			r.Discovery[0].Issuer, r.Discovery[0].Error = "https://other.example.com", "mismatch"
			r.MetadataURL, r.IssuerMatch = "", false
		}, want: map[string]Severity{RuleIssuerMismatch: SeverityError}},

		// Keys.
		{name: "no jwks_uri, jwt mode", report: func(r *ProbeReport) {
			r.JWKSURL, r.Endpoints.JWKS, r.Keys = "", "", nil
		}, want: map[string]Severity{RuleJWKSMissing: SeverityError}},
		{name: "no jwks_uri, auto mode", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenAuto, introspectionClient("")
		}, report: func(r *ProbeReport) {
			r.JWKSURL, r.Endpoints.JWKS, r.Keys = "", "", nil
		}, want: map[string]Severity{RuleJWKSMissing: SeverityWarning}, mention: "introspection"},
		{name: "no jwks_uri, introspection mode", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenIntrospection, introspectionClient("")
		}, report: func(r *ProbeReport) {
			r.JWKSURL, r.Endpoints.JWKS, r.Keys = "", "", nil
		}, want: map[string]Severity{}},
		{name: "jwks unreachable", report: func(r *ProbeReport) {
			r.Keys, r.KeysError = nil, "GET /jwks: HTTP 500"
		}, want: map[string]Severity{RuleJWKSUnreachable: SeverityError}, mention: "HTTP 500"},
		{name: "jwks without usable keys", report: func(r *ProbeReport) {
			r.Keys = []KeyInfo{{KID: "enc", Use: "enc", Type: "RSA"}, {KID: "hmac", Type: "oct"}}
		}, want: map[string]Severity{RuleJWKSNoUsableKeys: SeverityError}, mention: "2 keys"},
		{name: "empty jwks", report: func(r *ProbeReport) { r.Keys = nil },
			want: map[string]Severity{RuleJWKSNoUsableKeys: SeverityError}},
		{name: "tenant allows only an algorithm no key uses", settings: func(s *Settings) {
			s.Config.Algorithms = []string{"RS256"}
		}, report: func(r *ProbeReport) { r.AllowedAlgs = []string{"RS256"} },
			want: map[string]Severity{RuleAlgorithmsNoKey: SeverityError}, mention: "allow ES384"},
		{name: "default allow-list from id_token algs misses the access token key", report: func(r *ProbeReport) {
			r.SigningAlgs, r.AllowedAlgs = []string{"RS256"}, []string{"RS256"}
		}, want: map[string]Severity{RuleAlgorithmsNoKey: SeverityError}},
		{name: "no allowed key in auto mode", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenAuto, introspectionClient("")
			s.Config.Algorithms = []string{"RS256"}
		}, report: func(r *ProbeReport) { r.AllowedAlgs = []string{"RS256"} },
			want: map[string]Severity{RuleAlgorithmsNoKey: SeverityWarning}},
		{name: "some keys outside the allow-list", report: func(r *ProbeReport) {
			r.Keys = append(r.Keys, KeyInfo{KID: "r1", Alg: "RS256", Type: "RSA", Bits: 2048, Usable: true})
		}, want: map[string]Severity{RuleAlgorithmsRefused: SeverityWarning}, mention: "r1 (RS256)"},
		{name: "tenant allows algorithms never used", settings: func(s *Settings) {
			s.Config.Algorithms = []string{"ES384", "RS256", "EdDSA"}
		}, report: func(r *ProbeReport) { r.AllowedAlgs = []string{"ES384", "RS256", "EdDSA"} },
			want: map[string]Severity{RuleAlgorithmsUnused: SeverityWarning}, mention: "RS256, EdDSA"},
		{name: "explicit list matching the keys", settings: func(s *Settings) {
			s.Config.Algorithms = []string{"ES384"}
		}, want: map[string]Severity{}},
		{name: "key without alg fits by curve", report: func(r *ProbeReport) {
			r.Keys[0].Alg = ""
		}, want: map[string]Severity{}},
		{name: "RSA key without alg counts as the advertised algorithm", settings: func(s *Settings) {
			s.Config.Algorithms = []string{"RS256"}
		}, report: func(r *ProbeReport) {
			r.Keys = []KeyInfo{{KID: "r", Type: "RSA", Bits: 2048, Usable: true}}
			r.SigningAlgs, r.AllowedAlgs = []string{"RS256"}, []string{"RS256"}
		}, want: map[string]Severity{}},
		{name: "jwks ignored in introspection mode", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenIntrospection, introspectionClient("")
		}, report: func(r *ProbeReport) { r.Keys, r.KeysError = nil, "HTTP 500" },
			want: map[string]Severity{}},

		// Introspection.
		{name: "introspection without client authentication", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenIntrospection, &IntrospectionConfig{AuthMethod: "none"}
		}, report: func(r *ProbeReport) {
			r.IntrospectionAuthMethods = []string{"none"}
			r.Introspection = &IntrospectionProbe{URL: r.Endpoints.Introspection, Method: "POST", Status: 200, Inactive: true}
		}, want: map[string]Severity{RuleIntrospectionUnauthenticated: SeverityWarning, RuleIntrospectionProbe: SeverityInfo}, mention: "must not be public"},
		{name: "introspection answers without aud, for accepted clients", settings: func(s *Settings) {
			in := introspectionClient("")
			in.AllowMissingAudience, in.AcceptedClients = true, []string{"todo-cli"}
			s.Config.Token, s.Config.Introspection = TokenIntrospection, in
		}, report: func(r *ProbeReport) {
			r.Introspection = &IntrospectionProbe{URL: r.Endpoints.Introspection, Method: "POST", Status: 200, Inactive: true}
		}, want: map[string]Severity{RuleMissingClaimsAllowed: SeverityWarning, RuleIntrospectionProbe: SeverityInfo},
			mention: `introspection answers without aud (the resource the token is for) are accepted for the clients in accepted_clients, ["todo-cli"]`},
		{name: "introspection endpoint answers a random token inactive", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenIntrospection, introspectionClient("")
		}, report: func(r *ProbeReport) {
			r.Introspection = &IntrospectionProbe{URL: r.Endpoints.Introspection, Method: "POST", Status: 200, Inactive: true}
		}, want: map[string]Severity{RuleIntrospectionProbe: SeverityInfo}, mention: "a random token cannot show whether a real one is accepted"},
		{name: "introspection endpoint 404", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenIntrospection, introspectionClient("")
		}, report: func(r *ProbeReport) {
			r.Introspection = &IntrospectionProbe{URL: r.Endpoints.Introspection, Method: "POST", Status: 404, Error: "POST " + r.Endpoints.Introspection + ": HTTP 404"}
		}, want: map[string]Severity{RuleIntrospectionProbe: SeverityError}, mention: "HTTP 404"},
		{name: "introspection endpoint not probed without its secret", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenIntrospection, introspectionClient("")
		}, report: func(r *ProbeReport) {
			r.Introspection = &IntrospectionProbe{URL: r.Endpoints.Introspection, NotProbed: "the client secret cannot be read: environment variable GW_SECRET is not set"}
		}, want: map[string]Severity{RuleIntrospectionProbe: SeverityInfo}},
		{name: "introspection mode without endpoint", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenIntrospection, introspectionClient("")
		}, report: func(r *ProbeReport) { r.Endpoints.Introspection = "" },
			want: map[string]Severity{RuleIntrospectionMissing: SeverityError}},
		{name: "auto mode without endpoint", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenAuto, introspectionClient("")
		}, report: func(r *ProbeReport) { r.Endpoints.Introspection = "" },
			want: map[string]Severity{RuleIntrospectionMissing: SeverityError}, mention: "opaque"},
		{name: "jwt mode without introspection endpoint", report: func(r *ProbeReport) { r.Endpoints.Introspection = "" },
			want: map[string]Severity{}},
		{name: "form auth the server does not list", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenIntrospection, introspectionClient("form")
		}, report: func(r *ProbeReport) { r.IntrospectionAuthMethods = []string{"client_secret_basic"} },
			want: map[string]Severity{RuleIntrospectionAuth: SeverityWarning}, mention: "client_secret_post"},
		{name: "basic auth the server lists", settings: func(s *Settings) {
			s.Config.Token, s.Config.Introspection = TokenIntrospection, introspectionClient("")
		}, report: func(r *ProbeReport) { r.IntrospectionAuthMethods = []string{"client_secret_basic"} },
			want: map[string]Severity{}},

		// Audience strategy against known providers.
		{name: "resource strategy on Auth0", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://acme.eu.auth0.com/"
		}, want: map[string]Severity{RuleResourceIndicators: SeverityWarning}, mention: "audience strategy with the API identifier"},
		{name: "resource strategy on Entra v2", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://login.microsoftonline.com/0000/v2.0"
		}, want: map[string]Severity{RuleResourceIndicators: SeverityWarning}, mention: "AADSTS9010010"},
		{name: "resource strategy on Entra v1", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://sts.windows.net/0000/"
		}, want: map[string]Severity{RuleResourceIndicators: SeverityWarning}},
		{name: "resource strategy on Cognito", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
		}, want: map[string]Severity{RuleResourceIndicators: SeverityWarning}, mention: "scope strategy"},
		{name: "resource strategy on Keycloak", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://sso.example.com/realms/acme"
		}, want: map[string]Severity{RuleResourceIndicators: SeverityWarning}, mention: "audience mapper"},
		{name: "resource strategy on Okta", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://acme.okta.com/oauth2/default"
		}, want: map[string]Severity{RuleResourceIndicators: SeverityWarning}},
		{name: "audience strategy on Auth0", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://acme.eu.auth0.com/"
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"https://todo-api.acme.example"}}
		}, want: map[string]Severity{}},
		{name: "audience strategy on Cognito", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"https://todo-api.acme.example"}}
		}, want: map[string]Severity{RuleNoAudienceClaim: SeverityWarning}},
		{name: "resource strategy on an unknown host", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://login.acme-auth0.com.example/"
		}, want: map[string]Severity{}},

		// Software recognised by its metadata, wherever it is hosted.
		{name: "resource strategy on Hydra", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://auth.acme.example"
		}, report: func(r *ProbeReport) { r.Software = softwareHydra },
			want: map[string]Severity{RuleResourceIndicators: SeverityWarning}, mention: "audience="},
		{name: "audience strategy on Hydra", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://auth.acme.example"
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"https://todo-api.acme.example"}}
		}, report: func(r *ProbeReport) { r.Software = softwareHydra }, want: map[string]Severity{}},
		{name: "resource strategy on Dex", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://dex.acme.example"
			s.Claims.Roles = tutorialRoles("groups")
			s.Claims.Roles.Grants["todo-readers"] = []Permission{PermRead}
		}, report: func(r *ProbeReport) { r.Software = softwareDex },
			want: map[string]Severity{RuleResourceIndicators: SeverityError, RuleIDTokenAsAccessToken: SeverityWarning}, mention: "cannot work with Dex"},
		// Hydra ignores resource=: the resource URL as an audience value does
		// not help MCP clients.
		{name: "audience strategy on Hydra with the resource URL", settings: func(s *Settings) {
			s.Config.Type, s.Config.JWTTypes = KindOIDC, []string{"at+jwt"}
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{s.Resource}}
		}, report: func(r *ProbeReport) { r.Software = softwareHydra },
			want: map[string]Severity{RuleResourceIndicators: SeverityWarning}, mention: "audience.values names the resource URL, which MCP clients ask for with resource= (RFC 8707), but Ory Hydra ignores resource indicators"},
		// Dex's ID tokens cannot be told apart, whatever the strategy.
		{name: "scope strategy on Dex", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://dex.acme.example"
			s.Audience = Audience{Strategy: AudienceScope, Prefix: "todo:"}
			s.Claims.Roles = tutorialRoles("groups")
			s.Claims.Roles.Grants["todo-readers"] = []Permission{PermRead}
		}, report: func(r *ProbeReport) { r.Software = softwareDex },
			want: map[string]Severity{RuleIDTokenAsAccessToken: SeverityWarning}, mention: "Dex signs ID and access tokens alike"},
		// The Dex case: no scope claim and unknown scopes refused.
		{name: "Dex without role grants", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://dex.acme.example"
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"https://todo.acme.example"}}
		}, report: func(r *ProbeReport) {
			r.Software = softwareDex
			r.ScopesSupported, r.MissingScopes = []string{"openid", "email", "groups", "profile", "offline_access"}, r.TenantScopes
		}, want: map[string]Severity{RulePermissionsUngrantable: SeverityError, RuleIDTokenAsAccessToken: SeverityWarning},
			mention: `no token can grant create, read, delete (no user could create todos, or see the others' todos, or delete the others' todos); grant permissions from a group claim, as in "claims": {"roles": {"claim": "groups"`},
		{name: "Dex with grants for create only", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://dex.acme.example"
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"todo-app"}}
			s.Claims.Roles = &RoleGrants{Claim: "groups", Grants: map[string][]Permission{"todo-users": {PermCreate}}}
		}, report: func(r *ProbeReport) {
			r.Software = softwareDex
			r.ScopesSupported, r.MissingScopes = []string{"openid", "groups"}, r.TenantScopes
		}, want: map[string]Severity{RulePermissionsUngrantable: SeverityError, RuleIDTokenAsAccessToken: SeverityWarning},
			mention: "no token can grant read, delete (no user could see the others' todos, or delete the others' todos);"},
		{name: "Dex with the tutorial's role table and readers", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://dex.acme.example"
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"todo-app"}}
			s.Claims.Roles = tutorialRoles("groups")
		}, report: func(r *ProbeReport) {
			r.Software = softwareDex
			r.ScopesSupported, r.MissingScopes = []string{"openid", "groups"}, r.TenantScopes
		}, want: map[string]Severity{RuleIDTokenAsAccessToken: SeverityWarning}, mention: "Dex signs ID and access tokens alike (the same header and claims, at_hash included)"},

		// ID tokens passing as access tokens.
		{name: "untyped JWTs and a client-id-like audience", settings: func(s *Settings) {
			s.Config.Type = KindOIDC
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"todo-app"}}
		}, want: map[string]Severity{RuleIDTokenAsAccessToken: SeverityWarning}, mention: `provider.jwt_types ["at+jwt"]`},
		{name: "only at+jwt accepted", settings: func(s *Settings) {
			s.Config.Type, s.Config.JWTTypes = KindOIDC, []string{"at+jwt"}
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"todo-app"}}
		}, want: map[string]Severity{}},
		{name: "an API identifier URI as the audience", settings: func(s *Settings) {
			s.Config.Type = KindOIDC
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"api://default"}}
		}, want: map[string]Severity{}},

		// Scopes.
		{name: "missing scopes that role grants cover", settings: func(s *Settings) {
			s.Config.Type = KindOIDC
			s.Claims.Roles = &RoleGrants{Claim: "roles", Grants: map[string][]Permission{"admin": {PermCreate, PermDelete}}}
		}, report: func(r *ProbeReport) {
			r.ScopesSupported = []string{"openid"}
			r.MissingScopes = r.TenantScopes
		}, want: map[string]Severity{RuleScopesMissing: SeverityWarning}, mention: "lacks read:todos:"},
		{name: "every missing scope covered by role grants", settings: func(s *Settings) {
			s.Config.Type = KindOIDC
			s.Claims.Roles = tutorialRoles("roles")
		}, report: func(r *ProbeReport) {
			r.ScopesSupported = []string{"openid"}
			r.MissingScopes = r.TenantScopes
		}, want: map[string]Severity{}},
		{name: "tenant scopes not advertised", settings: func(s *Settings) { s.Config.Type = KindOIDC },
			report: func(r *ProbeReport) {
				r.ScopesSupported = []string{"openid", "read:todos"}
				r.MissingScopes = []string{"create:todos", "delete:todos"}
				r.TenantScopesInScopesSupported = false
			}, want: map[string]Severity{RuleScopesMissing: SeverityWarning}, mention: "create:todos, delete:todos"},
		{name: "Logto never lists API scopes", report: func(r *ProbeReport) {
			r.ScopesSupported, r.MissingScopes = []string{"openid", "offline_access"}, r.TenantScopes
		}, want: map[string]Severity{RuleScopesMissing: SeverityInfo}, mention: "API resource"},
		{name: "Auth0 never lists API scopes", settings: func(s *Settings) {
			s.Config.Type, s.Config.Issuer = KindOIDC, "https://acme.eu.auth0.com/"
			s.Audience = Audience{Strategy: AudienceValues, Values: []string{"https://todo-api.acme.example"}}
		}, report: func(r *ProbeReport) {
			r.ScopesSupported, r.MissingScopes = []string{"openid", "offline_access"}, r.TenantScopes
		}, want: map[string]Severity{RuleScopesMissing: SeverityInfo}, mention: "Auth0 lists only OpenID scopes"},
		{name: "no scopes_supported", report: func(r *ProbeReport) {
			r.ScopesSupported, r.MissingScopes, r.TenantScopesInScopesSupported = nil, r.TenantScopes, false
		}, want: map[string]Severity{RuleScopesUnpublished: SeverityInfo}},

		// What MCP clients need.
		{name: "no PKCE S256", report: func(r *ProbeReport) { r.PKCES256, r.CodeChallengeMethods = false, []string{"plain"} },
			want: map[string]Severity{RulePKCE: SeverityWarning}},
		{name: "neither registration nor CIMD", report: func(r *ProbeReport) {
			r.DynamicRegistration, r.ClientIDMetadataDocument, r.Endpoints.Registration = false, false, ""
		}, want: map[string]Severity{RuleClientRegistration: SeverityWarning}},
		{name: "CIMD only", report: func(r *ProbeReport) { r.DynamicRegistration, r.Endpoints.Registration = false, "" },
			want: map[string]Severity{}},
		{name: "registration only", report: func(r *ProbeReport) { r.ClientIDMetadataDocument = false },
			want: map[string]Severity{}},
		{name: "no authorization_code grant", report: func(r *ProbeReport) { r.GrantTypes = []string{"client_credentials"} },
			want: map[string]Severity{RuleAuthorizationCode: SeverityWarning}},
		{name: "grant types not published", report: func(r *ProbeReport) { r.GrantTypes = nil },
			want: map[string]Severity{}},
		{name: "metadata rules silent without metadata", report: func(r *ProbeReport) {
			*r = ProbeReport{Issuer: verdictIssuer, Discovery: []DiscoveryAttempt{{URL: r.MetadataURL, Error: "timeout"}}}
		}, want: map[string]Severity{RuleDiscovery: SeverityError}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, r := healthySettings(), healthyReport()
			if tc.settings != nil {
				tc.settings(&s)
			}
			if tc.report != nil {
				tc.report(r)
			}
			vs := Verdicts(s, r)
			got := map[string]Severity{}
			for _, v := range vs {
				got[v.Rule] = v.Severity
				if v.Message == "" {
					t.Errorf("rule %s: got an empty message, want an explanation", v.Rule)
				}
			}
			for rule, sev := range tc.want {
				if got[rule] != sev {
					t.Errorf("rule %s: got severity %q, want %q (verdicts %+v)", rule, got[rule], sev, vs)
				}
			}
			for rule, sev := range got {
				if _, ok := tc.want[rule]; !ok {
					t.Errorf("rule %s: got %q %q, want it silent", rule, sev, messageOf(vs, rule))
				}
			}
			if tc.mention != "" && (len(vs) == 0 || !strings.Contains(vs[0].Message, tc.mention)) {
				t.Errorf("got verdicts %+v, want the first to mention %q", vs, tc.mention)
			}
		})
	}
}

func messageOf(vs []Verdict, rule string) string {
	for _, v := range vs {
		if v.Rule == rule {
			return v.Message
		}
	}
	return ""
}

func TestVerdictsOrderAndWorst(t *testing.T) {
	s, r := healthySettings(), healthyReport()
	s.Config.Algorithms = []string{"RS256"}
	r.AllowedAlgs = []string{"RS256"}
	r.PKCES256 = false
	r.ScopesSupported, r.MissingScopes = nil, r.TenantScopes
	vs := Verdicts(s, r)
	var sevs []Severity
	for _, v := range vs {
		sevs = append(sevs, v.Severity)
	}
	if want := []Severity{SeverityError, SeverityWarning, SeverityInfo}; !slices.Equal(sevs, want) {
		t.Errorf("got severities %q, want %q (most severe first)", sevs, want)
	}
	if got := Worst(vs); got != SeverityError || CanWork(vs) {
		t.Errorf("got worst %q can work %v, want error and false", got, CanWork(vs))
	}
	if got := Worst(vs[1:]); got != SeverityWarning || !CanWork(vs[1:]) {
		t.Errorf("got worst %q can work %v, want warning and true", got, CanWork(vs[1:]))
	}
	if got := Worst(nil); got != "" || !CanWork(nil) {
		t.Errorf("got worst %q can work %v for no verdicts, want \"\" and true", got, CanWork(nil))
	}
}

func TestKeyAlgorithms(t *testing.T) {
	tests := []struct {
		key  KeyInfo
		want []string
	}{
		{KeyInfo{Alg: "PS256", Type: "RSA"}, []string{"PS256"}},
		{KeyInfo{Type: "RSA"}, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
		{KeyInfo{Type: "EC", Curve: "P-256"}, []string{"ES256"}},
		{KeyInfo{Type: "EC", Curve: "P-521"}, []string{"ES512"}},
		{KeyInfo{Type: "OKP", Curve: "Ed25519"}, []string{"EdDSA"}},
		{KeyInfo{Type: "OKP", Curve: "X25519"}, nil},
		{KeyInfo{Type: "oct"}, nil},
	}
	for _, tc := range tests {
		if got := KeyAlgorithms(tc.key); !slices.Equal(got, tc.want) {
			t.Errorf("KeyAlgorithms(%+v): got %q, want %q", tc.key, got, tc.want)
		}
	}
}

// TestVerdictsOnProbe runs the rules on real probes, so a change in what
// Probe reports cannot silently disable a rule.
func TestVerdictsOnProbe(t *testing.T) {
	clk := newClock()
	tests := []struct {
		name  string
		opts  []providertest.Option
		edit  func(iss *providertest.Issuer, s *Settings)
		rules []string
	}{
		{name: "logto shape", opts: []providertest.Option{providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384)},
			edit: func(_ *providertest.Issuer, s *Settings) { s.Config.Type = KindLogto }},
		{name: "no introspection endpoint", opts: []providertest.Option{providertest.WithDiscovery(providertest.OAuthInserted)},
			edit: func(iss *providertest.Issuer, s *Settings) {
				s.Config.Type, s.Config.Token = KindOAuth, TokenIntrospection
				s.Config.Introspection = introspectionClient("")
				iss.SetMetadata(func(_ providertest.Endpoint, m map[string]any) { delete(m, "introspection_endpoint") })
			}, rules: []string{RuleIntrospectionMissing}},
		{name: "outage", edit: func(iss *providertest.Issuer, _ *Settings) { iss.SetDown(true) },
			rules: []string{RuleDiscovery}},
		{name: "allow-list misses the keys", opts: []providertest.Option{providertest.WithKeys(jose.ES384)},
			edit:  func(_ *providertest.Issuer, s *Settings) { s.Config.Algorithms = []string{"RS256"} },
			rules: []string{RuleAlgorithmsNoKey}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := newIssuer(t, clk, tc.opts...)
			s := settings(iss, KindOIDC)
			tc.edit(iss, &s)
			secrets := SecretResolver{LookupEnv: func(string) (string, bool) { return "x", true }}
			r, err := Probe(context.Background(), s, WithHTTPClient(iss.Client()), WithLogger(quietLogger), WithSecretResolver(secrets))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range Verdicts(s, r) {
				got = append(got, v.Rule)
			}
			if !slices.Equal(got, tc.rules) {
				t.Errorf("got rules %q, want %q", got, tc.rules)
			}
		})
	}
}
