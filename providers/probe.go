package providers

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
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
	ClaimsSupported               []string
	// Software is the authorization server software recognised from its
	// metadata ("Ory Hydra", "Dex"), "" when not recognised.
	Software string
	// Introspection is the probe of the introspection endpoint, nil when
	// the tenant does not introspect or no endpoint is known.
	Introspection *IntrospectionProbe
}

// IntrospectionProbe is what the introspection endpoint answered about a
// random token: a working endpoint says 200 with "active": false.
type IntrospectionProbe struct {
	URL    string `json:"url"`
	Method string `json:"method"` // always POST (RFC 7662)
	// Status is the HTTP status, 0 when there was no answer.
	Status int `json:"status"`
	// Inactive is true for the expected answer: 200, "active": false.
	Inactive bool `json:"inactive"`
	// Error says what was wrong with the answer, or why there was none.
	Error string `json:"error,omitempty"`
	// NotProbed says why the endpoint was not called (its secret cannot be
	// read); the other fields are then empty.
	NotProbed string `json:"not_probed,omitempty"`
}

// Endpoints are the endpoint URLs a metadata document publishes. The JSON
// names are those of the providers command's report.
type Endpoints struct {
	Authorization string `json:"authorization"`
	Token         string `json:"token"`
	JWKS          string `json:"jwks"`
	Introspection string `json:"introspection"`
	Revocation    string `json:"revocation"`
	Registration  string `json:"registration"`
	Userinfo      string `json:"userinfo"`
}

// KeyInfo describes one JWKS entry, usable or not. The JSON names are the
// JWK's own (RFC 7517), as the providers command reports them.
type KeyInfo struct {
	KID    string `json:"kid"`
	Alg    string `json:"alg"`
	Use    string `json:"use"`
	Type   string `json:"kty"`
	Curve  string `json:"crv,omitempty"` // for EC and OKP keys
	Bits   int    `json:"bits,omitempty"`
	Usable bool   `json:"usable"` // a public signing key the verifier would use
}

// Probe reads every discovery URL of s's issuer and its JWKS, within
// ProbeTimeout, and for a tenant that introspects asks the introspection
// endpoint about a random token, then reports what the server offers;
// Verdicts judges it. It builds no verifier and uses no cache, so it shows
// the server as it is now. Of the options, the HTTP client, the clock and
// the secret resolver (for the introspection client's secret) apply. It fails only for
// settings Validate refuses (as an *InvalidSettingsError); unreachable
// servers are reported in the result.
func Probe(ctx context.Context, s Settings, opts ...Option) (*ProbeReport, error) {
	if probs := s.Validate(); len(probs) > 0 {
		return nil, &InvalidSettingsError{Tenant: s.Tenant, Problems: probs}
	}
	s = s.WithDefaults()
	o := newOptions(opts)
	client := noDowngrade(o.client)
	c := s.Config
	var override MetadataOverride
	if c.Metadata != nil {
		override = *c.Metadata
	}

	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	r := &ProbeReport{Tenant: s.Tenant, Kind: c.Type, Issuer: c.Issuer, Started: o.now()}
	start := time.Now()
	defer func() { r.Duration = time.Since(start) }()

	for _, perm := range s.PermissionList() {
		r.TenantScopes = append(r.TenantScopes, s.Scopes[perm])
	}

	md, source, attempts, err := discover(ctx, client, c.Type, c.Issuer, true)
	r.Discovery = attempts
	if err != nil {
		md = &Metadata{}
	} else {
		r.MetadataURL = source
		r.IssuerMatch = true
	}
	r.Endpoints = Endpoints{
		Authorization: md.AuthorizationEndpoint,
		Token:         md.TokenEndpoint,
		JWKS:          cmp.Or(override.JWKSURI, md.JWKSURI),
		Introspection: cmp.Or(override.IntrospectionEndpoint, md.IntrospectionEndpoint),
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
	r.AllowedAlgs = allowedAlgs(c.Algorithms, md.IDTokenSigningAlgValuesSupported)
	r.ScopesSupported = md.ScopesSupported
	for _, sc := range r.TenantScopes {
		if !slices.Contains(md.ScopesSupported, sc) {
			r.MissingScopes = append(r.MissingScopes, sc)
		}
	}
	r.TenantScopesInScopesSupported = len(r.TenantScopes) > 0 && len(r.MissingScopes) == 0
	r.ClaimsSupported = md.ClaimsSupported
	r.Software = recogniseSoftware(c.Issuer, md)

	if c.Token != TokenJWT && r.Endpoints.Introspection != "" {
		r.Introspection = probeIntrospection(ctx, client, *c.Introspection, o.secrets, r.Endpoints.Introspection)
	}

	r.JWKSURL = r.Endpoints.JWKS
	if r.JWKSURL != "" {
		r.Keys, err = probeKeys(ctx, client, r.JWKSURL)
		if err != nil {
			r.KeysError = err.Error()
		}
	}
	return r, nil
}

func probeKeys(ctx context.Context, client *http.Client, url string) ([]KeyInfo, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if _, err := getJSON(ctx, client, url, "application/jwk-set+json, application/json", &doc); err != nil {
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

// probeIntrospection asks endpoint about a random token, as the tenant's
// verifier would ask about a real one: a working endpoint that accepts the
// gateway's credentials answers 200 with "active": false.
func probeIntrospection(ctx context.Context, client *http.Client, c IntrospectionConfig, sr SecretResolver, endpoint string) *IntrospectionProbe {
	out := &IntrospectionProbe{URL: endpoint, Method: http.MethodPost}
	in, err := newIntrospector(client, c, sr)
	if err != nil {
		return &IntrospectionProbe{URL: endpoint, NotProbed: "the client secret cannot be read: " + err.Error()}
	}
	random := make([]byte, 32)
	_, _ = rand.Read(random)
	m, refusal, err := in.call(ctx, endpoint, base64.RawURLEncoding.EncodeToString(random), nil)
	var se *StatusError
	switch {
	case errors.As(err, &se):
		out.Status = se.Status
		out.Error = se.Error()
	case err != nil:
		out.Error = err.Error()
	case refusal != nil:
		out.Status = http.StatusOK
		out.Inactive = refusal.Reason == reasonInactive
		if !out.Inactive {
			out.Error = refusal.Reason
		}
	case m != nil:
		out.Status = http.StatusOK
		out.Error = `a random token was answered "active": true`
	}
	return out
}
