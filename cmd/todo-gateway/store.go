package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/etcd"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// backend is an open store with what the wiring needs besides the Store
// interface: its readiness check and a description for the log.
type backend struct {
	store.Store
	// ready reports whether the backend can serve now (/readyz).
	ready       func(context.Context) error
	description string
	// backup writes a consistent copy (bbolt); nil for etcd, which is
	// backed up with etcdctl snapshot save.
	backup func(ctx context.Context, start func(size int64) io.Writer) (int64, error)
	// cache describes the etcd driver's read cache; nil for bbolt.
	cache func() (etcd.CacheStats, bool)
}

// storeHooks are what the gateway attaches to a store besides its
// configuration: each bbolt commit's time and writes (metrics), the spans
// of a driver's internal steps and the etcd client's gRPC options
// (tracing). The zero value attaches nothing.
type storeHooks struct {
	commits func(time.Duration, int)
	span    store.Span
	dial    []grpc.DialOption
}

// openStore opens the backend that the store block's driver names, from that
// driver's own block. This switch is the one place a new driver is wired in.
func openStore(cfg tenants.StoreConfig, log *slog.Logger, hooks storeHooks) (backend, error) {
	switch cfg.Driver {
	case tenants.DriverBolt:
		bc := *cfg.Bolt // the configuration stays as read: reloads compare it
		bc.ObserveCommit, bc.Span = hooks.commits, hooks.span
		st, err := bc.Open()
		if err != nil {
			return backend{}, err
		}
		return backend{Store: st, ready: st.Ping, description: cfg.Bolt.Describe(), backup: st.Backup}, nil
	case tenants.DriverEtcd:
		ec := *cfg.Etcd
		ec.Span, ec.DialOptions = hooks.span, hooks.dial
		st, err := ec.Open(log.With("store", "etcd"))
		if err != nil {
			return backend{}, err
		}
		return backend{Store: st, ready: st.Ping, description: cfg.Etcd.Describe(), cache: st.CacheStats}, nil
	}
	// Validation refuses unknown drivers; this is for a Config built by hand.
	return backend{}, fmt.Errorf("unknown store driver %q", cfg.Driver)
}
