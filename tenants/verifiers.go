package tenants

import (
	"context"
	"errors"
	"fmt"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Build is NewSnapshot plus every tenant's token verifier. It makes no
// network call (providers discover lazily), so it is fast at any tenant count.
//
// A tenant whose verifier cannot be built, typically because the environment
// variable holding its introspection secret is not set, must not take the
// other tenants down with it: it keeps its routes and metadata, refuses every
// token as temporarily unavailable, and its problem is returned so the caller
// can log it loudly.
func Build(cfg *Config, opts ...providers.Option) (*Snapshot, []Problem, error) {
	s, err := NewSnapshot(cfg)
	if err != nil {
		return nil, nil, err
	}
	var problems []Problem
	s.verifiers = make([]providers.Verifier, len(s.tenants))
	for i, t := range s.tenants {
		p, err := providers.New(t.ProviderSettings(), opts...)
		if err != nil {
			problems = append(problems, Problem{Path: fmt.Sprintf("tenants[%d].provider", i), Tenant: t.ID, Message: err.Error()})
			s.verifiers[i] = misconfigured{}
			continue
		}
		s.verifiers[i] = p
	}
	return s, problems, nil
}

// ProviderSettings is what package providers needs to verify this tenant's tokens.
func (t *Tenant) ProviderSettings() providers.Settings {
	return providers.Settings{
		Tenant:   t.ID,
		Resource: t.Resource,
		Config:   t.Provider,
		Audience: t.Audience,
		Claims:   t.Claims,
		Scopes:   t.Scopes,
	}
}

// Verifier returns the verifier of a tenant of this snapshot, or nil for a
// snapshot made by NewSnapshot (which builds none) or a foreign tenant.
func (s *Snapshot) Verifier(t *Tenant) providers.Verifier {
	if s == nil || s.verifiers == nil {
		return nil
	}
	i, ok := s.byID[t.ID]
	if !ok || s.tenants[i] != t {
		return nil
	}
	return s.verifiers[i]
}

// Close stops the background work of the snapshot's verifiers (key
// refreshers). Call it once no request uses the snapshot any more.
func (s *Snapshot) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, v := range s.verifiers {
		if c, ok := v.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// misconfigured stands in for a verifier that could not be built.
type misconfigured struct{}

func (misconfigured) Verify(context.Context, string) (*providers.Principal, error) {
	return nil, &providers.Error{Class: providers.ClassUnavailable,
		Reason: "this resource is misconfigured on the gateway; its operator has been told in the log"}
}
