package store

import (
	"context"
	"time"
)

// Observe receives the duration and outcome of one store operation.
type Observe func(op string, d time.Duration, err error)

// Timed wraps s so that every operation is reported to observe (metrics),
// without the backends knowing about it.
func Timed(s Store, observe Observe) Store { return timed{s, observe} }

type timed struct {
	Store
	observe Observe
}

func (t timed) EnsureTenants(ctx context.Context, tenants ...string) error {
	start := time.Now()
	err := t.Store.EnsureTenants(ctx, tenants...)
	t.observe("ensure_tenants", time.Since(start), err)
	return err
}

func (t timed) Create(ctx context.Context, tenant, owner, content string) (Todo, error) {
	start := time.Now()
	todo, err := t.Store.Create(ctx, tenant, owner, content)
	t.observe("create", time.Since(start), err)
	return todo, err
}

func (t timed) Get(ctx context.Context, tenant, id string) (Todo, error) {
	start := time.Now()
	todo, err := t.Store.Get(ctx, tenant, id)
	t.observe("get", time.Since(start), err)
	return todo, err
}

func (t timed) List(ctx context.Context, tenant string, opts ListOptions) (Page, error) {
	start := time.Now()
	page, err := t.Store.List(ctx, tenant, opts)
	t.observe("list", time.Since(start), err)
	return page, err
}

func (t timed) Delete(ctx context.Context, tenant, id string, allow func(Todo) bool) (Todo, error) {
	start := time.Now()
	todo, err := t.Store.Delete(ctx, tenant, id, allow)
	t.observe("delete", time.Since(start), err)
	return todo, err
}
