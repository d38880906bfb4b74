// Package tenants is the gateway's tenant configuration: the JSON file
// format, its strict loading, a validation that reports every problem at
// once, the immutable Snapshot in which the HTTP edge finds the tenant of a
// request, and the Source the configuration is read from.
//
// Loading is two passes. The first checks the shape of the document (syntax,
// unknown or duplicate fields, JSON types) and names every problem by its JSON
// path; only a document with the right shape reaches the second pass, which
// checks meaning (URLs, strategies, secrets, uniqueness). A tenant's provider
// settings are package providers' to default and validate, exactly as serve
// builds its verifier from them (providers.Settings); this package prefixes
// their problems with the tenant's JSON path. The defaults of everything
// else are applied last, so validation sees what the operator wrote.
package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
)

// Defaults for fields an operator may omit.
const (
	DefaultListen      = "127.0.0.1:3001"
	DefaultAdminListen = "127.0.0.1:3100"
)

// Config is the whole configuration file.
type Config struct {
	// Process is the settings the process reads once, when it starts.
	Process
	// Tenants in the order they are listed; at least one is required,
	// unless TenantsFrom says where else they come from.
	Tenants []Tenant `json:"tenants"`
	// TenantsFrom is where the tenants come from: "" for this document's
	// own list, or "etcd" (TenantsFromEtcd) for the document pushed to the
	// store's etcd cluster with "todo-gateway tenants push", which every
	// instance watches. A file that says "etcd" is an instance's bootstrap:
	// its listen, admin, store, http and shutdown settings are the
	// instance's own, and it lists no tenants.
	TenantsFrom string `json:"tenants_from,omitempty"`

	// parsed is set by Parse, which validated the configuration and
	// filled its defaults: NewSnapshot does not validate it again.
	parsed bool
}

// Process is the restart-only settings: the listeners, the store, the
// HTTP tuning, the shutdown and the assertion keys are set up once, when
// the process starts. A reload that changes any of them still applies the
// tenants, and warns that these take effect on restart. In JSON they are
// members of the configuration object itself.
type Process struct {
	// Listen is the TCP address the gateway serves on, as host:port. An empty
	// host listens on every interface; port 0 picks a free port (tests).
	// Default DefaultListen, which is loopback only on purpose: exposing the
	// gateway is a decision, not an accident.
	Listen string `json:"listen,omitempty"`
	// Store says where todos are kept.
	Store StoreConfig `json:"store"`
	// HTTP tunes the public listener; every field is optional.
	HTTP HTTPConfig `json:"http"`
	// Admin is the private listener of /healthz, /readyz, /status, /metrics.
	Admin AdminConfig `json:"admin"`
	// Shutdown says how the process stops on SIGTERM.
	Shutdown ShutdownConfig `json:"shutdown"`
	// Assertion is the gateway's signing key for the identity assertions
	// it sends to upstream MCP servers, read at start; every field is
	// optional.
	Assertion AssertionConfig `json:"assertion,omitzero"`
}

// Changed names, by their JSON names, the settings of p that differ from
// running's.
func (p Process) Changed(running Process) []string {
	if reflect.DeepEqual(p, running) {
		return nil
	}
	var names []string
	a, b, t := reflect.ValueOf(p), reflect.ValueOf(running), reflect.TypeFor[Process]()
	for i := range t.NumField() {
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
	}
	return names
}

// TenantsFromEtcd is Config.TenantsFrom for tenants kept in etcd.
const TenantsFromEtcd = "etcd"

// HTTPConfig is the "http" block.
type HTTPConfig struct {
	// AllowedOrigins are browser origins ("https://app.example.com") allowed
	// to call the MCP endpoints besides each tenant's own origin; "*" allows
	// any. A request with another Origin header gets 403 (DNS-rebinding
	// defence). Requests without Origin (non-browser clients) are unaffected.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// BodyLimit caps a request body in bytes; default DefaultBodyLimit (1 MiB),
	// from 1 KiB to 64 MiB. Larger bodies get 413.
	BodyLimit int64 `json:"body_limit,omitempty"`
	// MaxConnections caps the public listener's open connections; a
	// connection over the cap is answered 503 and closed at once. 0 (the
	// default) derives the cap from the process's open-file limit at start
	// (package mcp, DefaultMaxConnections), so that connections alone can
	// never use every file descriptor.
	MaxConnections int `json:"max_connections,omitempty"`
	// MaxConnectionsPerSource caps the connections one client address may
	// hold open (the addresses of TrustedProxies have no cap); 0, the
	// default, sets none: behind a proxy not listed in TrustedProxies
	// every client has the proxy's address.
	MaxConnectionsPerSource int `json:"max_connections_per_source,omitempty"`
	// TrustedProxies are the addresses or CIDR ranges of proxies in front
	// of the gateway ("10.0.0.0/8", "127.0.0.1") whose X-Forwarded-For it
	// believes for a client's address: the address logs name and fair
	// shares are kept by. Empty (the default): the connection's peer,
	// and X-Forwarded-For is never read, so no client can choose its
	// address.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
}

