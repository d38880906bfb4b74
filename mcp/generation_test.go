package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// genVerifier is a verifier that records whether it was closed.
type genVerifier struct {
	tenant string
	closed atomic.Bool
}

func (v *genVerifier) Verify(context.Context, string) (*providers.Principal, error) {
	return nil, &providers.Error{Class: providers.ClassInvalidToken, Reason: "test verifier"}
}

func (v *genVerifier) Close() error { v.closed.Store(true); return nil }

// genBed is an edge whose verifiers are genVerifiers, with every one built
// remembered in order.
type genBed struct {
	gw *Gateway

	mu    sync.Mutex
	built []*genVerifier
	// broken names tenants whose verifier cannot be built.
	broken map[string]bool
}

func newGenBed(t *testing.T, grace time.Duration) *genBed {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "todos.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := &genBed{broken: map[string]bool{}}
	b.gw = New(st, Options{
		RetireGrace: grace,
		Logger:      slog.New(slog.DiscardHandler),
		NewVerifier: func(t *tenants.Tenant) (providers.Verifier, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.broken[t.ID] {
				return nil, errors.New("secret not set")
			}
			v := &genVerifier{tenant: t.ID}
			b.built = append(b.built, v)
			return v, nil
		},
	})
	t.Cleanup(func() {
		b.gw.Close(context.Background())
		st.Close()
	})
	return b
}

func (b *genBed) verifiers() []*genVerifier {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*genVerifier(nil), b.built...)
}

// genConfig is a configuration of path tenants; name changes each tenant's
// resource_name, so two names make every tenant "changed".
func genConfig(name string, ids ...string) *tenants.Config {
	cfg := &tenants.Config{}
	for _, id := range ids {
		cfg.Tenants = append(cfg.Tenants, tenants.Tenant{
			ID: id, Resource: "http://localhost:3001/" + id, ResourceName: name,
			Provider: providers.Config{Type: providers.KindOIDC, Issuer: "https://login.example/"},
			Audience: providers.Audience{Strategy: providers.AudienceResource},
		})
	}
	return cfg
}

func mustApply(t *testing.T, gw *Gateway, cfg *tenants.Config, version string) Change {
	t.Helper()
	ch, err := gw.Apply(context.Background(), cfg, version)
	if err != nil {
		t.Fatalf("Apply %s: %v", version, err)
	}
	return ch
}

