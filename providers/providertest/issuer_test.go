package providertest_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

func get(t *testing.T, iss *providertest.Issuer, u string) (int, map[string]any) {
	t.Helper()
	resp, err := iss.Client().Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func TestListensOnLoopbackOnly(t *testing.T) {
	iss := providertest.New(t, providertest.WithKeys(jose.ES256))
	u, _ := url.Parse(iss.URL())
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		t.Fatalf("got host %q, want a loopback address", u.Hostname())
	}
}

func TestMetadataLocations(t *testing.T) {
	tests := []struct {
		path string
		doc  providertest.Endpoint
		want string // path part of the document URL
	}{
		{"/oidc", providertest.OpenIDAppended, "/oidc/.well-known/openid-configuration"},
		{"/oidc", providertest.OpenIDInserted, "/.well-known/openid-configuration/oidc"},
		{"/oidc", providertest.OAuthInserted, "/.well-known/oauth-authorization-server/oidc"},
		{"/oidc", providertest.OAuthAppended, "/oidc/.well-known/oauth-authorization-server"},
		{"/", providertest.OpenIDAppended, "/.well-known/openid-configuration"},
		{"", providertest.OAuthInserted, "/.well-known/oauth-authorization-server"},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+string(tt.doc), func(t *testing.T) {
			iss := providertest.New(t, providertest.WithPath(tt.path), providertest.WithDiscovery(tt.doc), providertest.WithKeys(jose.ES256))
			u := iss.MetadataURL(tt.doc)
			if got := strings.TrimPrefix(u, iss.URL()); got != tt.want {
				t.Fatalf("got path %q, want %q", got, tt.want)
			}
			status, m := get(t, iss, u)
			if status != 200 || m["issuer"] != iss.Issuer() {
				t.Fatalf("got %d with issuer %v, want 200 with %q", status, m["issuer"], iss.Issuer())
			}
			if m["jwks_uri"] != iss.JWKSURL() {
				t.Fatalf("got jwks_uri %v, want %q", m["jwks_uri"], iss.JWKSURL())
			}
			if got := iss.Hits(tt.doc); got != 1 {
				t.Fatalf("got %d hits, want 1", got)
			}
		})
	}
}

func TestUnservedDocumentIs404(t *testing.T) {
	iss := providertest.New(t, providertest.WithPath("/oidc"), providertest.WithDiscovery(providertest.OpenIDAppended), providertest.WithKeys(jose.ES256))
	if status, _ := get(t, iss, iss.MetadataURL(providertest.OAuthInserted)); status != 404 {
		t.Fatalf("got %d, want 404", status)
	}
}

func TestJWKSAndRotation(t *testing.T) {
	iss := providertest.New(t)
	_, m := get(t, iss, iss.JWKSURL())
	keys := m["keys"].([]any)
	var algs []string
	for _, k := range keys {
		algs = append(algs, k.(map[string]any)["alg"].(string))
	}
	slices.Sort(algs)
	if want := []string{"ES256", "ES384", "EdDSA", "RS256"}; !slices.Equal(algs, want) {
		t.Fatalf("got algs %q, want %q", algs, want)
	}
	newKID, oldKID := iss.Rotate(jose.ES256)
	if ids := iss.PublishedKeyIDs(); !slices.Contains(ids, newKID) || slices.Contains(ids, oldKID) {
		t.Fatalf("got published %q, want %q in and %q out", ids, newKID, oldKID)
	}
	if iss.Key(oldKID) == nil {
		t.Fatal("got no withdrawn key, want it kept for minting")
	}
}

func TestMintHeaders(t *testing.T) {
	iss := providertest.New(t, providertest.WithKeys(jose.ES384))
	tok := iss.Mint(iss.Claims("u", "aud", "s"), providertest.Typ("JWT"), providertest.Header("x-test", "1"))
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES384})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	if h.KeyID != iss.KeyID(jose.ES384) || h.ExtraHeaders["typ"] != "JWT" || h.ExtraHeaders["x-test"] != "1" {
		t.Fatalf("got header %+v, want kid, typ JWT and x-test", h)
	}
	if _, err := jws.Verify(iss.Key(h.KeyID).Public()); err != nil {
		t.Fatalf("got %v, want a signature that verifies", err)
	}
	noKID := iss.Mint(iss.Claims("u", "aud", ""), providertest.KID(""), providertest.Typ(""))
	jws, _ = jose.ParseSignedCompact(noKID, []jose.SignatureAlgorithm{jose.ES384})
	if h := jws.Signatures[0].Header; h.KeyID != "" || h.ExtraHeaders["typ"] != nil {
		t.Fatalf("got header %+v, want neither kid nor typ", h)
	}
}

func TestIntrospectionEndpoint(t *testing.T) {
	iss := providertest.New(t, providertest.WithKeys(jose.ES256))
	tok := iss.MintOpaque(map[string]any{"sub": "u", "scope": "read:todos"})
	post := func(form url.Values, basic bool, id, secret string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, iss.IntrospectionURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(id, secret)
		}
		resp, err := iss.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if status, m := post(url.Values{"token": {tok}}, true, "gateway", "gateway-secret"); status != 200 || m["active"] != true || m["sub"] != "u" {
		t.Fatalf("got %d %v, want an active answer", status, m)
	}
	if got := iss.LastIntrospectionAuth(); got != "basic" {
		t.Fatalf("got auth %q, want basic", got)
	}
	if status, m := post(url.Values{"token": {tok}, "client_id": {"gateway"}, "client_secret": {"gateway-secret"}}, false, "", ""); status != 200 || m["active"] != true {
		t.Fatalf("got %d %v with form auth, want active", status, m)
	}
	if status, _ := post(url.Values{"token": {tok}}, true, "gateway", "wrong"); status != 401 {
		t.Fatalf("got %d with a wrong secret, want 401", status)
	}
	iss.Revoke(tok)
	if _, m := post(url.Values{"token": {tok}}, true, "gateway", "gateway-secret"); m["active"] != false {
		t.Fatalf("got %v after revocation, want inactive", m)
	}
}

func TestOutageAndStatus(t *testing.T) {
	iss := providertest.New(t, providertest.WithKeys(jose.ES256))
	iss.SetDown(true)
	if _, err := iss.Client().Get(iss.JWKSURL()); err == nil {
		t.Fatal("got an answer while down, want a dropped connection")
	}
	iss.SetDown(false)
	iss.SetStatus(providertest.JWKS, 503)
	if status, _ := get(t, iss, iss.JWKSURL()); status != 503 {
		t.Fatalf("got %d, want 503", status)
	}
	iss.SetStatus(providertest.JWKS, 0)
	if status, _ := get(t, iss, iss.JWKSURL()); status != 200 {
		t.Fatalf("got %d, want 200", status)
	}
	if got := iss.Hits(providertest.JWKS); got < 3 {
		t.Fatalf("got %d hits, want every attempt counted", got)
	}
}
