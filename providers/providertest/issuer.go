// Package providertest runs an in-process OAuth 2.0 / OpenID Connect
// authorization server for tests, on a loopback httptest server.
//
// An Issuer serves metadata at the well-known locations chosen with
// WithDiscovery (OpenID and/or RFC 8414, appended to or inserted before the
// issuer path), a JWKS with RSA, EC P-256/P-384 and Ed25519 keys, and an
// RFC 7662 introspection endpoint for the opaque tokens it issued. Tests mint
// JWTs with arbitrary claims and headers, rotate keys, count requests per
// endpoint, and switch on slowness or an outage.
//
//	iss := providertest.New(t, providertest.WithPath("/oidc"))
//	tok := iss.Mint(iss.Claims("alice", "http://gw/acme", "read:todos"), providertest.Alg(jose.ES384))
//
// It does not implement the authorization and token endpoints: they are
// listed in the metadata (so probes see a complete server) but answer 501.
// Methods are safe for concurrent use; the ones that take no testing.TB
// report failures through the TB given to New, so call those from the test
// goroutine.
package providertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Endpoint names what the issuer serves, for WithDiscovery, Hits and
// SetStatus.
type Endpoint string

const (
	// OpenIDAppended is <issuer>/.well-known/openid-configuration.
	OpenIDAppended Endpoint = "openid-appended"
	// OpenIDInserted is /.well-known/openid-configuration<issuer path>.
	OpenIDInserted Endpoint = "openid-inserted"
	// OAuthInserted is RFC 8414's /.well-known/oauth-authorization-server<issuer path>.
	OAuthInserted Endpoint = "oauth-inserted"
	// OAuthAppended is <issuer>/.well-known/oauth-authorization-server (Okta's form).
	OAuthAppended Endpoint = "oauth-appended"

	JWKS          Endpoint = "jwks"          // <issuer>/jwks
	Introspection Endpoint = "introspection" // <issuer>/token/introspection
	Authorization Endpoint = "authorization" // <issuer>/auth (501)
	Token         Endpoint = "token"         // <issuer>/token (501)
	Revocation    Endpoint = "revocation"    // <issuer>/token/revocation (501)
	Registration  Endpoint = "registration"  // <issuer>/reg (501)
)

// Key is one signing key the issuer holds.
type Key struct {
	KID     string
	Alg     jose.SignatureAlgorithm
	Private crypto.Signer
}

// Public returns the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

type config struct {
	path     string
	docs     []Endpoint
	algs     []jose.SignatureAlgorithm
	clientID string
	secret   string
	now      func() time.Time
	scopes   []string
}

// Option configures New.
type Option func(*config)

// WithPath sets the issuer's path: "/oidc" gives Logto's shape
// http://127.0.0.1:port/oidc, "/" an Auth0-style trailing slash. Default: no
// path.
func WithPath(p string) Option { return func(c *config) { c.path = p } }

// WithDiscovery chooses which metadata documents are served. Default:
// OpenIDAppended and OAuthInserted (what node-oidc-provider serves at the
// root). WithDiscovery() with no argument serves none.
func WithDiscovery(docs ...Endpoint) Option {
	return func(c *config) { c.docs = slices.Clone(docs) }
}

// WithKeys chooses the initial keys, one per algorithm. Default: RS256,
// ES256, ES384 and EdDSA.
func WithKeys(algs ...jose.SignatureAlgorithm) Option {
	return func(c *config) { c.algs = slices.Clone(algs) }
}

// WithIntrospectionClient sets the credentials the introspection endpoint
// demands (basic or form). Default: "gateway" / "gateway-secret".
func WithIntrospectionClient(id, secret string) Option {
	return func(c *config) { c.clientID, c.secret = id, secret }
}

// WithClock sets the clock Claims and the introspection endpoint use.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithScopes sets scopes_supported. Default: openid, offline_access,
// create:todos, read:todos, delete:todos.
func WithScopes(scopes ...string) Option {
	return func(c *config) { c.scopes = slices.Clone(scopes) }
}

