package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// ProbeTimeout bounds a whole probe, whatever the caller's context says.
const ProbeTimeout = 15 * time.Second

// ProbeReport describes what an authorization server offers, as seen from
// one tenant's configuration. It is data only; rendering it is the caller's
// business ("compare providers").
type ProbeReport struct {
	Tenant   string
	Kind     Kind
	Issuer   string // as configured
	Started  time.Time
	Duration time.Duration

	// Discovery lists every metadata URL tried for the provider type, in
	// order, with what each answered.
	Discovery []DiscoveryAttempt
	// MetadataURL is the document used: the first whose issuer matched.
	MetadataURL string
	// IssuerMatch is true when some document named exactly the configured
	// issuer; when false, Discovery shows the issuers the documents named.
	IssuerMatch bool

	Endpoints Endpoints

	PKCES256                      bool
	CodeChallengeMethods          []string
	GrantTypes                    []string
	ResponseTypes                 []string
	SigningAlgs                   []string // id_token_signing_alg_values_supported
	TokenEndpointAuthMethods      []string
	IntrospectionAuthMethods      []string
	ClientIDMetadataDocument      bool // client_id_metadata_document_supported
	DynamicRegistration           bool // a registration_endpoint is published
	AllowedAlgs                   []string
	JWKSURL                       string
	Keys                          []KeyInfo
	KeysError                     string
	ScopesSupported               []string
	TenantScopes                  []string // the scopes the tenant's permissions map to
	MissingScopes                 []string // tenant scopes absent from scopes_supported
	TenantScopesInScopesSupported bool

	// Problems are findings worth a look (no metadata, no keys, ...).
	Problems []string
}

// Endpoints are the endpoint URLs a metadata document publishes.
type Endpoints struct {
	Authorization string
	Token         string
	JWKS          string
	Introspection string
	Revocation    string
	Registration  string
	Userinfo      string
}

// KeyInfo describes one JWKS entry, usable or not.
type KeyInfo struct {
	KID    string
	Alg    string
	Use    string
	Type   string // kty
	Curve  string // crv, for EC and OKP keys
	Bits   int    // RSA modulus size
	Usable bool   // a public signing key the verifier would use
}

// Probe builds a provider from s, probes it and closes it. It fails only for
// settings New refuses; unreachable servers are reported in the result.
func Probe(ctx context.Context, s Settings, opts ...Option) (*ProbeReport, error) {
	p, err := New(s, opts...)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Probe(ctx), nil
}

// Probe reads every discovery URL and the JWKS, within ProbeTimeout. It
// uses none of the verifier's caches, so it shows the server as it is now.
func (p *Provider) Probe(ctx context.Context) *ProbeReport {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	r := &ProbeReport{Tenant: p.tenant, Kind: p.kind, Issuer: p.issuer, Started: p.now()}
	start := time.Now()
	defer func() { r.Duration = time.Since(start) }()

	for _, perm := range Permissions {
		if sc := p.scopes[perm]; sc != "" {
			r.TenantScopes = append(r.TenantScopes, sc)
		}
	}

	md, source, attempts, err := discover(ctx, p, true)
	r.Discovery = attempts
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		md = &Metadata{}
	} else {
		r.MetadataURL = source
		r.IssuerMatch = true
	}
	r.Endpoints = Endpoints{
		Authorization: md.AuthorizationEndpoint,
		Token:         md.TokenEndpoint,
		JWKS:          cmpOr(p.override.JWKSURI, md.JWKSURI),
		Introspection: cmpOr(p.override.IntrospectionEndpoint, md.IntrospectionEndpoint),
		Revocation:    md.RevocationEndpoint,
		Registration:  md.RegistrationEndpoint,
		Userinfo:      md.UserinfoEndpoint,
	}
	r.CodeChallengeMethods = md.CodeChallengeMethodsSupported
	r.PKCES256 = slices.Contains(md.CodeChallengeMethodsSupported, "S256")
	r.GrantTypes = md.GrantTypesSupported
	r.ResponseTypes = md.ResponseTypesSupported
	r.SigningAlgs = md.IDTokenSigningAlgValuesSupported
	r.TokenEndpointAuthMethods = md.TokenEndpointAuthMethodsSupported
	r.IntrospectionAuthMethods = md.IntrospectionEndpointAuthMethodsSupported
	r.ClientIDMetadataDocument = md.ClientIDMetadataDocumentSupported
	r.DynamicRegistration = md.RegistrationEndpoint != ""
	r.AllowedAlgs = p.allowedAlgs(md.IDTokenSigningAlgValuesSupported)
	r.ScopesSupported = md.ScopesSupported
	for _, sc := range r.TenantScopes {
		if !slices.Contains(md.ScopesSupported, sc) {
			r.MissingScopes = append(r.MissingScopes, sc)
		}
	}
	r.TenantScopesInScopesSupported = len(r.TenantScopes) > 0 && len(r.MissingScopes) == 0
	if err == nil && !r.PKCES256 {
		r.Problems = append(r.Problems, "metadata does not list S256 in code_challenge_methods_supported")
	}

	r.JWKSURL = r.Endpoints.JWKS
	switch {
	case r.JWKSURL == "" && p.mode != TokenIntrospection:
		r.Problems = append(r.Problems, "no jwks_uri: JWT access tokens cannot be verified")
	case r.JWKSURL != "":
		r.Keys, err = probeKeys(ctx, p, r.JWKSURL)
		if err != nil {
			r.KeysError = err.Error()
			r.Problems = append(r.Problems, "JWKS: "+err.Error())
		}
	}
	if r.Endpoints.Introspection == "" && p.mode != TokenJWT {
		r.Problems = append(r.Problems, "no introspection endpoint: opaque tokens cannot be verified")
	}
	return r
}

func probeKeys(ctx context.Context, p *Provider, url string) ([]KeyInfo, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if _, err := getJSON(ctx, p.client, url, "application/jwk-set+json, application/json", &doc); err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, raw := range doc.Keys {
		var hdr struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			Kty string `json:"kty"`
			Crv string `json:"crv"`
		}
		_ = json.Unmarshal(raw, &hdr)
		ki := KeyInfo{KID: hdr.KID, Alg: hdr.Alg, Use: hdr.Use, Type: hdr.Kty, Curve: hdr.Crv}
		if usable, _ := parseJWKS([]json.RawMessage{raw}); len(usable) == 1 {
			ki.Usable = true
			ki.Bits = keyBits(usable[0])
		}
		out = append(out, ki)
	}
	return out, nil
}

func keyBits(k jose.JSONWebKey) int {
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		return pk.N.BitLen()
	case *ecdsa.PublicKey:
		return pk.Curve.Params().BitSize
	case ed25519.PublicKey:
		return 256
	}
	return 0
}
