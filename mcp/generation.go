package mcp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/time/rate"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/mcp/upstream"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// Generation is one immutable tenant set and everything the edge keeps per
// tenant: the tenant, its verifier, its MCP server and its rendered
// metadata, all built when the generation is built, never on a request.
// The edge serves from one pointer to the current generation; a request
// keeps the generation it started with, so a reload never changes a tenant
// under a request in flight.
type Generation struct {
	snap *tenants.Snapshot
	// states[i] belongs to snap.Tenants()[i].
	states []*tenantState
	// Version names the configuration this generation was built from (the
	// hash of its source bytes), shown in /status and the config metric.
	version string
	// revision is the etcd revision of that configuration, 0 for a file.
	revision int64
}

// tenantState is what the edge keeps for one tenant.
type tenantState struct {
	tenant   *tenants.Tenant
	verifier providers.Verifier
	// problem says why the verifier could not be built ("" when it was); the
	// verifier is then a stand-in that answers 503.
	problem string
	// server is the tenant's MCP server: a todoServer or an
	// upstreamServer.
	server      tenantServer
	metadata    []byte
	metadataURL string
	// allScopes is the scope parameter of a 401: every scope the tenant knows.
	allScopes string
	// origin is the resource's own origin, always allowed to call it.
	origin string
	// calls is the tenant's token bucket (rate_limit), nil for none: each
	// tool call takes a token once the body is read. requests holds every
	// request, before its token is verified, to requestsPerCall times that
	// rate and burst, so that a flood costs no verification while a
	// client's handshake, notifications and listings cost it no calls.
	// Both live as long as the state, so a reload that keeps the tenant
	// keeps its buckets, and one that changes the tenant starts full ones.
	calls, requests *rate.Limiter
}

// NewVerifier builds a tenant's token verifier. Serve passes one over
// providers.New (ProviderVerifier); tests pass fakes.
type NewVerifier func(t *tenants.Tenant) (providers.Verifier, error)

// ProviderVerifier is the NewVerifier serve uses: the tenant's provider
// settings through providers.New.
func ProviderVerifier(opts ...providers.Option) NewVerifier {
	return func(t *tenants.Tenant) (providers.Verifier, error) {
		p, err := providers.New(t.ProviderSettings(), opts...)
		if err != nil {
			return nil, err // not p: a nil *Provider in an interface is not nil
		}
		return p, nil
	}
}

// scopeNotIssued is what v knows of the scopes its authorization server
// will not issue (providers.Provider.ScopeNotIssued), for a refused call's
// tool error; a stand-in or fake verifier knows nothing.
func scopeNotIssued(v providers.Verifier) func(scope string) string {
	if n, ok := v.(interface{ ScopeNotIssued(scope string) string }); ok {
		return n.ScopeNotIssued
	}
	return func(string) string { return "" }
}

// BuildVerifier builds t's verifier with newVerifier, or the stand-in that
// refuses every token as temporarily unavailable when it cannot be built
// (typically the environment variable holding an introspection secret is
// unset), with the reason. The stand-in keeps one broken tenant from taking
// the others down: it keeps its routes and metadata, and the operator finds
// the problem in the log and in /status.
func BuildVerifier(t *tenants.Tenant, newVerifier NewVerifier) (v providers.Verifier, problem string) {
	v, err := newVerifier(t)
	if err != nil {
		return misconfigured{}, err.Error()
	}
	return v, ""
}

// misconfigured stands in for a verifier that could not be built.
type misconfigured struct{}

func (misconfigured) Verify(context.Context, string) (*providers.Principal, error) {
	return nil, &providers.Error{Class: providers.ClassUnavailable, Reason: MisconfiguredReason}
}

// MisconfiguredReason is what a client is told when the tenant cannot
// verify tokens for a reason its operator must fix (the token command
// recognises it).
const MisconfiguredReason = "this resource is misconfigured on the gateway; its operator has been told in the log"

// Len is the number of tenants.
func (gen *Generation) Len() int { return gen.snap.Len() }

// Version is the version of the configuration the generation was built from.
func (gen *Generation) Version() string { return gen.version }

// Revision is the etcd revision of the configuration the generation was
// built from, or 0 when it came from a file.
func (gen *Generation) Revision() int64 { return gen.revision }

// lookup finds the state of the tenant whose resource is host + path.
func (gen *Generation) lookup(host, path string) *tenantState {
	i, ok := gen.snap.Index(host, path)
	if !ok {
		return nil
	}
	return gen.states[i]
}

// build makes the generation of cfg. With prev, the generation it will
// replace, a tenant whose configuration is unchanged and whose verifier was
// built keeps prev's whole state, and with it the verifier's discovered
// metadata, keys and token caches; a changed or new tenant gets fresh ones.
// It makes no network call (providers discover lazily), so it is fast at any
// tenant count. The returned problems name the tenants whose verifier could
// not be built; they are served by the stand-in.
func (g *Gateway) build(cfg *tenants.Config, version string, prev *Generation) (*Generation, []tenants.Problem, error) {
	snap, err := tenants.NewSnapshot(cfg)
	if err != nil {
		return nil, nil, err
	}
	gen := &Generation{snap: snap, states: make([]*tenantState, snap.Len()), version: version}
	var problems []tenants.Problem
	for i, t := range snap.Tenants() {
		if old := prev.unchanged(t); old != nil {
			gen.states[i] = old
			continue
		}
		st := g.newTenantState(t)
		if st.problem != "" {
			problems = append(problems, tenants.Problem{Path: fmt.Sprintf("tenants[%d].provider", i), Tenant: t.ID, Message: st.problem})
		}
		gen.states[i] = st
	}
	return gen, problems, nil
}