// Issuer is a running test authorization server.
type Issuer struct {
	tb     testing.TB
	cfg    config
	srv    *httptest.Server
	issuer string
	base   string // issuer without a trailing slash, for endpoint URLs

	mu           sync.Mutex
	keys         map[string]*Key // every key ever made, published or not
	published    []string        // kids in the JWKS, in order
	current      map[jose.SignatureAlgorithm]string
	opaque       map[string]map[string]any
	revoked      map[string]bool
	hits         map[Endpoint]int
	status       map[Endpoint]int
	down         bool
	delay        time.Duration
	metaEdit     func(doc Endpoint, m map[string]any)
	jwksEdit     func(set *jose.JSONWebKeySet)
	cacheControl string
	lastAuth     string

	closing   chan struct{}
	closeOnce sync.Once
}

// New starts an issuer on 127.0.0.1 (loopback only) and stops it when the
// test ends.
func New(tb testing.TB, opts ...Option) *Issuer {
	tb.Helper()
	cfg := config{
		docs:     []Endpoint{OpenIDAppended, OAuthInserted},
		algs:     []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.EdDSA},
		clientID: "gateway",
		secret:   "gateway-secret",
		now:      time.Now,
		scopes:   []string{"openid", "offline_access", "create:todos", "read:todos", "delete:todos"},
	}
	for _, o := range opts {
		o(&cfg)
	}
	i := &Issuer{
		tb:      tb,
		cfg:     cfg,
		keys:    map[string]*Key{},
		current: map[jose.SignatureAlgorithm]string{},
		opaque:  map[string]map[string]any{},
		revoked: map[string]bool{},
		hits:    map[Endpoint]int{},
		status:  map[Endpoint]int{},
		closing: make(chan struct{}),
	}
	for _, alg := range cfg.algs {
		i.AddKey(alg)
	}
	// httptest.NewServer listens on 127.0.0.1:0 (or [::1]:0): never on a
	// public interface.
	i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	i.issuer = i.srv.URL + cfg.path
	i.base = strings.TrimSuffix(i.issuer, "/")
	tb.Cleanup(i.Close)
	return i
}

// Close stops the server; requests held by SetDelay are released first.
func (i *Issuer) Close() {
	i.closeOnce.Do(func() {
		close(i.closing)
		i.srv.CloseClientConnections()
		i.srv.Close()
	})
}

// Issuer returns the issuer identifier, exactly as the metadata names it.
func (i *Issuer) Issuer() string { return i.issuer }

// URL returns the server's origin (http://127.0.0.1:port).
func (i *Issuer) URL() string { return i.srv.URL }

// JWKSURL returns the JWKS location.
func (i *Issuer) JWKSURL() string { return i.base + "/jwks" }

// IntrospectionURL returns the RFC 7662 endpoint.
func (i *Issuer) IntrospectionURL() string { return i.base + "/token/introspection" }

// MetadataURL returns where doc is served (whether or not it is enabled).
func (i *Issuer) MetadataURL(doc Endpoint) string { return i.srv.URL + i.metadataPath(doc) }

// Client returns an HTTP client for the server.
func (i *Issuer) Client() *http.Client { return i.srv.Client() }

func (i *Issuer) metadataPath(doc Endpoint) string {
	p := strings.TrimSuffix(i.cfg.path, "/")
	switch doc {
	case OpenIDAppended:
		return p + "/.well-known/openid-configuration"
	case OpenIDInserted:
		return "/.well-known/openid-configuration" + p
	case OAuthInserted:
		return "/.well-known/oauth-authorization-server" + p
	case OAuthAppended:
		return p + "/.well-known/oauth-authorization-server"
	}
	return ""
}

