package providers

import "time"

// Status is what a tenant's verifier knows of its authorization server, for
// the gateway's status endpoint. It reflects traffic so far: an issuer none
// of whose tenants has seen a token has discovered nothing yet, by design.
// Every field is the issuer's (see Issuers), so tenants sharing an issuer
// show the same values.
type Status struct {
	// IssuerID names the shared issuer state, as listed by Issuers.List.
	IssuerID string `json:"issuer_id"`
	// Discovered: the issuer's metadata was fetched, at MetadataAt.
	// Configured: the configuration's endpoints (provider.metadata) cover
	// what the tenants need, so discovery is not needed; neither says the
	// issuer ever answered.
	Discovered bool      `json:"discovered"`
	MetadataAt time.Time `json:"metadata_fetched_at,omitzero"`
	Configured bool      `json:"configured,omitempty"`
	// Reachable is true once the issuer has answered (metadata or keys)
	// and while nothing is failing: false before any contact, and while
	// discovery or the JWKS is failing and backing off.
	Reachable bool `json:"reachable"`
	// Keys is the number of usable signing keys cached, and KeysAt when
	// they were last fetched.
	Keys   int       `json:"keys"`
	KeysAt time.Time `json:"keys_fetched_at,omitzero"`
	// LastError is the most recent failure talking to the issuer, if the
	// latest attempt failed.
	LastError string `json:"last_error,omitempty"`
	// Introspection is the tenant's introspection endpoint, for a tenant
	// that introspects (token mode introspection or auto); absent in
	// Issuers.List, since each tenant calls it with its own client.
	Introspection *IntrospectionStatus `json:"introspection,omitempty"`
}

// Status reports the provider's view of its authorization server.
func (p *Provider) Status() Status {
	// Every field but Introspection is the issuer's, as Issuers.List shows
	// it: one source for each fact. Whether the tenant's introspection
	// endpoint answers is Introspection's (last_success, last_error).
	s := p.disc.iss.status()
	if p.intro != nil {
		in := p.intro.status(p.now())
		s.Introspection = &in
	}
	return s
}

func (is *issuer) status() Status {
	s := Status{IssuerID: is.id}
	is.mu.Lock()
	failing := s.noteFailure(is.bo)
	ks := is.jwks
	is.mu.Unlock()
	// A configured override is in hand without asking the issuer, so only
	// a discovery or a key fetch that succeeded counts as an answer.
	answered := is.cur.Load() != nil
	r := is.cur.Load()
	if r != nil {
		s.Discovered, s.MetadataAt = true, r.fetchedAt
	} else if r = is.configured.Load(); r != nil {
		s.Configured = true
	}
	if r != nil {
		if ks != nil {
			ks.mu.Lock()
			s.Keys, s.KeysAt = len(ks.keys), ks.fetchedAt
			answered = answered || ks.loaded
			failing = s.noteFailure(ks.bo) || failing
			ks.mu.Unlock()
		}
	}
	s.Reachable = answered && !failing
	return s
}

// noteFailure records a resource that is failing and backing off, and
// reports whether it is.
func (s *Status) noteFailure(bo backoff) bool {
	if bo.failures == 0 {
		return false
	}
	if bo.lastErr != nil {
		s.LastError = bo.lastErr.Error()
	}
	return true
}
