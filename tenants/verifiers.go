package tenants

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Build is NewSnapshot plus every tenant's token verifier. It makes no
// network call (providers discover lazily), so it is fast at any tenant count.
//
// With prev, the snapshot a reload replaces, a tenant whose configuration is
// unchanged keeps prev's *Tenant and verifier, and with them its discovered
// metadata, keys and introspection cache; a changed or new tenant gets fresh
// ones. Close prev with CloseReplaced, which spares what was carried over.
//
// A tenant whose verifier cannot be built, typically because the environment
// variable holding its introspection secret is not set, must not take the
// other tenants down with it: it keeps its routes and metadata, refuses every
// token as temporarily unavailable, and its problem is returned so the caller
// can log it loudly.
func Build(cfg *Config, prev *Snapshot, opts ...providers.Option) (*Snapshot, []Problem, error) {
	s, err := NewSnapshot(cfg)
	if err != nil {
		return nil, nil, err
	}
	var problems []Problem
	s.verifiers = make([]providers.Verifier, len(s.tenants))
	for i, t := range s.tenants {
		if old, v := prev.unchanged(t); old != nil {
			s.tenants[i], s.verifiers[i] = old, v
			continue
		}
		p, err := providers.New(t.ProviderSettings(), opts...)
		if err != nil {
			problems = append(problems, Problem{Path: fmt.Sprintf("tenants[%d].provider", i), Tenant: t.ID, Message: err.Error()})
			s.verifiers[i] = misconfigured{problem: err.Error()}
			continue
		}
		s.verifiers[i] = p
	}
	return s, problems, nil
}

// unchanged returns s's tenant and verifier with t's id when its
// configuration equals t's and its verifier works, or nil.
func (s *Snapshot) unchanged(t *Tenant) (*Tenant, providers.Verifier) {
	if s == nil || s.verifiers == nil {
		return nil, nil
	}
	i, ok := s.byID[t.ID]
	if !ok {
		return nil, nil
	}
	if _, broken := s.verifiers[i].(misconfigured); broken || !reflect.DeepEqual(*s.tenants[i], *t) {
		return nil, nil
	}
	return s.tenants[i], s.verifiers[i]
}

// Contains reports whether t is one of this snapshot's tenants (the same
// pointer, not merely the same id).
func (s *Snapshot) Contains(t *Tenant) bool {
	if s == nil {
		return false
	}
	i, ok := s.byID[t.ID]
	return ok && s.tenants[i] == t
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
	if s == nil || s.verifiers == nil || !s.Contains(t) {
		return nil
	}
	return s.verifiers[s.byID[t.ID]]
}

// Close stops the background work of the snapshot's verifiers (key
// refreshers). Call it once no request uses the snapshot any more.
func (s *Snapshot) Close() error { return s.CloseReplaced(nil) }

// CloseReplaced closes the verifiers of s that next did not carry over.
func (s *Snapshot) CloseReplaced(next *Snapshot) error {
	if s == nil {
		return nil
	}
	var errs []error
	for i, v := range s.verifiers {
		if next.Contains(s.tenants[i]) {
			continue
		}
		if c, ok := v.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// misconfigured stands in for a verifier that could not be built. Clients
// get a generic 503; the operator finds the problem in the log and in the
// admin status.
type misconfigured struct{ problem string }

// Problem says why the verifier could not be built.
func (m misconfigured) Problem() string { return m.problem }

func (misconfigured) Verify(context.Context, string) (*providers.Principal, error) {
	return nil, &providers.Error{Class: providers.ClassUnavailable,
		Reason: "this resource is misconfigured on the gateway; its operator has been told in the log"}
}