// route maps a request path to the endpoint it addresses ("" for none).
func (i *Issuer) route(path string) Endpoint {
	for _, doc := range i.cfg.docs {
		if path == i.metadataPath(doc) {
			return doc
		}
	}
	p := strings.TrimSuffix(i.cfg.path, "/")
	switch path {
	case p + "/jwks", p + "/keys": // "/keys" where Dex serves it
		return JWKS
	case p + "/token/introspection":
		return Introspection
	case p + "/auth":
		return Authorization
	case p + "/token":
		return Token
	case p + "/token/revocation":
		return Revocation
	case p + "/reg":
		return Registration
	}
	return ""
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	ep := i.route(r.URL.Path)
	i.mu.Lock()
	if ep != "" {
		i.hits[ep]++
	}
	down, delay, status := i.down, i.delay, i.status[ep]
	i.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-i.closing:
			return
		}
	}
	if down {
		// An outage looks like a dead host: the connection drops without
		// an answer.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	switch ep {
	case OpenIDAppended, OpenIDInserted, OAuthInserted, OAuthAppended:
		writeJSON(w, i.metadata(ep))
	case JWKS:
		i.serveJWKS(w)
	case Introspection:
		i.serveIntrospection(w, r)
	case "":
		http.NotFound(w, r)
	default:
		http.Error(w, "not implemented by providertest", http.StatusNotImplemented)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Metadata returns the metadata document as served before SetMetadata
// edits.
func (i *Issuer) Metadata() map[string]any {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.metadataLocked()
}

func (i *Issuer) metadataLocked() map[string]any {
	var algs []string
	for _, kid := range i.published {
		a := string(i.keys[kid].Alg)
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	slices.Sort(algs)
	return map[string]any{
		"issuer":                                        i.issuer,
		"authorization_endpoint":                        i.base + "/auth",
		"token_endpoint":                                i.base + "/token",
		"jwks_uri":                                      i.base + "/jwks",
		"introspection_endpoint":                        i.base + "/token/introspection",
		"revocation_endpoint":                           i.base + "/token/revocation",
		"registration_endpoint":                         i.base + "/reg",
		"response_types_supported":                      []string{"code"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token", "client_credentials"},
		"code_challenge_methods_supported":              []string{"S256"},
		"scopes_supported":                              slices.Clone(i.cfg.scopes),
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         algs,
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"client_id_metadata_document_supported":         true,
	}
}

func (i *Issuer) metadata(doc Endpoint) map[string]any {
	i.mu.Lock()
	defer i.mu.Unlock()
	m := i.metadataLocked()
	if i.metaEdit != nil {
		i.metaEdit(doc, m)
	}
	return m
}

// SetMetadata installs an edit applied to every metadata document served
// (nil removes it): a wrong issuer, a missing jwks_uri, and so on.
func (i *Issuer) SetMetadata(edit func(doc Endpoint, m map[string]any)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.metaEdit = edit
}

// SetJWKS installs an edit applied to the JWKS before it is served (nil
// removes it).
func (i *Issuer) SetJWKS(edit func(set *jose.JSONWebKeySet)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.jwksEdit = edit
}

// SetJWKSCacheControl sets the JWKS Cache-Control header ("" for none).
func (i *Issuer) SetJWKSCacheControl(v string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cacheControl = v
}

func (i *Issuer) serveJWKS(w http.ResponseWriter) {
	i.mu.Lock()
	set := &jose.JSONWebKeySet{}
	for _, kid := range i.published {
		k := i.keys[kid]
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"})
	}
	if i.jwksEdit != nil {
		i.jwksEdit(set)
	}
	cc := i.cacheControl
	i.mu.Unlock()
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_ = json.NewEncoder(w).Encode(set)
}

// AddKey creates a key for alg, publishes it, and makes it the one Mint
// uses for alg. It returns the new kid.
func (i *Issuer) AddKey(alg jose.SignatureAlgorithm) string {
	i.tb.Helper()
	priv, err := generate(alg)
	if err != nil {
		i.tb.Fatalf("providertest: generating a %s key: %v", alg, err)
	}
	k := &Key{KID: strings.ToLower(string(alg)) + "-" + randomHex(6), Alg: alg, Private: priv}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys[k.KID] = k
	i.published = append(i.published, k.KID)
	i.current[alg] = k.KID
	return k.KID
}

// Rotate publishes a new key for alg and withdraws the previous one (which
// can still sign, through Key, to test that its tokens are refused). It
// returns the new and the old kid.
func (i *Issuer) Rotate(alg jose.SignatureAlgorithm) (newKID, oldKID string) {
	i.tb.Helper()
	i.mu.Lock()
	oldKID = i.current[alg]
	i.mu.Unlock()
	newKID = i.AddKey(alg)
	if oldKID != "" {
		i.RemoveKey(oldKID)
	}
	return newKID, oldKID
}

// RemoveKey withdraws a key from the JWKS; it stays available for Mint.
func (i *Issuer) RemoveKey(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = slices.DeleteFunc(i.published, func(k string) bool { return k == kid })
}

// KeyID returns the kid Mint uses for alg.
func (i *Issuer) KeyID(alg jose.SignatureAlgorithm) string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.current[alg]
}

// Key returns a key by kid (published or withdrawn), nil if unknown.
func (i *Issuer) Key(kid string) *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[kid]
}

// PublishedKeyIDs lists the kids currently in the JWKS.
func (i *Issuer) PublishedKeyIDs() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.published)
}

