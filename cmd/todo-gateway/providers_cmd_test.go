package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// providerShapes are three issuers shaped like the example tenants'
// providers:
//
//   - logto: under /oidc, ES384 keys, only the OpenID document (Logto serves
//     no RFC 8414 one), no registration endpoint nor client ID metadata
//     documents, and scopes_supported without the API scopes (Logto lists
//     only OpenID scopes there);
//   - oidc: a generic OpenID provider with RS256 keys;
//   - oauth: a pure OAuth server with only the RFC 8414 document, ES256
//     keys, introspection and namespaced scopes.
type providerShapes struct {
	logto, oidc, oauth *providertest.Issuer
}

func newProviderShapes(t *testing.T) providerShapes {
	t.Helper()
	ps := providerShapes{
		logto: providertest.New(t, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES384),
			providertest.WithDiscovery(providertest.OpenIDAppended),
			providertest.WithScopes("openid", "offline_access", "profile", "email")),
		oidc: providertest.New(t, providertest.WithKeys(jose.RS256)),
		oauth: providertest.New(t, providertest.WithKeys(jose.ES256),
			providertest.WithDiscovery(providertest.OAuthInserted),
			providertest.WithScopes("todo-api:create", "todo-api:read", "todo-api:delete")),
	}
	ps.logto.SetMetadata(func(_ providertest.Endpoint, m map[string]any) {
		delete(m, "registration_endpoint")
		delete(m, "client_id_metadata_document_supported")
	})
	return ps
}

