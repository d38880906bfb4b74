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
func (p *Provider) Status() Status { return p.disc.iss.status() }

func (is *issuer) status() Status {
	s := Status{IssuerID: is.id, Reachable: true}
	is.mu.Lock()
	s.noteFailure(is.bo)
	ks := is.jwks
	is.mu.Unlock()
	r := is.cur.Load()
	if r == nil {
		r = is.configured.Load()
	}
	if r == nil {
		return s
	}
	s.Discovered, s.MetadataAt = true, r.fetchedAt
	if ks != nil {
		ks.mu.Lock()
		s.Keys, s.KeysAt = len(ks.keys), ks.fetchedAt
		s.noteFailure(ks.bo)
		ks.mu.Unlock()
	}
	return s
}

// noteFailure records a resource that is failing and backing off.
func (s *Status) noteFailure(bo backoff) {
	if bo.failures > 0 {
		s.Reachable = false
		if bo.lastErr != nil {
			s.LastError = bo.lastErr.Error()
		}
	}
}