func TestApplyCarriesUnchangedTenantsAndRetiresTheRest(t *testing.T) {
	b := newGenBed(t, 20*time.Millisecond)
	mustApply(t, b.gw, genConfig("one", "steady", "moving", "leaving"), "v1")
	first := b.gw.Current()
	steady, moving, leaving := first.states[0], first.states[1], first.states[2]

	next := genConfig("one", "steady", "moving", "joining")
	next.Tenants[1].ResourceName = "two"
	ch := mustApply(t, b.gw, next, "v2")
	if fmt.Sprint(ch.Added, ch.Changed, ch.Removed, ch.Unchanged) != "[joining] [moving] [leaving] 1" {
		t.Errorf("got change %+v, want joining added, moving changed, leaving removed, 1 unchanged", ch)
	}
	gen := b.gw.Current()
	if gen.Version() != "v2" || gen.Len() != 3 {
		t.Errorf("got version %q with %d tenants, want v2 with 3", gen.Version(), gen.Len())
	}
	if gen.states[0] != steady {
		t.Error("the unchanged tenant got a new state; its verifier caches and MCP server should carry over")
	}
	if gen.states[1] == moving || gen.states[1].tenant.ResourceName != "two" {
		t.Error("the changed tenant kept its old state")
	}
	if st := gen.lookup("localhost:3001", "/moving"); st != gen.states[1] {
		t.Error("routing does not find the changed tenant's new state")
	}
	if gen.lookup("localhost:3001", "/leaving") != nil {
		t.Error("a removed tenant is still routed")
	}
	// Requests that loaded the first generation keep working during the
	// grace period: nothing is closed yet.
	for _, st := range []*tenantState{moving, leaving} {
		if st.verifier.(*genVerifier).closed.Load() {
			t.Errorf("%s was closed before the grace period ended", st.tenant.ID)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !(moving.verifier.(*genVerifier).closed.Load() && leaving.verifier.(*genVerifier).closed.Load()) {
		if time.Now().After(deadline) {
			t.Fatal("replaced tenants were not closed after the grace period")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if steady.verifier.(*genVerifier).closed.Load() {
		t.Error("the carried-over verifier was closed")
	}
}

// A retired generation is garbage once its grace period is over: nothing
// (timers, closures, the gateway) keeps it, or the token caches of its
// verifiers, alive. Before, every reload that changed a tenant kept the old
// snapshot until shutdown.
func TestRetiredGenerationsAreCollectable(t *testing.T) {
	b := newGenBed(t, time.Millisecond)
	const reloads = 20
	var retired []weak.Pointer[Generation]
	var retiredVerifiers []weak.Pointer[genVerifier]
	for i := range reloads {
		mustApply(t, b.gw, genConfig(fmt.Sprint(i), "acme", "globex"), fmt.Sprint("v", i))
		gen := b.gw.Current()
		if i < reloads-1 {
			retired = append(retired, weak.Make(gen))
			retiredVerifiers = append(retiredVerifiers, weak.Make(gen.states[0].verifier.(*genVerifier)))
		}
	}
	b.mu.Lock()
	b.built = nil // the bed's own record would keep them alive
	b.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		alive := 0
		for i := range retired {
			if retired[i].Value() != nil || retiredVerifiers[i].Value() != nil {
				alive++
			}
		}
		if alive == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d retired generations are still reachable after their grace period", alive, len(retired))
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.gw.applyMu.Lock()
	pending := len(b.gw.retiring)
	b.gw.applyMu.Unlock()
	if pending != 0 {
		t.Errorf("%d retirements still pending after their grace period, want 0", pending)
	}
}

func TestCloseRetiresAtOnce(t *testing.T) {
	b := newGenBed(t, time.Hour)
	mustApply(t, b.gw, genConfig("one", "acme"), "v1")
	mustApply(t, b.gw, genConfig("two", "acme"), "v2")
	if err := b.gw.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, v := range b.verifiers() {
		if !v.closed.Load() {
			t.Errorf("a verifier of %s is still open after Close", v.tenant)
		}
	}
	if _, err := b.gw.Apply(context.Background(), genConfig("three", "acme"), "v3"); err == nil {
		t.Error("Apply after Close succeeded")
	}
}

func TestApplyFailureKeepsTheCurrentGeneration(t *testing.T) {
	b := newGenBed(t, time.Millisecond)
	mustApply(t, b.gw, genConfig("one", "acme"), "v1")
	before := b.gw.Current()

	// An invalid configuration builds nothing.
	if _, err := b.gw.Apply(context.Background(), genConfig("two", "Not An Id"), "bad"); err == nil {
		t.Fatal("an invalid configuration was applied")
	}
	// A store that cannot make room for the tenants: the verifiers built
	// for the refused generation are closed again.
	b.gw.store.Close()
	n := len(b.verifiers())
	if _, err := b.gw.Apply(context.Background(), genConfig("three", "acme", "globex"), "v3"); err == nil {
		t.Fatal("Apply succeeded on a closed store")
	}
	if b.gw.Current() != before {
		t.Error("a failed Apply replaced the generation being served")
	}
	for _, v := range b.verifiers()[n:] {
		if !v.closed.Load() {
			t.Errorf("the verifier built for %s by the refused Apply was left open", v.tenant)
		}
	}
}

// A tenant whose verifier cannot be built keeps its routes, answers with the
// stand-in, is named in the problems and /status, and is rebuilt (not
// carried over) by the next Apply.
func TestBrokenTenantIsIsolatedAndRetried(t *testing.T) {
	b := newGenBed(t, time.Millisecond)
	b.broken["broken"] = true
	ch := mustApply(t, b.gw, genConfig("one", "fine", "broken"), "v1")
	if len(ch.Problems) != 1 || ch.Problems[0].Tenant != "broken" || ch.Problems[0].Path != "tenants[1].provider" {
		t.Fatalf("got problems %+v, want one for tenants[1].provider (broken)", ch.Problems)
	}
	st := b.gw.Current().lookup("localhost:3001", "/broken")
	if st == nil || st.problem != "secret not set" {
		t.Fatalf("got state %+v, want the broken tenant routed with its problem", st)
	}
	_, err := st.verifier.Verify(context.Background(), "x")
	if providers.ClassOf(err) != providers.ClassUnavailable {
		t.Errorf("the stand-in answered %v, want a ClassUnavailable error", err)
	}
	if doc := b.gw.Current().status(); doc.Config != "v1" || doc.Tenants[1].Problem != "secret not set" {
		t.Errorf("got status %+v, want version v1 and the broken tenant's problem", doc)
	}

	delete(b.broken, "broken")
	ch = mustApply(t, b.gw, genConfig("one", "fine", "broken"), "v1")
	if len(ch.Problems) != 0 || fmt.Sprint(ch.Changed) != "[broken]" || ch.Unchanged != 1 {
		t.Errorf("got change %+v, want the broken tenant rebuilt and the other carried over", ch)
	}
}
