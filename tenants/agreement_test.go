package tenants

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/todo-gateway/todo-gateway/providers"
)

// ruleCase breaks one rule of a known-good configuration and expects
// exactly that problem; a case with an empty path must validate.
type ruleCase struct {
	name  string
	edits []edit
	path  string
	msg   string
}

// providerRules is one case per rule on a tenant's provider settings
// (provider, audience, claims and scopes blocks, and the resource as the
// resource strategy needs it), and what the rules accept.
var providerRules = func() []ruleCase {
	const tp = "tenants[0]"
	return []ruleCase{
		// provider.type
		{"type missing", []edit{del("tenants.0.provider.type")}, tp + ".provider.type", "required (one of logto, oidc, oauth)"},
		{"type unknown", []edit{set("tenants.0.provider.type", "auth0")}, tp + ".provider.type", `unknown type "auth0" (one of logto, oidc, oauth)`},

		// provider.issuer
		{"issuer missing", []edit{del("tenants.0.provider.issuer")}, tp + ".provider.issuer", "required"},
		{"issuer without scheme", []edit{set("tenants.0.provider.issuer", "acme.logto.app/oidc")}, tp + ".provider.issuer", "must be an absolute https URL"},
		{"issuer http", []edit{set("tenants.0.provider.issuer", "http://acme.logto.app/oidc")}, tp + ".provider.issuer", `must use https (http is accepted only for a loopback host or with "allow_http_issuer": true)`},
		{"issuer http allowed", []edit{set("tenants.0.provider.issuer", "http://logto.internal/oidc"), set("tenants.0.provider.allow_http_issuer", true)}, "", ""},
		{"issuer http localhost", []edit{set("tenants.0.provider.issuer", "http://localhost:3002/oidc")}, "", ""},
		{"issuer http 127/8", []edit{set("tenants.0.provider.issuer", "http://127.0.0.2:3002/oidc")}, "", ""},
		{"issuer http ::1", []edit{set("tenants.0.provider.issuer", "http://[::1]:3002/oidc")}, "", ""},
		// check once said yes and serve no: every token got 503.
		{"issuer http LOCALHOST", []edit{set("tenants.0.provider", obj{"type": "oidc", "issuer": "http://LOCALHOST:9000"})}, "", ""},
		{"issuer http 10/8", []edit{set("tenants.0.provider.issuer", "http://10.0.0.1/oidc")}, tp + ".provider.issuer", `must use https (http is accepted only for a loopback host or with "allow_http_issuer": true)`},
		{"issuer userinfo", []edit{set("tenants.0.provider.issuer", "https://u@acme.logto.app/oidc")}, tp + ".provider.issuer", "must not contain user information"},
		{"issuer query", []edit{set("tenants.0.provider.issuer", "https://acme.logto.app/oidc?x")}, tp + ".provider.issuer", "must not have a query"},
		{"issuer fragment", []edit{set("tenants.0.provider.issuer", "https://acme.logto.app/oidc#x")}, tp + ".provider.issuer", "must not have a fragment"},
		{"logto issuer without /oidc", []edit{set("tenants.0.provider.issuer", "https://acme.logto.app")}, tp + ".provider.issuer", `a logto issuer ends in "/oidc", such as "https://acme.logto.app/oidc"`},
		{"logto issuer trailing slash", []edit{set("tenants.0.provider.issuer", "https://acme.logto.app/oidc/")}, tp + ".provider.issuer", `a logto issuer ends in "/oidc", such as "https://acme.logto.app/oidc"`},
		{"oidc issuer any path", []edit{set("tenants.0.provider", obj{"type": "oidc", "issuer": "https://acme.auth0.com/"})}, "", ""},

		// provider.token and introspection
		{"token unknown", []edit{set("tenants.0.provider.token", "opaque")}, tp + ".provider.token", `unknown token mode "opaque" (one of jwt, introspection, auto)`},
		{"introspection missing", []edit{set("tenants.0.provider.token", "introspection")}, tp + ".provider.introspection", `required when token is "introspection": the gateway's client_id and secret reference`},
		{"introspection missing for auto", []edit{set("tenants.0.provider.token", "auto")}, tp + ".provider.introspection", `required when token is "auto": the gateway's client_id and secret reference`},
		// An introspection block without "token" means auto, whatever the
		// kind: the operator configured introspection to have it used.
		{"introspection block makes logto auto", []edit{set("tenants.0.provider.introspection", introspection)}, "", ""},
		{"introspection block makes oidc auto", []edit{set("tenants.0.provider", obj{"type": "oidc", "issuer": "https://login.example/", "introspection": introspection})}, "", ""},
		{"introspection ignored by jwt", []edit{set("tenants.0.provider.token", "jwt"), set("tenants.0.provider.introspection", introspection)}, tp + ".provider.introspection", `is set but token is "jwt": set "token" to "introspection" or "auto", or remove this block`},
		{"introspection with auto", []edit{set("tenants.0.provider.token", "auto"), set("tenants.0.provider.introspection", introspection)}, "", ""},
		{"oauth introspection default", []edit{set("tenants.0.provider", obj{"type": "oauth", "issuer": "https://auth.acme.example", "introspection": introspection})}, "", ""},
		{"client_id missing", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"client_secret_env": "S"})}, tp + ".provider.introspection.client_id", `required (or auth_method "none" for an endpoint that takes no client authentication)`},
		// Hydra's admin introspection endpoint takes no client authentication.
		{"auth method none", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"auth_method": "none"})}, "", ""},
		{"auth method none with a client id", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"auth_method": "none", "client_id": "gw"})}, tp + ".provider.introspection.client_id", `is not used with auth_method "none": remove it, or choose "basic" or "form"`},
		{"auth method none with a secret", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"auth_method": "none", "client_secret_env": "S"})}, tp + ".provider.introspection.client_secret_env", `is not used with auth_method "none": remove it, or choose "basic" or "form"`},
		{"inline secret", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "client_secret": "hunter2"})}, tp + ".provider.introspection.client_secret", "inline secrets are not allowed; use client_secret_env or client_secret_file"},
		{"two secret references", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "client_secret_file": "/run/secrets/s"})}, tp + ".provider.introspection", "set only one of client_secret_env and client_secret_file"},
		{"no secret reference", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"client_id": "gw"})}, tp + ".provider.introspection", "set client_secret_env or client_secret_file"},
		{"secret file", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_file": "/run/secrets/s"})}, "", ""},
		{"bad env name", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "1-SECRET"})}, tp + ".provider.introspection.client_secret_env", `must be an environment variable name (letters, digits and "_", not starting with a digit)`},
		{"auth method unknown", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "auth_method": "jwt"})}, tp + ".provider.introspection.auth_method", `unknown auth method "jwt" (one of basic, form, none)`},
		{"cache ttl negative", []edit{set("tenants.0.provider.token", "introspection"), set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "cache_ttl": "-1s"})}, tp + ".provider.introspection.cache_ttl", "must not be negative"},
		{"cache ttl too long", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "cache_ttl": "11m"})}, tp + ".provider.introspection.cache_ttl", "must be at most 10m0s: a revoked token stays usable as long as its answer is cached"},
		{"cache ttl at bounds", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "cache_ttl": "10m", "auth_method": "form"})}, "", ""},
		{"introspection budget zero", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "max_calls_per_second": 0})}, tp + ".provider.introspection.max_calls_per_second", "must be from 1 to 10000"},
		{"introspection budget too large", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "max_calls_per_second": 10001})}, tp + ".provider.introspection.max_calls_per_second", "must be from 1 to 10000"},
		{"introspection budget at bounds", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "max_calls_per_second": 1})}, "", ""},
		// A missing aud or iss needs something else that binds the answer to this resource.
		{"missing audience allowed alone", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "allow_missing_audience": true})},
			tp + ".provider.introspection.allow_missing_audience", "accepts any token the authorization server says is active, whatever resource it was issued for (a client-credentials token another client holds for another API would pass): list the clients whose tokens this resource accepts in provider.introspection.accepted_clients, or use the scope audience strategy with a prefix only this resource's scopes carry"},
		{"missing issuer allowed alone", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "allow_missing_issuer": true})},
			tp + ".provider.introspection.allow_missing_issuer", "accepts an answer that does not say which issuer the token comes from (an endpoint serving several issuers would vouch for all of them): list the clients whose tokens this resource accepts in provider.introspection.accepted_clients"},
		{"missing claims allowed for accepted clients", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S",
			"allow_missing_issuer": true, "allow_missing_audience": true, "accepted_clients": arr{"todo-app", "todo-cli"}})}, "", ""},
		{"missing audience under the scope strategy", []edit{set("tenants.0.audience", obj{"strategy": "scope", "prefix": "todo-api:"}),
			set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "allow_missing_audience": true})},
			tp + ".provider.introspection.allow_missing_audience", "has no effect: the scope strategy checks no audience (its scope prefix binds tokens to this resource); remove it"},
		{"empty accepted client", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "accepted_clients": arr{""}})},
			tp + ".provider.introspection.accepted_clients[0]", "must not be empty"},
		{"introspection budget upper bound", []edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "client_secret_env": "S", "max_calls_per_second": 10000})}, "", ""},

		// provider: algorithms, types, durations, metadata
		{"alg none", []edit{set("tenants.0.provider.algorithms", []any{"ES384", "none"})}, tp + ".provider.algorithms[1]", `"none" is never allowed: tokens must be signed`},
		{"alg HMAC", []edit{set("tenants.0.provider.algorithms", []any{"HS256"})}, tp + ".provider.algorithms[0]", `"HS256" is not allowed: HMAC needs a shared secret, and a resource server verifies with public keys`},
		{"alg unknown", []edit{set("tenants.0.provider.algorithms", []any{"rs256"})}, tp + ".provider.algorithms[0]", `unknown algorithm "rs256" (allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)`},
		{"alg all allowed", []edit{set("tenants.0.provider.algorithms", []any{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})}, "", ""},
		{"jwt type empty", []edit{set("tenants.0.provider.jwt_types", []any{"at+jwt", ""})}, tp + ".provider.jwt_types[1]", "must not be empty"},
		{"leeway too long", []edit{set("tenants.0.provider.leeway", "6m")}, tp + ".provider.leeway", "must be between 0s and 5m0s"},
		{"leeway negative", []edit{set("tenants.0.provider.leeway", "-1s")}, tp + ".provider.leeway", "must be between 0s and 5m0s"},
		{"leeway at bounds", []edit{set("tenants.0.provider.leeway", "5m")}, "", ""},
		{"leeway zero", []edit{set("tenants.0.provider.leeway", "0s")}, "", ""},
		{"jwks refresh too short", []edit{set("tenants.0.provider.jwks_min_refresh", "100ms")}, tp + ".provider.jwks_min_refresh", "must be at least 1s"},
		{"jwks uri http", []edit{set("tenants.0.provider.metadata", obj{"jwks_uri": "http://keys.acme.example/jwks"})}, tp + ".provider.metadata.jwks_uri", `must use https (http is accepted only for a loopback host or with "allow_http_issuer": true)`},
		{"introspection endpoint relative", []edit{set("tenants.0.provider.metadata", obj{"introspection_endpoint": "/introspect"})}, tp + ".provider.metadata.introspection_endpoint", "must be an absolute https URL"},
		{"jwks uri downgrades the issuer", []edit{set("tenants.0.provider.metadata", obj{"jwks_uri": "http://localhost:3002/jwks"})}, tp + ".provider.metadata.jwks_uri", "must use https like the issuer: keys or answers fetched over plain http could be altered on the way"},
		{"jwks uri with user info", []edit{set("tenants.0.provider.metadata", obj{"jwks_uri": "https://u:p@keys.acme.example/jwks"})}, tp + ".provider.metadata.jwks_uri", "must not contain user information"},
		{"jwks uri with a query", []edit{set("tenants.0.provider.metadata", obj{"jwks_uri": "https://keys.acme.example/jwks?p=b2c_1_signin"})}, "", ""},
		{"endpoints over http with an http issuer", []edit{set("tenants.0.provider", obj{"type": "oidc", "issuer": "http://localhost:3002",
			"metadata": obj{"jwks_uri": "http://localhost:3002/jwks", "introspection_endpoint": "http://localhost:3002/introspect"}})}, "", ""},

		// resource, as the resource strategy needs it
		{"resource missing", []edit{del("tenants.0.resource")}, tp + ".resource", "required"},

		// audience
		{"strategy missing is resource", []edit{set("tenants.0.audience", obj{})}, "", ""},
		{"audience block missing", []edit{del("tenants.0.audience")}, "", ""},
		{"strategy unknown", []edit{set("tenants.0.audience", obj{"strategy": "aud"})}, tp + ".audience.strategy", `unknown strategy "aud" (one of resource, audience, scope)`},
		{"audience without values", []edit{set("tenants.0.audience", obj{"strategy": "audience"})}, tp + ".audience.values", `required with strategy "audience": the accepted "aud" values`},
		{"audience empty values", []edit{set("tenants.0.audience", obj{"strategy": "audience", "values": []any{}})}, tp + ".audience.values", `required with strategy "audience": the accepted "aud" values`},
		{"audience empty value", []edit{set("tenants.0.audience", obj{"strategy": "audience", "values": []any{"todo-api", ""}})}, tp + ".audience.values[1]", "must not be empty"},
		{"values under resource", []edit{set("tenants.0.audience", obj{"strategy": "resource", "values": []any{"x"}})}, tp + ".audience.values", `only used with strategy "audience"`},
		{"prefix under audience", []edit{set("tenants.0.audience", obj{"strategy": "audience", "values": []any{"x"}, "prefix": "p:"})}, tp + ".audience.prefix", `only used with strategy "scope"`},
		{"scope without prefix", []edit{set("tenants.0.audience", obj{"strategy": "scope"})}, tp + ".audience.prefix", `required with strategy "scope", such as "todo-api:"`},
		{"scope prefix with space", []edit{set("tenants.0.audience", obj{"strategy": "scope", "prefix": "todo api:"})}, tp + ".audience.prefix", "must be printable ASCII without spaces, quotes or backslashes (it starts every scope)"},

		// scopes
		{"scopes unknown permission", []edit{set("tenants.0.scopes", obj{"write": "todos:write"})}, tp + ".scopes", `unknown permission "write" (one of create, read, delete)`},
		{"scope empty", []edit{set("tenants.0.scopes", obj{"create": ""})}, tp + ".scopes.create", "must not be empty (omit it for the default)"},
		{"scope with space", []edit{set("tenants.0.scopes", obj{"read": "read todos"})}, tp + ".scopes.read", "must be one scope: printable ASCII without spaces, quotes or backslashes"},
		{"scope with quote", []edit{set("tenants.0.scopes", obj{"delete": `del"ete`})}, tp + ".scopes.delete", "must be one scope: printable ASCII without spaces, quotes or backslashes"},
		{"scope without prefix", []edit{set("tenants.0.audience", scopeAudience), set("tenants.0.scopes", obj{"create": "create:todos"})}, tp + ".scopes.create", `must start with the audience prefix "todo-api:"`},
		{"scope with prefix", []edit{set("tenants.0.audience", scopeAudience), set("tenants.0.scopes", obj{"create": "todo-api:write"})}, "", ""},

		// claims
		{"scope claim unknown", []edit{set("tenants.0.claims", obj{"scopes": []any{"scope", "groups"}})}, tp + ".claims.scopes[1]", `unknown scope claim "groups" (one of scope, scp, scopes, permissions, roles); to grant permissions from a group or role claim such as "groups", map its values in claims.roles ("roles": {"claim": "groups", "grants": {…}})`},
		{"client id claim empty", []edit{set("tenants.0.claims", obj{"client_id": []any{""}})}, tp + ".claims.client_id[0]", "must not be empty"},
		// claims.roles: permissions from a role or group claim
		{"roles tutorial table", []edit{set("tenants.0.claims", obj{"roles": obj{"claim": "groups", "grants": obj{"todo-admins": []any{"create", "read", "delete"}, "todo-users": []any{"create"}}}})}, "", ""},
		{"roles nested path", []edit{set("tenants.0.claims", obj{"roles": obj{"claim": "resource_access.todo-api.roles", "grants": obj{"admin": []any{"delete"}}}})}, "", ""},
		{"roles claim missing", []edit{set("tenants.0.claims", obj{"roles": obj{"grants": obj{"todo-users": []any{"create"}}}})}, tp + ".claims.roles.claim", `required: the claim whose values grant permissions, such as "groups" or "realm_access.roles"`},
		{"roles claim empty segment", []edit{set("tenants.0.claims", obj{"roles": obj{"claim": "realm_access.", "grants": obj{"todo-users": []any{"create"}}}})}, tp + ".claims.roles.claim", `"realm_access." has an empty segment: a claim name or a dotted path such as "realm_access.roles"`},
		{"roles empty map", []edit{set("tenants.0.claims", obj{"roles": obj{"claim": "groups", "grants": obj{}}})}, tp + ".claims.roles.grants", `must map at least one claim value to permissions, such as {"todo-admins": ["create", "read", "delete"]}`},
		{"roles without grants", []edit{set("tenants.0.claims", obj{"roles": obj{"claim": "groups"}})}, tp + ".claims.roles.grants", `must map at least one claim value to permissions, such as {"todo-admins": ["create", "read", "delete"]}`},
		{"roles unknown permission", []edit{set("tenants.0.claims", obj{"roles": obj{"claim": "groups", "grants": obj{"todo-users": []any{"create", "write"}}}})}, tp + `.claims.roles.grants["todo-users"][1]`, `unknown permission "write" (one of create, read, delete)`},
		{"roles grants nothing", []edit{set("tenants.0.claims", obj{"roles": obj{"claim": "groups", "grants": obj{"todo-users": []any{}}}})}, tp + `.claims.roles.grants["todo-users"]`, "must grant at least one permission (one of create, read, delete); remove the value to grant nothing"},
		{"roles empty value", []edit{set("tenants.0.claims", obj{"roles": obj{"claim": "groups", "grants": obj{"": []any{"read"}}}})}, tp + `.claims.roles.grants[""]`, "a claim value must not be empty"},
		{"claims all known", []edit{set("tenants.0.claims", obj{"scopes": []any{"scope", "scp", "scopes", "permissions", "roles"}, "subject": "oid", "client_id": []any{"azp"}})}, "", ""},
	}
}()

