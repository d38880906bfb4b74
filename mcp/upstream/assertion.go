package upstream

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/todo-gateway/todo-gateway/providers"
)

// The assertion: a JWT the gateway signs for each caller, which the
// upstream verifies with the keys published at JWKSPath, as Pomerium's
// X-Pomerium-Jwt-Assertion and Cloudflare Access's Cf-Access-Jwt-Assertion
// are verified. Its type is RFC 9068's at+jwt, so that an upstream that is
// itself an OAuth resource server (another gateway) takes it as an access
// token of the issuer "the gateway".
const (
	// JWKSPath is where the public listener serves the signing keys, on
	// every host the gateway answers.
	JWKSPath = "/.well-known/todo-gateway/jwks.json"
	// AssertionType is the JWT "typ" header.
	AssertionType = "at+jwt"
	// MaxAssertionLifetime bounds exp - iat; an assertion also never
	// outlives the client's token.
	MaxAssertionLifetime = 5 * time.Minute
	// reuseMargin: a cached assertion is sent only while it has at least
	// this long left, so that it does not expire on the way.
	reuseMargin = 30 * time.Second
	// maxCached bounds the assertions kept per signer.
	maxCached = 10000
)

// AssertionClaims are the claims of an assertion.
type AssertionClaims struct {
	Issuer   string           `json:"iss"`
	Audience jwt.Audience     `json:"aud"`
	Subject  string           `json:"sub"`
	ClientID string           `json:"client_id,omitempty"`
	Tenant   string           `json:"tenant"`
	Scope    string           `json:"scope,omitempty"` // the permissions granted, space-separated
	IssuedAt *jwt.NumericDate `json:"iat"`
	Expiry   *jwt.NumericDate `json:"exp"`
	ID       string           `json:"jti"`
}

// Signer signs assertions with the first of its keys and publishes all of
// them, so that a key being rotated out still verifies what it signed.
type Signer struct {
	signer jose.Signer
	jwks   []byte
	now    func() time.Time
	// sessionKey binds upstream session ids to callers (session.go): a
	// hash of the signing key, so that every instance given the same key
	// files binds alike.
	sessionKey []byte

	mu    sync.Mutex
	cache map[string]cachedAssertion
}

type cachedAssertion struct {
	jwt string
	exp time.Time
}

// NewSigner makes a signer of keys (P-256 ECDSA for ES256, or Ed25519 for
// EdDSA); the first signs. now is the clock (nil: time.Now).
func NewSigner(now func() time.Time, keys ...crypto.Signer) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no signing key")
	}
	if now == nil {
		now = time.Now
	}
	var set jose.JSONWebKeySet
	var first jose.SigningKey
	for i, k := range keys {
		alg, err := algorithmOf(k)
		if err != nil {
			return nil, fmt.Errorf("signing key %d: %w", i+1, err)
		}
		pub := jose.JSONWebKey{Key: k.Public(), Algorithm: string(alg), Use: "sig"}
		thumb, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("signing key %d: %w", i+1, err)
		}
		pub.KeyID = fmt.Sprintf("%x", thumb[:12])
		set.Keys = append(set.Keys, pub)
		if i == 0 {
			first = jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k, KeyID: pub.KeyID}}
		}
	}
	js, err := jose.NewSigner(first, (&jose.SignerOptions{}).WithType(AssertionType))
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(keys[0])
	if err != nil {
		return nil, fmt.Errorf("signing key 1: %w", err)
	}
	sk := sha256.Sum256(append([]byte("todo-gateway upstream session binding\x00"), der...))
	return &Signer{signer: js, jwks: jwks, now: now, sessionKey: sk[:], cache: make(map[string]cachedAssertion)}, nil
}

func algorithmOf(k crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch pub := k.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", errors.New("an ECDSA key must be on P-256 (ES256)")
		}
		return jose.ES256, nil
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	}
	return "", errors.New("the key must be ECDSA P-256 (ES256) or Ed25519 (EdDSA)")
}

// JWKS is the public key set, as served at JWKSPath.
func (s *Signer) JWKS() []byte { return s.jwks }

// Assertion returns the assertion for p calling the upstream aud through
// the tenant, from the cache while it has reuseMargin left: iss is the
// gateway's URL for the tenant, granted the tenant's permissions p holds.
func (s *Signer) Assertion(iss, aud, tenant string, p *providers.Principal, granted []providers.Permission) (string, error) {
	scope := make([]string, len(granted))
	for i, g := range granted {
		scope[i] = string(g)
	}
	c := AssertionClaims{Issuer: iss, Audience: jwt.Audience{aud}, Subject: p.Subject, ClientID: p.ClientID,
		Tenant: tenant, Scope: strings.Join(scope, " ")}
	key := strings.Join([]string{c.Issuer, aud, c.Tenant, p.Issuer, c.Subject, c.ClientID, c.Scope}, "\x00")
	now := s.now()
	exp := now.Add(MaxAssertionLifetime)
	if !p.Expiry.IsZero() && p.Expiry.Before(exp) {
		exp = p.Expiry
	}
	if !exp.After(now) {
		return "", errors.New("the caller's token has expired")
	}
	s.mu.Lock()
	// A cached assertion serves while it has reuseMargin left and does not
	// outlive this token of the caller's (the same caller may come back
	// with a token that ends sooner).
	if a, ok := s.cache[key]; ok && now.Add(reuseMargin).Before(a.exp) && !a.exp.After(exp) {
		s.mu.Unlock()
		return a.jwt, nil
	}
	s.mu.Unlock()
	c.IssuedAt, c.Expiry = jwt.NewNumericDate(now), jwt.NewNumericDate(exp)
	c.ID = rand.Text()
	signed, err := jwt.Signed(s.signer).Claims(c).Serialize()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if len(s.cache) >= maxCached {
		for k, a := range s.cache {
			if !now.Before(a.exp) {
				delete(s.cache, k)
			}
		}
		if len(s.cache) >= maxCached {
			clear(s.cache)
		}
	}
	s.cache[key] = cachedAssertion{jwt: signed, exp: exp}
	s.mu.Unlock()
	return signed, nil
}

// GenerateKey makes a new P-256 key: the signing key of a gateway given no
// key file, good for one instance until it stops.
func GenerateKey() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// LoadKeyFile reads a PEM private key: PKCS #8 ("PRIVATE KEY", P-256 or
// Ed25519) or SEC 1 ("EC PRIVATE KEY", P-256).
func LoadKeyFile(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: a %q PEM block; want PRIVATE KEY (PKCS #8) or EC PRIVATE KEY", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	if _, err := algorithmOf(s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
