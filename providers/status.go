package providers

import "time"

// Status is what a tenant's verifier knows of its authorization server, for
// the gateway's status endpoint. It reflects traffic so far: a tenant that
// has seen no token has discovered nothing yet, by design.
type Status struct {
	// Discovered: the metadata (or the configured override) is in hand.
	Discovered bool      `json:"discovered"`
	MetadataAt time.Time `json:"metadata_fetched_at,omitzero"`
	// Reachable is false while discovery or the JWKS is failing and backing off.
	Reachable bool `json:"reachable"`
	// Keys is the number of usable signing keys cached, and KeysAt when
	// they were last fetched.
	Keys   int       `json:"keys"`
	KeysAt time.Time `json:"keys_fetched_at,omitzero"`
	// LastError is the most recent failure talking to the issuer, if the
	// latest attempt failed.
	LastError string `json:"last_error,omitempty"`
}

// Status reports the provider's view of its authorization server.
func (p *Provider) Status() Status {
	s := Status{Reachable: true}
	p.disc.mu.Lock()
	if p.disc.bo.failures > 0 {
		s.Reachable = false
		if p.disc.bo.lastErr != nil {
			s.LastError = p.disc.bo.lastErr.Error()
		}
	}
	p.disc.mu.Unlock()
	ep := p.disc.cur.Load()
	if ep == nil {
		return s
	}
	s.Discovered, s.MetadataAt = true, ep.fetchedAt
	if ks := ep.jwks; ks != nil {
		ks.mu.Lock()
		s.Keys, s.KeysAt = len(ks.keys), ks.fetchedAt
		if ks.bo.failures > 0 {
			s.Reachable = false
			if ks.bo.lastErr != nil {
				s.LastError = ks.bo.lastErr.Error()
			}
		}
		ks.mu.Unlock()
	}
	return s
}
