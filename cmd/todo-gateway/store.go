package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/bolt"
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
}

// openStore opens the backend that the store block's driver names, from that
// driver's own block. This switch is the one place a new driver is wired in.
func openStore(cfg tenants.StoreConfig, log *slog.Logger) (backend, error) {
	switch cfg.Driver {
	case tenants.DriverBolt:
		b := cfg.Bolt
		if dir := filepath.Dir(b.Path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return backend{}, fmt.Errorf("store directory: %w", err)
			}
		}
		var batchDelay time.Duration
		if b.BatchDelay != nil {
			batchDelay = time.Duration(*b.BatchDelay)
		}
		st, err := bolt.Open(b.Path, bolt.Options{BatchDelay: batchDelay})
		if err != nil {
			return backend{}, err
		}
		return backend{Store: st, ready: st.Ping, description: "bbolt " + b.Path, backup: st.Backup}, nil
	case tenants.DriverEtcd:
		e := cfg.Etcd
		client, err := e.ClientConfig()
		if err != nil {
			return backend{}, err
		}
		st, err := etcd.Open(client, e.Prefix, etcd.Options{RequestTimeout: time.Duration(*e.RequestTimeout), Logger: log.With("store", "etcd")})
		if err != nil {
			return backend{}, err
		}
		return backend{Store: st, ready: st.Ping, description: fmt.Sprintf("etcd %s prefix %q", strings.Join(e.Endpoints, ","), e.Prefix)}, nil
	}
	// Validation refuses unknown drivers; this is for a Config built by hand.
	return backend{}, fmt.Errorf("unknown store driver %q", cfg.Driver)
}