// Hits returns how many requests reached e (including failed ones).
func (i *Issuer) Hits(e Endpoint) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hits[e]
}

// MetadataHits returns the requests for any metadata document.
func (i *Issuer) MetadataHits() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hits[OpenIDAppended] + i.hits[OpenIDInserted] + i.hits[OAuthInserted] + i.hits[OAuthAppended]
}

// ResetHits zeroes every counter.
func (i *Issuer) ResetHits() {
	i.mu.Lock()
	defer i.mu.Unlock()
	clear(i.hits)
}

// SetDown simulates an outage: while on, every connection is dropped
// without an answer.
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = down
}

// SetStatus makes e answer with an HTTP status instead of its document (0
// restores normal service).
func (i *Issuer) SetStatus(e Endpoint, status int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if status == 0 {
		delete(i.status, e)
	} else {
		i.status[e] = status
	}
}

// SetDelay holds every answer for d (0 turns it off). A held request ends
// early if its client goes away or the issuer closes.
func (i *Issuer) SetDelay(d time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.delay = d
}

// LastIntrospectionAuth returns how the last introspection request
// authenticated: "basic", "form" or "none".
func (i *Issuer) LastIntrospectionAuth() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.lastAuth
}

// Claims returns a typical RFC 9068 claim set: iss, sub, aud (omitted when
// empty), scope (omitted when empty), client_id, iat, exp one hour ahead,
// jti. Tests edit the map to make bad tokens.
func (i *Issuer) Claims(sub, aud, scope string) map[string]any {
	now := i.cfg.now()
	m := map[string]any{
		"iss":       i.issuer,
		"sub":       sub,
		"client_id": "test-client",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       randomHex(8),
	}
	if aud != "" {
		m["aud"] = aud
	}
	if scope != "" {
		m["scope"] = scope
	}
	return m
}

type mintConfig struct {
	alg       jose.SignatureAlgorithm
	kid       string  // signing key
	kidHeader *string // overrides the kid header ("" omits it)
	typ       *string
	headers   map[string]any
}

// MintOption adjusts one minted token.
type MintOption func(*mintConfig)

// Alg signs with alg: with the current key for alg, or, together with Key,
// with that key under another algorithm of its family (PS256 on an RSA key).
func Alg(a jose.SignatureAlgorithm) MintOption { return func(c *mintConfig) { c.alg = a } }

// WithKey signs with the key kid (published or withdrawn).
func WithKey(kid string) MintOption { return func(c *mintConfig) { c.kid = kid } }

// KID sets the kid header to v regardless of the signing key; "" omits it.
func KID(v string) MintOption { return func(c *mintConfig) { c.kidHeader = &v } }

// Typ sets the typ header (default "at+jwt"); "" omits it.
func Typ(v string) MintOption { return func(c *mintConfig) { c.typ = &v } }

// Header adds a protected header parameter.
func Header(name string, v any) MintOption {
	return func(c *mintConfig) {
		if c.headers == nil {
			c.headers = map[string]any{}
		}
		c.headers[name] = v
	}
}

