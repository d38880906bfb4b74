package store

import (
	"context"
	"time"
)

// Observe receives the duration and outcome of one store operation, and
// the context it ran in (whose trace, if any, a metric may name).
type Observe func(ctx context.Context, op string, d time.Duration, err error)

// Span starts what follows one store operation besides its timing (a
// trace span), and returns the context the operation runs in and what ends
// it with the operation's error.
type Span func(ctx context.Context, op string) (context.Context, func(err error))

// Start begins op's span; a nil Span begins none, and its end does
// nothing (and allocates nothing).
func (s Span) Start(ctx context.Context, op string) (context.Context, func(err error)) {
	if s == nil {
		return ctx, noSpan
	}
	return s(ctx, op)
}

func noSpan(error) {}

// Timed wraps s so that every operation is reported to observe (metrics)
// and, when span is not nil, runs in a span of its own (tracing), without
// the backends knowing about either.
func Timed(s Store, observe Observe, span Span) Store { return timed{s, observe, span} }

type timed struct {
	Store
	observe Observe
	span    Span
}

// done reports op, begun at start, and ends its span.
func (t timed) done(ctx context.Context, op string, start time.Time, end func(error), err error) {
	t.observe(ctx, op, time.Since(start), err)
	end(err)
}

func (t timed) EnsureTenants(ctx context.Context, tenants ...string) error {
	start := time.Now()
	ctx, end := t.span.Start(ctx, "ensure_tenants")
	err := t.Store.EnsureTenants(ctx, tenants...)
	t.done(ctx, "ensure_tenants", start, end, err)
	return err
}

func (t timed) Create(ctx context.Context, tenant, owner, content string) (Todo, error) {
	start := time.Now()
	ctx, end := t.span.Start(ctx, "create")
	todo, err := t.Store.Create(ctx, tenant, owner, content)
	t.done(ctx, "create", start, end, err)
	return todo, err
}

func (t timed) Get(ctx context.Context, tenant, id string) (Todo, error) {
	start := time.Now()
	ctx, end := t.span.Start(ctx, "get")
	todo, err := t.Store.Get(ctx, tenant, id)
	t.done(ctx, "get", start, end, err)
	return todo, err
}

func (t timed) List(ctx context.Context, tenant string, opts ListOptions) (Page, error) {
	start := time.Now()
	ctx, end := t.span.Start(ctx, "list")
	page, err := t.Store.List(ctx, tenant, opts)
	t.done(ctx, "list", start, end, err)
	return page, err
}

func (t timed) Delete(ctx context.Context, tenant, id string, allow func(Todo) bool) (Todo, error) {
	start := time.Now()
	ctx, end := t.span.Start(ctx, "delete")
	todo, err := t.Store.Delete(ctx, tenant, id, allow)
	t.done(ctx, "delete", start, end, err)
	return todo, err
}