func (g *Gateway) newTenantState(t *tenants.Tenant) *tenantState {
	st := &tenantState{
		tenant:      t,
		metadataURL: metadataURL(t.Resource),
		origin:      originOf(t.Resource),
		allScopes:   strings.Join(t.ScopeList(), " "),
		metadata: renderMetadata(protectedResourceMetadata{
			Resource:              t.Resource,
			AuthorizationServers:  []string{t.Provider.Issuer},
			ScopesSupported:       t.ScopeList(),
			ResourceName:          t.ResourceName,
			ResourceDocumentation: t.ResourceDocumentation,
		}),
	}
	if rl := t.RateLimit; rl != nil {
		st.calls = rate.NewLimiter(rate.Limit(rl.RequestsPerSecond), rl.Burst)
		st.requests = rate.NewLimiter(rate.Limit(requestsPerCall*rl.RequestsPerSecond), requestsPerCall*rl.Burst)
	}
	st.verifier, st.problem = BuildVerifier(t, g.opts.NewVerifier)
	if t.Server.IsUpstream() {
		opts := upstream.Options{Tenant: t.ID, Issuer: st.origin, Signer: g.opts.Signer, Logger: g.log}
		if g.tracer != nil {
			opts.WrapTransport = g.tracedTransport
		}
		if te, ok := st.verifier.(interface {
			TokenEndpoint(context.Context) (string, error)
		}); ok {
			opts.TokenEndpoint = te.TokenEndpoint // for a token exchange at the tenant's issuer
		}
		up, err := upstream.New(*t.Server, opts)
		if err != nil {
			// Like a verifier that cannot be built: the tenant keeps its
			// routes and answers 503 until its configuration is mended.
			st.verifier, st.problem = misconfigured{}, "server: "+err.Error()
		}
		st.server = upstreamServer{up, upstreamPolicy{t.Server}}
		return st
	}
	st.server = todoServer{todo.New(g.todoOptions(t, st.verifier))}
	return st
}

// todoOptions are what the todo server of t is built from: its space in
// the gateway's store, whose writes /status reports, what its verifier
// knows of its authorization server's scopes, and the edge's log, request
// ids and metrics.
func (g *Gateway) todoOptions(t *tenants.Tenant, v providers.Verifier) todo.Options {
	m := g.opts.Metrics
	return todo.Options{
		Tenant: t.ID, Scope: t.Scope, Roles: t.Claims.Roles, NotIssued: scopeNotIssued(v), Store: g.store, Writes: &g.writes,
		Logger: g.log, LibraryLogger: LibraryLogger(g.log, "mcp-go"), RequestID: RequestIDFrom, Bound: bounded,
		ToolError: func(tool string) { m.toolError(t.ID, tool) },
	}
}

// toolLabel is the metrics label of a call's tool or method: the name when
// the tenant's server names it (bounded by its configuration), else
// "other".
func (ts *tenantState) toolLabel(tool string) string {
	if tool == "" {
		return ""
	}
	if ts.server.HasTool(tool) {
		return tool
	}
	return "other"
}

// todoTenants are the ids of the tenants the todo server serves: those
// that have a space in the store.
func (gen *Generation) todoTenants() []string {
	var ids []string
	for _, st := range gen.states {
		if s, ok := st.server.(todoServer); ok {
			ids = append(ids, s.Tenant())
		}
	}
	return ids
}

// unchanged returns gen's state of the tenant with t's id when its
// configuration equals t's and its verifier was built, or nil.
func (gen *Generation) unchanged(t *tenants.Tenant) *tenantState {
	if gen == nil {
		return nil
	}
	i, ok := gen.snap.IndexOf(t.ID)
	if !ok {
		return nil
	}
	old := gen.states[i]
	if old.problem != "" || !old.tenant.Same(t) {
		return nil
	}
	return old
}

// replacedBy returns the states of gen that next did not carry over: what
// retiring gen must close.
func (gen *Generation) replacedBy(next *Generation) []*tenantState {
	if gen == nil {
		return nil
	}
	carried := make(map[*tenantState]bool)
	if next != nil {
		for _, st := range next.states {
			carried[st] = true
		}
	}
	var out []*tenantState
	for _, st := range gen.states {
		if !carried[st] {
			out = append(out, st)
		}
	}
	return out
}

// closeStates stops the verifiers' background work (key refreshers) and
// closes the MCP servers of states no request uses any more.
func closeStates(ctx context.Context, states []*tenantState) error {
	var errs []error
	for _, st := range states {
		if c, ok := st.verifier.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
		if err := st.server.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Change is what applying a generation changed, for the reload's log line.
type Change struct {
	// A tenant counts as changed when its state was rebuilt: its
	// configuration changed, or its verifier could not be built before.
	tenants.TenantChanges
	// Problems name the tenants whose verifier could not be built.
	Problems []tenants.Problem
}

// diff names the tenants next added, changed, removed and kept from prev.
func diff(prev, next *Generation) Change {
	var before []*tenants.Tenant
	if prev != nil {
		before = prev.snap.Tenants()
	}
	kept := func(old, t *tenants.Tenant) bool {
		i, _ := next.snap.IndexOf(t.ID)
		j, _ := prev.snap.IndexOf(old.ID)
		return prev.states[j] == next.states[i]
	}
	return Change{TenantChanges: tenants.ChangesBy(before, next.snap.Tenants(), kept)}
}

func (gen *Generation) indexOf(id string) (int, bool) {
	if gen == nil {
		return 0, false
	}
	return gen.snap.IndexOf(id)
}

// servers maps each tenant's id to its server's type, for the metrics.
func (gen *Generation) servers() map[string]string {
	out := make(map[string]string, gen.Len())
	for _, t := range gen.snap.Tenants() {
		out[t.ID] = t.Server.TypeOf()
	}
	return out
}