// TrustedProxyRanges parses TrustedProxies, validated: an address is a
// range of one.
func (h HTTPConfig) TrustedProxyRanges() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(h.TrustedProxies))
	for _, p := range h.TrustedProxies {
		if r, ok := parseProxy(p); ok {
			out = append(out, r)
		}
	}
	return out
}

func parseProxy(s string) (netip.Prefix, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	r, err := netip.ParsePrefix(s)
	return r.Masked(), err == nil
}

// AssertionConfig is the "assertion" block: the keys that sign the JWT an
// upstream tenant's server receives in place of the client's token.
type AssertionConfig struct {
	// KeyFiles are PEM private keys (P-256 for ES256, or Ed25519 for
	// EdDSA): the first signs, all are published at the JWKS URL, so a
	// new key is added in front, and the old one removed once the
	// assertions it signed have expired (5 minutes). Every instance must
	// read the same files. Left out, each instance makes a key of its own
	// at start: right for one instance, and an upstream must fetch the
	// JWKS again after every restart.
	KeyFiles []string `json:"key_files,omitempty"`
}

// AdminConfig is the "admin" block.
type AdminConfig struct {
	// Listen is the admin endpoints' host:port, never the public listener's;
	// default DefaultAdminListen (loopback: they reveal internals).
	Listen string `json:"listen,omitempty"`
}

// ShutdownConfig is the "shutdown" block. On SIGTERM (or SIGINT) the
// gateway first drains: /readyz answers 503 so that load balancers stop
// sending it new requests, while it still serves every request it gets.
// Then it stops accepting connections and lets requests in flight finish
// within the grace period, then closes the store.
type ShutdownConfig struct {
	// Drain is how long /readyz answers 503 before the listener closes;
	// default 0s (one instance, nothing to drain to), at most 5m. Set it a
	// little above the load balancer's health-check interval times its
	// unhealthy threshold.
	Drain *providers.Duration `json:"drain,omitempty"`
	// Grace bounds how long requests in flight may take to finish; default
	// 10s, 1s to 5m.
	Grace *providers.Duration `json:"grace,omitempty"`
}

// Bounds of ShutdownConfig.
const (
	DefaultShutdownGrace = 10 * time.Second
	maxShutdownWait      = 5 * time.Minute
)

// Limits of HTTPConfig.BodyLimit.
const (
	DefaultBodyLimit = 1 << 20
	minBodyLimit     = 1 << 10
	maxBodyLimit     = 64 << 20
)