// config writes a configuration with the three example tenants (acme,
// globex, initech) pointing at the shapes; extra tenants may be appended.
func (ps providerShapes) config(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "initech-secret")
	if err := os.WriteFile(secret, []byte("gateway-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := []string{
		fmt.Sprintf(`{"id": "acme", "resource": "http://localhost:3001/acme",
			"provider": {"type": "logto", "issuer": %q},
			"audience": {"strategy": "resource"}}`, ps.logto.Issuer()),
		fmt.Sprintf(`{"id": "globex", "resource": "http://localhost:3001/globex",
			"provider": {"type": "oidc", "issuer": %q, "jwt_types": ["at+jwt"]},
			"audience": {"strategy": "audience", "values": ["todo-api"]},
			"claims": {"scopes": ["permissions", "scope"]}}`, ps.oidc.Issuer()),
		fmt.Sprintf(`{"id": "initech", "resource": "http://localhost:3001/initech",
			"provider": {"type": "oauth", "issuer": %q, "token": "introspection",
				"introspection": {"client_id": "gateway", "client_secret_file": %q}},
			"audience": {"strategy": "scope", "prefix": "todo-api:"}}`, ps.oauth.Issuer(), secret),
	}
	path := filepath.Join(dir, "tenants.json")
	doc := `{"tenants": [` + strings.Join(append(ts, extra...), ",\n") + `]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runProvidersJSON(t *testing.T, args ...string) (code int, out provDocJSON, raw string) {
	t.Helper()
	code, stdout, stderr := runCLI(append([]string{"providers", "--format", "json"}, args...)...)
	if stderr != "" {
		t.Errorf("stderr got %q, want nothing", stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("decoding the JSON output: %v\n%s", err, stdout)
	}
	return code, out, stdout
}

func rules(vs []providers.Verdict) []string {
	var out []string
	for _, v := range vs {
		out = append(out, string(v.Severity)+" "+v.Rule)
	}
	return out
}

// jsonFields lists the member names of a JSON document as paths
// ("tenants[].probe.jwks.keys[].kid"), each once, sorted.
func jsonFields(t *testing.T, raw string) []string {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				p := strings.TrimPrefix(path+"."+k, ".")
				seen[p] = true
				walk(p, e)
			}
		case []any:
			for _, e := range v {
				walk(path+"[]", e)
			}
		}
	}
	walk("", doc)
	return slices.Sorted(maps.Keys(seen))
}

// providersJSONFields are the field names the JSON output promises to keep
// (as the three shapes use them: jwks.error appears only when the JWKS
// cannot be read). A renamed, new or dropped field must be a decision.
var providersJSONFields = []string{
	"ok", "tenants",
	"tenants[].audience", "tenants[].audience.prefix", "tenants[].audience.strategy", "tenants[].audience.values",
	"tenants[].issuer", "tenants[].probe",
	"tenants[].probe.allowed_algs", "tenants[].probe.client_id_metadata_document", "tenants[].probe.code_challenge_methods",
	"tenants[].probe.discovery", "tenants[].probe.discovery[].document", "tenants[].probe.discovery[].error",
	"tenants[].probe.discovery[].issuer", "tenants[].probe.discovery[].status", "tenants[].probe.discovery[].url",
	"tenants[].probe.discovery[].used", "tenants[].probe.duration_ms", "tenants[].probe.dynamic_registration",
	"tenants[].probe.endpoints", "tenants[].probe.endpoints.authorization", "tenants[].probe.endpoints.introspection",
	"tenants[].probe.endpoints.jwks", "tenants[].probe.endpoints.registration", "tenants[].probe.endpoints.revocation",
	"tenants[].probe.endpoints.token", "tenants[].probe.endpoints.userinfo",
	"tenants[].probe.grant_types", "tenants[].probe.introspection_auth_methods",
	"tenants[].probe.introspection_probe", "tenants[].probe.introspection_probe.inactive", "tenants[].probe.introspection_probe.method",
	"tenants[].probe.introspection_probe.status", "tenants[].probe.introspection_probe.url", "tenants[].probe.issuer_match",
	"tenants[].probe.jwks", "tenants[].probe.jwks.keys", "tenants[].probe.jwks.keys[].alg", "tenants[].probe.jwks.keys[].bits",
	"tenants[].probe.jwks.keys[].crv", "tenants[].probe.jwks.keys[].kid", "tenants[].probe.jwks.keys[].kty",
	"tenants[].probe.jwks.keys[].usable", "tenants[].probe.jwks.keys[].use", "tenants[].probe.jwks.url",
	"tenants[].probe.metadata_url", "tenants[].probe.missing_scopes", "tenants[].probe.pkce_s256",
	"tenants[].probe.response_types", "tenants[].probe.scopes_supported", "tenants[].probe.signing_algs", "tenants[].probe.software",
	"tenants[].probe.tenant_scopes", "tenants[].probe.token_endpoint_auth_methods",
	"tenants[].status", "tenants[].tenant", "tenants[].token_mode", "tenants[].type",
	"tenants[].verdicts", "tenants[].verdicts[].message", "tenants[].verdicts[].rule", "tenants[].verdicts[].severity",
}

func TestProvidersJSONThreeShapes(t *testing.T) {
	ps := newProviderShapes(t)
	code, out, raw := runProvidersJSON(t, "--config", ps.config(t))
	if code != 0 || !out.OK {
		t.Fatalf("got exit %d ok %v, want 0 and true (warnings only)\n%s", code, out.OK, raw)
	}
	if len(out.Tenants) != 3 {
		t.Fatalf("got %d tenants, want 3", len(out.Tenants))
	}
	type want struct {
		id, typ, token, strategy, status string
		docs                             []string // documents that answered: kind and URL
		keyAlgs                          []string
		pkce, dcr, cimd, introspection   bool
		missing                          []string
		rules                            []string
	}
	wants := []want{
		{id: "acme", typ: "logto", token: "jwt", strategy: "resource", status: "warning",
			docs: []string{"openid " + ps.logto.MetadataURL(providertest.OpenIDAppended)}, keyAlgs: []string{"ES384"},
			pkce: true, introspection: true, missing: []string{"create:todos", "read:todos", "delete:todos"},
			rules: []string{"warning " + providers.RuleClientRegistration, "info " + providers.RuleScopesMissing}},
		{id: "globex", typ: "oidc", token: "jwt", strategy: "audience", status: "ok",
			// A root issuer: the inserted and appended OpenID forms coincide.
			docs:    []string{"openid " + ps.oidc.MetadataURL(providertest.OpenIDAppended), "rfc8414 " + ps.oidc.MetadataURL(providertest.OAuthInserted)},
			keyAlgs: []string{"RS256"}, pkce: true, dcr: true, cimd: true, introspection: true, missing: []string{}},
		{id: "initech", typ: "oauth", token: "introspection", strategy: "scope", status: "ok",
			docs:    []string{"rfc8414 " + ps.oauth.MetadataURL(providertest.OAuthInserted)},
			keyAlgs: []string{"ES256"}, pkce: true, dcr: true, cimd: true, introspection: true, missing: []string{},
			rules: []string{"info " + providers.RuleIntrospectionProbe}},
	}
	for i, w := range wants {
		got := out.Tenants[i]
		t.Run(w.id, func(t *testing.T) {
			if got.Tenant != w.id || got.Type != w.typ || got.TokenMode != w.token || string(got.Audience.Strategy) != w.strategy {
				t.Errorf("got tenant %q type %q token %q strategy %q, want %q %q %q %q",
					got.Tenant, got.Type, got.TokenMode, got.Audience.Strategy, w.id, w.typ, w.token, w.strategy)
			}
			if got.Status != w.status {
				t.Errorf("got status %q, want %q (verdicts %q)", got.Status, w.status, rules(got.Verdicts))
			}
			if g := rules(got.Verdicts); !slices.Equal(g, w.rules) {
				t.Errorf("got verdicts %q, want %q", g, w.rules)
			}
			p := got.Probe
			if p == nil {
				t.Fatal("got no probe, want one")
			}
			var docs []string
			for _, d := range p.Discovery {
				if d.Status == 200 && d.Error == "" {
					docs = append(docs, d.Document+" "+d.URL)
					if !d.Used && d.URL == p.MetadataURL {
						t.Errorf("got document %s not marked used, want used", d.URL)
					}
				}
			}
			if !slices.Equal(docs, w.docs) {
				t.Errorf("got documents %q, want %q", docs, w.docs)
			}
			if !p.IssuerMatch || p.MetadataURL == "" {
				t.Errorf("got issuer match %v metadata %q, want a match", p.IssuerMatch, p.MetadataURL)
			}
			var algs []string
			for _, k := range p.JWKS.Keys {
				if !k.Usable || k.KID == "" || k.Use != "sig" {
					t.Errorf("got key %+v, want a usable signing key with a kid", k)
				}
				algs = append(algs, k.Alg)
			}
			if !slices.Equal(algs, w.keyAlgs) {
				t.Errorf("got key algorithms %q, want %q", algs, w.keyAlgs)
			}
			if p.PKCES256 != w.pkce || p.DynamicRegistration != w.dcr || p.ClientIDMetadataDocument != w.cimd {
				t.Errorf("got PKCE %v DCR %v CIMD %v, want %v %v %v", p.PKCES256, p.DynamicRegistration, p.ClientIDMetadataDocument, w.pkce, w.dcr, w.cimd)
			}
			if (p.Endpoints.Introspection != "") != w.introspection || p.Endpoints.Revocation == "" {
				t.Errorf("got introspection %q revocation %q, want introspection %v and a revocation endpoint",
					p.Endpoints.Introspection, p.Endpoints.Revocation, w.introspection)
			}
			if !slices.Contains(p.GrantTypes, "authorization_code") {
				t.Errorf("got grant types %q, want authorization_code among them", p.GrantTypes)
			}
			if !slices.Equal(p.MissingScopes, w.missing) {
				t.Errorf("got missing scopes %q, want %q", p.MissingScopes, w.missing)
			}
		})
	}
	if got := jsonFields(t, raw); !slices.Equal(got, providersJSONFields) {
		t.Errorf("got JSON fields\n%q\nwant\n%q", got, providersJSONFields)
	}
	// Lists are [] rather than null, so consumers need no null checks.
	if strings.Contains(raw, "null") {
		t.Errorf("got a null in the JSON output, want [] for empty lists:\n%s", raw)
	}
}

// tableLine finds the line of out that starts with label (after the
// header) and returns its fields split on runs of two or more spaces.
func tableLine(t *testing.T, out, label string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, label+"  ") || l == label {
			return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(l), -1)
		}
	}
	t.Fatalf("no line %q in\n%s", label, out)
	return nil
}

func TestProvidersTableThreeShapes(t *testing.T) {
	ps := newProviderShapes(t)
	code, out, stderr := runCLI("providers", "--config", ps.config(t))
	if code != 0 || stderr != "" {
		t.Fatalf("got exit %d stderr %q, want 0 and nothing", code, stderr)
	}
	t.Logf("sample table output:\n%s", out)
	tests := []struct {
		label string
		want  []string
	}{
		{"tenant", []string{"tenant", "acme", "globex", "initech"}},
		{"type", []string{"type", "logto", "oidc", "oauth"}},
		{"token, audience", []string{"token, audience", "jwt, resource", "jwt, audience todo-api", "introspection, scope todo-api:"}},
		{"issuer match", []string{"issuer match", "yes", "yes", "yes"}},
		{"JWKS", []string{"JWKS", "1 key: ES384", "1 key: RS256", "1 key: ES256"}},
		{"PKCE S256", []string{"PKCE S256", "yes", "yes", "yes"}},
		{"dynamic registration", []string{"dynamic registration", "no", "yes", "yes"}},
		{"client ID metadata", []string{"client ID metadata", "no", "yes", "yes"}},
		{"introspection", []string{"introspection", "/oidc/token/introspection", "/token/introspection", "/token/introspection"}},
		{"todo scopes", []string{"todo scopes", "none listed: create:todos read:todos", "all listed: create:todos read:todos", "all listed: todo-api:create"}},
		{"verdict", []string{"verdict", "ok, 1 warning", "ok", "ok"}},
	}
	for _, tc := range tests {
		if got := tableLine(t, out, tc.label); !slices.Equal(got, tc.want) {
			t.Errorf("line %q: got %q, want %q", tc.label, got, tc.want)
		}
	}
	// Each document: its standard on one line, its path on the next.
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "discovery  ") {
			got := [][]string{tableLine(t, l, "discovery"), regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(lines[i+1]), -1)}
			want := [][]string{
				{"discovery", "OpenID:", "OpenID:", "RFC 8414:"},
				{"/oidc/.well-known/openid-configuration", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"},
			}
			if !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
				t.Errorf("discovery lines: got %q, want %q", got, want)
			}
		}
	}
	// Columns are aligned: each tenant's column starts at the same offset
	// on every line.
	header := strings.Split(out, "\n")[0]
	col := strings.Index(header, "globex")
	for _, label := range []string{"type", "PKCE S256", "verdict"} {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, label+"  ") && (len(l) <= col || l[col-1] != ' ' || l[col] == ' ') {
				t.Errorf("line %q: want the globex column at offset %d", l, col)
			}
		}
	}
	// Long values wrap inside their column instead of widening it.
	for _, l := range strings.Split(out, "\n") {
		if n := len(l); n > len("dynamic registration")+3*(2+40) {
			t.Errorf("line of %d characters %q, want columns at most 40 wide", n, l)
		}
	}
	if !strings.Contains(out, "warning: no dynamic client registration") || !strings.Contains(out, "info: scopes_supported lacks") ||
		!strings.HasSuffix(out, "\nall 3 tenants can work\n") {
		t.Errorf("got\n%s\nwant the acme warnings and a closing summary", out)
	}
}

func TestProvidersMarkdown(t *testing.T) {
	ps := newProviderShapes(t)
	code, out, _ := runCLI("providers", "--config", ps.config(t), "--format", "markdown")
	if code != 0 {
		t.Fatalf("got exit %d, want 0", code)
	}
	lines := strings.Split(out, "\n")
	for i, want := range []string{"| | **acme** | **globex** | **initech** |", "|---|---|---|---|", "| type | logto | oidc | oauth |"} {
		if lines[i] != want {
			t.Errorf("line %d: got %q, want %q", i, lines[i], want)
		}
	}
	for _, want := range []string{
		"| PKCE S256 | yes | yes | yes |",
		"| dynamic registration | no | yes | yes |",
		"| discovery | OpenID:<br>/oidc/.well-known/openid-configuration | OpenID:<br>/.well-known/openid-configuration<br>RFC 8414:<br>/.well-known/oauth-authorization-server |",
		"| verdict | ok, 1 warning<br>warning: no dynamic client registration",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant a line containing %q", out, want)
		}
	}
	for _, l := range lines {
		if l != "" && strings.Count(strings.ReplaceAll(l, `\|`, ""), "|") != 5 {
			t.Errorf("line %q: want 4 cells", l)
		}
	}
}

func TestProvidersErrorVerdictExits1(t *testing.T) {
	ps := newProviderShapes(t)
	ps.oauth.SetMetadata(func(_ providertest.Endpoint, m map[string]any) {
		delete(m, "introspection_endpoint")
		delete(m, "code_challenge_methods_supported")
	})
	code, out, _ := runProvidersJSON(t, "--config", ps.config(t))
	if code != 1 || out.OK {
		t.Fatalf("got exit %d ok %v, want 1 and false", code, out.OK)
	}
	initech := out.Tenants[2]
	if want := []string{"error " + providers.RuleIntrospectionMissing, "warning " + providers.RulePKCE}; initech.Status != "error" || !slices.Equal(rules(initech.Verdicts), want) {
		t.Errorf("got status %q verdicts %q, want error and %q", initech.Status, rules(initech.Verdicts), want)
	}
	if out.Tenants[1].Status != "ok" {
		t.Errorf("got globex status %q, want ok: one tenant's trouble is not another's", out.Tenants[1].Status)
	}

	code, table, _ := runCLI("providers", "--config", ps.config(t))
	if got := tableLine(t, table, "verdict"); code != 1 || got[3] != "CANNOT WORK: 1 error, 1 warning" {
		t.Errorf("got exit %d verdict line %q, want 1 and initech CANNOT WORK", code, got)
	}
	if !strings.HasSuffix(table, "\n1 of 3 tenants cannot work: initech\n") {
		t.Errorf("got\n%s\nwant the summary naming initech", table)
	}
}

// TestProvidersVerdictsEndToEnd runs single-tenant configurations through
// the whole command: the rules see what a real probe reports, and the exit
// status follows the worst verdict.
func TestProvidersVerdictsEndToEnd(t *testing.T) {
	tests := []struct {
		name     string
		issuer   []providertest.Option
		edit     func(iss *providertest.Issuer)
		provider string // extra members of the provider block
		issuerOf func(iss *providertest.Issuer) string
		code     int
		want     []string
	}{
		{name: "Keycloak-shaped issuer with the resource strategy",
			issuer: []providertest.Option{providertest.WithPath("/realms/acme"), providertest.WithKeys(jose.RS256)},
			code:   0, want: []string{"warning " + providers.RuleResourceIndicators}},
		{name: "trailing slash the server does not write",
			issuerOf: func(iss *providertest.Issuer) string { return iss.Issuer() + "/" },
			code:     1, want: []string{"error " + providers.RuleIssuerMismatch}},
		{name: "allow-list without the provider's algorithm",
			issuer:   []providertest.Option{providertest.WithKeys(jose.ES384)},
			provider: `, "algorithms": ["RS256"]`,
			code:     1, want: []string{"error " + providers.RuleAlgorithmsNoKey}},
		{name: "allow-list wider than the keys",
			issuer:   []providertest.Option{providertest.WithKeys(jose.ES384)},
			provider: `, "algorithms": ["ES384", "RS256"]`,
			code:     0, want: []string{"warning " + providers.RuleAlgorithmsUnused}},
		{name: "JWKS failing",
			edit: func(iss *providertest.Issuer) { iss.SetStatus(providertest.JWKS, 500) },
			code: 1, want: []string{"error " + providers.RuleJWKSUnreachable}},
		{name: "JWKS of encryption keys only",
			edit: func(iss *providertest.Issuer) {
				iss.SetJWKS(func(set *jose.JSONWebKeySet) {
					for i := range set.Keys {
						set.Keys[i].Use = "enc"
					}
				})
			},
			code: 1, want: []string{"error " + providers.RuleJWKSNoUsableKeys}},
		{name: "no jwks_uri with jwt tokens",
			edit: func(iss *providertest.Issuer) {
				iss.SetMetadata(func(_ providertest.Endpoint, m map[string]any) { delete(m, "jwks_uri") })
			},
			code: 1, want: []string{"error " + providers.RuleJWKSMissing}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := providertest.New(t, tc.issuer...)
			if tc.edit != nil {
				tc.edit(iss)
			}
			issuer := iss.Issuer()
			if tc.issuerOf != nil {
				issuer = tc.issuerOf(iss)
			}
			path := writeFile(t, fmt.Sprintf(`{"tenants": [{"id": "t", "resource": "http://localhost:3001/t",
				"provider": {"type": "oidc", "issuer": %q%s}, "audience": {"strategy": "resource"}}]}`, issuer, tc.provider))
			code, out, raw := runProvidersJSON(t, "--config", path)
			if got := rules(out.Tenants[0].Verdicts); code != tc.code || !slices.Equal(got, tc.want) {
				t.Errorf("got exit %d verdicts %q, want %d and %q\n%s", code, got, tc.code, tc.want, raw)
			}
		})
	}
}

func TestProvidersUnreachableIssuerIsBounded(t *testing.T) {
	ps := newProviderShapes(t)
	dead := providertest.New(t, providertest.WithKeys(jose.ES256))
	dead.SetDown(true) // drops every connection
	hanging := providertest.New(t, providertest.WithKeys(jose.ES256))
	hanging.SetDelay(time.Hour) // never answers
	path := ps.config(t,
		fmt.Sprintf(`{"id": "dead", "resource": "http://localhost:3001/dead",
			"provider": {"type": "oidc", "issuer": %q}, "audience": {"strategy": "resource"}}`, dead.Issuer()),
		fmt.Sprintf(`{"id": "hanging", "resource": "http://localhost:3001/hanging",
			"provider": {"type": "oidc", "issuer": %q}, "audience": {"strategy": "resource"}}`, hanging.Issuer()))
	start := time.Now()
	code, out, raw := runProvidersJSON(t, "--config", path, "--timeout", "500ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("got %v for a run with a hanging issuer, want it bounded by --timeout 500ms", d)
	}
	if code != 1 || out.OK {
		t.Fatalf("got exit %d ok %v, want 1 and false\n%s", code, out.OK, raw)
	}
	for _, tn := range out.Tenants[3:] {
		if want := []string{"error " + providers.RuleDiscovery}; !slices.Equal(rules(tn.Verdicts), want) {
			t.Errorf("%s: got verdicts %q, want %q", tn.Tenant, rules(tn.Verdicts), want)
		}
		if tn.Probe == nil || len(tn.Probe.Discovery) == 0 || tn.Probe.Discovery[0].Status != 0 {
			t.Errorf("%s: got probe %+v, want discovery attempts without an HTTP status", tn.Tenant, tn.Probe)
		}
	}
	for _, tn := range out.Tenants[:3] {
		if tn.Status == "error" {
			t.Errorf("%s: got status error, want the reachable tenants unaffected", tn.Tenant)
		}
	}
}

func TestProvidersBoundedConcurrency(t *testing.T) {
	// Four hanging issuers, two at a time, 400ms each: two rounds, about
	// 800ms. All at once would take 400ms, one at a time 1.6s. The lower
	// bound is the property (never more than --parallel probes); the upper
	// one, generous, shows the probes do overlap.
	var extra []string
	for i := range 4 {
		iss := providertest.New(t, providertest.WithPath("/oidc"), providertest.WithKeys(jose.ES256))
		iss.SetDelay(time.Hour)
		extra = append(extra, fmt.Sprintf(`{"id": "slow%d", "resource": "http://localhost:3001/slow%d",
			"provider": {"type": "logto", "issuer": %q}, "audience": {"strategy": "resource"}}`, i, i, iss.Issuer()))
	}
	path := writeFile(t, `{"tenants": [`+strings.Join(extra, ",")+`]}`)
	start := time.Now()
	code, _, _ := runCLI("providers", "--config", path, "--timeout", "400ms", "--parallel", "2")
	d := time.Since(start)
	if code != 1 || d < 780*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("got exit %d after %v, want 1 after about 800ms (two rounds of two)", code, d)
	}
}

func TestProvidersTenantFilter(t *testing.T) {
	ps := newProviderShapes(t)
	path := ps.config(t)
	code, out, _ := runProvidersJSON(t, "--config", path, "--tenant", "globex")
	if code != 0 || len(out.Tenants) != 1 || out.Tenants[0].Tenant != "globex" {
		t.Errorf("got exit %d tenants %+v, want 0 and globex alone", code, out.Tenants)
	}
	if n := ps.logto.MetadataHits() + ps.oauth.MetadataHits(); n != 0 {
		t.Errorf("got %d requests to the other tenants' issuers, want none", n)
	}
	code, stdout, stderr := runCLI("providers", "--config", path, "--tenant", "umbrella")
	if want := `no tenant "umbrella" in ` + path + ` (tenants: acme, globex, initech)`; code != 2 || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("got exit %d stdout %q stderr %q, want 2, nothing, %q", code, stdout, stderr, want)
	}
}

func TestProvidersMissingSecret(t *testing.T) {
	// A variable name no environment has: the command reads the real
	// environment, as serve does.
	name := fmt.Sprintf("TODO_GATEWAY_TEST_UNSET_%d", time.Now().UnixNano())
	iss := providertest.New(t, providertest.WithDiscovery(providertest.OAuthInserted))
	path := writeFile(t, fmt.Sprintf(`{"tenants": [{"id": "initech", "resource": "http://localhost:3001/initech",
		"provider": {"type": "oauth", "issuer": %q, "token": "introspection",
			"introspection": {"client_id": "gateway", "client_secret_env": %q}},
		"audience": {"strategy": "scope", "prefix": "todo-api:"}}]}`, iss.Issuer(), name))
	code, out, _ := runProvidersJSON(t, "--config", path)
	if code != 1 {
		t.Errorf("got exit %d, want 1", code)
	}
	tn := out.Tenants[0]
	if len(tn.Verdicts) == 0 || tn.Verdicts[0].Rule != ruleVerifierSetup || !strings.Contains(tn.Verdicts[0].Message, name+" is not set") {
		t.Errorf("got verdicts %+v, want %s first, naming %s", tn.Verdicts, ruleVerifierSetup, name)
	}
	if tn.Probe == nil || !tn.Probe.IssuerMatch {
		t.Errorf("got probe %+v, want the server described all the same", tn.Probe)
	}
}

func TestProvidersUsage(t *testing.T) {
	ps := newProviderShapes(t)
	path := ps.config(t)
	tests := []struct {
		name      string
		args      []string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{"-h", []string{"-h"}, 0, "Usage: todo-gateway providers --config FILE", ""},
		{"help providers", nil, 0, "-format format", ""},
		{"missing --config", nil, 2, "", "todo-gateway providers: --config FILE is required"},
		{"unknown flag", []string{"--config", path, "--fromat", "json"}, 2, "", "flag provided but not defined: -fromat"},
		{"bad format", []string{"--config", path, "--format", "yaml"}, 2, "", `--format "yaml" is not table, markdown, json or html`},
		{"zero timeout", []string{"--config", path, "--timeout", "0s"}, 2, "", "--timeout 0s is not between 0 and 15s"},
		{"long timeout", []string{"--config", path, "--timeout", "1m"}, 2, "", "--timeout 1m0s is not between"},
		{"bad timeout", []string{"--config", path, "--timeout", "soon"}, 2, "", `invalid value "soon" for flag -timeout`},
		{"no parallelism", []string{"--config", path, "--parallel", "0"}, 2, "", "--parallel 0 is not between 1 and 64"},
		{"narrow table", []string{"--config", path, "--width", "5"}, 2, "", "--width 5 is not between 20 and 200"},
		{"positional file", []string{path}, 2, "", "unexpected argument"},
		{"missing file", []string{"--config", "/nonexistent/tenants.json"}, 1, "", "/nonexistent/tenants.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"providers"}, tc.args...)
			if tc.name == "help providers" {
				args = []string{"help", "providers"}
			}
			code, stdout, stderr := runCLI(args...)
			if code != tc.code {
				t.Errorf("exit code got %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if !strings.Contains(stdout, tc.stdoutHas) || (tc.stdoutHas == "" && stdout != "") {
				t.Errorf("stdout got %q, want %q", stdout, tc.stdoutHas)
			}
			if !strings.Contains(stderr, tc.stderrHas) || (tc.stderrHas == "" && stderr != "") {
				t.Errorf("stderr got %q, want %q", stderr, tc.stderrHas)
			}
		})
	}
	if n := ps.logto.MetadataHits() + ps.oidc.MetadataHits() + ps.oauth.MetadataHits(); n != 0 {
		t.Errorf("got %d metadata requests from usage errors, want none", n)
	}
}

func TestProvidersInvalidConfig(t *testing.T) {
	path := writeFile(t, `{"tenants": [{"id": "acme", "resource": "http://localhost:3001/acme",
		"provider": {"type": "logto", "issuer": "https://acme.logto.app"}, "audience": {"strategy": "resource"}}]}`)
	code, stdout, stderr := runCLI("providers", "--config", path)
	if want := `provider.issuer: a logto issuer ends in "/oidc"`; code != 1 || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("got exit %d stdout %q stderr %q, want 1, nothing, %q", code, stdout, stderr, want)
	}
}

func TestProvWrap(t *testing.T) {
	tests := []struct {
		in    string
		width int
		want  []string
	}{
		{"short", 10, []string{"short"}},
		{"", 10, []string{""}},
		{"one two three four", 9, []string{"one two", "  three", "  four"}},
		{"exactly10c", 10, []string{"exactly10c"}},
		{"abcdefghijklmnop", 6, []string{"abcdef", "  ghij", "  klmn", "  op"}},
		// Long URLs break after a '/' in the second half of the line.
		{"ok http://example.com/a/very/long/path", 12, []string{"ok", "  http://", "  example.co", "  m/a/very/", "  long/path"}},
	}
	for _, tc := range tests {
		got := provWrap(tc.in, tc.width)
		if !slices.Equal(got, tc.want) {
			t.Errorf("provWrap(%q, %d): got %q, want %q", tc.in, tc.width, got, tc.want)
		}
		for _, l := range got {
			if len(l) > tc.width {
				t.Errorf("provWrap(%q, %d): line %q is wider than %d", tc.in, tc.width, l, tc.width)
			}
		}
	}
}

// TestProvidersDexHydraAndIntrospection: the interop cases providers used
// to call fine. A server shaped like Dex (recognised by its metadata, on a
// loopback host) with the resource strategy and no role grants: the
// strategy cannot work and no permission can be granted; with the
// tutorial's group table and client ids as the audience, only the ID token
// warning is left. A Hydra-shaped one warns on the resource strategy. An
// introspection endpoint with a wrong path, and one without client
// authentication, are judged.
func TestProvidersDexHydraAndIntrospection(t *testing.T) {
	dex := providertest.New(t, providertest.WithKeys(jose.RS256), providertest.WithScopes("openid", "email", "groups", "profile", "offline_access"))
	dex.SetMetadata(func(_ providertest.Endpoint, m map[string]any) {
		m["jwks_uri"] = dex.Issuer() + "/keys"
		delete(m, "introspection_endpoint")
	})
	hydra := providertest.New(t, providertest.WithKeys(jose.RS256), providertest.WithIntrospectionClient("", ""))
	hydra.SetMetadata(func(_ providertest.Endpoint, m map[string]any) {
		// Hydra publishes its admin introspection endpoint nowhere.
		m["credentials_endpoint_draft_00"] = hydra.Issuer() + "/credentials"
		delete(m, "introspection_endpoint")
		delete(m, "introspection_endpoint_auth_methods_supported")
	})
	cfg := writeFile(t, fmt.Sprintf(`{"tenants": [
  {"id": "dex", "resource": "http://localhost:3001/dex",
   "provider": {"type": "oidc", "issuer": %[1]q, "metadata": {"jwks_uri": %[2]q}}},
  {"id": "dex-groups", "resource": "http://localhost:3001/dex-groups",
   "provider": {"type": "oidc", "issuer": %[1]q, "metadata": {"jwks_uri": %[2]q}},
   "audience": {"strategy": "audience", "values": ["todo-app"]},
   "claims": {"roles": {"claim": "groups", "grants": {"todo-admins": ["create", "read", "delete"], "todo-users": ["create"]}}}},
  {"id": "hydra", "resource": "http://localhost:3001/hydra",
   "provider": {"type": "oidc", "issuer": %[3]q, "token": "auto",
                "introspection": {"auth_method": "none"}, "metadata": {"introspection_endpoint": %[4]q}}},
  {"id": "typo", "resource": "http://localhost:3001/typo",
   "provider": {"type": "oidc", "issuer": %[3]q, "token": "introspection",
                "introspection": {"auth_method": "none"}, "metadata": {"introspection_endpoint": %[5]q}},
   "audience": {"strategy": "audience", "values": ["https://todo.acme.example"]}}
]}`, dex.Issuer(), dex.JWKSURL(), hydra.Issuer(), hydra.IntrospectionURL(), hydra.URL()+"/admin/oauth2/introspec"))

	code, out, raw := runProvidersJSON(t, "--config", cfg)
	if code != 1 || out.OK {
		t.Fatalf("got exit %d ok %v, want 1 and false\n%s", code, out.OK, raw)
	}
	want := map[string]map[string]providers.Severity{
		"dex":        {providers.RuleResourceIndicators: providers.SeverityError, providers.RulePermissionsUngrantable: providers.SeverityError, providers.RuleIDTokenAsAccessToken: providers.SeverityWarning},
		"dex-groups": {providers.RuleIDTokenAsAccessToken: providers.SeverityWarning},
		"hydra":      {providers.RuleResourceIndicators: providers.SeverityWarning, providers.RuleIntrospectionUnauthenticated: providers.SeverityWarning},
		"typo":       {providers.RuleIntrospectionProbe: providers.SeverityError, providers.RuleIntrospectionUnauthenticated: providers.SeverityWarning},
	}
	for _, ten := range out.Tenants {
		got := map[string]providers.Severity{}
		for _, v := range ten.Verdicts {
			if v.Severity != providers.SeverityInfo {
				got[v.Rule] = v.Severity
			}
		}
		if !maps.Equal(got, want[ten.Tenant]) {
			t.Errorf("tenant %s: got verdicts %v, want %v\n%+v", ten.Tenant, got, want[ten.Tenant], ten.Verdicts)
		}
	}
	for _, phrase := range []string{
		`Dex puts no scope claim in its tokens and refuses scopes it does not define, so no token can grant create, read, delete`,
		`\"claims\": {\"roles\": {\"claim\": \"groups\"`,
		`POST ` + hydra.URL() + `/admin/oauth2/introspec: HTTP 404`,
		`"software": "Ory Hydra"`, `"software": "Dex"`,
	} {
		if !strings.Contains(raw, phrase) {
			t.Errorf("output lacks %q:\n%s", phrase, raw)
		}
	}
}

