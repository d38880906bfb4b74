package tenants

import "strings"

// Snapshot is one immutable, validated tenant set indexed for routing. The
// HTTP edge builds everything it keeps per tenant (verifier, MCP server,
// metadata) into a slice indexed like Tenants, and finds a request's tenant
// with Index: one value per generation, nothing per tenant elsewhere.
//
// A nil *Snapshot is valid and empty.
type Snapshot struct {
	tenants []*Tenant
	byID    map[string]int
	// byHost then by path rather than by a concatenated key: two string
	// lookups cost nothing extra and, unlike building host+path, never
	// allocate on the request path.
	byHost map[string]map[string]int
	// byFolded finds a tenant by its resource as a client might misspell
	// it (see Near); the first tenant of each folded key wins.
	byFolded map[string]int
}

// NewSnapshot indexes the tenants of cfg. A Config from Parse was validated
// there; one built by hand is validated here, so it is checked just the
// same. It works on a copy with defaults applied: cfg is never modified.
func NewSnapshot(cfg *Config) (*Snapshot, error) {
	c := cfg.clone()
	if !c.parsed {
		if probs := c.validate(); len(probs) > 0 {
			return nil, &ValidationError{Problems: probs}
		}
		c.applyDefaults()
	}
	s := &Snapshot{
		tenants:  make([]*Tenant, len(c.Tenants)),
		byID:     make(map[string]int, len(c.Tenants)),
		byHost:   make(map[string]map[string]int),
		byFolded: make(map[string]int, len(c.Tenants)),
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
		if _, taken := s.byFolded[folded(t.Host(), t.Path())]; !taken {
			s.byFolded[folded(t.Host(), t.Path())] = i
		}
	}
	return s, nil
}

// Index finds the position (in Tenants) of the tenant whose resource has
// this host and path, in constant time and without allocating.
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
func (s *Snapshot) Index(host, path string) (int, bool) {
	if s == nil {
		return 0, false
	}
	paths, ok := s.byHost[normalizeHost(host)]
	if !ok {
		return 0, false
	}
	if path == "/" {
		path = ""
	}
	i, ok := paths[path]
	return i, ok
}

// Near finds the tenant a request probably meant when Index finds none:
// one whose resource differs from host and path only by trailing slashes,
// the case of the path, or the loopback name (localhost, 127.0.0.1 and
// [::1] on the same port). It is for the 404's hint only: serving such a
// request would fail the audience check anyway, since tokens are minted for
// the exact resource. Constant time, like Index, so a flood of 404s costs
// no walk over the tenants.
func (s *Snapshot) Near(host, path string) (*Tenant, bool) {
	if s == nil {
		return nil, false
	}
	i, ok := s.byFolded[folded(normalizeHost(host), strings.TrimRight(path, "/"))]
	if !ok {
		return nil, false
	}
	return s.tenants[i], true
}

// folded is the key of Near: the host with its loopback name unified, and
// the path in lower case without trailing slashes. host is normalised
// (normalizeHost, or Tenant.Host).
func folded(host, path string) string {
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		name, port = host[:i], host[i:]
	}
	switch name {
	case "localhost", "127.0.0.1", "[::1]":
		name = "localhost"
	}
	return name + port + " " + strings.ToLower(strings.TrimRight(path, "/"))
}

// Tenant finds a tenant by id.
func (s *Snapshot) Tenant(id string) (*Tenant, bool) {
	i, ok := s.IndexOf(id)
	if !ok {
		return nil, false
	}
	return s.tenants[i], true
}

// IndexOf finds the position (in Tenants) of the tenant with this id.
func (s *Snapshot) IndexOf(id string) (int, bool) {
	if s == nil {
		return 0, false
	}
	i, ok := s.byID[id]
	return i, ok
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

// IDs returns the tenant ids in config order.
func (s *Snapshot) IDs() []string {
	ids := make([]string, s.Len())
	for i := range ids {
		ids[i] = s.tenants[i].ID
	}
	return ids
}
