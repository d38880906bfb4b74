package providers

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Issuers is a registry of what the tenants of one authorization server
// share: its discovered metadata and its key set, with their single-flight
// fetches, backoff and background refreshes. Without it every tenant would
// fetch and refresh both on its own: 10,000 tenants on one issuer would mean
// 10,000 discoveries and 10,000 JWKS fetches on warm-up, and a rotated key
// would have to be found 10,000 times.
//
// Tenants share one entry when everything that changes what is fetched, or
// how, is equal: the issuer, the provider type (the discovery order), the
// metadata override, jwks_min_refresh, allow_http_issuer and the HTTP
// client. Everything else (audience, claims, scopes, typ, the algorithm
// allow-list, leeway, introspection and its cache) stays with each tenant's
// Provider, so sharing keys changes nothing about which tenant accepts
// which token.
//
// An entry is made by the first Provider that needs it, with that
// Provider's clock, logger and metrics: give every Provider of one registry
// the same options. It lives while a Provider uses it; Close releases it,
// and the last release stops its background work. The zero value is ready
// to use; one registry serves a whole process, across reloads, so that an
// unchanged issuer stays warm.
type Issuers struct {
	mu sync.Mutex
	m  map[issuerKey]*issuer
}

// NewIssuers returns an empty registry.
func NewIssuers() *Issuers { return &Issuers{} }

// WithIssuers makes the Provider share its issuer's metadata and keys
// through reg with the other Providers built with it. Without it, each
// Provider has its own.
func WithIssuers(reg *Issuers) Option { return func(o *options) { o.issuers = reg } }

// issuerKey is everything that changes what is fetched from an issuer or
// how. The client is the one given to New (before noDowngrade wraps it), so
// Providers built without WithHTTPClient share the default one.
type issuerKey struct {
	kind       Kind
	issuer     string
	override   MetadataOverride
	minRefresh time.Duration
	allowHTTP  bool
	client     *http.Client
}

func keyOf(c Config, client *http.Client) issuerKey {
	k := issuerKey{
		kind:       c.Type,
		issuer:     c.Issuer,
		minRefresh: time.Duration(*c.JWKSMinRefresh),
		allowHTTP:  c.AllowHTTPIssuer,
		client:     client,
	}
	if c.Metadata != nil {
		k.override = *c.Metadata
	}
	return k
}

// id names an entry in Status and List: a digest of the key without the
// client, so it is the same on every instance and across restarts.
func (k issuerKey) id() string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%q %q %q %q %d %t", k.kind, k.issuer,
		k.override.JWKSURI, k.override.IntrospectionEndpoint, k.minRefresh, k.allowHTTP)))
	return hex.EncodeToString(h[:6])
}

// acquire returns the entry for k, made with o if there is none, counting
// one more reference from tenant.
func (r *Issuers) acquire(k issuerKey, tenant string, o options) *issuer {
	r.mu.Lock()
	defer r.mu.Unlock()
	is := r.m[k]
	if is == nil {
		if r.m == nil {
			r.m = make(map[issuerKey]*issuer)
		}
		is = newIssuerState(r, k, r.uniqueID(k.id()), o)
		r.m[k] = is
	}
	is.tenants[tenant]++
	return is
}

// uniqueID keeps ids apart for entries that differ only by their client
// (tests, or a caller with clients per tenant). r.mu is held.
func (r *Issuers) uniqueID(id string) string {
	taken := func(id string) bool {
		for _, is := range r.m {
			if is.id == id {
				return true
			}
		}
		return false
	}
	out := id
	for n := 2; taken(out); n++ {
		out = id + "-" + strconv.Itoa(n)
	}
	return out
}

// release drops one reference from tenant; the last one removes the entry
// and stops its background work (after the registry's lock is released,
// since stopping waits for fetches to notice).
func (r *Issuers) release(is *issuer, tenant string) {
	r.mu.Lock()
	is.tenants[tenant]--
	if is.tenants[tenant] <= 0 {
		delete(is.tenants, tenant)
	}
	last := len(is.tenants) == 0
	if last {
		delete(r.m, is.key)
	}
	r.mu.Unlock()
	if last {
		is.deps.bg.close()
	}
}

// IssuerStatus is one entry of Issuers.List.
type IssuerStatus struct {
	Issuer string `json:"issuer"`
	Type   Kind   `json:"type"`
	// Tenants is how many distinct tenants use the entry; during a reload's
	// grace period a tenant's old and new Providers count once.
	Tenants int `json:"tenants"`
	// Status is what every one of those tenants' Status shows; its IssuerID
	// names the entry.
	Status
}

// List describes every issuer in use, by issuer and then id.
func (r *Issuers) List() []IssuerStatus {
	r.mu.Lock()
	type entry struct {
		is      *issuer
		tenants int
	}
	entries := make([]entry, 0, len(r.m))
	for _, is := range r.m {
		entries = append(entries, entry{is, len(is.tenants)})
	}
	r.mu.Unlock()
	out := make([]IssuerStatus, len(entries))
	for i, e := range entries {
		out[i] = IssuerStatus{Issuer: e.is.key.issuer, Type: e.is.key.kind, Tenants: e.tenants, Status: e.is.status()}
	}
	slices.SortFunc(out, func(a, b IssuerStatus) int {
		return cmp.Or(cmp.Compare(a.Issuer, b.Issuer), cmp.Compare(a.IssuerID, b.IssuerID))
	})
	return out
}

// issuer is one registry entry: the metadata and key set of one
// authorization server, shared by the tenants that trust it. Its deps (and
// so its background runner) are its own, so that closing one tenant's
// Provider never stops a fetch another tenant waits for.
type issuer struct {
	reg  *Issuers
	key  issuerKey
	id   string
	deps *deps
	// tenants counts references per tenant id; guarded by reg.mu.
	tenants map[string]int

	// cur is the discovered metadata, nil until discovery first succeeds.
	cur atomic.Pointer[resolved]
	// configured is the override alone, for tenants whose token mode it
	// covers; made on first use.
	configured atomic.Pointer[resolved]

	mu       sync.Mutex
	bo       backoff
	inflight *call
	// jwks is the current key set, kept across metadata refreshes that name
	// the same URL and shared by the configured and discovered endpoints.
	jwks *keySet
}

// newIssuerState makes the entry for k with o's clock, logger and metrics.
func newIssuerState(reg *Issuers, k issuerKey, id string, o options) *issuer {
	d := &deps{
		client:  noDowngrade(k.client),
		now:     o.now,
		log:     o.log.With("issuer", k.issuer),
		metrics: o.metrics,
		tuning:  defaultTuning,
	}
	d.bg.init()
	return &issuer{reg: reg, key: k, id: id, deps: d, tenants: make(map[string]int)}
}

// keySetLocked returns the key set for url, keeping the current one (and
// its cached keys) when the url is the same. is.mu is held.
func (is *issuer) keySetLocked(url string) *keySet {
	if is.jwks == nil || is.jwks.url != url {
		is.jwks = &keySet{url: url, issuer: is.key.issuer, minRefresh: is.key.minRefresh, deps: is.deps}
	}
	return is.jwks
}