// everySecret is a secret resolver that finds every secret: reading it is
// the one thing serve checks that check does not, on purpose.
var everySecret = providers.WithSecretResolver(providers.SecretResolver{
	LookupEnv: func(string) (string, bool) { return "secret", true },
	ReadFile:  func(string) ([]byte, error) { return []byte("secret"), nil },
})

// TestCheckAndServeAgree runs each configuration through exactly what
// "check" runs (Parse) and exactly what "serve" builds for each tenant
// (providers.New on its settings): both accept, or both refuse with the
// same problems. Accepted, the tenant check produces has exactly the
// settings serve verifies with.
func TestCheckAndServeAgree(t *testing.T) {
	for _, tc := range providerRules {
		t.Run(tc.name, func(t *testing.T) {
			data := apply(t, baseDoc(), tc.edits...)
			checked := problemsOf(t, data)
			var want []Problem
			if tc.path != "" {
				want = []Problem{{Path: tc.path, Tenant: "acme", Message: tc.msg}}
			}
			if !slices.Equal(checked, want) {
				t.Fatalf("check: got %v, want %v", checked, want)
			}
			agree(t, data, checked)
		})
	}
}

// TestCheckAndServeAgreeOnEveryProblem: several problems in several
// tenants come out alike, in the same order.
func TestCheckAndServeAgreeOnEveryProblem(t *testing.T) {
	data := apply(t, baseDoc("acme", "globex"),
		set("tenants.0.provider", obj{"type": "oauth", "issuer": "http://auth.acme.example?x", "algorithms": []any{"HS256", "none"},
			"introspection": obj{"client_id": "", "client_secret": "hunter2"}, "leeway": "10m"}),
		set("tenants.0.scopes", obj{"create": "a b", "admin": "x"}),
		set("tenants.1.audience", obj{"strategy": "scope", "values": []any{""}}),
		set("tenants.1.claims", obj{"scopes": []any{"groups"}, "client_id": []any{""}}),
	)
	checked := problemsOf(t, data)
	if len(checked) < 10 {
		t.Fatalf("check: got %d problems %v, want every rule broken above", len(checked), checked)
	}
	agree(t, data, checked)
}