// --token-file verifies one real token of the tenant's as serve would and
// puts the outcome in the verdict: a token the introspection endpoint
// says is inactive (as Glewlwyd answers for another client's token) is an
// error naming the step, which a random-token probe cannot see.
func TestProvidersTokenFile(t *testing.T) {
	ps := newProviderShapes(t)
	config := ps.config(t)
	dir := t.TempDir()
	write := func(name, token string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good", ps.oauth.MintOpaque(ps.oauth.Claims("svc-7", "", "todo-api:create todo-api:read")))
	code, out, _ := runProvidersJSON(t, "--config", config, "--tenant", "initech", "--token-file", good)
	if code != exitOK || !slices.Contains(rules(out.Tenants[0].Verdicts), "info "+ruleRealToken) {
		t.Errorf("a good token: exit %d, verdicts %q; want ok with the real-token info", code, rules(out.Tenants[0].Verdicts))
	}
	revoked := ps.oauth.MintOpaque(ps.oauth.Claims("svc-7", "", "todo-api:create"))
	ps.oauth.Revoke(revoked)
	bad := write("bad", revoked)
	code, out, _ = runProvidersJSON(t, "--config", config, "--tenant", "initech", "--token-file", bad)
	var msg string
	for _, v := range out.Tenants[0].Verdicts {
		if v.Rule == ruleRealToken && v.Severity == providers.SeverityError {
			msg = v.Message
		}
	}
	if code != exitFail || !strings.Contains(msg, "a real token was refused as serve would refuse it (401 invalid_token): token is not active") ||
		!strings.Contains(msg, "at the active step") {
		t.Errorf("an inactive token: exit %d, real-token error %q", code, msg)
	}
	if code, _, stderr := runCLI("providers", "--config", config, "--token-file", good); code != exitUsage || !strings.Contains(stderr, "--token-file needs --tenant") {
		t.Errorf("--token-file without --tenant: exit %d, %q", code, stderr)
	}
}

// A real token that grants nothing, from a server that lists none of the
// tenant's scopes (the zitadel example OP strips them from every request):
// the verdict says a step-up cannot help.
func TestProvidersTokenFileScopesNeverIssued(t *testing.T) {
	ps := newProviderShapes(t)
	zitadel := providertest.New(t, providertest.WithKeys(jose.RS256), providertest.WithScopes("openid", "profile"))
	config := ps.config(t, fmt.Sprintf(`{"id": "zita", "resource": "http://localhost:3001/zita",
		"provider": {"type": "oidc", "issuer": %q}, "audience": {"strategy": "resource"}}`, zitadel.Issuer()))
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(zitadel.Mint(zitadel.Claims("alice", "http://localhost:3001/zita", "openid profile"))), 0o600); err != nil {
		t.Fatal(err)
	}
	_, out, _ := runProvidersJSON(t, "--config", config, "--tenant", "zita", "--token-file", path)
	var found bool
	for _, v := range out.Tenants[0].Verdicts {
		found = found || (v.Rule == ruleRealToken && v.Severity == providers.SeverityWarning &&
			strings.Contains(v.Message, "a 403 step-up asking for them cannot succeed"))
	}
	if !found {
		t.Errorf("verdicts %+v; want the warning that the scopes are never issued", out.Tenants[0].Verdicts)
	}
}

// The HTML report is one self-contained file: no script, nothing it would
// fetch, and what a provider said (a verdict can quote its answer) is
// escaped, never markup.
func TestProvidersHTMLIsSelfContained(t *testing.T) {
	res := provResult{
		settings: providers.Settings{Tenant: "acme", Config: providers.Config{Type: "oidc", Issuer: "https://idp.example/"}},
		verdicts: []providers.Verdict{
			{Rule: providers.RuleDiscovery, Severity: providers.SeverityError, Message: `the server answered <script>alert(1)</script> & more`},
			{Rule: "x", Severity: providers.SeverityInfo, Message: "fine"},
		},
	}
	var out strings.Builder
	if err := writeProvidersHTML(&out, []provResult{res}, time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), build{version: "v1.2.3", revision: "abc"}); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	for _, want := range []string{"<!doctype html>", "acme", "2026-12-07T12:00:00Z", "v1.2.3 (abc)",
		"the server answered &lt;script&gt;alert(1)&lt;/script&gt; &amp; more", `class="s-error"`, "The probe could not run."} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	for _, never := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(page, never) {
			t.Errorf("the report holds %q: it must fetch and run nothing", never)
		}
	}
}
