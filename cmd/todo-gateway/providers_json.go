package main

import (
	"encoding/json"
	"io"
	"strings"

	"github.com/todo-gateway/todo-gateway/providers"
)

// The JSON report has a shape of its own (durations in milliseconds, lists
// never null, the JWKS in one object, the discovery attempts labelled), made
// of the providers types that carry their JSON names (Audience, Verdict,
// Endpoints, KeyInfo). Its field names are a promise: the test pins them.
type provDocJSON struct {
	OK      bool             `json:"ok"` // every tenant can work
	Tenants []provTenantJSON `json:"tenants"`
}

type provTenantJSON struct {
	Tenant    string              `json:"tenant"`
	Type      string              `json:"type"`
	Issuer    string              `json:"issuer"`
	TokenMode string              `json:"token_mode"`
	Audience  providers.Audience  `json:"audience"`
	Status    string              `json:"status"` // ok, warning or error
	Verdicts  []providers.Verdict `json:"verdicts"`
	Probe     *provProbeJSON      `json:"probe"` // null when the probe could not run
}

type provProbeJSON struct {
	DurationMS               int64               `json:"duration_ms"`
	Discovery                []provDiscoveryJSON `json:"discovery"`
	MetadataURL              string              `json:"metadata_url"`
	IssuerMatch              bool                `json:"issuer_match"`
	Endpoints                providers.Endpoints `json:"endpoints"`
	PKCES256                 bool                `json:"pkce_s256"`
	CodeChallengeMethods     []string            `json:"code_challenge_methods"`
	GrantTypes               []string            `json:"grant_types"`
	ResponseTypes            []string            `json:"response_types"`
	SigningAlgs              []string            `json:"signing_algs"`
	AllowedAlgs              []string            `json:"allowed_algs"`
	TokenEndpointAuthMethods []string            `json:"token_endpoint_auth_methods"`
	IntrospectionAuthMethods []string            `json:"introspection_auth_methods"`
	// IntrospectionProbe is the introspection endpoint's answer to a
	// random token; absent when the tenant does not introspect.
	IntrospectionProbe *providers.IntrospectionProbe `json:"introspection_probe,omitempty"`
	// Software is the server recognised from its metadata (Ory Hydra,
	// Dex), "" when not recognised.
	Software                 string       `json:"software"`
	DynamicRegistration      bool         `json:"dynamic_registration"`
	ClientIDMetadataDocument bool         `json:"client_id_metadata_document"`
	JWKS                     provJWKSJSON `json:"jwks"`
	ScopesSupported          []string     `json:"scopes_supported"`
	TenantScopes             []string     `json:"tenant_scopes"`
	MissingScopes            []string     `json:"missing_scopes"`
}

type provDiscoveryJSON struct {
	URL      string `json:"url"`
	Document string `json:"document"` // rfc8414 or openid
	Status   int    `json:"status"`   // 0 when there was no HTTP answer
	Issuer   string `json:"issuer,omitempty"`
	Error    string `json:"error,omitempty"`
	Used     bool   `json:"used"`
}

type provJWKSJSON struct {
	URL   string              `json:"url"`
	Error string              `json:"error,omitempty"`
	Keys  []providers.KeyInfo `json:"keys"`
}

// provList makes absent lists [] rather than null, so consumers need no null
// checks.
func provList[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeProvidersJSON(w io.Writer, results []provResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(providersDoc(results))
}

// providersDoc is the report of --format json, which the HTML report
// shows too.
func providersDoc(results []provResult) provDocJSON {
	doc := provDocJSON{OK: true, Tenants: make([]provTenantJSON, len(results))}
	for i, res := range results {
		s := res.settings
		tj := provTenantJSON{
			Tenant: s.Tenant, Type: string(s.Config.Type), Issuer: s.Config.Issuer, TokenMode: string(s.Config.Token),
			Audience: s.Audience, Status: provStatus(res.verdicts), Verdicts: res.verdicts,
		}
		if tj.Verdicts == nil {
			tj.Verdicts = []providers.Verdict{}
		}
		if !providers.CanWork(res.verdicts) {
			doc.OK = false
		}
		if r := res.report; r != nil {
			pj := &provProbeJSON{
				DurationMS: r.Duration.Milliseconds(), MetadataURL: r.MetadataURL, IssuerMatch: r.IssuerMatch,
				Endpoints:                r.Endpoints,
				PKCES256:                 r.PKCES256,
				CodeChallengeMethods:     provList(r.CodeChallengeMethods),
				GrantTypes:               provList(r.GrantTypes),
				ResponseTypes:            provList(r.ResponseTypes),
				SigningAlgs:              provList(r.SigningAlgs),
				AllowedAlgs:              provList(r.AllowedAlgs),
				TokenEndpointAuthMethods: provList(r.TokenEndpointAuthMethods),
				IntrospectionAuthMethods: provList(r.IntrospectionAuthMethods),
				IntrospectionProbe:       r.Introspection,
				Software:                 r.Software,
				DynamicRegistration:      r.DynamicRegistration,
				ClientIDMetadataDocument: r.ClientIDMetadataDocument,
				JWKS:                     provJWKSJSON{URL: r.JWKSURL, Error: r.KeysError, Keys: provList(r.Keys)},
				ScopesSupported:          provList(r.ScopesSupported),
				TenantScopes:             provList(r.TenantScopes),
				MissingScopes:            provList(r.MissingScopes),
				Discovery:                []provDiscoveryJSON{},
			}
			for _, a := range r.Discovery {
				pj.Discovery = append(pj.Discovery, provDiscoveryJSON{URL: a.URL, Document: provDocumentKind(a.URL),
					Status: a.Status, Issuer: a.Issuer, Error: a.Error, Used: a.URL == r.MetadataURL})
			}
			tj.Probe = pj
		}
		doc.Tenants[i] = tj
	}
	return doc
}

// provDocumentKind names a discovery URL's standard.
func provDocumentKind(u string) string {
	if strings.Contains(u, "/.well-known/oauth-authorization-server") {
		return "rfc8414"
	}
	return "openid"
}