// Tenant is one MCP server (the built-in todo server or an upstream) and
// the authorization server it trusts.
//
// A Tenant obtained from Parse, Load or a Snapshot is validated and has its
// defaults applied; treat it as read-only, it is shared by every request.
type Tenant struct {
	// ID names the tenant in logs, metrics and storage. It becomes a bbolt
	// bucket name (and later an etcd key segment), hence the narrow alphabet:
	// ^[a-z0-9][a-z0-9-]{0,62}$.
	ID string `json:"id"`
	// Resource is the tenant's MCP endpoint, its RFC 9728 resource identifier
	// and the audience expected under the "resource" strategy: one string used
	// byte for byte in all three places, so it must be written canonically
	// (lower-case scheme and host, no default port, no trailing slash, no
	// query or fragment). A resource at the root of a host has an empty path:
	// "https://todo.acme.example", not "https://todo.acme.example/".
	Resource string `json:"resource"`
	// ResourceName is the human-readable name in the protected-resource
	// metadata; default ID.
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is an optional http(s) URL of documentation for
	// people, published in the protected-resource metadata.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
	// Provider is the authorization server that issues the tenant's tokens
	// and how they are verified.
	Provider providers.Config `json:"provider"`
	// Audience is how a token is recognised as meant for this tenant.
	Audience providers.Audience `json:"audience"`
	// Claims says where the token's facts live; optional, the defaults
	// depend on the provider type and belong to package providers.
	Claims providers.Claims `json:"claims"`
	// Scopes maps the tenant's permissions (the todo server's create, read
	// and delete, or those an upstream's permissions block names) to the
	// provider's scope strings; once loaded, every permission is in the
	// map, those left out with their default (providers.DefaultScopeMap).
	Scopes providers.ScopeMap `json:"scopes,omitempty"`
	// MissingPermission is how the tenant's MCP endpoint answers a call of
	// a tool whose permission the token lacks: MissingPermissionChallenge
	// (the default) or MissingPermissionToolError. It is the tenant's own
	// choice about its clients, not a provider setting: verification and
	// the provider's verdicts are the same either way.
	MissingPermission string `json:"missing_permission,omitempty"`
	// RateLimit, when set, bounds the requests to the tenant's MCP endpoint
	// on each instance; nil (the default) sets no bound.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// Server is the tenant's MCP server: nil (or type "todo") for the
	// built-in todo server, the default, or an upstream MCP server with its
	// tool permissions and the identity it receives. Package upstream owns
	// its rules. A pointer: most tenants have none, and a Tenant is copied
	// whole with every configuration.
	Server *upstream.Config `json:"server,omitempty"`

	// res caches the parsed resource; set when defaults are applied.
	res resource
}

// RateLimit is a tenant's token bucket for tool calls: RequestsPerSecond
// is its refill rate, Burst its size (package mcp says what else is
// counted). Each instance keeps its own bucket: with N instances behind a
// load balancer the tenant may send up to N times the rate in all.
type RateLimit struct {
	// RequestsPerSecond is the sustained rate of tool calls, from
	// minRequestsPerSecond to maxRequestsPerSecond; fractions are allowed
	// (0.5 is one call every two seconds).
	RequestsPerSecond float64 `json:"requests_per_second"`
	// Burst is how many calls may arrive at once after a quiet spell;
	// default RequestsPerSecond rounded up, at least 1.
	Burst int `json:"burst,omitempty"`
}

// Bounds of RateLimit. The least rate is one call every 1,000 s: below
// it a refused client would be told to wait longer than any would, and
// 1e-300 overflowed the wait into "Retry-After: 1".
const (
	minRequestsPerSecond = 0.001
	maxRequestsPerSecond = 1e6
	maxBurst             = 1e6
)

// Answers to a missing permission (Tenant.MissingPermission).
const (
	// MissingPermissionChallenge answers with the MCP authorization spec's
	// 403 insufficient_scope step-up challenge.
	MissingPermissionChallenge = "challenge"
	// MissingPermissionToolError answers as the tutorial's server does: HTTP
	// 200 with a tool error result (isError) saying which scope is missing,
	// for deployments whose clients cannot step up.
	MissingPermissionToolError = "tool_error"
)

// Host returns the host part of the resource as the registry matches it:
// lower case, with the port unless it is the scheme's default
// ("localhost:3001", "todo.acme.example").
func (t *Tenant) Host() string { return t.location().host }

// Path returns the resource's path: "" for a resource at the root of its
// host, else a path without a trailing slash ("/acme").
func (t *Tenant) Path() string { return t.location().path }

// location returns the cached parse, or parses now for a Tenant built by hand
// rather than loaded; it never writes, so concurrent readers stay race-free.
func (t *Tenant) location() resource {
	if t.res.url != nil {
		return t.res
	}
	r, _ := parseResource(t.Resource)
	return r
}

// Scope returns the provider's scope string for a permission.
func (t *Tenant) Scope(p providers.Permission) string { return t.Scopes[p] }