// Mint signs claims as a compact JWS with typ at+jwt, by default with the
// RS256 key (or the first key when there is none).
func (i *Issuer) Mint(claims map[string]any, opts ...MintOption) string {
	i.tb.Helper()
	var mc mintConfig
	for _, o := range opts {
		o(&mc)
	}
	i.mu.Lock()
	var k *Key
	switch {
	case mc.kid != "":
		k = i.keys[mc.kid]
	case mc.alg != "":
		k = i.keys[i.current[mc.alg]]
	case i.current[jose.RS256] != "":
		k = i.keys[i.current[jose.RS256]]
	case len(i.published) > 0:
		k = i.keys[i.published[0]]
	}
	i.mu.Unlock()
	if k == nil {
		i.tb.Fatalf("providertest: no key to sign with (kid %q, alg %q)", mc.kid, mc.alg)
		return ""
	}
	if mc.alg == "" {
		mc.alg = k.Alg
	}
	kid := k.KID
	if mc.kidHeader != nil {
		kid = *mc.kidHeader
	}
	tok, err := sign(k.Private, kid, mc, claims)
	if err != nil {
		i.tb.Fatalf("providertest: minting: %v", err)
	}
	return tok
}

// Sign signs claims with any key go-jose accepts (a crypto.Signer, or
// []byte for HMAC), for tokens no honest issuer would mint: HS256 keyed
// with a public key, a key from nowhere. typ defaults to at+jwt.
func Sign(key any, alg jose.SignatureAlgorithm, claims map[string]any, opts ...MintOption) (string, error) {
	mc := mintConfig{alg: alg}
	for _, o := range opts {
		o(&mc)
	}
	kid := ""
	if mc.kidHeader != nil {
		kid = *mc.kidHeader
	}
	return sign(key, kid, mc, claims)
}

func sign(key any, kid string, mc mintConfig, claims map[string]any) (string, error) {
	so := &jose.SignerOptions{}
	typ := "at+jwt"
	if mc.typ != nil {
		typ = *mc.typ
	}
	if typ != "" {
		so.WithType(jose.ContentType(typ))
	}
	for k, v := range mc.headers {
		so.WithHeader(jose.HeaderKey(k), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: mc.alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, so)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Unsigned builds an "alg": "none" style token from a header and claims
// with an empty signature; go-jose refuses to sign that, which is the
// point.
func Unsigned(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "."
}

// MintOpaque registers an opaque token whose introspection answer is resp
// plus "active": true (until revoked or past resp's exp), and returns it.
func (i *Issuer) MintOpaque(resp map[string]any) string {
	tok := randomToken()
	i.mu.Lock()
	defer i.mu.Unlock()
	i.opaque[tok] = maps.Clone(resp)
	return tok
}

// Revoke makes introspection answer inactive for tok.
func (i *Issuer) Revoke(tok string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.revoked[tok] = true
}

func (i *Issuer) serveIntrospection(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	method, id, secret := "none", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if id != "" {
		method = "form"
	}
	if u, p, ok := r.BasicAuth(); ok {
		method = "basic"
		// RFC 6749 §2.3.1: both parts are form-encoded inside Basic.
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
	}
	i.mu.Lock()
	i.lastAuth = method
	resp, known := i.opaque[r.PostForm.Get("token")]
	revoked := i.revoked[r.PostForm.Get("token")]
	i.mu.Unlock()
	if id != i.cfg.clientID || secret != i.cfg.secret {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]any{"error": "invalid_client"})
		return
	}
	if !known || revoked || expired(resp, i.cfg.now()) {
		writeJSON(w, map[string]any{"active": false})
		return
	}
	out := maps.Clone(resp)
	out["active"] = true
	writeJSON(w, out)
}

func expired(resp map[string]any, now time.Time) bool {
	var exp float64
	switch v := resp["exp"].(type) {
	case int64:
		exp = float64(v)
	case int:
		exp = float64(v)
	case float64:
		exp = v
	default:
		return false
	}
	return float64(now.Unix()) >= exp
}

func generate(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		return rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unsupported algorithm %s", alg)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