// agree builds every tenant of data as serve would, had check not run
// first, and compares what that refuses with checked, check's problems.
func agree(t *testing.T, data []byte, checked []Problem) {
	t.Helper()
	var raw Config
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	var served []Problem
	for i := range raw.Tenants {
		ten := &raw.Tenants[i]
		p, err := providers.New(ten.ProviderSettings(), everySecret)
		var ise *providers.InvalidSettingsError
		switch {
		case err == nil:
			p.Close()
		case errors.As(err, &ise):
			for _, pp := range ise.Problems {
				served = append(served, Problem{Path: fmt.Sprintf("tenants[%d].%s", i, pp.Path), Tenant: ten.ID, Message: pp.Message})
			}
		default:
			t.Fatalf("serve: tenant %d: got %v, want an *InvalidSettingsError or nothing", i, err)
		}
	}
	if !slices.Equal(served, checked) {
		t.Fatalf("serve refuses\n%v\ncheck refuses\n%v", served, checked)
	}
	if len(checked) > 0 {
		return
	}
	cfg := mustParse(t, data)
	for i := range cfg.Tenants {
		ten := &cfg.Tenants[i]
		got, want := ten.ProviderSettings(), raw.Tenants[i].ProviderSettings().WithDefaults()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("check's tenant has settings\n%+v\nserve verifies with\n%+v", got, want)
		}
		p, err := providers.New(got, everySecret)
		if err != nil {
			t.Fatalf("serve on check's tenant: %v", err)
		}
		p.Close()
	}
}