// ScopeList returns the tenant's scope strings in the order of its
// permissions (the todo server's: create, read, delete), each once: the
// list for scopes_supported and for a challenge's scope parameter.
func (t *Tenant) ScopeList() []string {
	perms := t.ProviderSettings().PermissionList()
	out := make([]string, 0, len(perms))
	for _, p := range perms {
		if s := t.Scope(p); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Same reports whether t and o are configured identically (both loaded,
// defaults applied): a reload keeps such a tenant's verifier, caches and
// MCP server, and "tenants diff" does not count it as changed.
func (t *Tenant) Same(o *Tenant) bool { return reflect.DeepEqual(*t, *o) }

// TenantChanges are the tenant ids a configuration adds, changes and
// removes relative to another, each in the order its configuration lists
// them.
type TenantChanges struct {
	Added, Changed, Removed []string
	Unchanged               int
}

// Changes compares the tenants of next with those of prev (nil: none).
func Changes(prev, next *Config) TenantChanges {
	return ChangesBy(tenantList(prev), tenantList(next), (*Tenant).Same)
}

func tenantList(c *Config) []*Tenant {
	if c == nil {
		return nil
	}
	out := make([]*Tenant, len(c.Tenants))
	for i := range c.Tenants {
		out[i] = &c.Tenants[i]
	}
	return out
}

// ChangesBy compares next with prev by id: a tenant of both is changed
// unless same(old, new).
func ChangesBy(prev, next []*Tenant, same func(old, new *Tenant) bool) TenantChanges {
	var ch TenantChanges
	old := make(map[string]*Tenant, len(prev))
	for _, t := range prev {
		old[t.ID] = t
	}
	kept := make(map[string]bool, len(next))
	for _, t := range next {
		o, ok := old[t.ID]
		switch {
		case !ok:
			ch.Added = append(ch.Added, t.ID)
		case !same(o, t):
			ch.Changed = append(ch.Changed, t.ID)
		default:
			ch.Unchanged++
		}
		kept[t.ID] = true
	}
	for _, t := range prev {
		if !kept[t.ID] {
			ch.Removed = append(ch.Removed, t.ID)
		}
	}
	return ch
}

// Load reads and parses a configuration file; errors are prefixed with the
// file name. See Parse.
func Load(path string) (*Config, error) {
	cfg, _, err := Read(context.Background(), FileSource{Path: path})
	return cfg, err
}

// Parse decodes, validates and completes a configuration. Its errors are a
// *SyntaxError for malformed JSON, or a *ValidationError listing every
// problem with its JSON path.
func Parse(data []byte) (*Config, error) {
	if err := checkSyntax(data); err != nil {
		return nil, err
	}
	if probs := checkShape(data, reflect.TypeFor[Config]()); len(probs) > 0 {
		labelTenants(probs, tenantIDs(data))
		return nil, &ValidationError{Problems: probs}
	}
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(data))
	// Belt and braces: checkShape has already refused what this would.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("decoding configuration: %w", err)
	}
	if probs := cfg.validate(); len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	cfg.applyDefaults()
	cfg.parsed = true
	return &cfg, nil
}

// applyDefaults fills what the operator left out. It runs after validation,
// which has seen the provider settings with the same defaults.
func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	c.Store.applyDefaults()
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if c.HTTP.BodyLimit == 0 {
		c.HTTP.BodyLimit = DefaultBodyLimit
	}
	if c.Shutdown.Drain == nil {
		c.Shutdown.Drain = durationOf(0)
	}
	if c.Shutdown.Grace == nil {
		c.Shutdown.Grace = durationOf(DefaultShutdownGrace)
	}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		if t.ResourceName == "" {
			t.ResourceName = t.ID
		}
		if t.Server != nil {
			d := t.Server.WithDefaults() // a copy: the caller's may be shared
			t.Server = &d
		}
		if t.MissingPermission == "" {
			t.MissingPermission = MissingPermissionChallenge
		}
		if rl := t.RateLimit; rl != nil && rl.Burst == 0 {
			// A copy: the caller's may be shared with another Config.
			t.RateLimit = &RateLimit{RequestsPerSecond: rl.RequestsPerSecond, Burst: max(1, int(math.Ceil(rl.RequestsPerSecond)))}
		}
		// The settings serve verifies with, in fresh slices and maps: the
		// caller's may be shared with another Config.
		s := t.ProviderSettings().WithDefaults()
		t.Provider, t.Audience, t.Claims, t.Scopes = s.Config, s.Audience, s.Claims, s.Scopes
		t.res, _ = parseResource(t.Resource)
	}
}

// clone copies c deeply enough that applyDefaults on the copy cannot touch
// c: it replaces the tenants' slices and maps rather than writing into them.
func (c *Config) clone() *Config {
	n := *c
	n.Tenants = slices.Clone(c.Tenants)
	return &n
}
