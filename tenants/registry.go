package tenants

import (
	"sync/atomic"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Snapshot is one immutable generation of the tenant set. Requests hold on
// to the snapshot they started with, so a reload never changes a tenant
// under a request in flight.
//
// Every per-tenant table is indexed by the tenant's position in config
// order; what a reload builds per tenant (verifiers, MCP servers) is meant
// to join as further slices indexed the same way.
//
// A nil *Snapshot is valid and empty.
type Snapshot struct {
	tenants []*Tenant
	byID    map[string]int
	// byHost then by path rather than by a concatenated key: two string
	// lookups cost nothing extra and, unlike building host+path, never
	// allocate on the request path.
	byHost map[string]map[string]int
	// verifiers[i] verifies tokens of tenants[i]; nil unless made by Build.
	verifiers []providers.Verifier
}

// NewSnapshot validates cfg and indexes its tenants. It works on a copy with
// defaults applied, so a Config built by hand (not through Parse) is checked
// just the same and never modified.
func NewSnapshot(cfg *Config) (*Snapshot, error) {
	c := cfg.clone()
	if probs := c.validate(); len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	c.applyDefaults()
	s := &Snapshot{
		tenants: make([]*Tenant, len(c.Tenants)),
		byID:    make(map[string]int, len(c.Tenants)),
		byHost:  make(map[string]map[string]int),
	}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		s.tenants[i] = t
		s.byID[t.ID] = i
		paths := s.byHost[t.Host()]
		if paths == nil {
			paths = make(map[string]int)
			s.byHost[t.Host()] = paths
		}
		paths[t.Path()] = i
	}
	return s, nil
}

// Lookup finds the tenant whose resource has this host and path, in
// constant time.
//
// host is the request's Host header as received: it is lower-cased and a
// ":80" or ":443" suffix is dropped (either, whatever the scheme; see
// normalizeHost). path is the request's decoded URL path; "/" means the root
// of the host and finds a tenant whose resource has no path.
//
// Matching is otherwise exact: no trailing-slash folding, no prefix
// matching, and "127.0.0.1:3001" does not find a tenant configured on
// "localhost:3001". The resource is the audience its tokens are minted for,
// so a client that reaches the tenant under another name would be refused
// by the audience check anyway; better to say "no such tenant" up front.
func (s *Snapshot) Lookup(host, path string) (*Tenant, bool) {
	if s == nil {
		return nil, false
	}
	paths, ok := s.byHost[normalizeHost(host)]
	if !ok {
		return nil, false
	}
	if path == "/" {
		path = ""
	}
	i, ok := paths[path]
	if !ok {
		return nil, false
	}
	return s.tenants[i], true
}

// Tenant finds a tenant by id.
func (s *Snapshot) Tenant(id string) (*Tenant, bool) {
	if s == nil {
		return nil, false
	}
	i, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return s.tenants[i], true
}

// Tenants returns the tenants in config order. The slice is the caller's;
// the tenants are shared and must not be modified.
func (s *Snapshot) Tenants() []*Tenant {
	if s == nil {
		return nil
	}
	out := make([]*Tenant, len(s.tenants))
	copy(out, s.tenants)
	return out
}

// Len is the number of tenants.
func (s *Snapshot) Len() int {
	if s == nil {
		return 0
	}
	return len(s.tenants)
}

// Registry holds the current Snapshot. Readers call Load once per request
// and use that snapshot throughout; a reload builds a complete new snapshot
// and installs it with Swap, so readers never see a half-applied config and
// never take a lock. The zero Registry holds no snapshot and finds nothing.
type Registry struct {
	current atomic.Pointer[Snapshot]
}

// NewRegistry returns a registry holding s.
func NewRegistry(s *Snapshot) *Registry {
	r := &Registry{}
	r.current.Store(s)
	return r
}

// Load returns the current snapshot (nil, which is empty, before the first
// Swap of a zero Registry).
func (r *Registry) Load() *Snapshot { return r.current.Load() }

// Swap installs s and returns the snapshot it replaces, which requests that
// loaded it earlier may still be using: whoever closes its resources must
// let them finish first.
func (r *Registry) Swap(s *Snapshot) (old *Snapshot) { return r.current.Swap(s) }
