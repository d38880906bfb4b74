package main

import (
	"encoding/json"
	"io"
	"strings"

	"github.com/todo-gateway/todo-gateway/providers"
)

// The JSON output has its own types so that its field names stay stable
// whatever the Go fields of ProbeReport become.
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
	Endpoints                provEndpointsJSON   `json:"endpoints"`
	PKCES256                 bool                `json:"pkce_s256"`
	CodeChallengeMethods     []string            `json:"code_challenge_methods"`
	GrantTypes               []string            `json:"grant_types"`
	ResponseTypes            []string            `json:"response_types"`
	SigningAlgs              []string            `json:"signing_algs"`
	AllowedAlgs              []string            `json:"allowed_algs"`
	TokenEndpointAuthMethods []string            `json:"token_endpoint_auth_methods"`
	IntrospectionAuthMethods []string            `json:"introspection_auth_methods"`
	DynamicRegistration      bool                `json:"dynamic_registration"`
	ClientIDMetadataDocument bool                `json:"client_id_metadata_document"`
	JWKS                     provJWKSJSON        `json:"jwks"`
	ScopesSupported          []string            `json:"scopes_supported"`
	TenantScopes             []string            `json:"tenant_scopes"`
	MissingScopes            []string            `json:"missing_scopes"`
}

type provDiscoveryJSON struct {
	URL      string `json:"url"`
	Document string `json:"document"` // rfc8414 or openid
	Status   int    `json:"status"`   // 0 when there was no HTTP answer
	Issuer   string `json:"issuer,omitempty"`
	Error    string `json:"error,omitempty"`
	Used     bool   `json:"used"`
}

type provEndpointsJSON struct {
	Authorization string `json:"authorization"`
	Token         string `json:"token"`
	JWKS          string `json:"jwks"`
	Introspection string `json:"introspection"`
	Revocation    string `json:"revocation"`
	Registration  string `json:"registration"`
	Userinfo      string `json:"userinfo"`
}

type provJWKSJSON struct {
	URL   string        `json:"url"`
	Error string        `json:"error,omitempty"`
	Keys  []provKeyJSON `json:"keys"`
}

type provKeyJSON struct {
	KID    string `json:"kid"`
	Alg    string `json:"alg"`
	Use    string `json:"use"`
	Kty    string `json:"kty"`
	Crv    string `json:"crv,omitempty"`
	Bits   int    `json:"bits,omitempty"`
	Usable bool   `json:"usable"`
}

// provList makes absent lists [] rather than null, so consumers need no null
// checks.
func provList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeProvidersJSON(w io.Writer, results []provResult) error {
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
				Endpoints:                provEndpointsJSON(r.Endpoints),
				PKCES256:                 r.PKCES256,
				CodeChallengeMethods:     provList(r.CodeChallengeMethods),
				GrantTypes:               provList(r.GrantTypes),
				ResponseTypes:            provList(r.ResponseTypes),
				SigningAlgs:              provList(r.SigningAlgs),
				AllowedAlgs:              provList(r.AllowedAlgs),
				TokenEndpointAuthMethods: provList(r.TokenEndpointAuthMethods),
				IntrospectionAuthMethods: provList(r.IntrospectionAuthMethods),
				DynamicRegistration:      r.DynamicRegistration,
				ClientIDMetadataDocument: r.ClientIDMetadataDocument,
				JWKS:                     provJWKSJSON{URL: r.JWKSURL, Error: r.KeysError, Keys: []provKeyJSON{}},
				ScopesSupported:          provList(r.ScopesSupported),
				TenantScopes:             provList(r.TenantScopes),
				MissingScopes:            provList(r.MissingScopes),
				Discovery:                []provDiscoveryJSON{},
			}
			for _, a := range r.Discovery {
				pj.Discovery = append(pj.Discovery, provDiscoveryJSON{URL: a.URL, Document: provDocumentKind(a.URL),
					Status: a.Status, Issuer: a.Issuer, Error: a.Error, Used: a.URL == r.MetadataURL})
			}
			for _, k := range r.Keys {
				pj.JWKS.Keys = append(pj.JWKS.Keys, provKeyJSON{KID: k.KID, Alg: k.Alg, Use: k.Use, Kty: k.Type, Crv: k.Curve, Bits: k.Bits, Usable: k.Usable})
			}
			tj.Probe = pj
		}
		doc.Tenants[i] = tj
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// provDocumentKind names a discovery URL's standard.
func provDocumentKind(u string) string {
	if strings.Contains(u, "/.well-known/oauth-authorization-server") {
		return "rfc8414"
	}
	return "openid"
}
